"""Scoring on the eight benchmarks' stand-ins (tests/data/benchmarks): each layout's ground truth and answer formats;
and on the published files, where present: gold answers score ~100 %, answers of other rows ~0 %."""

import json
from pathlib import Path

import pytest
from benchmark_standins import COLLEGE_MATH_SUBSAMPLE

from lambda_trl.cli import main
from lambda_trl.eval.benchmarks import BENCHMARKS, college_math_subsample_indices, resolve_benchmarks
from lambda_trl.eval.scoring import score_predictions, score_rows


PUBLISHED_ROWS = {
    "gsm8k": 1319,
    "math500": 500,
    "minerva_math": 272,
    "gaokao2023en": 385,
    "olympiadbench": 675,
    "college_math": 500,
    "aime24": 30,
    "amc23": 40,
}


# Per stand-in row (benchmark, idx): answers written unlike the gold, with whether each must be scored right. They
# check the ground truth each layout yields (after `####`, the last of two boxes, `$` and a float stripped, ...)
# as much as the checker's equivalences.
ANSWER_FORMATS = {
    ("gsm8k", 2): [("1,250", True), ("1250.0", True), ("125", False)],  # "#### 1,250"
    ("math500", 0): [("0.75", True), ("\\dfrac{3}{4}", True), ("\\frac{4}{3}", False)],
    ("math500", 1): [("(2, 3\\pi/2)", True), ("(2,\\frac{\\pi}{2})", False)],
    ("math500", 2): [("(-2, 4)", True), ("[-2,4]", False)],
    ("math500", 3): [("1", True), ("-2", False)],  # the solution's last \boxed{}, not its first
    ("math500", 5): [("25", True), ("2.5", False)],  # 25\%
    ("minerva_math", 0): [("60\\text{ km/h}", True), ("6", False)],  # \boxed{60} \mathrm{~km/h}
    ("minerva_math", 1): [
        ("3.8e28", True),
        (r"3.8 \times 10^{28}", True),
        ("3.8e26", False),
        (r"3.8\times10^{26}", False),
    ],
    ("minerva_math", 2): [("12", True), ("13", False)],  # \boxed{12 \mathrm{~s}}
    ("minerva_math", 3): [("mv^2/r", True), ("\\frac{mv}{r}", False)],
    ("minerva_math", 4): [("\\frac{3}{4}", True), ("0.25", False)],  # the second of two boxes
    ("gaokao2023en", 0): [("\\{4,1\\}", True), ("\\{1,2,4\\}", False)],  # $\{1,4\}$
    ("gaokao2023en", 4): [("y=-1+2x", True), ("y=2x+1", False)],
    ("gaokao2023en", 5): [("\\frac{3}{5}", True), ("0.5", False)],
    ("olympiadbench", 1): [("(3,1),(1,3)", True), ("(1,3)", False)],  # multiple answers
    ("olympiadbench", 2): [("45^{\\circ}", True), ("135", False)],  # unit ^{\circ}
    ("olympiadbench", 3): [("\\frac{n^2+n}{2}", True), ("\\frac{n(n-1)}{2}", False)],
    ("olympiadbench", 4): [("[2,\\infty)", True), ("(2,\\infty)", False)],
    ("olympiadbench", 5): [("5,2", True), ("2", False)],  # multiple answers
    ("college_math", 0): [("-3n+10", True), ("10-3", False)],
    ("college_math", 4): [("-1.75", True), ("\\frac{7}{4}", False)],
    ("college_math", 5): [("(1,3]", True), ("(1,3)", False)],
    ("college_math", 7): [("2000", True), ("200", False)],
    ("aime24", 0): [("24", True), ("240", False)],  # "024"
    ("amc23", 0): [("12", True), ("12.5", False)],  # 12.0
    ("amc23", 1): [("\\frac{5}{2}", True), ("2", False)],  # 2.5
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


def gold_and_shifted_accuracy(tmp_path, benchmark, data_dir, shift):
    """Accuracy of the gold answers and of each row's answer moved `shift` rows on."""
    rows = benchmark.load_rows(data_dir)
    gold_path, shifted_path = tmp_path / "gold.jsonl", tmp_path / "shifted.jsonl"
    write_predictions(gold_path, rows, lambda row: row["answer"], samples=benchmark.samples)
    gold = score_predictions(benchmark, gold_path, data_dir)
    assert gold["n"] == len(rows) and gold["metric"] == benchmark.metric
    answers = [row["answer"] for row in rows]
    shifted = {row["idx"]: answers[(position + shift) % len(rows)] for position, row in enumerate(rows)}
    write_predictions(shifted_path, rows, lambda row: shifted[row["idx"]])
    return gold["accuracy"], score_predictions(benchmark, shifted_path, data_dir)["accuracy"]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_published_gold_scores_near_100_and_shifted_answers_near_0(tmp_path, published_benchmarks_dir, name):
    benchmark = BENCHMARKS[name]
    assert len(benchmark.load_rows(published_benchmarks_dir)) == PUBLISHED_ROWS[name]
    gold, shifted = gold_and_shifted_accuracy(tmp_path, benchmark, published_benchmarks_dir, shift=7)
    assert gold >= 97.0 and shifted <= 5.0, (gold, shifted)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_gold_scores_100_and_other_rows_answers_0(tmp_path, benchmarks_dir, name):
    benchmark = BENCHMARKS[name]
    rows = benchmark.load_rows(benchmarks_dir)
    expected = list(COLLEGE_MATH_SUBSAMPLE) if benchmark.subsample else list(range(benchmark.rows))
    assert [row["idx"] for row in rows] == expected
    assert gold_and_shifted_accuracy(tmp_path, benchmark, benchmarks_dir, shift=1) == (100.0, 0.0)


def test_answer_formats_of_each_layout(benchmarks_dir):
    for name in BENCHMARKS:
        rows = {row["idx"]: row for row in BENCHMARKS[name].load_rows(benchmarks_dir)}
        cases = {idx: answers for (benchmark, idx), answers in ANSWER_FORMATS.items() if benchmark == name}
        assert cases, f"no answer formats for {name}"
        predictions = {
            idx: [f"so the answer is \\boxed{{{answer}}}." for answer, _ in answers] for idx, answers in cases.items()
        }
        for scored in score_rows([rows[idx] for idx in cases], predictions, name):
            expected = [right for _, right in cases[scored["idx"]]]
            assert scored["verdicts"]["math-verify"] == expected, (name, scored)


def test_college_math_evaluates_only_its_subsample(benchmarks_dir, tmp_path):
    college_math = BENCHMARKS["college_math"]
    rows = college_math.load_rows(benchmarks_dir)
    assert [row["idx"] for row in rows] == list(COLLEGE_MATH_SUBSAMPLE) and len(rows) < college_math.rows
    predictions = tmp_path / "pred.jsonl"  # every row of the file answered correctly, the subsample's and the rest
    lines = (benchmarks_dir / "college_math" / "test.jsonl").read_text().splitlines()
    with open(predictions, "w") as f:
        for idx, line in enumerate(lines):
            f.write(
                json.dumps(
                    {"idx": idx, "completions": [f"\\boxed{{{college_math.ground_truth_of(json.loads(line))}}}"]}
                )
                + "\n"
            )
    result = score_predictions(college_math, predictions, benchmarks_dir)
    assert result["n"] == result["n_predicted"] == len(COLLEGE_MATH_SUBSAMPLE) and result["accuracy"] == 100.0
    # The indices are line numbers of the whole file: one row more or less is another file, refused.
    (tmp_path / "longer" / "college_math").mkdir(parents=True)
    (tmp_path / "longer" / "college_math" / "test.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.warns(UserWarning, match="unverified copy"), pytest.raises(ValueError, match="subsample indices"):
        college_math.load_rows(tmp_path / "longer", allow_unverified=True)


def test_missing_rows_count_as_wrong_and_avg_at_k_averages_rows(tmp_path, benchmarks_dir):
    benchmark = BENCHMARKS["amc23"]
    rows = benchmark.load_rows(benchmarks_dir)
    path = tmp_path / "pred.jsonl"
    # Row 0: 1 of 4 samples right; row 1: all 4 right; the other rows missing.
    with open(path, "w") as f:
        for row, right in ((rows[0], 1), (rows[1], 4)):
            completions = [f"\\boxed{{{row['answer']}}}"] * right + ["\\boxed{-1}"] * (4 - right)
            f.write(json.dumps({"idx": row["idx"], "completions": completions}) + "\n")
    result = score_predictions(benchmark, path, benchmarks_dir)
    assert result["accuracy"] == pytest.approx(100 * (0.25 + 1.0) / len(rows))
    assert result["n_predicted"] == 2 and result["samples_per_row"] == 4


def test_score_command(tmp_path, benchmarks_dir, capsys):
    benchmark = BENCHMARKS["gsm8k"]
    rows = benchmark.load_rows(benchmarks_dir)[:3]
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
    assert result["benchmark"] == "gsm8k" and result["metric"] == "pass@1" and result["n"] == benchmark.rows > 3
    assert result["accuracy"] == pytest.approx(100 * 3 / benchmark.rows)
    assert '"accuracy"' in capsys.readouterr().out


def test_malformed_predictions_and_unknown_benchmarks(tmp_path):
    with pytest.raises(ValueError, match="Unknown benchmark"):
        resolve_benchmarks("gsm8k,mmlu")
    path = tmp_path / "pred.jsonl"
    path.write_text('{"completions": ["x"]}\n')
    with pytest.raises(ValueError, match="needs an integer `idx`"):  # found before the benchmark file is looked for
        score_predictions(BENCHMARKS["amc23"], path, tmp_path / "no-such-dir")
    path.write_text('{"idx": 0, "completions": ["x"]}\n')
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        score_predictions(BENCHMARKS["gsm8k"], path, tmp_path)
