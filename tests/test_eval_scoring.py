"""Scoring on the eight published benchmark files: gold answers score ~100 %, answers of other rows ~0 %."""

import json
from pathlib import Path

import pytest

from lambda_trl.cli import main
from lambda_trl.eval.benchmarks import BENCHMARKS, college_math_subsample_indices, resolve_benchmarks
from lambda_trl.eval.scoring import score_predictions


EXPECTED_ROWS = {
    "gsm8k": 1319,
    "math500": 500,
    "minerva_math": 272,
    "gaokao2023en": 385,
    "olympiadbench": 675,
    "college_math": 500,
    "aime24": 30,
    "amc23": 40,
}


def write_predictions(path, rows, answer_of, samples=1):
    with open(path, "w") as f:
        for row in rows:
            completions = [f"Reasoning... so the answer is \\boxed{{{answer_of(row)}}}." for _ in range(samples)]
            f.write(json.dumps({"idx": row["idx"], "completions": completions}) + "\n")


def test_shipped_college_math_indices_follow_the_documented_rule():
    shipped = json.loads(
        (Path(__file__).resolve().parents[1] / "lambda_trl/eval/college_math_subsample.json").read_text()
    )
    assert shipped == college_math_subsample_indices() and len(set(shipped)) == 500


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_gold_scores_near_100_and_shifted_answers_near_0(tmp_path, benchmarks_dir, name):
    benchmark = BENCHMARKS[name]
    rows = benchmark.load_rows(benchmarks_dir)
    assert len(rows) == EXPECTED_ROWS[name]
    gold_path, shifted_path = tmp_path / "gold.jsonl", tmp_path / "shifted.jsonl"
    write_predictions(gold_path, rows, lambda row: row["answer"], samples=benchmark.samples)
    gold = score_predictions(benchmark, gold_path, benchmarks_dir)
    assert gold["n"] == len(rows) and gold["metric"] == benchmark.metric
    assert gold["accuracy"] >= 97.0, gold
    answers = [row["answer"] for row in rows]
    shifted = {row["idx"]: answers[(position + 7) % len(rows)] for position, row in enumerate(rows)}
    write_predictions(shifted_path, rows, lambda row: shifted[row["idx"]])
    assert score_predictions(benchmark, shifted_path, benchmarks_dir)["accuracy"] <= 5.0


def test_missing_rows_count_as_wrong_and_avg_at_k_averages_rows(tmp_path, benchmarks_dir):
    benchmark = BENCHMARKS["amc23"]
    rows = benchmark.load_rows(benchmarks_dir)
    path = tmp_path / "pred.jsonl"
    # Row 0: 1 of 4 samples right; row 1: all 4 right; the other 38 rows missing.
    with open(path, "w") as f:
        for row, right in ((rows[0], 1), (rows[1], 4)):
            completions = [f"\\boxed{{{row['answer']}}}"] * right + ["\\boxed{-1}"] * (4 - right)
            f.write(json.dumps({"idx": row["idx"], "completions": completions}) + "\n")
    result = score_predictions(benchmark, path, benchmarks_dir)
    assert result["accuracy"] == pytest.approx(100 * (0.25 + 1.0) / 40)
    assert result["n_predicted"] == 2 and result["samples_per_row"] == 4


def test_score_command(tmp_path, benchmarks_dir, capsys):
    benchmark = BENCHMARKS["gsm8k"]
    rows = benchmark.load_rows(benchmarks_dir)[:10]
    predictions, output = tmp_path / "pred.jsonl", tmp_path / "out.json"
    write_predictions(predictions, rows, lambda row: row["answer"])
    arguments = [
        "eval",
        "score",
        "--benchmark",
        "gsm8k",
        "--predictions",
        str(predictions),
        "--data-dir",
        str(benchmarks_dir),
    ]
    assert main(arguments + ["--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["benchmark"] == "gsm8k" and result["metric"] == "pass@1" and result["n"] == 1319
    assert result["accuracy"] == pytest.approx(100 * 10 / 1319)
    assert '"accuracy"' in capsys.readouterr().out


def test_malformed_predictions_and_unknown_benchmarks(tmp_path):
    with pytest.raises(ValueError, match="Unknown benchmark"):
        resolve_benchmarks("gsm8k,mmlu")
    path = tmp_path / "pred.jsonl"
    path.write_text('{"completions": ["x"]}\n')
    (tmp_path / "amc23").mkdir()
    (tmp_path / "amc23" / "test.jsonl").write_text('{"question": "q", "answer": 1.0}\n' * 40)
    with pytest.warns(UserWarning, match="unverified copy"), pytest.raises(ValueError, match="needs an integer `idx`"):
        score_predictions(BENCHMARKS["amc23"], path, tmp_path, allow_unverified=True)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        score_predictions(BENCHMARKS["gsm8k"], path, tmp_path)
