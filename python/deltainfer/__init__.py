"""deltainfer's CUDA attention kernels as PyTorch ops (see docs/PYTHON.md)."""
from deltainfer.decode_plan import DecodePlan
from deltainfer.ops import (
    PAGE_SIZE,
    append_kv,
    decode_attention,
    delta_decode,
    paged_kv_from_contiguous,
    prefill_attention,
    quest_decode,
    sliding_delta_prefill,
    sliding_prefill,
    sparse_decode,
    streaming_decode,
    vslash_prefill,
)

__all__ = [
    "DecodePlan",
    "PAGE_SIZE",
    "append_kv",
    "decode_attention",
    "delta_decode",
    "paged_kv_from_contiguous",
    "prefill_attention",
    "quest_decode",
    "sliding_delta_prefill",
    "sliding_prefill",
    "sparse_decode",
    "streaming_decode",
    "vslash_prefill",
]
