#!/usr/bin/env python3
"""CPU-side microbench of what crossing into the extension costs per decode call, no GPU needed:
decode_attention hands the kernel seven tensors (q, k/v caches, page table, kv_lens, out,
workspace). Through nanobind's ndarray caster each one becomes a DLPack capsule (torch's
__dlpack__) that is then parsed; the fast path passes data_ptr() integers instead. Prints the
microseconds per call of each, on tensors of decode's shapes (batch 1, 32 heads, 128K context).

  python3 python/bench/call_overhead.py [--calls 20000]
"""
import argparse
import timeit

import torch

TENSORS_PER_DECODE_CALL = 7


def decode_shaped_tensors():
    return [torch.empty(1, 32, 128, dtype=torch.bfloat16),          # q
            torch.empty(2048, 8, 64, 128, dtype=torch.bfloat16),    # k_cache (128K tokens, 64 per page)
            torch.empty(2048, 8, 64, 128, dtype=torch.bfloat16),    # v_cache
            torch.empty(1, 2048, dtype=torch.int32),                # page_table
            torch.empty(1, dtype=torch.int32),                      # kv_lens
            torch.empty(1, 32, 128, dtype=torch.bfloat16),          # out
            torch.empty(1 << 20, dtype=torch.uint8)]                # workspace


def per_call_us(fn, calls):
    return min(timeit.repeat(fn, number=calls, repeat=5)) / calls * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    calls = parser.parse_args().calls
    tensors = decode_shaped_tensors()
    assert len(tensors) == TENSORS_PER_DECODE_CALL
    dlpack = per_call_us(lambda: [t.__dlpack__() for t in tensors], calls)
    pointers = per_call_us(lambda: [t.data_ptr() for t in tensors], calls)
    print(f"torch {torch.__version__}: per decode call, {TENSORS_PER_DECODE_CALL} tensors")
    print(f"  DLPack capsules (the old path, before nanobind parses them): {dlpack:.2f} us")
    print(f"  data_ptr() integers (the fast path):                         {pointers:.2f} us")
    print(f"  saved per call: {dlpack - pointers:.2f} us")


if __name__ == "__main__":
    main()
