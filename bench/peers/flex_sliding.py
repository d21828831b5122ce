#!/usr/bin/env python3
"""PyTorch FlexAttention on the shapes of bench/sparse_prefill_bench: sliding window + sink.

Causal GQA prefill, bf16, query i attends keys j <= i with j < sink or i - j < window, through
torch.nn.attention.flex_attention (torch.compile'd, block mask from create_block_mask,
enable_gqa=True). Times with CUDA events (median of repeats, after warm-up and compilation) and
counts 4 * d * heads * attended pairs. With --ours FILE (the bench's output), prints ours/flex.
Needs only torch with CUDA (pip install torch); runs on the GPU machine:

  sparse_prefill_bench | tee ours.txt
  python3 bench/peers/flex_sliding.py --ours ours.txt
"""
import argparse

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from timing import time_ms  # bench/peers/timing.py


def attended_pairs(n, window, sink):
    i = torch.arange(n, dtype=torch.float64)
    lo = (i - window + 1).clamp(min=0)
    return float(((i - lo + 1) + lo.clamp(max=sink)).sum())


def run(tokens, heads, kv_heads, dim, window, sink, flex):
    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & ((kv_idx < sink) | (q_idx - kv_idx < window))

    # _compile=True builds the block mask without materializing the N x N mask (128 GB at 128K).
    block_mask = create_block_mask(mask_mod, None, None, tokens, tokens, device="cuda",
                                   _compile=True)
    gen = torch.Generator(device="cuda").manual_seed(tokens)
    shape = lambda h: (1, h, tokens, dim)
    q = torch.randn(shape(heads), device="cuda", dtype=torch.bfloat16, generator=gen)
    k = torch.randn(shape(kv_heads), device="cuda", dtype=torch.bfloat16, generator=gen)
    v = torch.randn(shape(kv_heads), device="cuda", dtype=torch.bfloat16, generator=gen)
    fn = lambda: flex(q, k, v, block_mask=block_mask, enable_gqa=True)
    return time_ms(fn, 10 if tokens <= 200000 else 3)


def read_ours(path):
    ours = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "RESULT" and "=" not in parts[1]:  # not the GEMM-rate line
                ours[(parts[1], int(parts[2]))] = float(parts[3])
    return ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="32768,131072")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=64)
    parser.add_argument("--ours", help="output of sparse_prefill_bench")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name())
    flex = torch.compile(flex_attention, dynamic=False)
    ours = read_ours(args.ours) if args.ours else {}
    print("tokens   flex ms   flex TFLOP/s   ours sliding ms   flex/ours (speedup of ours)")
    for tokens in [int(t) for t in args.tokens.split(",")]:
        try:
            ms = run(tokens, args.heads, args.kv_heads, args.dim, args.window, args.sink, flex)
        except (RuntimeError, torch.OutOfMemoryError) as e:
            print(f"{tokens:7d} failed: {str(e).splitlines()[0]}", flush=True)
            torch.cuda.empty_cache()
            continue
        tflops = 4.0 * args.dim * args.heads * attended_pairs(tokens, args.window, args.sink) / (ms * 1e-3) / 1e12
        mine = ours.get(("sliding", tokens))
        ratio = f"{ms / mine:.2f}x" if mine else "-"
        print(f"{tokens:7d} {ms:9.3f} {tflops:14.1f} {mine or 0:17.3f}   {ratio}", flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
