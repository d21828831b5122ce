"""CPU-only: the extension loads, and bad calls raise TypeError/ValueError with a message before
any kernel launch (every check but the device one runs on CPU tensors, so CI covers them)."""
import pytest
import torch

import deltainfer
from deltainfer import ops

BF16 = torch.bfloat16


def paged(kv_len=200, n_kv_heads=2, head_dim=64):
    k = torch.randn(kv_len, n_kv_heads, head_dim).to(BF16)
    v = torch.randn(kv_len, n_kv_heads, head_dim).to(BF16)
    return deltainfer.paged_kv_from_contiguous(k, v)


def q_rows(n=8, n_heads=8, head_dim=64, dtype=BF16):
    return torch.randn(n, n_heads, head_dim).to(dtype)


def test_extension_loads_and_agrees_on_the_page_size():
    assert ops._ext().PAGE_SIZE == deltainfer.PAGE_SIZE == 64


def test_extension_rejects_cpu_tensors_without_crashing():
    _ext = ops._ext()
    k, v, table, _ = paged()
    q = q_rows()
    with pytest.raises(TypeError):
        _ext.prefill(q, k, v, table[0], torch.empty_like(q), None, 200, 0, None, 0.125, "auto", 0)


def test_kernel_input_errors_reach_python_as_value_errors():
    # deltainfer::InputError from the C++ contract checks (here: a selection page over the limit).
    with pytest.raises(ValueError, match="page"):
        ops._ext().delta_select_plan(1, 8, 2, 64, 100, 1 << 20, 1 << 20, 0, True)


def test_cpu_tensor_is_a_value_error_naming_cuda():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="CUDA"):
        deltainfer.prefill_attention(q_rows(), k, v, table, 200)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_wrong_dtype_is_a_type_error(dtype):
    k, v, table, _ = paged()
    with pytest.raises(TypeError, match="bfloat16"):
        deltainfer.prefill_attention(q_rows(dtype=dtype), k, v, table, 200)


def test_not_a_tensor_is_a_type_error():
    k, v, table, _ = paged()
    with pytest.raises(TypeError, match="q"):
        deltainfer.prefill_attention([[1.0]], k, v, table, 200)


def test_int64_page_table_is_a_type_error():
    k, v, table, _ = paged()
    with pytest.raises(TypeError, match="page_table"):
        deltainfer.prefill_attention(q_rows(), k, v, table.long(), 200)


def test_mismatched_heads_are_a_value_error():
    k, v, table, _ = paged(n_kv_heads=3)
    with pytest.raises(ValueError, match="multiple"):
        deltainfer.prefill_attention(q_rows(n_heads=8), k, v, table, 200)


def test_unsupported_head_dim_is_a_value_error():
    k, v, table, _ = paged(head_dim=96)
    with pytest.raises(ValueError, match="head_dim"):
        deltainfer.prefill_attention(q_rows(head_dim=96), k, v, table, 200)


def test_non_contiguous_query_is_a_value_error():
    k, v, table, _ = paged()
    q = torch.randn(8, 64, 8).to(BF16).transpose(1, 2)
    with pytest.raises(ValueError, match="contiguous"):
        deltainfer.prefill_attention(q, k, v, table, 200)


def test_queries_past_the_cache_are_a_value_error():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="kv_len"):
        deltainfer.prefill_attention(q_rows(n=8), k, v, table, 200, first_pos=195)


def test_short_page_table_is_a_value_error():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="page_table"):
        deltainfer.prefill_attention(q_rows(), k, v, table[:, :2], 200)


@pytest.mark.parametrize("window", [0, -5])
def test_window_not_positive_is_a_value_error(window):
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="window"):
        deltainfer.sliding_prefill(q_rows(), k, v, table, 200, window=window, sink=4)
    with pytest.raises(ValueError, match="window"):
        deltainfer.sliding_delta_prefill(q_rows(), k, v, table, 200, window=window, sink=4)


def test_negative_sink_is_a_value_error():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="sink"):
        deltainfer.sliding_prefill(q_rows(), k, v, table, 200, window=64, sink=-1)


def test_unfused_gamma_and_unaligned_first_pos_are_value_errors():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="gamma"):
        deltainfer.sliding_delta_prefill(q_rows(), k, v, table, 200, window=64, gamma=48)
    with pytest.raises(ValueError, match="first_pos"):
        deltainfer.sliding_delta_prefill(q_rows(), k, v, table, 200, window=64, gamma=64, first_pos=10)


def test_unknown_or_sparse_less_kernel_is_a_value_error():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="kernel"):
        deltainfer.prefill_attention(q_rows(), k, v, table, 200, kernel="fa3")
    with pytest.raises(ValueError, match="kernel"):
        deltainfer.sliding_prefill(q_rows(), k, v, table, 200, window=64, kernel="sm80")  # no sparse modes
    with pytest.raises(ValueError, match="kernel"):
        deltainfer.sliding_delta_prefill(q_rows(), k, v, table, 200, window=64, kernel="SM90WS")
    with pytest.raises(TypeError, match="kernel"):
        deltainfer.prefill_attention(q_rows(), k, v, table, 200, kernel=3)


def test_decode_fast_path_keeps_every_check():
    """decode_attention hands the kernel raw pointers, so its Python checks are all that stand
    between a bad tensor and the kernel: each must still raise."""
    k, v, table, kv_lens = paged()
    q = q_rows(n=1)
    with pytest.raises(ValueError, match="CUDA"):
        deltainfer.decode_attention(q, k, v, table, kv_lens, 200)
    with pytest.raises(TypeError, match="bfloat16"):
        deltainfer.decode_attention(q.float(), k, v, table, kv_lens, 200)
    with pytest.raises(TypeError, match="int32"):
        deltainfer.decode_attention(q, k, v, table, kv_lens.long(), 200)
    with pytest.raises(ValueError, match="contiguous"):
        deltainfer.decode_attention(q, k.transpose(1, 2), v.transpose(1, 2), table, kv_lens, 200)
    with pytest.raises(ValueError, match="pages"):
        deltainfer.decode_attention(q, k, v, table, kv_lens, 100_000)


def test_decode_batch_mismatch_and_large_groups_are_value_errors():
    k, v, table, kv_lens = paged(n_kv_heads=1)
    with pytest.raises(ValueError, match="batch"):
        deltainfer.decode_attention(q_rows(n=2, n_heads=8), k, v, table, kv_lens, 200)
    with pytest.raises(ValueError, match="at most 16"):
        deltainfer.decode_attention(q_rows(n=1, n_heads=32), k, v, table, kv_lens, 200)


def test_delta_budget_must_be_whole_pages():
    k, v, table, kv_lens = paged()
    with pytest.raises(ValueError, match="budget"):
        deltainfer.delta_decode(q_rows(n=1), k, v, table, kv_lens, 200, budget=100, page=16)


def test_append_kv_shape_mismatch_is_a_value_error():
    k_cache, v_cache, table, _ = paged()
    k = torch.randn(3, 4, 64).to(BF16)
    with pytest.raises(ValueError, match="n_tokens"):
        deltainfer.append_kv(k, k, k_cache, v_cache, table, torch.arange(3, dtype=torch.int32))


def test_paged_kv_from_contiguous_layout():
    keys = [torch.randn(n, 2, 64).to(BF16) for n in (70, 3)]
    values = [torch.randn(n, 2, 64).to(BF16) for n in (70, 3)]
    k_cache, v_cache, table, kv_lens = deltainfer.paged_kv_from_contiguous(keys, values)
    assert k_cache.shape == (3, 2, ops.PAGE_SIZE, 64) and table.tolist() == [[0, 1], [2, 0]]
    assert kv_lens.tolist() == [70, 3]
    for b, (k, v) in enumerate(zip(keys, values)):
        for pos in range(k.shape[0]):
            page = table[b, pos // ops.PAGE_SIZE]
            assert torch.equal(k_cache[page, :, pos % ops.PAGE_SIZE], k[pos])
            assert torch.equal(v_cache[page, :, pos % ops.PAGE_SIZE], v[pos])
    assert not k_cache[1, :, 70 - 64:].any()  # padding past the first sequence's end


def test_hf_enable_rejects_bad_settings_before_touching_the_model():
    pytest.importorskip("transformers")
    import deltainfer.hf

    with pytest.raises(ValueError, match="prefill"):
        deltainfer.hf.enable(object(), prefill="block")
    with pytest.raises(ValueError, match="gamma"):
        deltainfer.hf.enable(object(), prefill="sliding_delta", gamma=48)
    with pytest.raises(ValueError, match="window"):
        deltainfer.hf.enable(object(), prefill="sliding", window=0)


def test_vslash_needs_the_chunk_to_end_the_cache_and_positive_sizes():
    k, v, table, _ = paged()
    with pytest.raises(ValueError, match="kv_len"):
        deltainfer.vslash_prefill(q_rows(n=8), k, v, table, 200, first_pos=100)
    with pytest.raises(ValueError, match="vertical"):
        deltainfer.vslash_prefill(q_rows(n=8), k, v, table, 200, first_pos=192, vertical=0)


def test_quest_budget_must_be_whole_quest_pages():
    k, v, table, kv_lens = paged()
    with pytest.raises(ValueError, match="budget"):
        deltainfer.quest_decode(q_rows(n=1), k, v, table, kv_lens, 200, budget=100)
