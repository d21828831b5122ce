"""Comparing greedy generations (transformers generate with output_scores) by the engine's GPU
parity rule: the first step where the tokens part must be a near tie in the reference's own
logits (top two within NEAR_TIE); the steps after it are not compared."""

NEAR_TIE = 0.15


def assert_same_greedy(want, got, prompt_len):
    want_tokens, got_tokens = want.sequences[0, prompt_len:].tolist(), got.sequences[0, prompt_len:].tolist()
    assert len(want_tokens) == len(got_tokens)
    for step, (a, b) in enumerate(zip(want_tokens, got_tokens)):
        if a != b:
            scores = want.scores[step][0].float()
            assert abs(scores[a] - scores[b]).item() < NEAR_TIE, f"step {step}: {a} vs {b}"
            print(f"near-tie at step {step}: {a} vs {b}, not compared further")
            break
