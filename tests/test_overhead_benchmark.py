"""benchmarks/overhead.py's worker (what `make bench` and the GPU kit launch) at sizes the defaults do not reach."""

import importlib.util
from pathlib import Path

import pytest


SPEC = importlib.util.spec_from_file_location(
    "overhead", Path(__file__).resolve().parent.parent / "benchmarks" / "overhead.py"
)
overhead = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(overhead)


@pytest.mark.parametrize("completion_length", [4, 128])
def test_worker_trains_with_completions_shorter_or_longer_than_the_script(completion_length):
    # The scripted completions are about 11 tokens: shorter limits once gave empty completions and a crash.
    result = overhead.run_once("lambda-grpo", steps=3, hidden=32, layers=1, completion_length=completion_length)
    assert result["device"] == "cpu" and result["step_time"] > 0 and result["peak_bytes"] > 0


def test_loss_microbenchmark_times_both_trainers_alternately():
    times = overhead.loss_microbenchmark(repeats=2, hidden=32, layers=1, completion_length=8)
    assert set(times) == {"trl-dapo", "lambda-grpo"} and all(len(v) == 2 and min(v) > 0 for v in times.values())
