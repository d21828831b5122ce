"""scripts/compare-kv-dtypes on small eval results: the drop it reports and its exit status."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare-kv-dtypes"


def result(accuracies, seed=0, samples=50, ppl=None):
    """An eval --json result: accuracies {(method, length, task): percent}."""
    cells = [{"method": m, "length": n, "task": t, "accuracy": a, "samples": samples} for (m, n, t), a in accuracies.items()]
    perplexity = [{"method": m, "length": n, "ppl": p, "longppl": lp} for (m, n), (p, lp) in (ppl or {}).items()]
    return {"run": {"seed": seed}, "cells": cells, "perplexity": perplexity}


def run(tmp_path, reference, candidate, *args):
    paths = []
    for name, data in (("ref.json", reference), ("cand.json", candidate)):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        paths.append(str(path))
    return subprocess.run([sys.executable, str(SCRIPT), *paths, *args], capture_output=True, text=True)


BASE = {("dense", 8192, "passkey"): 100.0, ("dense", 8192, "vt"): 60.0, ("delta:budget=2048", 8192, "passkey"): 90.0}


def test_same_results_differ_by_nothing(tmp_path):
    done = run(tmp_path, result(BASE), result(BASE))
    assert done.returncode == 0, done.stderr
    assert "| dense | 8192 | 2 | 80.0 | 80.0 | 0.0 |" in done.stdout


def test_a_drop_past_the_limit_is_marked_and_fails(tmp_path):
    lower = dict(BASE)
    lower[("dense", 8192, "vt")] = 56.0  # mean 78.0: 2 points down
    done = run(tmp_path, result(BASE), result(lower), "--markdown", str(tmp_path / "table.md"))
    assert done.returncode == 1
    row = next(line for line in done.stdout.splitlines() if line.startswith("| dense |"))
    assert "-2.0" in row and row.rstrip().endswith("over |")
    assert "over" not in next(line for line in done.stdout.splitlines() if line.startswith("| delta"))
    assert (tmp_path / "table.md").read_text() == done.stdout
    assert run(tmp_path, result(BASE), result(lower), "--max-drop", "2.5").returncode == 0


def test_perplexity_is_shown_beside_accuracy(tmp_path):
    ppl = {("dense", 8192): (10.0, 3.0)}
    done = run(tmp_path, result(BASE, ppl=ppl), result(BASE, ppl={("dense", 8192): (10.5, 3.25)}))
    assert "| 10.00 | 10.50 | 3.00 | 3.25 |" in done.stdout


def test_other_prompts_are_refused(tmp_path):
    assert run(tmp_path, result(BASE), result(BASE, seed=1)).returncode == 2
    assert run(tmp_path, result(BASE), result(BASE, samples=20)).returncode == 2
