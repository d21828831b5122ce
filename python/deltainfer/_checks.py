"""Argument checks shared by the ops: each raises TypeError (not a tensor, wrong dtype) or
ValueError (device, layout, shape, value) with a message naming the argument, so a bad call never
reaches a kernel."""
from __future__ import annotations

import torch

HEAD_DIMS = (64, 128)


def tensor(value, name: str, dtype: torch.dtype, ndim: int | tuple[int, ...]) -> torch.Tensor:
    """A contiguous tensor of `dtype` with `ndim` dimensions (one of them, if a tuple); the device
    is checked by on_one_cuda_device."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {value.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if value.dim() not in dims:
        raise ValueError(f"{name}: expected {' or '.join(map(str, dims))} dimensions, got shape {tuple(value.shape)}")
    if not value.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor (call .contiguous()), got strides {value.stride()}")
    return value


def integer(value, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def choice(value, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")
    return value


def on_one_cuda_device(op: str, **tensors: torch.Tensor) -> None:
    """Checked last, so that every other mistake is reported the same with CPU tensors."""
    for name, t in tensors.items():
        if t.device.type != "cuda":
            raise ValueError(f"{op}: {name} must be a CUDA tensor, got one on {t.device}")
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f"{op}: tensors on different devices {sorted(map(str, devices))}")


def heads(q_heads: int, kv_heads: int, head_dim: int, kv_head_dim: int) -> None:
    if kv_heads < 1 or q_heads % kv_heads != 0:
        raise ValueError(f"heads: {q_heads} query heads are not a multiple of {kv_heads} KV heads")
    if head_dim not in HEAD_DIMS:
        raise ValueError(f"head_dim: {head_dim} is not supported (one of {HEAD_DIMS})")
    if kv_head_dim != head_dim:
        raise ValueError(f"head_dim: queries have {head_dim}, the KV cache {kv_head_dim}")


def kv_cache(k_cache: torch.Tensor, v_cache: torch.Tensor, page_size: int) -> None:
    """k/v pools [num_pages][n_kv_heads][page_size][head_dim], the same shape."""
    tensor(k_cache, "k_cache", torch.bfloat16, 4)
    tensor(v_cache, "v_cache", torch.bfloat16, 4)
    if k_cache.shape != v_cache.shape:
        raise ValueError(f"v_cache: shape {tuple(v_cache.shape)} differs from k_cache's {tuple(k_cache.shape)}")
    if k_cache.shape[2] != page_size:
        raise ValueError(f"k_cache: dimension 2 is the page of {page_size} tokens, got shape {tuple(k_cache.shape)}")
    if k_cache.shape[0] < 1:
        raise ValueError("k_cache: no pages")


def softmax_scale(scale, head_dim: int) -> float:
    if scale is None:
        return head_dim ** -0.5
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0:
        raise ValueError(f"softmax_scale: expected a positive number, got {scale!r}")
    return float(scale)
