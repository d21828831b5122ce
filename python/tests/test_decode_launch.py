"""CPU-only: what decode_attention puts on the device per call, with the compiled module replaced
by a recorder. On the GPU its device time must be the kernel's alone (the C++ bench's
attention_decode_bench): one launch of decode_raw with the caller's own tensors (no copy, no
dtype conversion, no reduction, no host read of a device value) and the split count left to
the kernel's plan_decode_attention, as the C++ bench leaves it; the only tensor work is the
allocation of out (and lse) and the workspace, from PyTorch's caching allocator."""
import contextlib

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import deltainfer
from deltainfer import _checks, ops

BF16 = torch.bfloat16
PLAN_WORKSPACE_BYTES = 4096  # what the recorder's decode_plan answers


class RecordingExt:
    """Stands in for deltainfer._ext: records decode_plan and decode_raw calls."""

    def __init__(self):
        self.plans = []
        self.launches = []

    def decode_plan(self, *args):
        self.plans.append(args)
        return 7, PLAN_WORKSPACE_BYTES

    def decode_raw(self, *args):
        self.launches.append(args)


class AtenRecorder(TorchDispatchMode):
    """Every aten op that runs inside it: on CUDA tensors each one but an allocation or a view is
    a kernel launch or a device read."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.fixture
def recorder(monkeypatch):
    """The op's Python path on CPU tensors: the device check, the stream and the CUDA device
    context are the only CUDA-bound steps, so they are stubbed; every other check runs."""
    ext = RecordingExt()
    monkeypatch.setattr(ops, "_ext", lambda: ext)
    monkeypatch.setattr(_checks, "on_one_cuda_device", lambda op, **tensors: None)
    monkeypatch.setattr(ops, "_stream", lambda device: 1234)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    ops._decode_workspace_bytes.cache_clear()
    yield ext
    ops._decode_workspace_bytes.cache_clear()


def decode_inputs(batch=2, kv_len=200, n_heads=8, n_kv_heads=2, head_dim=64):
    keys = [torch.randn(kv_len, n_kv_heads, head_dim).to(BF16) for _ in range(batch)]
    values = [torch.randn(kv_len, n_kv_heads, head_dim).to(BF16) for _ in range(batch)]
    k, v, table, kv_lens = deltainfer.paged_kv_from_contiguous(keys, values)
    return torch.randn(batch, n_heads, head_dim).to(BF16), k, v, table, kv_lens


def test_one_launch_on_the_callers_tensors_with_the_kernels_own_plan(recorder):
    q, k, v, table, kv_lens = decode_inputs()
    for _ in range(3):
        out = deltainfer.decode_attention(q, k, v, table, kv_lens, 200)
    assert recorder.plans == [(2, 8, 2, 64, 200, 0)]  # planned once for the shape, then cached
    assert len(recorder.launches) == 3
    (q_ptr, k_ptr, v_ptr, table_ptr, stride, lens_ptr, out_ptr, lse_ptr, batch, n_heads, n_kv_heads, head_dim,
     max_kv_len, scale, workspace_ptr, workspace_bytes, num_splits, stream) = recorder.launches[-1]
    # The caller's own tensors: nothing was copied or converted on the way.
    assert (q_ptr, k_ptr, v_ptr, table_ptr, lens_ptr) == (q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                                          table.data_ptr(), kv_lens.data_ptr())
    assert out_ptr == out.data_ptr() and lse_ptr == 0 and workspace_ptr != 0
    assert (stride, batch, n_heads, n_kv_heads, head_dim, max_kv_len) == (table.shape[1], 2, 8, 2, 64, 200)
    assert scale == pytest.approx(64 ** -0.5)
    # num_splits 0: decode_attention() plans the split count itself with plan_decode_attention for
    # the current device's SM count, exactly as attention_decode_bench does; the workspace is
    # the size decode_plan (the same function) asked for.
    assert num_splits == 0 and workspace_bytes == PLAN_WORKSPACE_BYTES
    assert stream == 1234


def test_a_forced_split_count_reaches_both_the_plan_and_the_launch(recorder):
    q, k, v, table, kv_lens = decode_inputs()
    deltainfer.decode_attention(q, k, v, table, kv_lens, 200, num_splits=5)
    assert recorder.plans == [(2, 8, 2, 64, 200, 5)]
    assert recorder.launches[0][16] == 5


@pytest.mark.parametrize("return_lse", [False, True])
def test_no_tensor_work_but_the_allocations(recorder, return_lse):
    q, k, v, table, kv_lens = decode_inputs()
    deltainfer.decode_attention(q, k, v, table, kv_lens, 200, return_lse=return_lse)  # plan cached
    with AtenRecorder() as aten:
        deltainfer.decode_attention(q, k, v, table, kv_lens, 200, return_lse=return_lse)
    allocations = ["aten.empty_like.default", "aten.empty.memory_format"] + (["aten.empty.memory_format"]
                                                                            if return_lse else [])
    assert sorted(aten.ops) == sorted(allocations)


def test_the_recorder_sees_a_device_read(recorder):
    """The check above can fail: without max_kv_len the op reads kv_lens' maximum on the host
    (documented as a synchronization), and the recorder sees that reduction and the read."""
    q, k, v, table, kv_lens = decode_inputs()
    with AtenRecorder() as aten:
        deltainfer.decode_attention(q, k, v, table, kv_lens)
    assert "aten.max.default" in aten.ops and "aten._local_scalar_dense.default" in aten.ops
    assert recorder.launches[0][12] == 200


def test_a_plan_checks_and_allocates_once_then_each_run_launches_on_its_workspace(recorder):
    q, k, v, table, kv_lens = decode_inputs()
    plan = deltainfer.DecodePlan(q, k, v, table, kv_lens, 200)
    layers = [(k, v), (k.clone(), v.clone())]  # another layer's pools of the same layout
    with AtenRecorder() as aten:
        outs = [plan.run(q, *layer) for layer in layers]
    assert aten.ops == ["aten.empty_like.default"] * 2  # out only: the workspace is the plan's
    assert recorder.plans == [(2, 8, 2, 64, 200, 0)]
    assert [launch[1:3] for launch in recorder.launches] == [(k.data_ptr(), v.data_ptr()) for k, v in layers]
    assert [launch[6] for launch in recorder.launches] == [out.data_ptr() for out in outs]
    assert len({launch[14] for launch in recorder.launches}) == 1  # one workspace for every run
    assert recorder.launches[0][15] == PLAN_WORKSPACE_BYTES and recorder.launches[0][16] == 0


def test_a_run_refuses_what_the_plan_was_not_made_for(recorder):
    q, k, v, table, kv_lens = decode_inputs()
    plan = deltainfer.DecodePlan(q, k, v, table, kv_lens, 200)
    with pytest.raises(ValueError, match="shape"):
        plan.run(q[:1].contiguous(), k, v)
    with pytest.raises(ValueError, match="shape"):
        plan.run(q, k[:2].contiguous(), v[:2].contiguous())
    with pytest.raises(TypeError, match="bfloat16"):
        plan.run(q.float(), k, v)
    with pytest.raises(ValueError, match="contiguous"):
        plan.run(q, k, v.transpose(2, 3).contiguous().transpose(2, 3))
    with pytest.raises(ValueError, match="made for cpu"):
        plan.run(q.to("meta"), k, v)
    assert recorder.launches == []


def test_a_plan_keeps_every_check_of_decode_attention():
    """Made with CPU tensors and no stand-ins, the plan raises as decode_attention does."""
    q, k, v, table, kv_lens = decode_inputs()
    with pytest.raises(ValueError, match="CUDA"):
        deltainfer.DecodePlan(q, k, v, table, kv_lens, 200)
    with pytest.raises(ValueError, match="pages"):
        deltainfer.DecodePlan(q, k, v, table, kv_lens, 100_000)
