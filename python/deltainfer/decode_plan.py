"""Dense decode planned once per step and run per layer: FlashInfer's plan/run split for
deltainfer.decode_attention.

decode_attention checks five tensors, looks up its plan and allocates a workspace on every call.
A decode step runs the same shape once per layer over the same page table and lengths, so
DecodePlan does those once, and run(q, k_cache, v_cache) checks only what changes per layer (the
query and that layer's pools, each against the planned layout) before the one launch. The device
work is decode_attention's, bit for bit: the same kernel, split count and workspace layout.

The workspace belongs to the plan: its runs must be ordered on one stream (or synchronized across
streams), as with FlashInfer's workspace buffer. The plan keeps the page table and kv_lens it was
given: change their values in place between steps, or make a new plan (a new max_kv_len needs one).
"""
from __future__ import annotations

import torch

from deltainfer import _checks, ops


class DecodePlan:
    """Arguments as deltainfer.decode_attention (q, k_cache and v_cache give the layout every
    run must have: the first layer's tensors, for instance)."""

    def __init__(self, q, k_cache, v_cache, page_table, kv_lens, max_kv_len=None, *, softmax_scale=None,
                 num_splits=0, return_lse=False):
        _checks.integer(num_splits, "num_splits", 0)
        self._inputs = ops._decode_inputs(q, k_cache, v_cache, page_table, kv_lens, max_kv_len, softmax_scale)
        batch, n_heads, head_dim = q.shape
        self._q_shape, self._kv_shape, self._device = q.shape, k_cache.shape, q.device
        nbytes = ops._decode_workspace_bytes(q.device, batch, n_heads, k_cache.shape[1], head_dim,
                                             self._inputs.max_kv_len, num_splits)
        self._workspace = ops._workspace(nbytes, q.device)
        self._num_splits, self._return_lse = num_splits, return_lse

    def run(self, q, k_cache, v_cache):
        """out [batch][n_heads][head_dim] (and lse) of this layer; q and the pools must have the
        planned shapes, be contiguous bf16 and on the planned device."""
        self._check(q, "q", self._q_shape)
        self._check(k_cache, "k_cache", self._kv_shape)
        self._check(v_cache, "v_cache", self._kv_shape)
        return ops._launch_decode(q, k_cache, v_cache, self._inputs, self._workspace, self._num_splits,
                                  self._return_lse)

    def _check(self, value, name, shape):
        _checks.tensor(value, name, torch.bfloat16, len(shape))
        if value.shape != shape:
            raise ValueError(f"{name}: the plan was made for shape {tuple(shape)}, got {tuple(value.shape)}")
        if value.device != self._device:
            raise ValueError(f"{name}: the plan was made for {self._device}, got a tensor on {value.device}")
