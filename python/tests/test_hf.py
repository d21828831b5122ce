"""deltainfer.hf on tiny random Llama and Qwen2 models (GPU; skipped without one or without
transformers): with dense prefill and decode, logits match SDPA's and greedy generation gives
SDPA's tokens (a step where SDPA's own top-2 logits are within 0.15 may part — the engine's
GPU parity rule — and is then not compared further); the sparse settings run and agree with
dense where they must (window >= context)."""
import pytest
import torch

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

import deltainfer.hf  # noqa: E402
from greedy import assert_same_greedy  # noqa: E402


def tiny_model(kind, attn="sdpa"):
    common = dict(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    config = (transformers.LlamaConfig(**common, head_dim=64) if kind == "llama"
              else transformers.Qwen2Config(**common))
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation=attn)
    return model.to("cuda", torch.bfloat16).eval()


def prompt(n=300):
    return torch.randint(0, 512, (1, n), generator=torch.Generator().manual_seed(1)).cuda()


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_dense_logits_match_sdpa(kind):
    ids = prompt()
    with torch.no_grad():
        want = tiny_model(kind)(ids).logits.float()
        got = deltainfer.hf.enable(tiny_model(kind), prefill="dense")(ids).logits.float()
    assert ((got - want).norm() / want.norm()).item() < 2e-2


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_dense_greedy_tokens_match_sdpa(kind):
    ids = prompt(200)
    settings = dict(max_new_tokens=24, do_sample=False, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        want = tiny_model(kind).generate(ids, **settings)
        got = deltainfer.hf.enable(tiny_model(kind), prefill="dense", decode="dense").generate(ids, **settings)
    assert_same_greedy(want, got, 200)


@pytest.mark.parametrize("prefill", ["sliding", "sliding_delta", "vslash", "vslash_delta"])
def test_sparse_prefill_keeping_the_whole_context_is_dense(prefill):
    ids = prompt(256)
    with torch.no_grad():
        want = tiny_model("llama")(ids).logits.float()
        got = deltainfer.hf.enable(tiny_model("llama"), prefill=prefill, window=4096, sink=0, gamma=64,
                                   vertical=4096, slash=4096)(ids).logits.float()
    assert ((got - want).norm() / want.norm()).item() < 2e-2


@pytest.mark.parametrize("decode", ["streaming", "quest"])
def test_sparse_decode_keeping_the_whole_context_gives_dense_tokens(decode):
    ids = prompt(200)
    settings = dict(max_new_tokens=8, do_sample=False, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        dense = deltainfer.hf.enable(tiny_model("qwen2"), decode="dense").generate(ids, **settings)
        sparse = deltainfer.hf.enable(tiny_model("qwen2"), decode=decode, window=4096, sink=0,
                                      budget=4096).generate(ids, **settings)
    assert_same_greedy(dense, sparse, 200)


def test_delta_decode_returns_dense_attention():
    ids = prompt(200)
    settings = dict(max_new_tokens=8, do_sample=False, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        dense = deltainfer.hf.enable(tiny_model("llama"), decode="dense").generate(ids, **settings)
        delta = deltainfer.hf.enable(tiny_model("llama"), decode="delta", budget=64).generate(ids, **settings)
    assert_same_greedy(dense, delta, 200)
