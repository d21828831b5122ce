#!/usr/bin/env python3
"""deltainfer's Python ops beside PyTorch's own attention, on the same tensors in one process.

Prefill (GQA 32/8, d 128, bf16, causal): ours dense vs SDPA (cuDNN backend, else the default);
ours sliding window + sink vs FlexAttention (compiled, block mask); ours sliding + Δ (fused).
Decode (one query per sequence over a paged cache): ours split-KV vs SDPA on contiguous K/V at
batch 1 (128K) and batch 32 (4K). Times: CUDA events, median after warm-up (bench/peers/timing.py),
including each op's Python checks and allocation — what a PyTorch user pays. Agreement: max abs
difference of ours vs the peer on the same inputs. Prints one RESULT line per case.
Needs the deltainfer wheel importable (see python/README.md); without it, says so and exits 0.

  PYTHONPATH=/tmp/site python3 bench/peers/python_ops.py [--tokens 32768,131072]
"""
import argparse
import sys

import torch

from timing import time_ms  # bench/peers/timing.py

try:
    import deltainfer
except ImportError as error:  # gpu-check runs every peer script, with or without the wheel
    print(f"python_ops: skipped, deltainfer is not importable ({error})")
    sys.exit(0)


def rand(*shape, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randn(*shape, device="cuda", dtype=torch.bfloat16, generator=gen)


def sdpa_backend():
    from torch.nn.attention import SDPBackend

    return [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]


def sdpa(qh, kh, vh, causal):
    """qh [1][H][n][d], kh/vh [1][Hkv][L][d] (contiguous, made before timing) through torch SDPA (GQA)."""
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel(sdpa_backend()):
        return torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=causal, enable_gqa=True)


def report(case, tokens, ours_ms, peer, peer_ms, diff):
    ratio = peer_ms / ours_ms if peer_ms else float("nan")
    print(f"RESULT case={case} tokens={tokens} ours_ms={ours_ms:.3f} peer={peer} peer_ms={peer_ms:.3f} "
          f"speedup={ratio:.2f} max_abs_diff={diff:.4f}", flush=True)


def prefill_cases(tokens, heads, kv_heads, dim, window, sink, gamma, flex):
    q = rand(tokens, heads, dim, seed=1)
    k, v = rand(tokens, kv_heads, dim, seed=2), rand(tokens, kv_heads, dim, seed=3)
    k_cache, v_cache, table, _ = deltainfer.paged_kv_from_contiguous(k, v)
    repeats = 10 if tokens <= 65536 else 3

    qh, kh, vh = (t.transpose(0, 1)[None].contiguous() for t in (q, k, v))  # the peers' [1][heads][n][d]
    dense = lambda: deltainfer.prefill_attention(q, k_cache, v_cache, table, tokens)
    peer = lambda: sdpa(qh, kh, vh, True)
    diff = (dense().float() - peer()[0].transpose(0, 1).float()).abs().max().item()
    report("dense_prefill", tokens, time_ms(dense, repeats), "sdpa", time_ms(peer, repeats), diff)

    sliding = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, window, sink)
    if flex is not None:
        from torch.nn.attention.flex_attention import create_block_mask

        def mask_mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & ((kv_idx < sink) | (q_idx - kv_idx < window))

        block_mask = create_block_mask(mask_mod, None, None, tokens, tokens, device="cuda", _compile=True)
        peer = lambda: flex(qh, kh, vh, block_mask=block_mask, enable_gqa=True)
        diff = (sliding().float() - peer()[0].transpose(0, 1).float()).abs().max().item()
        report("sliding_prefill", tokens, time_ms(sliding, repeats), "flex", time_ms(peer, repeats), diff)
    delta = lambda: deltainfer.sliding_delta_prefill(q, k_cache, v_cache, table, tokens, window, sink, gamma)
    # Δ has no PyTorch peer: timed beside our sliding pass, agreement measured against dense.
    diff = (delta().float() - dense().float()).abs().max().item()
    report("sliding_delta_prefill", tokens, time_ms(delta, repeats), "ours_sliding", time_ms(sliding, repeats),
           diff)


def decode_case(batch, kv_len, heads, kv_heads, dim):
    q = rand(batch, heads, dim, seed=4)
    keys = [rand(kv_len, kv_heads, dim, seed=10 + b) for b in range(batch)]
    values = [rand(kv_len, kv_heads, dim, seed=100 + b) for b in range(batch)]
    k_cache, v_cache, table, kv_lens = deltainfer.paged_kv_from_contiguous(keys, values)
    ours = lambda: deltainfer.decode_attention(q, k_cache, v_cache, table, kv_lens, kv_len)
    k, v = (torch.stack(t).transpose(1, 2).contiguous() for t in (keys, values))  # [B][Hkv][L][d]
    from torch.nn.attention import sdpa_kernel

    def peer():
        with sdpa_kernel(sdpa_backend()):
            return torch.nn.functional.scaled_dot_product_attention(q[:, :, None], k, v, enable_gqa=True)[:, :, 0]

    diff = (ours().float() - peer().float()).abs().max().item()
    report(f"decode_batch{batch}", kv_len, time_ms(ours, 50), "sdpa", time_ms(peer, 50), diff)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="32768,131072")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=64)
    parser.add_argument("--gamma", type=int, default=64)
    parser.add_argument("--no-flex", action="store_true", help="skip FlexAttention (its compile takes a minute)")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    flex = None
    if not args.no_flex:
        from torch.nn.attention.flex_attention import flex_attention

        flex = torch.compile(flex_attention, dynamic=False)
    for tokens in [int(t) for t in args.tokens.split(",")]:
        try:
            prefill_cases(tokens, args.heads, args.kv_heads, args.dim, args.window, args.sink, args.gamma, flex)
        except (RuntimeError, torch.OutOfMemoryError) as e:
            print(f"prefill {tokens} failed: {str(e).splitlines()[0]}", flush=True)
        torch.cuda.empty_cache()
    for batch, kv_len in ((1, 131072), (32, 4096)):
        decode_case(batch, kv_len, args.heads, args.kv_heads, args.dim)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
