"""Continuous batching: concurrent requests get exactly what they get alone."""
from concurrent.futures import ThreadPoolExecutor

from conftest import MODEL_NAME

SUBJECTS = ["France", "Japan", "Italy", "Brazil", "Canada", "Egypt", "Spain", "India",
            "Kenya", "Peru", "Norway", "Chile", "Greece", "Mexico", "Poland", "Turkey"]


def greedy(client, index):
    subject = SUBJECTS[index]
    if index % 2 == 0:
        response = client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": f"Tell me about {subject}."}],
            max_tokens=10 + index % 3, temperature=0)
        return response.choices[0].message.content
    response = client.completions.create(model=MODEL_NAME, prompt=f"A short history of {subject}:" + " x" * index,
                                         max_tokens=10 + index % 3, temperature=0)
    return response.choices[0].text


def test_sixteen_concurrent_greedy_requests_equal_their_alone_texts(client, server):
    alone = [greedy(client, i) for i in range(16)]
    steps_before = server.metrics()["deltainfer_forward_passes_total"]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda i: greedy(client, i), range(16)))
    for i in range(16):
        assert together[i] == alone[i], f"request {i}"
    steps = server.wait_idle()["deltainfer_forward_passes_total"] - steps_before
    # Alone these take >= 16 * 10 passes; batched, far fewer.
    assert steps < 16 * 10 / 2, steps
