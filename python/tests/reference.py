"""Masked attention in f32 on the GPU: the reference every op is compared with."""
import torch


def attention(q, k, v, q_pos, allowed, scale=None):
    """q [n][H][d]; k, v [L][Hkv][d]; q_pos [n] positions; allowed(q_pos [n,1], j [1,L]) -> bool
    mask. Returns out [n][H][d] f32 and lse [n][H] (natural log)."""
    n_heads, n_kv = q.shape[1], k.shape[1]
    scale = q.shape[2] ** -0.5 if scale is None else scale
    group = n_heads // n_kv
    kf = k.float().repeat_interleave(group, dim=1)  # [L][H][d]
    vf = v.float().repeat_interleave(group, dim=1)
    scores = torch.einsum("nhd,lhd->hnl", q.float(), kf) * scale
    j = torch.arange(k.shape[0], device=q.device)[None, :]
    mask = allowed(q_pos[:, None].to(q.device), j)  # [n][L]
    scores = scores.masked_fill(~mask[None], float("-inf"))
    lse = torch.logsumexp(scores, dim=-1).transpose(0, 1)  # [n][H]
    out = torch.einsum("hnl,lhd->nhd", torch.softmax(scores, dim=-1), vf)
    return out, lse


def causal(p, j):
    return j <= p


def sliding(window, sink):
    return lambda p, j: (j <= p) & ((j < sink) | (j > p - window))


def rel_l2(got, want):
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


def max_abs(got, want):
    return (got.float() - want.float()).abs().max().item()
