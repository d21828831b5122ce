"""Bad requests get the right status and OpenAI's error object; the server goes on."""
import json

import pytest
import requests

from conftest import MODEL_NAME, ServerProcess

API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MESSAGES = [{"role": "user", "content": "Hi"}]


def chat_body(**fields):
    return {"model": MODEL_NAME, "messages": MESSAGES, "max_tokens": 4, **fields}


def completion_body(**fields):
    return {"model": MODEL_NAME, "prompt": "Hi", "max_tokens": 4, **fields}


# (name, path, body (dict, or str sent as is), headers, status, param)
CASES = [
    ("malformed JSON", CHAT, '{"model": ', AUTH, 400, None),
    ("body not an object", CHAT, "[1, 2]", AUTH, 400, None),
    ("missing messages", CHAT, {"model": MODEL_NAME}, AUTH, 400, "messages"),
    ("messages not an array", CHAT, chat_body(messages="hi"), AUTH, 400, "messages"),
    ("messages empty", CHAT, chat_body(messages=[]), AUTH, 400, "messages"),
    ("unknown role", CHAT, chat_body(messages=[{"role": "wizard", "content": "x"}]), AUTH, 400, "messages"),
    ("content a number", CHAT, chat_body(messages=[{"role": "user", "content": 5}]), AUTH, 400, "messages"),
    ("max_tokens a string", CHAT, chat_body(max_tokens="ten"), AUTH, 400, "max_tokens"),
    ("max_tokens zero", CHAT, chat_body(max_tokens=0), AUTH, 400, "max_tokens"),
    ("max_completion_tokens negative", CHAT, chat_body(max_completion_tokens=-3), AUTH, 400, "max_completion_tokens"),
    ("temperature negative", CHAT, chat_body(temperature=-1), AUTH, 400, "temperature"),
    ("temperature a string", CHAT, chat_body(temperature="hot"), AUTH, 400, "temperature"),
    ("top_p zero", CHAT, chat_body(top_p=0), AUTH, 400, "top_p"),
    ("top_k fractional", CHAT, chat_body(top_k=1.5), AUTH, 400, "top_k"),
    ("seed a string", CHAT, chat_body(seed="abc"), AUTH, 400, "seed"),
    ("n = 3", CHAT, chat_body(n=3), AUTH, 400, "n"),
    ("stop a number", CHAT, chat_body(stop=5), AUTH, 400, "stop"),
    ("stop list with a number", CHAT, chat_body(stop=["a", 1]), AUTH, 400, "stop"),
    ("stream a string", CHAT, chat_body(stream="yes"), AUTH, 400, "stream"),
    ("stream_options without stream", CHAT, chat_body(stream_options={"include_usage": True}), AUTH, 400,
     "stream_options"),
    ("logprobs", COMPLETIONS, completion_body(logprobs=2), AUTH, 400, "logprobs"),
    ("missing prompt", COMPLETIONS, {"model": MODEL_NAME}, AUTH, 400, "prompt"),
    ("prompt an object", COMPLETIONS, completion_body(prompt={"text": "x"}), AUTH, 400, "prompt"),
    ("token id outside the vocabulary", COMPLETIONS, completion_body(prompt=[1, 2, 10**7]), AUTH, 400, "prompt"),
    ("negative token id", COMPLETIONS, completion_body(prompt=[-1]), AUTH, 400, "prompt"),
    ("two prompts", COMPLETIONS, completion_body(prompt=["a", "b"]), AUTH, 400, "prompt"),
    ("prompt longer than the context", COMPLETIONS, completion_body(prompt=[42] * 3000), AUTH, 400, "prompt"),
    ("unknown prefill method", COMPLETIONS, completion_body(deltainfer={"prefill": "bogus"}), AUTH, 400, "deltainfer"),
    ("negative window", COMPLETIONS, completion_body(deltainfer={"prefill": "sliding", "window": -5}), AUTH, 400,
     "deltainfer"),
    ("unknown method key", COMPLETIONS, completion_body(deltainfer={"colour": 3}), AUTH, 400, "deltainfer"),
    ("unknown decode method", COMPLETIONS, completion_body(deltainfer={"decode": "psychic"}), AUTH, 400, "deltainfer"),
    ("deltainfer not an object", COMPLETIONS, completion_body(deltainfer="fast"), AUTH, 400, "deltainfer"),
    ("delta layer beyond the model", COMPLETIONS,
     completion_body(deltainfer={"decode": "delta", "delta_layers": [2, 99]}), AUTH, 400, "deltainfer"),
    ("wrong model", COMPLETIONS, completion_body(model="gpt-4"), AUTH, 404, "model"),
    ("unknown route", "/v1/embeddings", {"input": "x"}, AUTH, 404, None),
    ("missing API key", CHAT, chat_body(), {}, 401, None),
    ("wrong API key", CHAT, chat_body(), {"Authorization": "Bearer nope"}, 401, None),
    ("body over the size limit", COMPLETIONS, completion_body(prompt="word " * 30000), AUTH, 413, None),
    ("tokenize without a prompt", "/tokenize", {"text": "x"}, AUTH, 400, "prompt"),
    ("detokenize of bad ids", "/detokenize", {"tokens": ["a"]}, AUTH, 400, "tokens"),
]


@pytest.fixture(scope="module")
def guarded_server():
    process = ServerProcess("--api-key", API_KEY, "--max-body-mb", "0.1", "--max-batch", "1", "--max-queue", "1")
    yield process
    assert process.terminate() == 0


def check_error_object(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


@pytest.mark.parametrize("name,path,body,headers,status,param", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_its_status_and_error_object(guarded_server, name, path, body, headers, status, param):
    data = body if isinstance(body, str) else json.dumps(body)
    response = requests.post(guarded_server.url + path, data=data, headers={**headers, "Content-Type": "application/json"},
                             timeout=30)
    error = check_error_object(response, status)
    if param is not None:
        assert error["param"] == param, error


def test_full_queue_answers_429_with_retry_after(guarded_server):
    # One running (max-batch 1) and one waiting (max-queue 1): the third is refused.
    body = completion_body(max_tokens=400, stream=True, ignore_eos=True)
    streams = []
    for _ in range(2):
        stream = requests.post(guarded_server.url + COMPLETIONS, json=body, headers=AUTH, stream=True, timeout=60)
        assert stream.status_code == 200
        streams.append(stream)
    next(streams[0].iter_lines())  # the first is running
    refused = requests.post(guarded_server.url + COMPLETIONS, json=completion_body(), headers=AUTH, timeout=30)
    error = check_error_object(refused, 429)
    assert refused.headers["Retry-After"] == "1"
    assert error["type"] == "rate_limit_error"
    for stream in streams:
        stream.close()  # leaving cancels them
    metrics = guarded_server.wait_idle()
    assert metrics["deltainfer_kv_pages_used"] == 0


def test_server_still_answers_after_every_bad_request(guarded_server):
    assert requests.get(guarded_server.url + "/health", timeout=10).json()["status"] == "ok"
    response = requests.post(guarded_server.url + CHAT, json=chat_body(), headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] > 0
    statuses = guarded_server.metrics()
    assert statuses['deltainfer_http_requests_total{status="400"}'] >= 30
    assert guarded_server.process.poll() is None
