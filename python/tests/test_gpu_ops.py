"""Every op against a masked f32 reference (tests/reference.py) and, for dense prefill, PyTorch
SDPA, on random inputs. Tolerances as the C++ GPU tests (tests/gpu/*.cu): bf16 outputs, so
rel L2 < 1e-2 and max abs < 4e-2 (6e-2 with the fused Δ correction, whose rows add two bf16
roundings); f32 log-sum-exp abs < 5e-3."""
import pytest
import torch

import deltainfer
import reference as ref

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

BF16 = torch.bfloat16
REL, ABS, ABS_DELTA, LSE_ABS = 1e-2, 4e-2, 6e-2, 5e-3


def expect_close(got, want, abs_tol=ABS):
    assert torch.isfinite(got.float()).all()
    assert ref.rel_l2(got, want) < REL
    assert ref.max_abs(got, want) < abs_tol


def shuffled_pages(k_cache, v_cache, table, seed=0):
    """The same cache with its physical pages permuted, so the page table is really read."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(k_cache.shape[0], generator=g).to(k_cache.device)
    new_k, new_v = torch.empty_like(k_cache), torch.empty_like(v_cache)
    new_k[perm], new_v[perm] = k_cache, v_cache
    return new_k, new_v, perm[table.long()].to(torch.int32).contiguous()


def make_kv(kv_len, n_kv_heads, head_dim, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    k = torch.randn(kv_len, n_kv_heads, head_dim, device="cuda", generator=g).to(BF16)
    v = torch.randn(kv_len, n_kv_heads, head_dim, device="cuda", generator=g).to(BF16)
    return k, v


def make_q(n, n_heads, head_dim, seed=1):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randn(n, n_heads, head_dim, device="cuda", generator=g).to(BF16)


def paged(k, v, seed=0):
    k_cache, v_cache, table, kv_lens = deltainfer.paged_kv_from_contiguous(k, v)
    return (*shuffled_pages(k_cache, v_cache, table, seed), kv_lens)


SHAPES = [(8, 2, 64), (32, 8, 128), (4, 4, 128)]  # (n_heads, n_kv_heads, head_dim)
KERNELS = ["auto", "sm90"]  # the default (on Hopper the FlashAttention-3 style kernel) and v3, the fallback


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", SHAPES)
@pytest.mark.parametrize("kv_len,first_pos", [(300, 0), (777, 500), (1, 0)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_dense_prefill_matches_reference(n_heads, n_kv_heads, head_dim, kv_len, first_pos, kernel):
    k, v = make_kv(kv_len, n_kv_heads, head_dim)
    q = make_q(kv_len - first_pos, n_heads, head_dim)
    k_cache, v_cache, table, _ = paged(k, v)
    out, lse = deltainfer.prefill_attention(q, k_cache, v_cache, table[0], kv_len, first_pos, return_lse=True,
                                            kernel=kernel)
    pos = torch.arange(first_pos, kv_len, device="cuda")
    want, want_lse = ref.attention(q, k, v, pos, ref.causal)
    expect_close(out, want)
    assert ref.max_abs(lse, want_lse) < LSE_ABS


def test_dense_prefill_matches_sdpa():
    n_heads, n_kv_heads, head_dim, n = 32, 8, 128, 1000
    k, v = make_kv(n, n_kv_heads, head_dim)
    q = make_q(n, n_heads, head_dim)
    k_cache, v_cache, table, _ = paged(k, v)
    out = deltainfer.prefill_attention(q, k_cache, v_cache, table, n)
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None], is_causal=True,
        enable_gqa=True)[0].transpose(0, 1)
    expect_close(out, sdpa)


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", SHAPES)
@pytest.mark.parametrize("window,sink", [(128, 16), (64, 0), (1, 64), (5000, 8)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_sliding_prefill_matches_masked_reference(n_heads, n_kv_heads, head_dim, window, sink, kernel):
    kv_len = 900
    k, v = make_kv(kv_len, n_kv_heads, head_dim)
    q = make_q(kv_len, n_heads, head_dim)
    k_cache, v_cache, table, _ = paged(k, v)
    out, lse = deltainfer.sliding_prefill(q, k_cache, v_cache, table, kv_len, window, sink, return_lse=True,
                                          kernel=kernel)
    want, want_lse = ref.attention(q, k, v, torch.arange(kv_len, device="cuda"), ref.sliding(window, sink))
    expect_close(out, want)
    assert ref.max_abs(lse, want_lse) < LSE_ABS


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", SHAPES)
@pytest.mark.parametrize("gamma,first_pos", [(64, 0), (16, 0), (32, 256)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_sliding_delta_prefill_matches_delta_reference(n_heads, n_kv_heads, head_dim, gamma, first_pos, kernel):
    kv_len, window, sink = 1000, 128, 16
    k, v = make_kv(kv_len, n_kv_heads, head_dim)
    q = make_q(kv_len - first_pos, n_heads, head_dim)
    k_cache, v_cache, table, _ = paged(k, v)
    out = deltainfer.sliding_delta_prefill(q, k_cache, v_cache, table, kv_len, window, sink, gamma, first_pos,
                                           kernel=kernel)
    pos = torch.arange(first_pos, kv_len, device="cuda")
    sparse, _ = ref.attention(q, k, v, pos, ref.sliding(window, sink))
    dense, _ = ref.attention(q, k, v, pos, ref.causal)
    rows = torch.div(pos - first_pos, gamma, rounding_mode="floor") * gamma  # row of each query's stride
    want = sparse + (dense[rows] - sparse[rows])  # METHODS.md "propagate"; rows r get o^d_r exactly
    expect_close(out, want, ABS_DELTA)
    assert ref.max_abs(out[::gamma], dense[::gamma]) < ABS


def decode_case(kv_lens, n_heads, n_kv_heads, head_dim):
    keys, values = zip(*(make_kv(n, n_kv_heads, head_dim, seed=i) for i, n in enumerate(kv_lens)))
    k_cache, v_cache, table, lens = paged(list(keys), list(values))
    q = make_q(len(kv_lens), n_heads, head_dim)
    return q, keys, values, k_cache, v_cache, table, lens


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", SHAPES)
@pytest.mark.parametrize("num_splits", [0, 3])
def test_decode_matches_reference(n_heads, n_kv_heads, head_dim, num_splits):
    kv_lens = [1, 130, 4000, 64]
    q, keys, values, k_cache, v_cache, table, lens = decode_case(kv_lens, n_heads, n_kv_heads, head_dim)
    out, lse = deltainfer.decode_attention(q, k_cache, v_cache, table, lens, max(kv_lens), num_splits=num_splits,
                                           return_lse=True)
    for b, n in enumerate(kv_lens):
        want, want_lse = ref.attention(q[b:b + 1], keys[b], values[b], torch.tensor([n - 1]), ref.causal)
        expect_close(out[b:b + 1], want)
        assert ref.max_abs(lse[b:b + 1], want_lse) < LSE_ABS


def test_decode_reads_max_kv_len_when_not_given():
    q, keys, values, k_cache, v_cache, table, lens = decode_case([200, 90], 8, 2, 64)
    assert torch.equal(deltainfer.decode_attention(q, k_cache, v_cache, table, lens),
                       deltainfer.decode_attention(q, k_cache, v_cache, table, lens, 200))


@pytest.mark.parametrize("num_splits", [0, 3])
def test_decode_plan_runs_are_decode_attention_bit_for_bit(num_splits):
    """The same kernel, split count and workspace layout: each layer's run equals the op exactly."""
    kv_lens = [1, 130, 4000, 64]
    q, _, _, k_cache, v_cache, table, lens = decode_case(kv_lens, 32, 8, 128)
    layers = [(k_cache, v_cache), (v_cache.clone(), k_cache.clone())]
    plan = deltainfer.DecodePlan(q, k_cache, v_cache, table, lens, max(kv_lens), num_splits=num_splits,
                                 return_lse=True)
    for k_layer, v_layer in layers:
        out, lse = plan.run(q, k_layer, v_layer)
        want, want_lse = deltainfer.decode_attention(q, k_layer, v_layer, table, lens, max(kv_lens),
                                                     num_splits=num_splits, return_lse=True)
        assert torch.equal(out, want) and torch.equal(lse, want_lse)


def set_attention(q, k, v, positions):
    allowed = torch.zeros(k.shape[0], dtype=torch.bool, device="cuda")
    allowed[positions.long()] = True
    return ref.attention(q, k, v, torch.tensor([k.shape[0] - 1]), lambda p, j: allowed[j] & (j <= p))[0]


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", [(8, 2, 64), (32, 8, 128)])
def test_delta_decode_dense_output_selection_and_sparse_decode(n_heads, n_kv_heads, head_dim):
    kv_lens, budget, page, recency = [3000, 500, 5000], 1024, 16, 128
    q, keys, values, k_cache, v_cache, table, lens = decode_case(kv_lens, n_heads, n_kv_heads, head_dim)
    dense, token_set = deltainfer.delta_decode(q, k_cache, v_cache, table, lens, max(kv_lens), budget=budget,
                                               page=page, recency=recency)
    sparse = deltainfer.sparse_decode(q, k_cache, v_cache, table, token_set)
    for b, n in enumerate(kv_lens):
        want, _ = ref.attention(q[b:b + 1], keys[b], values[b], torch.tensor([n - 1]), ref.causal)
        expect_close(dense[b:b + 1], want)
        count = int(token_set.counts[b, 0])
        chosen = token_set.indices[b, 0, :count]
        # delta_decode.h: budget / page whole pages, less the unfilled slots of the (kept) last page.
        assert count == (n if n <= budget else budget - (-n) % page)
        assert (chosen < n).all() and (chosen[1:] > chosen[:-1]).all()
        assert (token_set.indices[b, 0, count:] == -1).all()
        # The first page and the last ceil(recency / page) pages are always kept.
        pages = -(-n // page)
        first_recent = max(pages - -(-recency // page), 0) * page
        assert set(range(page)) | set(range(first_recent, n)) <= set(chosen.tolist())
        expect_close(sparse[b:b + 1], set_attention(q[b:b + 1], keys[b], values[b], chosen))


def test_streaming_decode_matches_sink_and_window():
    kv_lens, sink, window = [2000, 50], 64, 256
    q, keys, values, k_cache, v_cache, table, lens = decode_case(kv_lens, 8, 2, 128)
    out = deltainfer.streaming_decode(q, k_cache, v_cache, table, lens, sink, window)
    for b, n in enumerate(kv_lens):
        positions = torch.tensor(sorted(set(range(min(sink, n))) | set(range(max(n - window, 0), n))))
        expect_close(out[b:b + 1], set_attention(q[b:b + 1], keys[b], values[b], positions))


def test_append_kv_copies_into_pages():
    k, v = make_kv(150, 2, 64)
    want_k, want_v, table, _ = deltainfer.paged_kv_from_contiguous(k, v)
    k_cache, v_cache = torch.zeros_like(want_k), torch.zeros_like(want_v)
    order = torch.randperm(150, device="cuda")  # any order of tokens
    deltainfer.append_kv(k[order].contiguous(), v[order].contiguous(), k_cache, v_cache, table,
                         order.to(torch.int32))
    assert torch.equal(k_cache, want_k) and torch.equal(v_cache, want_v)


def rope_halves(x, pos, inv_freq):
    angle = pos.double()[:, None] * inv_freq.double()[None, :]  # [n][d/2]
    cos, sin = angle.cos()[:, None, :], angle.sin()[:, None, :]
    x0, x1 = x.double().chunk(2, dim=-1)
    return torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)


def test_append_kv_rotates_keys_for_two_sequences():
    head_dim = 128
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, device="cuda").float() / head_dim))
    k, v = make_kv(100, 2, head_dim)
    k_cache, v_cache, table, _ = deltainfer.paged_kv_from_contiguous([k[:70], k[70:]], [v[:70], v[70:]])
    k_cache.zero_(), v_cache.zero_()
    pos = torch.cat([torch.arange(70), torch.arange(30)]).to(torch.int32).cuda()
    seq = torch.cat([torch.zeros(70), torch.ones(30)]).to(torch.int32).cuda()
    deltainfer.append_kv(k, v, k_cache, v_cache, table, pos, seq, rope_inv_freq=inv_freq)
    want = rope_halves(k, pos, inv_freq)
    pages = table[seq.long(), (pos // 64).long()].long()
    got_k = k_cache[pages, :, (pos % 64).long()]
    got_v = v_cache[pages, :, (pos % 64).long()]
    assert (got_k.double() - want).abs().max().item() < 2e-2 * want.abs().max().item()
    assert torch.equal(got_v, v)


def test_ops_run_on_the_current_stream():
    k, v = make_kv(500, 2, 64)
    q = make_q(500, 8, 64)
    k_cache, v_cache, table, _ = paged(k, v)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = deltainfer.prefill_attention(q, k_cache, v_cache, table, 500)
    side.synchronize()
    expect_close(out, ref.attention(q, k, v, torch.arange(500), ref.causal)[0])


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", [(8, 2, 64), (32, 8, 128)])
def test_vslash_keeping_every_column_is_dense(n_heads, n_kv_heads, head_dim):
    kv_len = 1000
    k, v = make_kv(kv_len, n_kv_heads, head_dim)
    q = make_q(kv_len, n_heads, head_dim)
    k_cache, v_cache, table, _ = paged(k, v)
    out = deltainfer.vslash_prefill(q, k_cache, v_cache, table, kv_len, vertical=kv_len, slash=kv_len)
    expect_close(out, ref.attention(q, k, v, torch.arange(kv_len, device="cuda"), ref.causal)[0])


@pytest.mark.parametrize("gamma,first_pos", [(64, 0), (32, 512)])
def test_vslash_delta_rows_are_dense_and_every_row_finite(gamma, first_pos):
    kv_len, n_heads, n_kv_heads, head_dim = 2048, 8, 2, 128
    k, v = make_kv(kv_len, n_kv_heads, head_dim)
    q = make_q(kv_len - first_pos, n_heads, head_dim)
    k_cache, v_cache, table, _ = paged(k, v)
    out = deltainfer.vslash_prefill(q, k_cache, v_cache, table, kv_len, first_pos, vertical=64, slash=128,
                                    gamma=gamma)
    dense, _ = ref.attention(q, k, v, torch.arange(first_pos, kv_len, device="cuda"), ref.causal)
    assert torch.isfinite(out.float()).all()
    assert ref.max_abs(out[::gamma], dense[::gamma]) < ABS  # the fused Δ writes o^d_r on rows r
    sparse = deltainfer.vslash_prefill(q, k_cache, v_cache, table, kv_len, first_pos, vertical=64, slash=128)
    # Δ moves every row by its stride row's (dense - sparse) difference: rows r + 1 .. r + gamma - 1.
    rows = torch.arange(q.shape[0], device="cuda") // gamma * gamma
    expect_close(out, sparse.float() + (dense[rows] - sparse.float()[rows]), ABS_DELTA)


@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", [(8, 2, 64), (32, 8, 128)])
def test_quest_decode_sets_per_kv_head_and_their_attention(n_heads, n_kv_heads, head_dim):
    kv_lens, budget, recency, page = [3000, 700], 512, 64, deltainfer.ops.QUEST_PAGE
    q, keys, values, k_cache, v_cache, table, lens = decode_case(kv_lens, n_heads, n_kv_heads, head_dim)
    out, token_set, bounds = deltainfer.quest_decode(q, k_cache, v_cache, table, lens, max(kv_lens), budget=budget,
                                                     recency=recency)
    group = n_heads // n_kv_heads
    for b, n in enumerate(kv_lens):
        pages = -(-n // page)
        kept = set(range(page)) | set(range(max(pages - -(-recency // page), 0) * page, n))
        for g in range(n_kv_heads):
            count = int(token_set.counts[b, g])
            chosen = token_set.indices[b, g, :count]
            assert 0 < count <= budget and (chosen < n).all() and (chosen[1:] > chosen[:-1]).all()
            assert kept <= set(chosen.tolist())
            heads = slice(g * group, (g + 1) * group)
            want = set_attention(q[b:b + 1, heads], keys[b][:, g:g + 1], values[b][:, g:g + 1], chosen)
            expect_close(out[b:b + 1, heads], want)
    again, _, _ = deltainfer.quest_decode(q, k_cache, v_cache, table, lens, max(kv_lens), budget=budget,
                                          recency=recency, bounds=bounds)
    assert torch.equal(again, out)


def test_quest_decode_with_the_whole_context_in_budget_is_dense():
    kv_lens = [1000, 130]
    q, keys, values, k_cache, v_cache, table, lens = decode_case(kv_lens, 8, 2, 128)
    out, _, _ = deltainfer.quest_decode(q, k_cache, v_cache, table, lens, budget=1024)
    for b, n in enumerate(kv_lens):
        want, _ = ref.attention(q[b:b + 1], keys[b], values[b], torch.tensor([n - 1]), ref.causal)
        expect_close(out[b:b + 1], want)
