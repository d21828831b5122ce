"""The OpenAI API of `deltainfer serve` through the official openai client."""
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests

from conftest import MODEL_NAME

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def chat(client, **kwargs):
    kwargs.setdefault("max_tokens", 12)
    kwargs.setdefault("temperature", 0)
    return client.chat.completions.create(model=MODEL_NAME, messages=kwargs.pop("messages", CHAT), **kwargs)


def complete(client, prompt="The capital of France is", **kwargs):
    kwargs.setdefault("max_tokens", 12)
    kwargs.setdefault("temperature", 0)
    return client.completions.create(model=MODEL_NAME, prompt=prompt, **kwargs)


def test_models_lists_the_served_model(client, server):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]


def test_chat_completion_answers_with_usage(client):
    response = chat(client)
    assert response.object == "chat.completion"
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert "Paris" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.completion_tokens > 0
    assert response.usage.prompt_tokens > 10  # the chat template's system turn is there
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_completion_stops_at_max_tokens_with_length(client):
    response = complete(client, max_tokens=5, extra_body={"ignore_eos": True})
    assert response.object == "text_completion"
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 5


def test_streamed_chat_equals_the_non_streamed_one(client):
    whole = chat(client, max_tokens=16).choices[0].message.content
    chunks = list(chat(client, max_tokens=16, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1 and finishes[0] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_completion_equals_the_non_streamed_one(client):
    whole = complete(client, max_tokens=10).choices[0].text
    chunks = list(complete(client, max_tokens=10, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_stream_ends_with_done(server):
    body = {"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 3, "stream": True}
    with requests.post(server.url + "/v1/completions", json=body, stream=True, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        # SSE comments (": keep-alive", sent while a stream is silent) are not events.
        events = [line for line in response.iter_lines(decode_unicode=True) if line and not line.startswith(":")]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def test_stop_string_cuts_the_text_before_it(client):
    free = complete(client, max_tokens=20, extra_body={"ignore_eos": True}).choices[0].text
    # A stop string from the middle of the free run: the text ends right before it.
    stop = free[len(free) // 2:len(free) // 2 + 3]
    assert stop.strip(), free
    cut = complete(client, max_tokens=20, stop=[stop, "zzzz-never"], extra_body={"ignore_eos": True})
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == free[:free.index(stop)]
    streamed = "".join(c.choices[0].text for c in complete(client, max_tokens=20, stop=stop, stream=True,
                                                               extra_body={"ignore_eos": True}))
    assert streamed == cut.choices[0].text


def test_seeded_sampling_is_reproducible(client):
    def sample(seed):
        return complete(client, prompt="Once upon a time", max_tokens=10, temperature=1.0, top_p=0.95, seed=seed,
                        extra_body={"top_k": 50, "ignore_eos": True}).choices[0].text

    first = sample(1234)
    with ThreadPoolExecutor(5) as pool:  # batched beside other seeds, the same text again
        again, *others = pool.map(sample, (1234, 1, 2, 3, 4))
    assert again == first
    assert set(others) != {first}  # other seeds give other texts


def test_token_id_prompt_equals_the_text_prompt(client, server):
    ids = requests.post(server.url + "/tokenize", json={"prompt": "The capital of France is"}, timeout=10).json()
    assert ids["count"] == len(ids["tokens"]) > 0
    by_text = complete(client, max_tokens=8).choices[0].text
    by_ids = complete(client, prompt=ids["tokens"], max_tokens=8).choices[0].text
    assert by_ids == by_text
    back = requests.post(server.url + "/detokenize", json={"tokens": ids["tokens"]}, timeout=10).json()
    assert back["prompt"].endswith("The capital of France is")


def test_per_request_method_runs_and_is_reported(client, server):
    method = {"prefill": "sliding+delta", "window": 64, "sink": 4, "gamma": 16, "dense_tail": 16,
              "decode": "delta", "budget": 128, "recency": 32}
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 20 + "The capital of France is"
    body = {"model": MODEL_NAME, "prompt": long_prompt, "max_tokens": 6, "temperature": 0, "deltainfer": method}
    sparse = requests.post(server.url + "/v1/completions", json=body, timeout=120).json()
    assert "sliding+delta" in sparse["deltainfer"]["method"], sparse
    assert "decode delta" in sparse["deltainfer"]["method"]
    assert sparse["usage"]["completion_tokens"] > 0
    del body["deltainfer"]
    dense = requests.post(server.url + "/v1/completions", json=body, timeout=120).json()
    assert dense["deltainfer"]["method"].startswith("prefill dense")
    # The openai client passes it through extra_body.
    via_client = complete(client, prompt=long_prompt, max_tokens=6, extra_body={"deltainfer": method})
    assert via_client.choices[0].text == sparse["choices"][0]["text"]


def test_metrics_count_requests_tokens_and_pages(client, server):
    before = server.metrics()
    complete(client, max_tokens=4, extra_body={"ignore_eos": True})
    after = server.wait_idle()
    assert after["deltainfer_generation_tokens_total"] >= before["deltainfer_generation_tokens_total"] + 4
    assert after['deltainfer_http_requests_total{status="200"}'] > before['deltainfer_http_requests_total{status="200"}']
    assert after["deltainfer_time_to_first_token_seconds_count"] > before["deltainfer_time_to_first_token_seconds_count"]
    assert after["deltainfer_kv_pages_used"] == 0
    assert after["deltainfer_kv_pages_free"] > 0


def test_health(server):
    assert requests.get(server.url + "/health", timeout=10).json()["status"] == "ok"


def test_n_other_than_one_is_refused(client):
    with pytest.raises(openai.BadRequestError) as error:
        chat(client, n=2)
    assert error.value.body["param"] == "n"
