"""SmolLM2-135M-Instruct from its GGUF file (transformers' gguf_file loader, which needs the gguf
package) on the GPU: with deltainfer.hf.enable(model, prefill="dense", decode="dense") greedy
generation gives SDPA's tokens (by the near-tie rule of greedy.py). The model file is SMOLLM2_GGUF,
else models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model). Skips without CUDA,
transformers, gguf or the file."""
import os
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf", reason="transformers reads GGUF files through the gguf package")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

import deltainfer.hf  # noqa: E402
from greedy import assert_same_greedy  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = Path(os.environ.get("SMOLLM2_GGUF", DEFAULT_MODEL))
PROMPT = ("The history of the city begins with a small fishing village on the river. Over the centuries "
          "it grew into a market town, then a port, and finally the capital of the region. ") * 6 + \
         "In one sentence, the city's history is"


@pytest.fixture(scope="module")
def tokenizer():
    if not MODEL.exists():
        pytest.skip(f"no model at {MODEL} (scripts/fetch-model, or set SMOLLM2_GGUF)")
    return transformers.AutoTokenizer.from_pretrained(MODEL.parent, gguf_file=MODEL.name)


def load_model():
    model = transformers.AutoModelForCausalLM.from_pretrained(MODEL.parent, gguf_file=MODEL.name,
                                                              dtype=torch.bfloat16, attn_implementation="sdpa")
    return model.to("cuda").eval()


def test_smollm2_gguf_dense_greedy_tokens_match_sdpa(tokenizer):
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids.cuda()
    settings = dict(max_new_tokens=32, do_sample=False, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        want = load_model().generate(ids, **settings)
        got = deltainfer.hf.enable(load_model(), prefill="dense", decode="dense").generate(ids, **settings)
    assert ids.shape[1] > 100  # a prompt long enough that prefill spans several KV pages' worth of rows
    assert_same_greedy(want, got, ids.shape[1])
