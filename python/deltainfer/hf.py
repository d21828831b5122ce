"""Hugging Face transformers integration: runs a model's attention on deltainfer's kernels.

    model = AutoModelForCausalLM.from_pretrained(..., dtype=torch.bfloat16).cuda()
    deltainfer.hf.enable(model, prefill="sliding_delta", window=2048, sink=64, gamma=64)

registers the attention function "deltainfer" in transformers' AttentionInterface (and its mask
function in AttentionMaskInterface) and switches the model to it. The KV cache stays
transformers' own (contiguous per layer); each call pages the layer's K/V for our kernels (a
copy, O(kv_len) per layer and step: this is for trying methods on HF models, not for speed).
Prefill (query length > 1): "dense" causal, "sliding" window + sink, "sliding_delta" (the
fused Δ correction, docs/METHODS.md "Δ attention (prefill)"), "vslash" (vertical-slash with its
estimator, `vertical` columns and `slash` diagonals kept per head) or "vslash_delta". Decode
(one query): "dense" split-KV; "delta" (DELTA, docs/METHODS.md "DELTA (decode)": each step runs
the dense pass plus the selection of `budget` tokens in every layer and returns the dense
output, i.e. the Δ-layer's computation; the engine's sparse layers are not modelled here);
"streaming" (sink + window, StreamingLLM); "quest" (Quest, `budget` tokens per KV head).
Left-padded batches are refused (ValueError): sequences of a batch must have equal lengths.
"""
from __future__ import annotations

import torch

from deltainfer import ops

NAME = "deltainfer"
PREFILL_KINDS = ("dense", "sliding", "sliding_delta", "vslash", "vslash_delta")
DECODE_KINDS = ("dense", "delta", "streaming", "quest")
_settings: dict[int, dict] = {}  # id(model config) -> the enable() arguments


def enable(model, prefill: str = "dense", window: int = 2048, sink: int = 64, gamma: int = 64,
           decode: str = "dense", budget: int = 2048, vertical: int = 1000, slash: int = 6096):
    """Switches `model` (a transformers PreTrainedModel, bf16 on a CUDA device: Llama, Qwen2,
    Qwen3, ... any model that dispatches through ALL_ATTENTION_FUNCTIONS) to our kernels."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    if prefill not in PREFILL_KINDS:
        raise ValueError(f"prefill: {prefill!r} is not one of {PREFILL_KINDS}")
    if decode not in DECODE_KINDS:
        raise ValueError(f"decode: {decode!r} is not one of {DECODE_KINDS}")
    if (prefill.startswith("sliding") or decode == "streaming") and (window <= 0 or sink < 0):
        raise ValueError(f"window {window} must be > 0 and sink {sink} >= 0")
    if prefill.startswith("vslash") and (vertical <= 0 or slash <= 0):
        raise ValueError(f"vertical {vertical} and slash {slash} must be > 0")
    if prefill.endswith("_delta") and gamma not in ops.FUSED_GAMMAS:
        raise ValueError(f"gamma: {gamma} is not one of {ops.FUSED_GAMMAS}")
    AttentionInterface.register(NAME, attention_forward)
    # The flash-attention mask: None when every row is plain causal, else the 2-D padding mask
    # (which attention_forward refuses).
    AttentionMaskInterface.register(NAME, flash_attention_mask)
    _settings[id(model.config)] = dict(prefill=prefill, window=window, sink=sink, gamma=gamma, decode=decode,
                                       budget=budget, vertical=vertical, slash=slash)
    model.set_attn_implementation(NAME)
    return model


def _paged(heads_first: torch.Tensor) -> torch.Tensor:
    """[n_kv_heads][kv_len][d] (one sequence of transformers' cache) -> [pages][n_kv_heads][64][d]."""
    n_kv, kv_len, d = heads_first.shape
    pages = -(-kv_len // ops.PAGE_SIZE)
    padded = heads_first.new_zeros(n_kv, pages * ops.PAGE_SIZE, d)
    padded[:, :kv_len] = heads_first
    return padded.view(n_kv, pages, ops.PAGE_SIZE, d).transpose(0, 1).contiguous()


def attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention signature: query [B][H][q_len][d], key/value [B][Hkv][kv_len][d]
    (the whole cache); returns ([B][q_len][H][d], None)."""
    settings = _settings.get(id(module.config))
    if settings is None:
        raise ValueError("deltainfer attention: call deltainfer.hf.enable(model) on this model")
    if attention_mask is not None:
        raise ValueError("deltainfer attention: padded batches are not supported (sequences of equal length only)")
    if dropout:
        raise ValueError("deltainfer attention: dropout is not supported (inference only)")
    if kwargs.get("softcap") is not None or kwargs.get("sliding_window") is not None:
        raise ValueError("deltainfer attention: soft-capping and the model's own sliding layers are not supported")
    batch, _, q_len, _ = query.shape
    kv_len = key.shape[2]
    q = query.transpose(1, 2).to(torch.bfloat16).contiguous()  # [B][q_len][H][d]
    pages = -(-kv_len // ops.PAGE_SIZE)
    table = torch.arange(pages, dtype=torch.int32, device=query.device)
    if q_len == 1:
        k_cache = torch.cat([_paged(key[b].to(torch.bfloat16)) for b in range(batch)])
        v_cache = torch.cat([_paged(value[b].to(torch.bfloat16)) for b in range(batch)])
        tables = (table[None, :] + pages * torch.arange(batch, device=query.device, dtype=torch.int32)[:, None])
        kv_lens = torch.full((batch,), kv_len, dtype=torch.int32, device=query.device)
        args = (q[:, 0], k_cache, v_cache, tables.contiguous(), kv_lens, kv_len)
        return _decode(settings, args, scaling)[:, None].to(query.dtype), None
    first_pos = kv_len - q_len
    outs = []
    for b in range(batch):
        k_cache, v_cache = _paged(key[b].to(torch.bfloat16)), _paged(value[b].to(torch.bfloat16))
        outs.append(_prefill(settings, (q[b], k_cache, v_cache, table, kv_len), first_pos, scaling))
    return torch.stack(outs).to(query.dtype), None


def _decode(settings, args, scaling):
    kind = settings["decode"]
    if kind == "delta":
        return ops.delta_decode(*args, budget=settings["budget"], softmax_scale=scaling)[0]
    if kind == "streaming":
        return ops.streaming_decode(*args[:5], settings["sink"], settings["window"], softmax_scale=scaling)
    if kind == "quest":
        return ops.quest_decode(*args, budget=settings["budget"], softmax_scale=scaling)[0]
    return ops.decode_attention(*args, softmax_scale=scaling)


def _prefill(settings, args, first_pos, scaling):
    kind = settings["prefill"]
    # Δ needs the chunk to start on a multiple of gamma (its own strided rows); otherwise no Δ.
    gamma = settings["gamma"] if kind.endswith("_delta") and first_pos % settings["gamma"] == 0 else None
    if kind.startswith("sliding"):
        window, sink = settings["window"], settings["sink"]
        if gamma is None:
            return ops.sliding_prefill(*args, window, sink, first_pos, softmax_scale=scaling)
        return ops.sliding_delta_prefill(*args, window, sink, gamma, first_pos, softmax_scale=scaling)
    if kind.startswith("vslash"):
        return ops.vslash_prefill(*args, first_pos, vertical=settings["vertical"], slash=settings["slash"],
                                  gamma=gamma, softmax_scale=scaling)
    return ops.prefill_attention(*args, first_pos, softmax_scale=scaling)
