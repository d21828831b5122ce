#!/usr/bin/env python3
"""PyTorch SDPA on the decode shapes of bench/attention_decode_bench: one query token, GQA, bf16.

q [B, H, 1, d] against K/V [B, H_kv, L, d] (contiguous, no paging: the peer gets the easier
layout). Tries each SDPA backend (flash, efficient, cudnn; math is skipped) with enable_gqa, and
with the KV heads expanded when a backend refuses GQA (the expansion is done once, outside the
timing; the bytes counted stay those of the unexpanded cache). CUDA events, median of repeats.
Prints RESULT lines, the device copy rate, and with --ours FILE (the bench's output) the ratio
ours / best peer per shape. Needs only torch with CUDA (pip install torch); run on the GPU machine:

  build/h-cuda/bin/attention_decode_bench | tee ours.txt
  python3 bench/peers/sdpa_decode.py --ours ours.txt
"""
import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from timing import time_ms  # bench/peers/timing.py

BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}
# (batch, kv_len, heads, kv_heads, head_dim): the bench's shapes.
SHAPES = [(1, 131072, 32, 8, 128), (1, 32768, 32, 8, 128), (1, 4096, 32, 8, 128), (8, 16384, 32, 8, 128),
          (32, 4096, 32, 8, 128), (1, 131072, 28, 4, 128), (1, 131072, 9, 3, 64), (1, 131072, 64, 8, 128)]


def copy_tbps():
    n = 2 << 30
    src = torch.ones(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), 10, 2)
    return 2 * n / (ms * 1e-3) / 1e12


def run(shape, backend):
    batch, kv_len, heads, kv_heads, dim = shape
    gen = torch.Generator(device="cuda").manual_seed(kv_len + heads)
    q = torch.randn((batch, heads, 1, dim), device="cuda", dtype=torch.bfloat16, generator=gen)
    k = torch.randn((batch, kv_heads, kv_len, dim), device="cuda", dtype=torch.bfloat16, generator=gen)
    v = torch.randn((batch, kv_heads, kv_len, dim), device="cuda", dtype=torch.bfloat16, generator=gen)
    repeats = 50 if kv_len >= 65536 else 200
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with sdpa_kernel(BACKENDS[backend]):
        try:
            fn = lambda: sdpa(q, k, v, enable_gqa=True)
            fn()
            return time_ms(fn, repeats), "enable_gqa"
        except RuntimeError:
            pass
        group = heads // kv_heads
        ke, ve = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        try:
            fn = lambda: sdpa(q, ke, ve)
            fn()
            return time_ms(fn, repeats), "expanded KV"
        except RuntimeError as e:
            return None, str(e).splitlines()[0][:60]


def read_ours(path):
    ours = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT bench=decode_attention"):
                continue
            kv = dict(item.split("=", 1) for item in line.split()[1:])
            key = tuple(int(kv[k]) for k in ("batch", "kv_len", "n_heads", "n_kv_heads", "head_dim"))
            ours.setdefault(key, float(kv["time_us"]))  # the first (auto split) run of a shape
    return ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", help="output of attention_decode_bench, for the ratio column")
    args = parser.parse_args()
    ours = read_ours(args.ours) if args.ours else {}
    ceiling = copy_tbps()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; device copy {ceiling:.3f} TB/s (read + write)")
    print("| batch | kv_len | heads | d | backend | mode | time (us) | TB/s | of copy | ours (us) | peer / ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        batch, kv_len, heads, kv_heads, dim = shape
        kv_bytes = 2 * batch * kv_len * kv_heads * dim * 2
        best = None
        for backend in BACKENDS:
            ms, mode = run(shape, backend)
            if ms is None:
                print(f"| {batch} | {kv_len} | {heads}/{kv_heads} | {dim} | {backend} | failed: {mode} | | | | | |")
                continue
            us = ms * 1e3
            tbps = kv_bytes / (ms * 1e-3) / 1e12
            mine = ours.get(shape)
            ratio = f"{us / mine:.2f}" if mine else ""
            print(f"| {batch} | {kv_len} | {heads}/{kv_heads} | {dim} | {backend} | {mode} | {us:.1f} | {tbps:.2f} | "
                  f"{100 * tbps / ceiling:.1f}% | {mine or ''} | {ratio} |")
            print(f"RESULT bench=sdpa_decode backend={backend} batch={batch} kv_len={kv_len} n_heads={heads} "
                  f"n_kv_heads={kv_heads} head_dim={dim} time_us={us:.2f} tbps={tbps:.3f}", flush=True)
            if best is None or us < best[0]:
                best = (us, backend)
        if best and shape in ours:
            print(f"RESULT bench=sdpa_decode_best batch={batch} kv_len={kv_len} n_heads={heads} n_kv_heads={kv_heads} "
                  f"head_dim={dim} backend={best[1]} peer_us={best[0]:.2f} ours_us={ours[shape]:.2f} "
                  f"speedup={best[0] / ours[shape]:.2f}", flush=True)


if __name__ == "__main__":
    main()
