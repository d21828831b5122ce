#!/usr/bin/env python3
"""deltainfer's Python ops beside their peers, on the same tensors in one process.

Prefill (GQA 32/8, d 128, bf16, causal), at each --tokens:
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
FlashInfer's paged decode (fa2, the same pages in HND layout) at batch 1 (128K) and 32 (4K).

Times: CUDA events, median after warm-up (bench/peers/timing.py), including each op's Python
checks and allocation — what a PyTorch user pays. JIT compiles and Triton autotuning happen in the
warm-up, outside the timing (compile seconds printed). Agreement: max abs difference and relative
L2 (||a - b|| / ||b||) of ours vs the peer, and of each vs dense SDPA for the sparse methods.
The same run measures the hardware limits (copy TB/s, bf16 GEMM TFLOP/s) and prints each case's
share of them. Each peer is optional: missing, it prints 'skipped: <why>' and the rest goes on.
Prints one RESULT line per case, then a table.

  PYTHONPATH=/tmp/peers python3 bench/peers/python_ops.py [--tokens 32768,131072]
      [--delta-kernel /tmp/peers/delta_kernel.py] [--minference-src /tmp/peers/minference-0.1.6.0]
Needs the deltainfer wheel importable (python/README.md); the peers: scripts/gpu-peers-check.
"""
import argparse
import importlib.util
import os
import sys
import time

import torch

from timing import time_ms  # bench/peers/timing.py

try:
    import deltainfer
except ImportError as error:  # gpu-check runs every peer script, with or without the wheel
    print(f"python_ops: skipped, deltainfer is not importable ({error})")
    sys.exit(0)

ROWS = []  # the table printed at the end: one dict per case


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


def report(case, tokens, ours_ms, peer, peer_ms, agree, limit=None, note=""):
    """agree: (max abs, rel L2) of ours vs the peer; limit: (ours' share, peer's share) of a hardware limit."""
    speedup = peer_ms / ours_ms
    row = dict(case=case, tokens=tokens, ours_ms=ours_ms, peer=peer, peer_ms=peer_ms, speedup=speedup,
               max_abs=agree[0], rel_l2=agree[1], limit=limit, note=note)
    ROWS.append(row)
    limit_text = f" ours_limit_pct={100 * limit[0]:.1f} peer_limit_pct={100 * limit[1]:.1f}" if limit else ""
    print(f"RESULT case={case} tokens={tokens} ours_ms={ours_ms:.3f} peer={peer} peer_ms={peer_ms:.3f} "
          f"speedup={speedup:.2f} max_abs_diff={agree[0]:.4f} rel_l2={agree[1]:.4f}{limit_text}"
          f"{' note=' + note if note else ''}", flush=True)


def print_table():
    print("\n| case | tokens | ours ms | peer | peer ms | speedup (peer/ours) | max abs | rel L2 | % of limit ours/peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        limit = f"{100 * r['limit'][0]:.0f} / {100 * r['limit'][1]:.0f}" if r["limit"] else "-"
        print(f"| {r['case']} | {r['tokens']} | {r['ours_ms']:.3f} | {r['peer']} | {r['peer_ms']:.3f} | "
              f"{r['speedup']:.2f} | {r['max_abs']:.4f} | {r['rel_l2']:.4f} | {limit} |")


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

def prefill_cases(tokens, a, peers, limits):
    heads, kv_heads, dim = a.heads, a.kv_heads, a.dim
    scale = dim ** -0.5
    q = rand(tokens, heads, dim, seed=1)
    k, v = rand(tokens, kv_heads, dim, seed=2), rand(tokens, kv_heads, dim, seed=3)
    k_cache, v_cache, table, _ = deltainfer.paged_kv_from_contiguous(k, v)
    repeats = 10 if tokens <= 65536 else 3
    qh, kh, vh = (t.transpose(0, 1)[None].contiguous() for t in (q, k, v))  # the peers' [1][heads][n][d]
    flops = causal_flops(tokens, heads, dim)
    share = lambda ms: flops / ms / 1e9 / limits[1]

    dense = lambda: deltainfer.prefill_attention(q, k_cache, v_cache, table, tokens)
    reference = sdpa(qh, kh, vh, True)[0].transpose(0, 1).contiguous()  # [n][H][d], the dense truth
    ours_dense_ms = time_ms(dense, repeats)
    sdpa_ms = time_ms(lambda: sdpa(qh, kh, vh, True), repeats)
    report("dense_prefill", tokens, ours_dense_ms, "sdpa", sdpa_ms, agreement(dense(), reference),
           (share(ours_dense_ms), share(sdpa_ms)))

    guarded("flashinfer prefill", flashinfer_prefill_case, tokens, a, peers, q, k, v, dense, ours_dense_ms, share,
            repeats)

    sliding = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, a.window, a.sink)
    if peers["flex"] is not None:
        from torch.nn.attention.flex_attention import create_block_mask

        window, sink = a.window, a.sink

        def mask_mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & ((kv_idx < sink) | (q_idx - kv_idx < window))

        block_mask = create_block_mask(mask_mod, None, None, tokens, tokens, device="cuda", _compile=True)
        flex = peers["flex"]
        peer = lambda: flex(qh, kh, vh, block_mask=block_mask, enable_gqa=True)
        agree = agreement(sliding(), peer()[0].transpose(0, 1))
        report("sliding_prefill", tokens, time_ms(sliding, repeats), "flex", time_ms(peer, repeats), agree)
    delta = lambda: deltainfer.sliding_delta_prefill(q, k_cache, v_cache, table, tokens, a.window, a.sink,
                                                     a.gamma)
    # Ours Δ beside our sliding pass; agreement of each with dense.
    report("sliding_delta_prefill", tokens, time_ms(delta, repeats), "ours_sliding", time_ms(sliding, repeats),
           agreement(delta(), reference), note="agreement is ours_delta vs dense")

    guarded("authors' delta", authors_cases, tokens, a, peers, q, k, v, qh, kh, vh, k_cache, v_cache, table,
            reference, repeats, scale)
    guarded("minference", minference_case, tokens, a, peers, q, kh, vh, qh, k_cache, v_cache, table, reference,
            repeats)


def guarded(peer, case, *args):
    """A peer that fails (an API or compiler error of its version) is reported and skipped; ours go on."""
    try:
        case(*args)
    except Exception as error:  # noqa: BLE001 - any failure of a peer's code
        skipped(peer, f"failed ({type(error).__name__}: {(str(error).splitlines() or [''])[0]})")
        torch.cuda.synchronize()


def flashinfer_prefill_case(tokens, a, peers, q, k, v, dense, ours_dense_ms, share, repeats):
    flashinfer = peers["flashinfer"]
    if isinstance(flashinfer, str):
        skipped("flashinfer prefill", flashinfer)
        return
    if a.no_flashinfer_prefill:
        skipped("flashinfer prefill", "--no-flashinfer-prefill (its FA3 JIT compile takes ~1 minute)")
        return
    fa3 = lambda: flashinfer.single_prefill_with_kv_cache(q, k, v, causal=True, backend="fa3")
    out = timed_warmup("flashinfer fa3 prefill", fa3)
    fa3_ms = time_ms(fa3, repeats)
    report("dense_prefill", tokens, ours_dense_ms, "flashinfer_fa3", fa3_ms, agreement(dense(), out),
           (share(ours_dense_ms), share(fa3_ms)))


def authors_cases(tokens, a, peers, q, k, v, qh, kh, vh, k_cache, v_cache, table, reference, repeats, scale):
    """Ours vs the authors' Δ with their window, sink and γ. Defined alike: the sliding pattern
    (window keys up to and including the row, plus the sink) and the correction of the γ - 1 rows
    after each strided dense row. Defined differently: they compute the last N mod γ + max(128, γ)
    rows densely, we correct them too; so agreement is printed over the rows before that cut
    ('head') and over all rows."""
    peer = peers["authors"]
    if isinstance(peer, str):
        skipped("authors' delta (hip-attn)", peer)
        return
    window, sink, gamma = a.peer_window, a.peer_sink, a.gamma
    qt, kt, vt = q[None], k[None], v[None]  # their [1][N][heads][d]
    cut = tokens % gamma + max(128, gamma)
    head = tokens - cut

    ours_sliding = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, window, sink)
    theirs_sliding = lambda: authors_sliding(peer, qt, kt, vt, window, sink, scale)[0]
    timed_warmup("hip-attn sliding", theirs_sliding)
    ours_out, theirs_out = ours_sliding(), theirs_sliding()
    report(f"sliding{window}_sink{sink}", tokens, time_ms(ours_sliding, repeats), "hip_attn_sliding",
           time_ms(theirs_sliding, repeats), agreement(ours_out, theirs_out))
    print(f"AGREE case=sliding{window}_sink{sink} tokens={tokens} ours_vs_dense={fmt(agreement(ours_out, reference))} "
          f"theirs_vs_dense={fmt(agreement(theirs_out, reference))}", flush=True)

    ours_delta = lambda: deltainfer.sliding_delta_prefill(q, k_cache, v_cache, table, tokens, window, sink, gamma)
    theirs_delta = lambda: authors_delta(peer, qt, kt, vt, qh, kh, vh, window, sink, gamma, scale)[0]
    timed_warmup("authors' delta", theirs_delta)
    ours_out, theirs_out = ours_delta(), theirs_delta()
    report(f"sliding_delta_g{gamma}_sink{sink}", tokens, time_ms(ours_delta, repeats), "authors_delta",
           time_ms(theirs_delta, repeats), agreement(ours_out[:head], theirs_out[:head]),
           note=f"agreement over rows 0..{head - 1} (theirs: last {cut} rows dense)")
    print(f"AGREE case=sliding_delta_g{gamma}_sink{sink} tokens={tokens} "
          f"ours_vs_theirs_all_rows={fmt(agreement(ours_out, theirs_out))} "
          f"ours_vs_dense={fmt(agreement(ours_out, reference))} "
          f"theirs_vs_dense={fmt(agreement(theirs_out, reference))} "
          f"ours_vs_dense_head={fmt(agreement(ours_out[:head], reference[:head]))} "
          f"theirs_vs_dense_head={fmt(agreement(theirs_out[:head], reference[:head]))}", flush=True)


def fmt(agree):
    return f"{agree[0]:.4f}/{agree[1]:.4f}"


def minference_case(tokens, a, peers, q, kh, vh, qh, k_cache, v_cache, table, reference, repeats):
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
    ours = lambda: deltainfer.sliding_prefill(q, k_cache, v_cache, table, tokens, window, sink)
    theirs_out = theirs()
    report(f"sliding{window}_sink{sink}", tokens, time_ms(ours, repeats), "minference_vslash",
           time_ms(theirs, repeats), agreement(ours(), theirs_out), note="minference: K/V repeated outside timing")
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
    ours_ms = time_ms(ours, 50)
    sdpa_ms = time_ms(peer, 50)
    report(f"decode_batch{batch}", kv_len, ours_ms, "sdpa", sdpa_ms, agreement(ours(), peer()),
           (share(ours_ms), share(sdpa_ms)))
    print(f"HOST case=decode_batch{batch} tokens={kv_len} ours_host_us_per_call={host_us(ours):.1f} "
          f"sdpa_host_us_per_call={host_us(peer):.1f}", flush=True)

    guarded("flashinfer decode", flashinfer_decode_case, batch, kv_len, a, peers, q, k_cache, v_cache, table,
            ours, ours_ms, share)


def flashinfer_decode_case(batch, kv_len, a, peers, q, k_cache, v_cache, table, ours, ours_ms, share):
    flashinfer = peers["flashinfer"]
    if isinstance(flashinfer, str):
        skipped("flashinfer decode", flashinfer)
        return
    # The same pages: our k/v pools [pages][Hkv][64][d] stacked are FlashInfer's HND cache.
    kv_cache = torch.stack((k_cache, v_cache), dim=1)
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
    print(f"flashinfer decode: plan (JIT compile on first use) {time.perf_counter() - start:.1f} s", flush=True)
    theirs = lambda: wrapper.run(q, kv_cache)
    timed_warmup("flashinfer decode", theirs)
    fi_ms = time_ms(theirs, 50)
    report(f"decode_batch{batch}", kv_len, ours_ms, "flashinfer_fa2", fi_ms, agreement(ours(), theirs()),
           (share(ours_ms), share(fi_ms)))


def host_us(fn, calls=200):
    """Host time per call with the GPU kept busy behind it: what Python + launch cost on the CPU."""
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / calls * 1e6


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
    parser.add_argument("--skip-prefill", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    return parser.parse_args()


def load_peers(a):
    peers = {"authors": load_authors_delta(a.delta_kernel), "flashinfer": load_flashinfer(),
             "minference": load_minference(a.minference_src), "flex": None}
    if not a.no_flex:
        from torch.nn.attention.flex_attention import flex_attention

        peers["flex"] = torch.compile(flex_attention, dynamic=False)
    for name, value in peers.items():
        if isinstance(value, str):
            skipped(name, value)
    return peers


def main():
    a = parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    limits = hardware_limits()
    peers = load_peers(a)
    if not a.skip_prefill:
        for tokens in [int(t) for t in a.tokens.split(",")]:
            try:
                prefill_cases(tokens, a, peers, limits)
            except (RuntimeError, torch.OutOfMemoryError) as e:
                print(f"prefill {tokens} failed: {str(e).splitlines()[0]}", flush=True)
            torch.cuda.empty_cache()
    if not a.skip_decode:
        for batch, kv_len in ((1, 131072), (32, 4096)):
            try:
                decode_case(batch, kv_len, a, peers, limits)
            except (RuntimeError, torch.OutOfMemoryError) as e:
                print(f"decode batch {batch} failed: {str(e).splitlines()[0]}", flush=True)
            torch.cuda.empty_cache()
    print_table()


if __name__ == "__main__":
    main()
