#!/usr/bin/env python3
"""deltainfer's Python ops beside their peers, on the same tensors in one process.

Prefill (GQA 32/8, d 128, bf16, causal), at each --tokens and for each of our --kernels (auto: the
engine's default; sm90ws: the FlashAttention-3 style kernel; its cases are named *_sm90ws):
  ours dense            vs cuDNN SDPA, and FlashInfer's FA3 single prefill
  ours sliding + sink   vs FlexAttention (compiled block mask)
  ours sliding + Δ      vs the authors' Δ: hip-attn's block_sparse_attention (sliding window +
                        sink) + delta_kernel.py's dense strided rows (no GQA: K/V repeated, as in
                        their code, inside the timing) + hip-attn's fused apply_delta; window,
                        sink and γ of --peer-window/--peer-sink/--gamma (their defaults 2048/1024/64)
  ours sliding + sink   vs MInference's vertical-slash kernel with the same pattern (verticals
                        0..sink-1, slashes 0..window-1; its API wants equal heads: K/V repeated
                        outside the timing)
Decode (one query per sequence over the paged cache): ours split-KV vs SDPA (contiguous K/V) and
FlashInfer's paged decode (fa2, the same pages in HND layout) at batch 1 (128K) and 32 (4K); against
FlashInfer also ours planned once and run per call (deltainfer.DecodePlan, as its plan/run).

Timing, identical for ours and every peer (bench/peers/timing.py, device_ms): the GPU time of one
call with the host's time taken out. A spin kernel holds the stream while the host queues all the
timed calls; the GPU then runs them back to back, and an event pair around each call spans only
that call's kernels (every kernel the op launches, the gaps between them included). Before each
call a read of twice the L2 size, outside the events, evicts what the last call left. Median of
the calls; "ms" and the speedup are this device time. Outside it, and so the same for ours and
the peers: FlashInfer's plan() (once per shape, as its API intends), JIT compiles, Triton
autotuning and torch.compile (all in the warm-up or the prewarm below). Inside it, for each side:
whatever the call launches (our op: the split and combine kernels; no copy, conversion or
synchronization, python/tests/test_checks.py checks that on the CPU).
The host side is printed beside it, per call: "host us" (Python, checks, allocation, launches,
measured while the GPU was still spinning) for every case, and for decode the HOST line adds
loop_us (back-to-back calls with no spin: what a decode loop without CUDA graphs pays, about
max(host, device)), call_ms (one call timed alone and synchronized: host time before the first
launch plus device time; the timing of rounds before this one) and graph_ms (the call captured in
a CUDA graph and replayed: device time with no host at all, a cross-check of "ms"). A measurement whose queue ran dry
(an op that synchronizes inside) is marked "host time inside".
Agreement: max abs difference and relative L2 (||a - b|| / ||b||) of ours vs the peer, and of each
vs dense SDPA for the sparse methods. The same run measures the hardware limits (copy TB/s, bf16
GEMM TFLOP/s) and prints each case's share of them: decode's KV bytes over the copy rate; prefill's
useful FLOPs (4 * heads * dim * the keys each query row attends in the case's pattern; for Δ the
dense strided rows added) over the GEMM rate, the same work counted for ours and the peer.
Prewarm: before anything is timed, FlashInfer's JIT (a subprocess) and MInference's extension build
(another) run while this process compiles FlexAttention for every --tokens; the timing starts when
all three are done, on a quiet host. Each peer is optional: missing, it prints 'skipped: <why>'
and the rest goes on. Prints one RESULT line per case, then a table.

  PYTHONPATH=/tmp/peers python3 bench/peers/python_ops.py [--tokens 32768,131072] [--kernels auto,sm90ws]
      [--delta-kernel /tmp/peers/delta_kernel.py] [--minference-src /tmp/peers/minference-0.1.6.0]
Needs the deltainfer wheel importable (python/README.md); the peers: scripts/gpu-peers-check.
"""
import argparse
import functools
import importlib.util
import os
import subprocess
import sys
import time

import torch

from timing import device_ms, graph_device_ms, loop_us, time_ms  # bench/peers/timing.py

try:
    import deltainfer
except ImportError as error:  # gpu-check runs every peer script, with or without the wheel
    print(f"python_ops: skipped, deltainfer is not importable ({error})")
    sys.exit(0)

ROWS = []  # the table printed at the end: one dict per case
PREWARM_LIMIT_S = 360  # the compiles side by side are estimated at ~80-100 s (docs/notes/python-peers.md)


# ---------------------------------------------------------------- measuring

def rand(*shape, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randn(*shape, device="cuda", dtype=torch.bfloat16, generator=gen)


def agreement(ours, theirs):
    """(max abs, relative L2) of ours against theirs, both [tokens][heads][dim] or broadcastable."""
    diff = ours.float() - theirs.float()
    return diff.abs().max().item(), (diff.norm() / theirs.float().norm()).item()


def skipped(peer, why):
    print(f"{peer}: skipped: {why}", flush=True)


def report(case, tokens, ours, peer, theirs, agree, share=None, note=""):
    """ours/theirs: DeviceTiming (timing.py); agree: (max abs, rel L2) of ours vs the peer;
    share: ms -> fraction of the hardware limit for this case's work (None: no limit printed)."""
    speedup = theirs.device_ms / ours.device_ms
    limit = (share(ours.device_ms), share(theirs.device_ms)) if share else None
    notes = [note] if note else []
    notes += [f"{who} host time inside (queue ran dry)" for who, t in (("ours", ours), (peer, theirs)) if t.drained]
    note = "; ".join(notes)
    row = dict(case=case, tokens=tokens, ours=ours, peer=peer, theirs=theirs, speedup=speedup,
               max_abs=agree[0], rel_l2=agree[1], limit=limit, note=note)
    ROWS.append(row)
    limit_text = f" ours_limit_pct={100 * limit[0]:.1f} peer_limit_pct={100 * limit[1]:.1f}" if limit else ""
    print(f"RESULT case={case} tokens={tokens} ours_ms={ours.device_ms:.3f} peer={peer} "
          f"peer_ms={theirs.device_ms:.3f} speedup={speedup:.2f} ours_host_us={ours.host_us:.1f} "
          f"peer_host_us={theirs.host_us:.1f} max_abs_diff={agree[0]:.4f} rel_l2={agree[1]:.4f}{limit_text}"
          f"{' note=' + note.replace(' ', '_') if note else ''}", flush=True)


def print_table():
    print("\nms: device time per call (host excluded; bench/peers/timing.py); host us: host time per call.")
    print("| case | tokens | ours ms | peer | peer ms | speedup (peer/ours) | host us ours / peer | max abs | rel L2 "
          "| % of limit ours / peer | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        limit = f"{100 * r['limit'][0]:.0f} / {100 * r['limit'][1]:.0f}" if r["limit"] else "-"
        ours, theirs = r["ours"], r["theirs"]
        print(f"| {r['case']} | {r['tokens']} | {ours.device_ms:.3f} | {r['peer']} | {theirs.device_ms:.3f} | "
              f"{r['speedup']:.2f} | {ours.host_us:.0f} / {theirs.host_us:.0f} | {r['max_abs']:.4f} | "
              f"{r['rel_l2']:.4f} | {limit} | {r['note']} |")


def hardware_limits():
    """(copy TB/s counting bytes read + written, bf16 GEMM TFLOP/s) measured now on this GPU."""
    copy_tbs, gemm_tflops = copy_rate(), gemm_rate()
    print(f"LIMITS copy_tb_s={copy_tbs:.2f} gemm_bf16_tflop_s={gemm_tflops:.0f}", flush=True)
    return copy_tbs, gemm_tflops


def copy_rate(nbytes=1 << 31):
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")  # 2 GiB, far past the L2
    dst = torch.empty_like(src)
    return 2 * nbytes / time_ms(lambda: dst.copy_(src), 20) / 1e9


def gemm_rate(n=8192):
    a, b = rand(n, n, seed=90), rand(n, n, seed=91)
    return 2 * n ** 3 / time_ms(lambda: a @ b, 20) / 1e9


def causal_flops(tokens, heads, dim):
    return 2 * heads * dim * tokens * tokens  # QK^T and PV over the lower triangle


def pattern_flops(tokens, heads, dim, window, sink, gamma=None):
    """Useful FLOPs of sliding window + sink (+ Δ's dense rows 0, γ, 2γ, ... when gamma): 4 * heads *
    dim per (query row, attended key) pair: QK^T and PV, 2 FLOPs per multiply-add each."""
    rows = torch.arange(tokens, dtype=torch.float64)
    keys = torch.clamp(rows + 1, max=window) + torch.clamp(rows - window + 1, min=0, max=sink)
    pairs = keys.sum().item()
    if gamma:
        pairs += (rows[::gamma] + 1).sum().item()
    return 4 * heads * dim * pairs


def decode_bytes(batch, kv_len, kv_heads, dim):
    return 2 * batch * kv_len * kv_heads * dim * 2  # K and V, bf16


# ---------------------------------------------------------------- torch peers

def sdpa_backend():
    from torch.nn.attention import SDPBackend

    return [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]


def sdpa(qh, kh, vh, causal):
    """qh [B][H][n][d], kh/vh [B][Hkv][L][d] (contiguous, made before timing) through torch SDPA (GQA)."""
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel(sdpa_backend()):
        return torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=causal, enable_gqa=True)


def timed_warmup(peer, fn):
    """First call outside the timing (JIT compile, autotuning); prints its seconds."""
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    print(f"{peer}: first call (compile/autotune) {time.perf_counter() - start:.1f} s", flush=True)
    return out


# ---------------------------------------------------------------- optional peers

def load_authors_delta(delta_kernel_path):
    """(block_sparse_attention, their HiPAttentionArgs, apply_delta, delta_kernel.attention) or the reason why not."""
    if not delta_kernel_path or not os.path.exists(delta_kernel_path):
        return f"delta_kernel.py not found at {delta_kernel_path!r} (scripts/stage-peers carries it)"
    try:
        from hip_attn.v1_2.attention_extend_bsa import block_sparse_attention
        from hip_attn.v1_2.delta.apply_delta import apply_delta
        args = authors_hip_args()
    except Exception as error:  # hip-attn as shipped raises more than ImportError (triton version assert)
        return f"hip-attn not usable ({type(error).__name__}: {str(error).splitlines()[0]})"
    spec = importlib.util.spec_from_file_location("delta_kernel", delta_kernel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return block_sparse_attention, args, apply_delta, module.attention


def authors_hip_args():
    """delta_attention/config.py's get_hip_config, preset "default", for layers >= 3 (the fields
    their window mode reads: the last stage's chunk and block sizes, rope_range, ...)."""
    from hip_attn.v1_2.attention_metadata import HiPAttentionArgs, ScanStage

    stage = dict(stage_stride=1, using_landmark=False)
    stages = [ScanStage(stage_block_size_q=128, stage_block_stride_q=4, stage_chunk_size=256, stage_k=None, **stage),
              ScanStage(stage_block_size_q=64, stage_block_stride_q=1, stage_chunk_size=8, stage_k=32768, **stage),
              ScanStage(stage_block_size_q=64, stage_block_stride_q=1, stage_chunk_size=2, stage_k=8192, **stage)]
    return HiPAttentionArgs(sliding_window_size=1024, sink_token_size=1024, using_extend=False, need_apply_rope=False,
                            second_stage_k=2048, stages=stages, model_context_length=131072,
                            scan_extend_backend="relative", sa_extend_backend="streaming",
                            block_sparse_block_size_q=stages[-1].stage_block_size_q, rope_range=(0, 128),
                            using_landmark=True)


def authors_sliding(peer, qt, kt, vt, window, sink, scale):
    """hip-attn's sliding window + sink as delta_attention/llama.py's hip_attention_interface calls
    it in window mode. qt [1][N][H][d], kt/vt [1][N][Hkv][d]; returns [1][N][H][d]."""
    block_sparse_attention, base_args, _, _ = peer
    tokens, heads = qt.shape[1], qt.shape[2]
    args = base_args.clone()
    args.position_ids = torch.arange(tokens, device=qt.device)[None]
    args.sm_scale = scale
    args.block_size_q = args.block_sparse_block_size_q
    args.block_size_k = args.stages[-1].stage_chunk_size
    args.second_stage_k = 0
    args.sink_token_size = sink
    args.sliding_window_size = window
    args.sliding_window_indices = None
    blocks = -(-tokens // args.block_size_q)
    indices = torch.zeros((heads, blocks, 0), dtype=torch.int64, device=qt.device)
    ks = torch.zeros((heads, blocks), dtype=torch.int64, device=qt.device)
    ks_start_end = torch.zeros((heads, blocks, 2), dtype=torch.int64, device=qt.device)
    return block_sparse_attention(q=(qt * scale).to(qt.dtype), k=kt, v=vt, seq_lens=args.position_ids + 1,
                                  indices=indices, ks=ks, ks_count=ks.unsqueeze(-1), ks_start_end=ks_start_end,
                                  args=args, access_counter=None, cache_miss_counter=None,
                                  model_context_length=131072, extend_context_length=131072 * 10,  # their Llama-3.1
                                  offload_update_cache=False)


def authors_delta(peer, qt, kt, vt, qh, kh, vh, window, sink, gamma, scale):
    """delta_attention/llama.py's delta_forward: sliding pass; dense rows 0, γ, ... below the cut and
    every row of the last cut = N mod γ + max(128, γ) (delta_kernel.attention, K/V repeated to all
    heads); hip-attn's fused apply_delta adds dense - sparse of each strided row to the γ - 1 rows
    after it. qh/kh/vh: [1][heads][N][d]. Returns [1][N][H][d]."""
    _, _, apply_delta, strided_attention = peer
    tokens, heads = qt.shape[1], qt.shape[2]
    sparse = authors_sliding(peer, qt, kt, vt, window, sink, scale)
    cut = tokens % gamma + max(128, gamma)
    strided_end = tokens - cut
    idx = torch.cat((torch.arange(0, strided_end, gamma, device=qt.device),
                     torch.arange(strided_end, tokens, device=qt.device)))
    groups = heads // kh.shape[1]
    k_all, v_all = kh.repeat_interleave(groups, dim=1), vh.repeat_interleave(groups, dim=1)
    dense = strided_attention(qh[:, :, idx], k_all, v_all, idx[None], scale).transpose(1, 2)
    return apply_delta(dense, sparse[:, :strided_end], idx, cut, gamma, False)


def load_flashinfer():
    try:
        import flashinfer
    except Exception as error:
        return f"flashinfer not importable ({type(error).__name__}: {str(error).splitlines()[0]})"
    return flashinfer


def load_minference(src):
    """MInference's vertical_slash_sparse_attention with its CUDA index builder compiled from the
    sdist (torch.utils.cpp_extension; scripts/gpu-peers-check builds it first into the same folder)."""
    if not src or not os.path.isdir(src):
        return f"minference sdist not found at {src!r} (scripts/gpu-peers-check unpacks it)"
    try:
        from torch.utils.cpp_extension import load

        start = time.perf_counter()
        ext = load(name="minference_cuda", sources=[os.path.join(src, "csrc", "kernels.cpp"),
                                                    os.path.join(src, "csrc", "vertical_slash_index.cu")],
                   build_directory=minference_build_dir(src), verbose=False)
        print(f"minference: extension ready in {time.perf_counter() - start:.1f} s", flush=True)
        sys.path.insert(0, src)  # its package __init__ files are emptied by gpu-peers-check (they patch transformers)
        sys.modules["minference.cuda"] = ext  # what `from ..cuda import` in its ops expects
        from minference.ops.pit_sparse_flash_attention_v2 import vertical_slash_sparse_attention
    except Exception as error:
        return f"minference not usable ({type(error).__name__}: {str(error).splitlines()[0]})"
    return vertical_slash_sparse_attention


def minference_build_dir(src):
    path = os.path.join(src, "build-ext")
    os.makedirs(path, exist_ok=True)
    return path


# ---------------------------------------------------------------- cases

def case_tag(kernel):
    """The suffix of our case names for `kernel`: none for the engine's default ("auto")."""
    return "" if kernel == "auto" else f"_{kernel}"


def prefill_cases(tokens, a, peers, limits, kernel):
    """Each case of ours runs on `kernel` (--kernels); its name carries the kernel unless "auto"."""
    tag = case_tag(kernel)
    heads, kv_heads, dim = a.heads, a.kv_heads, a.dim
    scale = dim ** -0.5
    q = rand(tokens, heads, dim, seed=1)
    k, v = rand(tokens, kv_heads, dim, seed=2), rand(tokens, kv_heads, dim, seed=3)
    k_cache, v_cache, table, _ = deltainfer.paged_kv_from_contiguous(k, v)
    repeats = 10 if tokens <= 65536 else 3
    qh, kh, vh = (t.transpose(0, 1)[None].contiguous() for t in (q, k, v))  # the peers' [1][heads][n][d]
    share = gemm_share(causal_flops(tokens, heads, dim), limits)

    dense = lambda: deltainfer.prefill_attention(q, k_cache, v_cache, table, tokens, kernel=kernel)
    reference = sdpa(qh, kh, vh, True)[0].transpose(0, 1).contiguous()  # [n][H][d], the dense truth
    ours_dense = device_ms(dense, repeats)
    report(f"dense_prefill{tag}", tokens, ours_dense, "sdpa", device_ms(lambda: sdpa(qh, kh, vh, True), repeats),
           agreement(dense(), reference), share)

    guarded("flashinfer prefill", flashinfer_prefill_case, tokens, a, peers, q, k, v, dense, ours_dense, share,
            repeats, tag)

    sliding = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, a.window, a.sink, kernel=kernel)
    sliding_share = gemm_share(pattern_flops(tokens, heads, dim, a.window, a.sink), limits)
    if peers["flex"] is not None:
        flex, block_mask = peers["flex"], flex_block_mask(tokens, a.window, a.sink)
        peer = lambda: flex(qh, kh, vh, block_mask=block_mask, enable_gqa=True)
        agree = agreement(sliding(), peer()[0].transpose(0, 1))
        report(f"sliding_prefill{tag}", tokens, device_ms(sliding, repeats), "flex", device_ms(peer, repeats), agree,
               sliding_share)
    delta = lambda: deltainfer.sliding_delta_prefill(q, k_cache, v_cache, table, tokens, a.window, a.sink,
                                                     a.gamma, kernel=kernel)
    # Ours Δ beside our sliding pass (what Δ adds; no limit share: the two do different work);
    # agreement of Δ with dense.
    report(f"sliding_delta_prefill{tag}", tokens, device_ms(delta, repeats), "ours_sliding", device_ms(sliding, repeats),
           agreement(delta(), reference), note="agreement is ours_delta vs dense")

    guarded("authors' delta", authors_cases, tokens, a, peers, q, k, v, qh, kh, vh, k_cache, v_cache, table,
            reference, repeats, scale, limits, kernel)
    guarded("minference", minference_case, tokens, a, peers, q, kh, vh, qh, k_cache, v_cache, table, reference,
            repeats, limits, kernel)


def gemm_share(flops, limits):
    """ms -> the share of the measured bf16 GEMM rate that `flops` in that time is."""
    return lambda ms: flops / ms / 1e9 / limits[1]


@functools.cache
def flex_block_mask(tokens, window, sink):
    """One block mask per shape, shared by the prewarm and the timed case, so that the compiled
    FlexAttention's guards (which see the mask) match and nothing recompiles inside the timing."""
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & ((kv_idx < sink) | (q_idx - kv_idx < window))

    return create_block_mask(mask_mod, None, None, tokens, tokens, device="cuda", _compile=True)


def guarded(peer, case, *args):
    """A peer that fails (an API or compiler error of its version) is reported and skipped; ours go on."""
    try:
        case(*args)
    except Exception as error:  # noqa: BLE001 - any failure of a peer's code
        skipped(peer, f"failed ({type(error).__name__}: {(str(error).splitlines() or [''])[0]})")
        torch.cuda.synchronize()


def flashinfer_prefill_case(tokens, a, peers, q, k, v, dense, ours_dense, share, repeats, tag):
    flashinfer = peers["flashinfer"]
    if isinstance(flashinfer, str):
        skipped("flashinfer prefill", flashinfer)
        return
    if a.no_flashinfer_prefill:
        skipped("flashinfer prefill", "--no-flashinfer-prefill")
        return
    fa3 = lambda: flashinfer.single_prefill_with_kv_cache(q, k, v, causal=True, backend="fa3")
    out = timed_warmup("flashinfer fa3 prefill", fa3)
    report(f"dense_prefill{tag}", tokens, ours_dense, "flashinfer_fa3", device_ms(fa3, repeats), agreement(dense(), out),
           share)


def authors_cases(tokens, a, peers, q, k, v, qh, kh, vh, k_cache, v_cache, table, reference, repeats, scale,
                  limits, kernel):
    """Ours vs the authors' Δ with their window, sink and γ. Defined alike: the sliding pattern
    (window keys up to and including the row, plus the sink) and the correction of the γ - 1 rows
    after each strided dense row. Defined differently: they compute the last N mod γ + max(128, γ)
    rows densely, we correct them too; so agreement is printed over the rows before that cut
    ('head') and over all rows. The limit share counts the same pattern's work for both."""
    peer = peers["authors"]
    if isinstance(peer, str):
        skipped("authors' delta (hip-attn)", peer)
        return
    window, sink, gamma = a.peer_window, a.peer_sink, a.gamma
    qt, kt, vt = q[None], k[None], v[None]  # their [1][N][heads][d]
    cut = tokens % gamma + max(128, gamma)
    head = tokens - cut

    tag = case_tag(kernel)
    ours_sliding = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, window, sink, kernel=kernel)
    theirs_sliding = lambda: authors_sliding(peer, qt, kt, vt, window, sink, scale)[0]
    timed_warmup("hip-attn sliding", theirs_sliding)
    ours_out, theirs_out = ours_sliding(), theirs_sliding()
    report(f"sliding{window}_sink{sink}{tag}", tokens, device_ms(ours_sliding, repeats), "hip_attn_sliding",
           device_ms(theirs_sliding, repeats), agreement(ours_out, theirs_out),
           gemm_share(pattern_flops(tokens, a.heads, a.dim, window, sink), limits))
    print(f"AGREE case=sliding{window}_sink{sink}{tag} tokens={tokens} ours_vs_dense={fmt(agreement(ours_out, reference))} "
          f"theirs_vs_dense={fmt(agreement(theirs_out, reference))}", flush=True)

    ours_delta = lambda: deltainfer.sliding_delta_prefill(q, k_cache, v_cache, table, tokens, window, sink, gamma,
                                                          kernel=kernel)
    theirs_delta = lambda: authors_delta(peer, qt, kt, vt, qh, kh, vh, window, sink, gamma, scale)[0]
    timed_warmup("authors' delta", theirs_delta)
    ours_out, theirs_out = ours_delta(), theirs_delta()
    report(f"sliding_delta_g{gamma}_sink{sink}{tag}", tokens, device_ms(ours_delta, repeats), "authors_delta",
           device_ms(theirs_delta, repeats), agreement(ours_out[:head], theirs_out[:head]),
           gemm_share(pattern_flops(tokens, a.heads, a.dim, window, sink, gamma), limits),
           note=f"agreement over rows 0..{head - 1} (theirs: last {cut} rows dense)")
    print(f"AGREE case=sliding_delta_g{gamma}_sink{sink}{tag} tokens={tokens} "
          f"ours_vs_theirs_all_rows={fmt(agreement(ours_out, theirs_out))} "
          f"ours_vs_dense={fmt(agreement(ours_out, reference))} "
          f"theirs_vs_dense={fmt(agreement(theirs_out, reference))} "
          f"ours_vs_dense_head={fmt(agreement(ours_out[:head], reference[:head]))} "
          f"theirs_vs_dense_head={fmt(agreement(theirs_out[:head], reference[:head]))}", flush=True)


def fmt(agree):
    return f"{agree[0]:.4f}/{agree[1]:.4f}"


def minference_case(tokens, a, peers, q, kh, vh, qh, k_cache, v_cache, table, reference, repeats, limits, kernel):
    """MInference's vertical-slash kernel with a fixed pattern equal to sliding + sink: verticals
    0..sink-1, slashes 0..window-1. Its slashes cover whole 64x64 blocks along the diagonals, so it
    may attend a few keys past the window: agreement with ours is close, not exact."""
    vertical_slash = peers["minference"]
    if isinstance(vertical_slash, str):
        skipped("minference", vertical_slash)
        return
    window, sink = a.peer_window, a.peer_sink
    groups = a.heads // a.kv_heads
    k_all, v_all = kh.repeat_interleave(groups, dim=1), vh.repeat_interleave(groups, dim=1)
    v_idx = torch.arange(sink, device="cuda", dtype=torch.int32).expand(1, a.heads, sink).contiguous()
    s_idx = torch.arange(window, device="cuda", dtype=torch.int32).expand(1, a.heads, window).contiguous()
    theirs = lambda: vertical_slash(qh, k_all, v_all, v_idx, s_idx, 64, 64)[0].transpose(0, 1)
    timed_warmup("minference vertical-slash", theirs)
    ours = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, window, sink, kernel=kernel)
    theirs_out = theirs()
    tag = case_tag(kernel)
    report(f"sliding{window}_sink{sink}{tag}", tokens, device_ms(ours, repeats), "minference_vslash",
           device_ms(theirs, repeats), agreement(ours(), theirs_out),
           gemm_share(pattern_flops(tokens, a.heads, a.dim, window, sink), limits),
           note="minference: K/V repeated outside timing")
    print(f"AGREE case=minference_vslash tokens={tokens} theirs_vs_dense={fmt(agreement(theirs_out, reference))}",
          flush=True)


def decode_case(batch, kv_len, a, peers, limits):
    heads, kv_heads, dim = a.heads, a.kv_heads, a.dim
    q = rand(batch, heads, dim, seed=4)
    keys = [rand(kv_len, kv_heads, dim, seed=10 + b) for b in range(batch)]
    values = [rand(kv_len, kv_heads, dim, seed=100 + b) for b in range(batch)]
    k_cache, v_cache, table, kv_lens = deltainfer.paged_kv_from_contiguous(keys, values)
    ours = lambda: deltainfer.decode_attention(q, k_cache, v_cache, table, kv_lens, kv_len)
    k, v = (torch.stack(t).transpose(1, 2).contiguous() for t in (keys, values))  # [B][Hkv][L][d]
    share = lambda ms: decode_bytes(batch, kv_len, kv_heads, dim) / ms / 1e9 / limits[0]
    peer = lambda: sdpa(q[:, :, None], k, v, False)[:, :, 0]
    ours_timing = device_ms(ours, 50)
    report(f"decode_batch{batch}", kv_len, ours_timing, "sdpa", device_ms(peer, 50), agreement(ours(), peer()),
           share)
    host_line(f"decode_batch{batch}", kv_len, "sdpa", ours, peer)

    # Ours planned once and run per call (deltainfer.DecodePlan), the shape of FlashInfer's plan/run.
    plan = deltainfer.DecodePlan(q, k_cache, v_cache, table, kv_lens, kv_len)
    ours_run = lambda: plan.run(q, k_cache, v_cache)
    guarded("flashinfer decode", flashinfer_decode_case, batch, kv_len, a, peers, q, k_cache, v_cache, table,
            ours, ours_timing, ours_run, share)


def host_line(case, tokens, peer, ours, theirs):
    """What the host adds in a decode loop without CUDA graphs (timing.py): loop_us per call of
    back-to-back calls, and call_ms of one call alone, synchronized (host before the launch + device);
    graph_ms: the call captured in a CUDA graph and replayed (device time with no host at all)."""
    print(f"HOST case={case} tokens={tokens} peer={peer} ours_loop_us={loop_us(ours):.1f} "
          f"peer_loop_us={loop_us(theirs):.1f} ours_call_ms={time_ms(ours, 50):.3f} "
          f"peer_call_ms={time_ms(theirs, 50):.3f} ours_graph_ms={graph_ms(ours)} "
          f"peer_graph_ms={graph_ms(theirs)}", flush=True)


def graph_ms(fn):
    try:
        return f"{graph_device_ms(fn, 50):.3f}"
    except Exception as error:  # noqa: BLE001 - a peer whose call cannot be captured
        torch.cuda.synchronize()
        return f"not_captured({type(error).__name__})"


def flashinfer_decode_case(batch, kv_len, a, peers, q, k_cache, v_cache, table, ours, ours_timing, ours_run,
                           share):
    flashinfer = peers["flashinfer"]
    if isinstance(flashinfer, str):
        skipped("flashinfer decode", flashinfer)
        return
    # The same pages: our k/v pools [pages][Hkv][64][d] stacked are FlashInfer's HND cache.
    kv_cache = torch.stack((k_cache, v_cache), dim=1)
    wrapper = flashinfer_decode_wrapper(flashinfer, table, batch, kv_len, a)
    theirs = lambda: wrapper.run(q, kv_cache)
    timed_warmup("flashinfer decode", theirs)
    theirs_timing = device_ms(theirs, 50)
    report(f"decode_batch{batch}", kv_len, ours_timing, "flashinfer_fa2", theirs_timing, agreement(ours(), theirs()),
           share)
    host_line(f"decode_batch{batch}", kv_len, "flashinfer_fa2", ours, theirs)
    report(f"decode_plan_run_batch{batch}", kv_len, device_ms(ours_run, 50), "flashinfer_fa2", theirs_timing,
           agreement(ours_run(), theirs()), share, note="ours: DecodePlan.run, planned once like FlashInfer")
    host_line(f"decode_plan_run_batch{batch}", kv_len, "flashinfer_fa2", ours_run, theirs)


def flashinfer_decode_wrapper(flashinfer, table, batch, kv_len, a):
    """FlashInfer's fa2 paged decode planned for `batch` sequences of kv_len over `table`'s pages
    (plan() once per shape, outside any timing, as its API intends)."""
    pages = -(-kv_len // deltainfer.PAGE_SIZE)
    indices = table[:, :pages].reshape(-1).contiguous()
    indptr = torch.arange(0, (batch + 1) * pages, pages, dtype=torch.int32, device="cuda")
    last_page_len = torch.full((batch,), kv_len - (pages - 1) * deltainfer.PAGE_SIZE, dtype=torch.int32,
                               device="cuda")
    workspace = torch.empty(128 << 20, dtype=torch.uint8, device="cuda")
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "HND", backend="fa2")
    start = time.perf_counter()
    wrapper.plan(indptr, indices, last_page_len, a.heads, a.kv_heads, a.dim, deltainfer.PAGE_SIZE,
                 q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
    print(f"flashinfer decode: plan {time.perf_counter() - start:.1f} s", flush=True)
    return wrapper


# ---------------------------------------------------------------- prewarm (compiles before any timing)

def prewarm_flashinfer(a):
    """Run as a subprocess (--prewarm-flashinfer prefill|decode): compiles the FlashInfer JIT module
    of the timed call (the same dtypes, head dims, mask and backend on tiny tensors: the module
    depends on those, not on lengths) into its on-disk cache; FlashInfer locks each module across
    processes, so the timed process loads it from there."""
    flashinfer = load_flashinfer()
    if isinstance(flashinfer, str):
        return 0
    start = time.perf_counter()
    q = rand(128, a.heads, a.dim, seed=1)
    k, v = rand(128, a.kv_heads, a.dim, seed=2), rand(128, a.kv_heads, a.dim, seed=3)
    if a.prewarm_flashinfer == "prefill":
        flashinfer.single_prefill_with_kv_cache(q, k, v, causal=True, backend="fa3")
    else:
        k_cache, v_cache, table, _ = deltainfer.paged_kv_from_contiguous(k, v)
        wrapper = flashinfer_decode_wrapper(flashinfer, table, 1, 128, a)
        wrapper.run(q[:1], torch.stack((k_cache, v_cache), dim=1))
    torch.cuda.synchronize()
    print(f"prewarm: flashinfer {a.prewarm_flashinfer} JIT module ready in {time.perf_counter() - start:.1f} s",
          flush=True)
    return 0


def prewarm_minference(a):
    """Run as a subprocess (--prewarm-minference): builds MInference's extension (CPU only)."""
    ready = load_minference(a.minference_src)
    return 0 if not isinstance(ready, str) else 1


def prewarm(a, peers):
    """FlashInfer's two JIT modules and MInference's build in subprocesses while this process compiles
    FlexAttention for every --tokens; returns when all are done, before anything is timed."""
    start = time.perf_counter()
    children = []
    if not isinstance(peers["flashinfer"], str):
        for kind in ("decode",) if a.no_flashinfer_prefill or a.skip_prefill else ("prefill", "decode"):
            children.append((f"flashinfer {kind}", subprocess.Popen([sys.executable, __file__, *sys.argv[1:],
                                                                     "--prewarm-flashinfer", kind])))
    if a.minference_src and os.path.isdir(a.minference_src) and not a.skip_prefill:
        children.append(("minference", subprocess.Popen([sys.executable, __file__, *sys.argv[1:],
                                                         "--prewarm-minference"])))
    if peers["flex"] is not None and not a.skip_prefill:
        for tokens in tokens_list(a):
            qh = torch.empty(1, a.heads, tokens, a.dim, device="cuda", dtype=torch.bfloat16)
            kh, vh = (torch.empty(1, a.kv_heads, tokens, a.dim, device="cuda", dtype=torch.bfloat16) for _ in "kv")
            try:
                peers["flex"](qh, kh, vh, block_mask=flex_block_mask(tokens, a.window, a.sink), enable_gqa=True)
            except Exception as error:  # noqa: BLE001 - its failure is reported by the case itself
                print(f"prewarm: flex at {tokens} failed ({type(error).__name__})", flush=True)
            del qh, kh, vh
            torch.cuda.synchronize()
        print(f"prewarm: flex compiled in {time.perf_counter() - start:.1f} s", flush=True)
    for name, child in children:
        left_s = max(1.0, PREWARM_LIMIT_S - (time.perf_counter() - start))
        try:
            print(f"prewarm: {name} exit {child.wait(timeout=left_s)}", flush=True)
        except subprocess.TimeoutExpired:
            child.kill()  # the timed case then compiles (or fails) itself, in its warm-up
            child.wait()
            print(f"prewarm: {name} stopped after {PREWARM_LIMIT_S} s", flush=True)
    print(f"prewarm: done in {time.perf_counter() - start:.1f} s", flush=True)
    if any(name == "minference" for name, _ in children):
        peers["minference"] = load_minference(a.minference_src)  # built by the subprocess: loads at once
        if isinstance(peers["minference"], str):
            skipped("minference", peers["minference"])
    torch.cuda.empty_cache()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="32768,131072")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--sink", type=int, default=64)
    parser.add_argument("--gamma", type=int, default=64)
    parser.add_argument("--peer-window", type=int, default=2048, help="the authors' sliding window")
    parser.add_argument("--peer-sink", type=int, default=1024, help="the authors' sink (their window mode)")
    parser.add_argument("--delta-kernel", default=os.environ.get("DELTA_KERNEL", "/tmp/peers/delta_kernel.py"),
                        help="delta_attention/delta_kernel.py of github.com/jeffwillette/delta-attention")
    parser.add_argument("--minference-src", default=os.environ.get("MINFERENCE_SRC",
                                                                   "/tmp/peers/minference-0.1.6.0"))
    parser.add_argument("--no-flex", action="store_true", help="skip FlexAttention (its compile takes a minute)")
    parser.add_argument("--no-flashinfer-prefill", action="store_true", help="skip FlashInfer's FA3 prefill")
    parser.add_argument("--kernels", default="auto",
                        help="our prefill kernels to time, comma-separated: auto, sm90, sm90ws (the FA3-style one)")
    parser.add_argument("--skip-prefill", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--prewarm-flashinfer", choices=("prefill", "decode"), help=argparse.SUPPRESS)  # prewarm()
    parser.add_argument("--prewarm-minference", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def tokens_list(a):
    return [int(t) for t in a.tokens.split(",")]


def load_peers(a):
    """Every peer but MInference, whose extension prewarm() builds and then loads."""
    peers = {"authors": load_authors_delta(a.delta_kernel), "flashinfer": load_flashinfer(),
             "minference": f"minference sdist not found at {a.minference_src!r} (scripts/gpu-peers-check unpacks it)",
             "flex": None}
    if not a.no_flex:
        from torch.nn.attention.flex_attention import flex_attention

        peers["flex"] = torch.compile(flex_attention, dynamic=False)
    for name, value in peers.items():
        if isinstance(value, str) and name != "minference":
            skipped(name, value)
    return peers


def main():
    a = parse_args()
    if a.prewarm_flashinfer:
        return prewarm_flashinfer(a)
    if a.prewarm_minference:
        return prewarm_minference(a)
    start = time.perf_counter()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    peers = load_peers(a)
    prewarm(a, peers)
    limits = hardware_limits()
    if not a.skip_prefill:
        for tokens in tokens_list(a):
            for kernel in a.kernels.split(","):
                try:
                    prefill_cases(tokens, a, peers, limits, kernel)
                except (RuntimeError, ValueError, torch.OutOfMemoryError) as e:
                    print(f"prefill {tokens} ({kernel}) failed: {str(e).splitlines()[0]}", flush=True)
                torch.cuda.empty_cache()
    if not a.skip_decode:
        for batch, kv_len in ((1, 131072), (32, 4096)):
            try:
                decode_case(batch, kv_len, a, peers, limits)
            except (RuntimeError, torch.OutOfMemoryError) as e:
                print(f"decode batch {batch} failed: {str(e).splitlines()[0]}", flush=True)
            torch.cuda.empty_cache()
    print_table()
    print(f"python_ops: {time.perf_counter() - start:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
