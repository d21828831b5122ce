#!/usr/bin/env python3
"""PyTorch SDPA on the shapes of bench/attention_prefill_bench: causal GQA prefill, bf16.

Times the cuDNN and flash backends (torch.nn.attention.sdpa_kernel) with CUDA events, median of
repeats, and counts 4 * N^2 * d * heads / 2 FLOPs. With --ours FILE (the bench's output), prints
ours / cuDNN per size. Needs only torch with CUDA (pip install torch); runs on the GPU machine:

  build/bin/attention_prefill_bench | tee ours.txt
  python3 bench/peers/sdpa_prefill.py --ours ours.txt
"""
import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from timing import time_ms  # bench/peers/timing.py

BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}


def run(tokens, heads, kv_heads, dim, backend):
    gen = torch.Generator(device="cuda").manual_seed(tokens)
    shape = lambda h: (1, h, tokens, dim)
    q = torch.randn(shape(heads), device="cuda", dtype=torch.bfloat16, generator=gen)
    k = torch.randn(shape(kv_heads), device="cuda", dtype=torch.bfloat16, generator=gen)
    v = torch.randn(shape(kv_heads), device="cuda", dtype=torch.bfloat16, generator=gen)
    group = heads // kv_heads
    repeats = 5 if tokens >= 100000 else 10 if tokens >= 30000 else 30
    with sdpa_kernel(BACKENDS[backend]):
        try:
            fn = lambda: torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=True)
            return time_ms(fn, repeats), "enable_gqa"
        except RuntimeError:
            pass
        # Backend without native GQA: give it the KV heads expanded (not counted as work).
        ke, ve = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        fn = lambda: torch.nn.functional.scaled_dot_product_attention(q, ke, ve, is_causal=True)
        return time_ms(fn, repeats), "expanded KV"


def read_ours(path):
    ours = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "RESULT" and "=" not in parts[1]:  # not the GEMM-rate line
                ours[(parts[1], int(parts[2]))] = float(parts[4])
    return ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="8192,32768,131072")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--ours", help="output of attention_prefill_bench")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), "cudnn", torch.backends.cudnn.version())
    peers = {}
    for tokens in [int(t) for t in args.tokens.split(",")]:
        flops = 4.0 * tokens * tokens * args.dim * args.heads / 2.0
        for backend in BACKENDS:
            try:
                ms, how = run(tokens, args.heads, args.kv_heads, args.dim, backend)
            except RuntimeError as e:
                print(f"sdpa-{backend} tokens={tokens}: failed: {str(e).splitlines()[0]}")
                continue
            tflops = flops / (ms * 1e-3) / 1e12
            peers[(backend, tokens)] = tflops
            print(f"sdpa-{backend} tokens={tokens} heads={args.heads}/{args.kv_heads} d={args.dim}"
                  f" ({how}): {ms:.3f} ms, {tflops:.1f} TFLOP/s")
        torch.cuda.empty_cache()
    if args.ours:
        ours = read_ours(args.ours)
        print("\nkernel   tokens   ours TFLOP/s   cuDNN TFLOP/s   flash TFLOP/s   ours/cuDNN")
        for (kernel, tokens), tflops in sorted(ours.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            cudnn, flash = peers.get(("cudnn", tokens)), peers.get(("flash", tokens))
            ratio = f"{tflops / cudnn:.2f}" if cudnn else "-"
            print(f"{kernel:8} {tokens:7d} {tflops:14.1f} {cudnn or 0:15.1f} {flash or 0:15.1f}"
                  f" {ratio:>12}")


if __name__ == "__main__":
    main()
