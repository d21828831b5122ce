"""deltainfer's attention kernels as PyTorch ops.

Layouts (all bf16 CUDA tensors unless stated; "contiguous" means torch's is_contiguous()):
  q                 [n_q][n_heads][head_dim] (prefill) or [batch][n_heads][head_dim] (decode),
                    RoPE already applied; head_dim 64 or 128; n_heads a multiple of n_kv_heads.
  k_cache, v_cache  [num_pages][n_kv_heads][PAGE_SIZE][head_dim]: the paged KV cache, keys after
                    RoPE (paged_kv_from_contiguous builds it from [kv_len][n_kv_heads][head_dim]).
  page_table        int32, logical page -> physical page: [pages] for one sequence (prefill),
                    [batch][pages] for decode. Its entries must be < num_pages (not checked here:
                    that would need a device sync).
  kv_lens           int32 [batch] (decode).
Every op launches on torch.cuda.current_stream() and returns without synchronizing; outputs are
new tensors from PyTorch's allocator. Bad arguments raise TypeError / ValueError before any launch.
Methods are described in docs/METHODS.md (section named in each docstring).
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import re
from typing import NamedTuple

import torch

from deltainfer import _checks

PAGE_SIZE = 64  # tokens per KV page (src/backend/cuda/paged_kv.h, kKvPageSize)
MAX_DECODE_GROUP = 16  # query heads per KV head in decode (decode_attention.h)
FUSED_GAMMAS = (16, 32, 64)  # strides the sliding kernel's fused Δ epilogue supports
SPARSE_KERNELS = ("auto", "sm90", "sm90ws")  # prefill kernels with the sparse modes (Hopper only)
DENSE_KERNELS = ("auto", "sm80") + SPARSE_KERNELS[1:]
QUEST_PAGE = 16  # tokens per Quest page (delta_decode.h, kQuestPage)


@functools.cache
def _ext():
    """The compiled kernels, imported on first launch (argument checks need no CUDA runtime)."""
    try:
        from deltainfer import _ext as ext
    except ImportError as error:
        missing = re.search(r"libcudart\.so\.\d+", str(error))
        if missing is None:
            raise
        _load_cuda_runtime(missing.group(0), error)
        from deltainfer import _ext as ext
    return ext


def _load_cuda_runtime(soname: str, error: ImportError) -> None:
    """The module links the shared CUDA runtime. A CUDA build of torch of the same CUDA major
    has already loaded it; otherwise take it from the nvidia wheels or the CUDA toolkit."""
    candidates = []
    try:
        import nvidia

        for root in nvidia.__path__:
            candidates += sorted(glob.glob(os.path.join(root, "*", "lib", soname)))
    except ImportError:
        pass
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "lib64", soname))
    for path in candidates:
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return
    raise ImportError(f"deltainfer needs the CUDA runtime {soname} (not found in the nvidia wheels, "
                      f"$CUDA_HOME or /usr/local/cuda; put it on LD_LIBRARY_PATH): {error}") from error


# The current stream's handle without building a torch.cuda.Stream object per call (torch's own
# getter, the one torch.compile's generated code calls); the public API where a build lacks it.
_current_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _stream(device: torch.device) -> int:
    if _current_raw_stream is not None and device.index is not None:
        return _current_raw_stream(device.index)
    return torch.cuda.current_stream(device).cuda_stream


def _prefill_inputs(q, k_cache, v_cache, page_table, kv_len, first_pos, softmax_scale):
    """Checks a one-sequence prefill call; returns (page_table as 1-D, scale)."""
    _checks.tensor(q, "q", torch.bfloat16, 3)
    _checks.kv_cache(k_cache, v_cache, PAGE_SIZE)
    _checks.tensor(page_table, "page_table", torch.int32, (1, 2))
    if page_table.dim() == 2:
        if page_table.shape[0] != 1:
            raise ValueError(f"page_table: one sequence's table is 1-D or [1][pages], got {tuple(page_table.shape)}")
        page_table = page_table[0]
    _checks.heads(q.shape[1], k_cache.shape[1], q.shape[2], k_cache.shape[3])
    n_q = q.shape[0]
    _checks.integer(kv_len, "kv_len", 1)
    _checks.integer(first_pos, "first_pos", 0)
    if n_q < 1:
        raise ValueError("q: no query rows")
    if first_pos + n_q > kv_len:
        raise ValueError(f"q: rows at positions {first_pos}..{first_pos + n_q - 1} need kv_len > "
                         f"{first_pos + n_q - 1}, got kv_len {kv_len}")
    pages = -(-kv_len // PAGE_SIZE)
    if page_table.shape[0] < pages:
        raise ValueError(f"page_table: {page_table.shape[0]} pages for kv_len {kv_len} (needs {pages})")
    scale = _checks.softmax_scale(softmax_scale, q.shape[2])
    _checks.on_one_cuda_device("prefill", q=q, k_cache=k_cache, v_cache=v_cache, page_table=page_table)
    return page_table, scale


def _lse(q: torch.Tensor, want: bool):
    return torch.empty(q.shape[0], q.shape[1], dtype=torch.float32, device=q.device) if want else None


def _result(out, lse):
    return (out, lse) if lse is not None else out


def prefill_attention(q, k_cache, v_cache, page_table, kv_len, first_pos=0, *, softmax_scale=None,
                      return_lse=False, kernel="auto"):
    """Dense causal prefill (docs/METHODS.md, "The methods by name": dense attention).

    Query row i sits at position first_pos + i and attends keys 0..first_pos + i of the paged
    cache, which holds kv_len keys (first_pos + n_q <= kv_len; chunked prefill passes the chunk's
    first position). GQA: query head h reads KV head h // (n_heads // n_kv_heads).
    Returns out [n_q][n_heads][head_dim] bf16, and the f32 log-sum-exp [n_q][n_heads] (natural
    log of sum_j exp(scale * q.k_j)) when return_lse.
    kernel picks the prefill kernel (src/backend/cuda/prefill_attention.h): "auto" (what the
    engine uses: DELTAINFER_PREFILL_KERNEL when set, else "sm90ws" where wgmma exists and "sm80"
    elsewhere), "sm80", "sm90" (the v3 kernel, the fallback), or "sm90ws" (the FlashAttention-3
    style warp-specialized kernel).
    """
    _checks.choice(kernel, "kernel", DENSE_KERNELS)
    page_table, scale = _prefill_inputs(q, k_cache, v_cache, page_table, kv_len, first_pos, softmax_scale)
    out = torch.empty_like(q)
    lse = _lse(q, return_lse)
    _ext().prefill(q, k_cache, v_cache, page_table, out, lse, kv_len, first_pos, None, scale, kernel,
                   _stream(q.device))
    return _result(out, lse)


def _window_sink(window, sink):
    _checks.integer(window, "window")
    _checks.integer(sink, "sink")
    if window <= 0:
        raise ValueError(f"window: must be > 0, got {window}")
    if sink < 0:
        raise ValueError(f"sink: must be >= 0, got {sink}")


def sliding_prefill(q, k_cache, v_cache, page_table, kv_len, window, sink=0, first_pos=0, *,
                    softmax_scale=None, return_lse=False, kernel="auto"):
    """Sliding window + sink prefill (docs/METHODS.md, "The methods by name": sliding window +
    sink, StreamingLLM's pattern at prefill; the sparse pass of "Δ attention (prefill)").

    The query at position p attends keys j <= p with j < sink or j > p - window. Arguments and
    result as prefill_attention; window >= 1, sink >= 0; kernel "auto", "sm90" or "sm90ws".
    """
    _window_sink(window, sink)
    _checks.choice(kernel, "kernel", SPARSE_KERNELS)
    page_table, scale = _prefill_inputs(q, k_cache, v_cache, page_table, kv_len, first_pos, softmax_scale)
    out = torch.empty_like(q)
    lse = _lse(q, return_lse)
    _ext().sliding_prefill(q, k_cache, v_cache, page_table, out, lse, kv_len, first_pos, scale, window, sink,
                           None, 0, kernel, _stream(q.device))
    return _result(out, lse)


def sliding_delta_prefill(q, k_cache, v_cache, page_table, kv_len, window, sink=0, gamma=64, first_pos=0, *,
                          softmax_scale=None, kernel="auto"):
    """Sliding window + sink with the Δ correction, fused (docs/METHODS.md, "Δ attention
    (prefill)", the "propagate" variant).

    As the engine does it (src/backend/cuda/cuda_attention.cpp, prefill_delta): dense causal
    attention for the rows at positions first_pos, first_pos + gamma, ... (o^d_r), then the
    sliding pass whose epilogue writes o^s_i + (o^d_r - o^s_r), r = gamma * floor(pos_i / gamma),
    and o^d_r on the rows r. gamma is 16, 32 or 64, and first_pos a multiple of gamma. Unlike the
    engine this op computes no dense tail rows (docs/METHODS.md): every row is corrected.
    kernel ("auto", "sm90" or "sm90ws") runs both passes. Returns out [n_q][n_heads][head_dim] bf16.
    """
    _window_sink(window, sink)
    _delta_gamma(gamma, first_pos)
    _checks.choice(kernel, "kernel", SPARSE_KERNELS)
    page_table, scale = _prefill_inputs(q, k_cache, v_cache, page_table, kv_len, first_pos, softmax_scale)
    dense_rows = _strided_dense_rows(q, k_cache, v_cache, page_table, kv_len, first_pos, gamma, scale, kernel)
    out = torch.empty_like(q)
    _ext().sliding_prefill(q, k_cache, v_cache, page_table, out, None, kv_len, first_pos, scale, window, sink,
                           dense_rows, gamma, kernel, _stream(q.device))
    return out


def _delta_gamma(gamma, first_pos):
    _checks.integer(gamma, "gamma")
    if gamma not in FUSED_GAMMAS:
        raise ValueError(f"gamma: the fused Δ correction supports {FUSED_GAMMAS}, got {gamma}")
    if isinstance(first_pos, int) and first_pos % gamma != 0:
        raise ValueError(f"first_pos: {first_pos} must be a multiple of gamma {gamma}")


def _strided_dense_rows(q, k_cache, v_cache, page_table, kv_len, first_pos, gamma, scale, kernel):
    """o^d_r: dense causal attention of the rows at positions first_pos, first_pos + gamma, ..."""
    strided_q = q[::gamma].contiguous()
    positions = torch.arange(first_pos, first_pos + q.shape[0], gamma, dtype=torch.int32, device=q.device)
    dense_rows = torch.empty_like(strided_q)
    _ext().prefill(strided_q, k_cache, v_cache, page_table, dense_rows, None, kv_len, first_pos, positions, scale,
                   kernel, _stream(q.device))
    return dense_rows


def vslash_prefill(q, k_cache, v_cache, page_table, kv_len, first_pos=0, *, vertical=1000, slash=6096,
                   estimate_queries=64, gamma=None, softmax_scale=None, kernel="auto"):
    """Vertical-slash block-sparse prefill with its estimator (docs/METHODS.md,
    "Vertical-slash (prefill)"), with the fused Δ correction when gamma is given ("Δ attention
    (prefill)": vslash+Δ).

    The chunk is the cache's last rows: first_pos + n_q == kv_len. The estimator scores key
    columns and diagonals from the last estimate_queries rows and keeps the top `vertical`
    columns and `slash` offsets per head (src/backend/cuda/vslash_estimate.h); each 128-row
    query block then visits the 64-key blocks they touch plus block 0 and its own diagonal.
    The estimator's buffers are allocated for the call (cudaMalloc) and freed at its end.
    gamma (16, 32 or 64, first_pos a multiple of it) adds the Δ correction as in
    sliding_delta_prefill. kernel: "auto", "sm90" or "sm90ws". Returns out [n_q][n_heads][head_dim] bf16.
    """
    _checks.choice(kernel, "kernel", SPARSE_KERNELS)
    for name, value in (("vertical", vertical), ("slash", slash), ("estimate_queries", estimate_queries)):
        _checks.integer(value, name, 1)
    if gamma is not None:
        _delta_gamma(gamma, first_pos)
    _checks.tensor(q, "q", torch.bfloat16, 3)
    if _checks.integer(first_pos, "first_pos", 0) + q.shape[0] != _checks.integer(kv_len, "kv_len", 1):
        raise ValueError(f"kv_len: vertical-slash needs the chunk to end the cache (first_pos + n_q = "
                         f"{first_pos + q.shape[0]}), got kv_len {kv_len}")
    page_table, scale = _prefill_inputs(q, k_cache, v_cache, page_table, kv_len, first_pos, softmax_scale)
    dense_rows = None
    if gamma is not None:
        dense_rows = _strided_dense_rows(q, k_cache, v_cache, page_table, kv_len, first_pos, gamma, scale, kernel)
    out = torch.empty_like(q)
    _ext().vslash_prefill(q, k_cache, v_cache, page_table, out, None, kv_len, first_pos, scale, estimate_queries,
                          vertical, slash, dense_rows, gamma or 0, kernel, _stream(q.device))
    return out


class _DecodeInputs(NamedTuple):
    page_table: torch.Tensor
    kv_lens: torch.Tensor
    max_kv_len: int
    scale: float


def _decode_inputs(q, k_cache, v_cache, page_table, kv_lens, max_kv_len, softmax_scale) -> _DecodeInputs:
    _checks.tensor(q, "q", torch.bfloat16, 3)
    _checks.kv_cache(k_cache, v_cache, PAGE_SIZE)
    _checks.tensor(page_table, "page_table", torch.int32, (1, 2))
    _checks.tensor(kv_lens, "kv_lens", torch.int32, 1)
    batch, n_heads, head_dim = q.shape
    if page_table.dim() == 1:
        page_table = page_table.unsqueeze(0)
    _checks.heads(n_heads, k_cache.shape[1], head_dim, k_cache.shape[3])
    if n_heads // k_cache.shape[1] > MAX_DECODE_GROUP:
        raise ValueError(f"heads: {n_heads // k_cache.shape[1]} query heads per KV head; decode supports at most "
                         f"{MAX_DECODE_GROUP}")
    if batch < 1:
        raise ValueError("q: empty batch")
    if page_table.shape[0] != batch or kv_lens.shape[0] != batch:
        raise ValueError(f"page_table {tuple(page_table.shape)} and kv_lens {tuple(kv_lens.shape)} need one row "
                         f"per sequence of q's batch {batch}")
    if max_kv_len is None:
        max_kv_len = int(kv_lens.max().item())  # a device sync; pass max_kv_len to avoid it
    _checks.integer(max_kv_len, "max_kv_len", 1)
    if -(-max_kv_len // PAGE_SIZE) > page_table.shape[1]:
        raise ValueError(f"page_table: {page_table.shape[1]} pages per sequence for max_kv_len {max_kv_len}")
    scale = _checks.softmax_scale(softmax_scale, head_dim)
    _checks.on_one_cuda_device("decode", q=q, k_cache=k_cache, v_cache=v_cache, page_table=page_table,
                               kv_lens=kv_lens)
    return _DecodeInputs(page_table, kv_lens, max_kv_len, scale)


def _workspace(nbytes: int, device: torch.device) -> torch.Tensor:
    return torch.empty(max(int(nbytes), 1), dtype=torch.uint8, device=device)


def decode_attention(q, k_cache, v_cache, page_table, kv_lens, max_kv_len=None, *, softmax_scale=None,
                     num_splits=0, return_lse=False):
    """Dense split-KV decode over the paged cache for a batch (docs/METHODS.md, "The methods by
    name": dense attention; FlashDecoding's split-KV).

    q [batch][n_heads][head_dim], one new token per sequence; sequence b attends its kv_lens[b]
    keys (0 gives zeros). max_kv_len bounds kv_lens on the host (it picks the split count); when
    None it is read from kv_lens, which synchronizes. num_splits > 0 forces a split count.
    At most 16 query heads per KV head. Returns out (and lse [batch][n_heads] f32).
    """
    _checks.integer(num_splits, "num_splits", 0)
    d = _decode_inputs(q, k_cache, v_cache, page_table, kv_lens, max_kv_len, softmax_scale)
    batch, n_heads, head_dim = q.shape
    nbytes = _decode_workspace_bytes(q.device, batch, n_heads, k_cache.shape[1], head_dim, d.max_kv_len, num_splits)
    return _launch_decode(q, k_cache, v_cache, d, _workspace(nbytes, q.device), num_splits, return_lse)


def _launch_decode(q, k_cache, v_cache, d: _DecodeInputs, workspace, num_splits, return_lse):
    """decode_raw on tensors the caller has checked (dtype, contiguity, shapes, one CUDA device):
    the pointers cross as integers, because building a DLPack capsule per tensor cost more than
    the kernel at batch 1. Returns out (and lse)."""
    batch, n_heads, head_dim = q.shape
    out = torch.empty_like(q)
    lse = _lse(q, return_lse)
    _ext().decode_raw(q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), d.page_table.data_ptr(),
                      d.page_table.shape[1], d.kv_lens.data_ptr(), out.data_ptr(),
                      lse.data_ptr() if lse is not None else 0, batch, n_heads, k_cache.shape[1], head_dim,
                      d.max_kv_len, d.scale, workspace.data_ptr(), workspace.numel(), num_splits, _stream(q.device))
    return _result(out, lse)


@functools.lru_cache(maxsize=256)
def _decode_workspace_bytes(device, batch, n_heads, n_kv_heads, head_dim, max_kv_len, num_splits) -> int:
    """The split-KV plan depends only on these (and the device's SM count), so a decode loop plans once."""
    with torch.cuda.device(device):
        return _ext().decode_plan(batch, n_heads, n_kv_heads, head_dim, max_kv_len, num_splits)[1]


class TokenSet(NamedTuple):
    """Selected positions: indices [batch][sets][capacity] int32 ascending, -1 past counts[b][s]
    entries; one set per sequence (DELTA, StreamingLLM) or per KV head (Quest) (delta_decode.h)."""
    indices: torch.Tensor
    counts: torch.Tensor


def _selection_sizes(budget, page, recency):
    _checks.integer(budget, "budget", 1)
    _checks.integer(page, "page", 1)
    _checks.integer(recency, "recency", 0)
    if budget % page != 0:
        raise ValueError(f"budget: {budget} must be a multiple of the selection page of {page} tokens")


def delta_decode(q, k_cache, v_cache, page_table, kv_lens, max_kv_len=None, *, budget=2048, page=16,
                 recency=128, keep_sink=True, softmax_scale=None):
    """DELTA's Δ-layer step (docs/METHODS.md, "DELTA (decode)"): dense split-KV decode plus the
    selection of the budget's top pages (scores: max over query heads of the attention mass per
    page of `page` tokens; the first page and the last ceil(recency / page) pages always kept).

    Returns (out [batch][n_heads][head_dim] bf16 — the dense attention, TokenSet) — pass the set
    to sparse_decode for the layers that follow the Δ-layer.
    """
    _selection_sizes(budget, page, recency)
    d = _decode_inputs(q, k_cache, v_cache, page_table, kv_lens, max_kv_len, softmax_scale)
    ext = _ext()
    batch, n_heads, head_dim = q.shape
    nbytes, capacity = ext.delta_select_plan(batch, n_heads, k_cache.shape[1], head_dim, d.max_kv_len, budget,
                                             page, recency, bool(keep_sink))
    out = torch.empty_like(q)
    lse = _lse(q, True)
    indices = torch.empty(batch, 1, capacity, dtype=torch.int32, device=q.device)
    counts = torch.empty(batch, 1, dtype=torch.int32, device=q.device)
    ext.delta_select(q, k_cache, v_cache, d.page_table, d.kv_lens, out, lse, d.max_kv_len, d.scale, budget, page,
                     recency, bool(keep_sink), _workspace(nbytes, q.device), indices, counts, _stream(q.device))
    return out, TokenSet(indices, counts)


def sparse_decode(q, k_cache, v_cache, page_table, token_set, *, softmax_scale=None, return_lse=False):
    """Exact attention of each sequence's query over its selected positions only
    (docs/METHODS.md, "DELTA (decode)": the sparse layers; also StreamingLLM and Quest's second
    step). token_set: a TokenSet from delta_decode or streaming sets; positions must be below
    the sequence's length. Returns out (and lse)."""
    if not isinstance(token_set, tuple) or len(token_set) != 2:
        raise TypeError("token_set: expected a TokenSet (indices, counts)")
    indices = _checks.tensor(token_set[0], "token_set.indices", torch.int32, 3)
    counts = _checks.tensor(token_set[1], "token_set.counts", torch.int32, 2)
    _checks.tensor(q, "q", torch.bfloat16, 3)
    _checks.kv_cache(k_cache, v_cache, PAGE_SIZE)
    _checks.tensor(page_table, "page_table", torch.int32, 2)
    batch, n_heads, head_dim = q.shape
    _checks.heads(n_heads, k_cache.shape[1], head_dim, k_cache.shape[3])
    sets = counts.shape[1]
    if (indices.shape[0], counts.shape[0], page_table.shape[0]) != (batch, batch, batch) or \
            indices.shape[1] != sets or sets not in (1, k_cache.shape[1]):
        raise ValueError(f"token_set: indices {tuple(indices.shape)} and counts {tuple(counts.shape)} need "
                         f"[{batch}][1 or n_kv_heads][capacity] / [{batch}][sets]; page_table "
                         f"{tuple(page_table.shape)} one row per sequence")
    scale = _checks.softmax_scale(softmax_scale, head_dim)
    _checks.on_one_cuda_device("sparse_decode", q=q, k_cache=k_cache, v_cache=v_cache, page_table=page_table,
                               indices=indices, counts=counts)
    ext = _ext()
    nbytes = ext.sparse_decode_plan(batch, n_heads, k_cache.shape[1], head_dim, indices.shape[2], sets)
    out = torch.empty_like(q)
    lse = _lse(q, return_lse)
    ext.sparse_decode(q, k_cache, v_cache, page_table, indices, counts, out, lse, scale,
                      _workspace(nbytes, q.device), _stream(q.device))
    return _result(out, lse)


def streaming_decode(q, k_cache, v_cache, page_table, kv_lens, sink, window, *, softmax_scale=None):
    """StreamingLLM decode (docs/METHODS.md, "The methods by name": StreamingLLM): each
    sequence attends positions [0, sink) and [kv_len - window, kv_len). Returns out."""
    _window_sink(window, sink)
    d = _decode_inputs(q, k_cache, v_cache, page_table, kv_lens, 1, softmax_scale)
    batch = q.shape[0]
    indices = torch.empty(batch, 1, sink + window, dtype=torch.int32, device=q.device)
    counts = torch.empty(batch, 1, dtype=torch.int32, device=q.device)
    _ext().streaming_select(d.kv_lens, sink, window, indices, counts, _stream(q.device))
    return sparse_decode(q, k_cache, v_cache, d.page_table, TokenSet(indices, counts), softmax_scale=d.scale)


def quest_decode(q, k_cache, v_cache, page_table, kv_lens, max_kv_len=None, *, budget=2048, recency=128,
                 keep_sink=True, bounds=None, softmax_scale=None):
    """Quest decode (docs/METHODS.md, "The methods by name": Quest): per KV head, the pages of 16
    tokens with the highest upper bound of q.k (from the element-wise min/max of their keys;
    max over the group's query heads) up to `budget` tokens, the first page and the last
    ceil(recency / 16) pages always kept; then exact attention over each KV head's set.

    bounds: the key bounds from an earlier call (returned below) for an unchanged cache; None
    builds them from the cache (O(kv_len)). Returns (out, TokenSet with one set per KV head,
    bounds).
    """
    _selection_sizes(budget, QUEST_PAGE, recency)
    d = _decode_inputs(q, k_cache, v_cache, page_table, kv_lens, max_kv_len, softmax_scale)
    ext = _ext()
    batch, n_heads, head_dim = q.shape
    n_kv_heads = k_cache.shape[1]
    build = bounds is None
    if build:
        elements = ext.quest_bounds_elements(k_cache.shape[0], n_kv_heads, head_dim)
        bounds = torch.empty(elements, dtype=torch.bfloat16, device=q.device)
    else:
        _checks.tensor(bounds, "bounds", torch.bfloat16, 1)
        _checks.on_one_cuda_device("quest_decode", q=q, bounds=bounds)
    nbytes, capacity = ext.quest_select_plan(batch, n_heads, n_kv_heads, head_dim, d.max_kv_len, budget, recency,
                                             bool(keep_sink))
    indices = torch.empty(batch, n_kv_heads, capacity, dtype=torch.int32, device=q.device)
    counts = torch.empty(batch, n_kv_heads, dtype=torch.int32, device=q.device)
    ext.quest_select(q, k_cache, bounds, d.page_table, d.kv_lens, d.max_kv_len, budget, recency, bool(keep_sink),
                     build, _workspace(nbytes, q.device), indices, counts, _stream(q.device))
    token_set = TokenSet(indices, counts)
    out = sparse_decode(q, k_cache, v_cache, d.page_table, token_set, softmax_scale=d.scale)
    return out, token_set, bounds


def append_kv(k, v, k_cache, v_cache, page_table, positions, token_seq=None, *, rope_inv_freq=None,
              interleaved=False):
    """Writes new keys/values into the paged cache in place (the engine's KV append,
    docs/ARCHITECTURE.md; the cache every method of docs/METHODS.md reads).

    k, v [n_tokens][n_kv_heads][head_dim]; token t goes to sequence token_seq[t] (default 0) at
    positions[t] (int32 CUDA tensors), i.e. page page_table[seq][pos // PAGE_SIZE], slot
    pos % PAGE_SIZE. rope_inv_freq (f32 [head_dim / 2]) rotates the keys by RoPE at their
    positions first (interleaved pairs or halves); None copies them unchanged.
    """
    _checks.tensor(k, "k", torch.bfloat16, 3)
    _checks.tensor(v, "v", torch.bfloat16, 3)
    _checks.kv_cache(k_cache, v_cache, PAGE_SIZE)
    _checks.tensor(page_table, "page_table", torch.int32, (1, 2))
    _checks.tensor(positions, "positions", torch.int32, 1)
    if page_table.dim() == 1:
        page_table = page_table.unsqueeze(0)
    if k.shape != v.shape or k.shape[1:] != (k_cache.shape[1], k_cache.shape[3]):
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must be [n_tokens][{k_cache.shape[1]}]"
                         f"[{k_cache.shape[3]}] to match the cache {tuple(k_cache.shape)}")
    if positions.shape[0] != k.shape[0]:
        raise ValueError(f"positions: {positions.shape[0]} entries for {k.shape[0]} tokens")
    if token_seq is not None:
        _checks.tensor(token_seq, "token_seq", torch.int32, 1)
        if token_seq.shape[0] != k.shape[0]:
            raise ValueError(f"token_seq: {token_seq.shape[0]} entries for {k.shape[0]} tokens")
    half = k.shape[2] // 2
    if rope_inv_freq is None:
        rope_inv_freq = torch.zeros(half, dtype=torch.float32, device=k.device)  # angle 0: a plain copy
    _checks.tensor(rope_inv_freq, "rope_inv_freq", torch.float32, 1)
    if rope_inv_freq.shape[0] != half:
        raise ValueError(f"rope_inv_freq: {rope_inv_freq.shape[0]} entries, head_dim {k.shape[2]} needs {half}")
    optional = {"token_seq": token_seq} if token_seq is not None else {}
    _checks.on_one_cuda_device("append_kv", k=k, v=v, k_cache=k_cache, v_cache=v_cache, page_table=page_table,
                               positions=positions, rope_inv_freq=rope_inv_freq, **optional)
    if k.shape[0] == 0:
        return
    _ext().append_kv(k, v, k_cache, v_cache, page_table, positions, token_seq, rope_inv_freq, bool(interleaved),
                     _stream(k.device))


def paged_kv_from_contiguous(keys, values):
    """Builds a paged cache from contiguous per-sequence K/V (any device, bf16).

    keys, values: one tensor [kv_len][n_kv_heads][head_dim] or a list of them (one per
    sequence, lengths may differ). Returns (k_cache, v_cache, page_table [batch][max_pages]
    int32, kv_lens [batch] int32): sequence b owns consecutive pages, its last page padded with
    zeros.
    """
    keys = [keys] if isinstance(keys, torch.Tensor) else list(keys)
    values = [values] if isinstance(values, torch.Tensor) else list(values)
    if not keys or len(keys) != len(values):
        raise ValueError(f"keys/values: {len(keys)} and {len(values)} sequences (need the same, >= 1)")
    for i, (k, v) in enumerate(zip(keys, values)):
        for name, t in ((f"keys[{i}]", k), (f"values[{i}]", v)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
            if t.dtype != torch.bfloat16:
                raise TypeError(f"{name}: expected dtype torch.bfloat16, got {t.dtype}")
            if t.dim() != 3 or t.shape[1:] != keys[0].shape[1:] or t.shape[0] != k.shape[0]:
                raise ValueError(f"{name}: shape {tuple(t.shape)}; every K/V needs [kv_len]"
                                 f"{list(keys[0].shape[1:])} with its pair's length")
    n_kv_heads, head_dim = keys[0].shape[1:]
    pages = [max(-(-k.shape[0] // PAGE_SIZE), 1) for k in keys]

    def pool(seqs):
        parts = []
        for t, n in zip(seqs, pages):
            padded = t.new_zeros(n * PAGE_SIZE, n_kv_heads, head_dim)
            padded[: t.shape[0]] = t
            parts.append(padded.view(n, PAGE_SIZE, n_kv_heads, head_dim).transpose(1, 2))
        return torch.cat(parts).contiguous()

    device = keys[0].device
    table = torch.zeros(len(keys), max(pages), dtype=torch.int32)
    first = 0
    for b, n in enumerate(pages):
        table[b, :n] = torch.arange(first, first + n, dtype=torch.int32)
        first += n
    kv_lens = torch.tensor([k.shape[0] for k in keys], dtype=torch.int32)
    return pool(keys), pool(values), table.to(device), kv_lens.to(device)
