r"""
The two graders side by side: a table of (completion, gold, benchmark) with the verdict each grader must give, one
row per category in which they agree or differ, each written from the rules (the library's in lambda_trl/answers.py,
the Qwen2.5-Math harness's as documented in lambda_trl/qwen_math.py); then the plumbing: both verdicts in every
output, the reward's grader choice, the time cap.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from lambda_trl import qwen_math
from lambda_trl.cli import main
from lambda_trl.eval.benchmarks import BENCHMARKS
from lambda_trl.eval.scoring import score_rows
from lambda_trl.graders import QWEN_MATH_TIMEOUT_SECONDS, AnswerChecker, case_seconds, check_answers
from lambda_trl.rewards import boxed_math_reward, load_reward_function


ROOT = Path(__file__).resolve().parents[1]


def record(benchmark: str, answer: str) -> dict:
    """A row as the published file of `benchmark` lays it out, with `answer` as its gold."""
    if benchmark == "gsm8k":
        return {"question": "q", "answer": f"Reasoning.\n#### {answer}"}
    if benchmark in ("math500", "minerva_math"):
        return {"problem": "q", "solution": f"So it is $\\boxed{{{answer}}}$."}
    if benchmark == "olympiadbench":
        return {"question": "q", "final_answer": [f"${answer}$"]}
    if benchmark == "amc23":
        return {"question": "q", "answer": float(answer)}
    return {"question": "q", "answer": f"${answer}$" if benchmark in ("gaokao2023en", "college_math") else answer}


# (completion, gold, benchmark, math-verify's verdict, qwen-math's verdict)
CATEGORIES = [
    # Agreements: the gold boxed as written, and a plainly wrong answer.
    pytest.param(r"so \boxed{\frac{1}{2}}.", r"\frac{1}{2}", "math500", True, True, id="gold-boxed"),
    pytest.param(r"so \boxed{3}.", "5", "math500", False, False, id="wrong"),
    # No braced box: both read an answer the text states (the library's evaluation policy, the harness's chain) ...
    pytest.param(r"Hence \boxed 321$.", "321", "aime24", True, True, id="unbraced-box"),
    pytest.param("The answer is $197$.", "197", "aime24", True, True, id="answer-is"),
    pytest.param("She pays 7 * 42 = 294 dollars.\n#### 294", "294", "gsm8k", True, True, id="gsm8k-####"),
    # ... but only the harness guesses from the last number of the text.
    pytest.param("We have 12 apples and 7 pears", "7", "gsm8k", False, True, id="last-number"),
    pytest.param("It is 3, or maybe 4, I stop here", "4", "aime24", False, True, id="last-number-truncated"),
    # A sentence's period inside the box: the harness drops it; math-verify could not parse it (fixed).
    pytest.param(r"so \boxed{809.}", "809", "aime24", True, True, id="period-in-box"),
    # Multiple choice, the letter with its option's text: the harness's choice cleaning; ours (fixed).
    pytest.param(r"\boxed{\text{(D) } 4(x+1)=4x}", "D", "gaokao2023en", True, True, id="choice-letter-text"),
    pytest.param(r"\boxed{\text{(B) } 4(x+1)=4x}", "D", "gaokao2023en", False, False, id="choice-wrong-letter"),
    # Scientific notation: the harness's pinned sympy misreads 1.24e-8; both graders give the correct verdict.
    pytest.param(r"\boxed{1.24 \times 10^{-8}}", "1.24e-8", "minerva_math", True, True, id="e-notation"),
    pytest.param(r"\boxed{1.24 \times 10^{-7}}", "1.24e-8", "minerva_math", False, False, id="e-notation-wrong"),
    # The harness's numeric quirks: gold x100 / gold /100, and a 1e-4 relative tolerance.
    pytest.param(r"\boxed{50}", "0.5", "college_math", False, True, id="gold-x100"),
    pytest.param(r"\boxed{0.5}", "50", "college_math", False, True, id="gold-over-100"),
    pytest.param(r"\boxed{3.1416}", "3.14159", "olympiadbench", False, True, id="rel-1e-4"),
    # Intervals: the harness ignores bracket types.
    pytest.param(r"\boxed{(0,1)}", "(0,1]", "college_math", False, True, id="interval-brackets"),
    # Where the harness's pinned sympy `parse_latex` misreads the input (it stops at a top-level comma), qwen-math
    # gives the correct verdict instead of reproducing the bug (qwen_math's docstring, difference 2).
    pytest.param(r"\boxed{1{,}200}", "1200", "gsm8k", True, True, id="thousands-separator"),
    pytest.param(r"\boxed{(1,\,2)}", "(1,2)", "olympiadbench", True, True, id="thin-space"),
    # Answers in another order (the harness reads `5,3` as the number 53), and an equation written the other way
    # round (the harness drops a short `y=` from the gold only).
    pytest.param(r"\boxed{5, 3}", "3, 5", "olympiadbench", True, False, id="unordered-list"),
    pytest.param(r"\boxed{2x+1=y}", "y=2x+1", "gaokao2023en", True, False, id="equation-reversed"),
    # The harness deletes standalone unit letters (a c d ... t) from both sides: College Math's gold
    # `6 a^{2}-44 a-32` becomes 6^{2}-44-32 = -40.
    pytest.param(r"\boxed{6a^2-44a-32}", "6 a^{2}-44 a-32", "college_math", True, False, id="unit-letters-same"),
    pytest.param(r"\boxed{-40}", "6 a^{2}-44 a-32", "college_math", False, True, id="unit-letters-deleted"),
]


@pytest.mark.parametrize(("completion", "gold", "benchmark", "math_verify", "qwen_math_verdict"), CATEGORIES)
def test_category_table(completion, gold, benchmark, math_verify, qwen_math_verdict):
    raw = record(benchmark, gold)
    row = {
        "idx": 0,
        "question": "q",
        "answer": BENCHMARKS[benchmark].ground_truth_of(raw),
        "qwen_math_answer": qwen_math.ground_truth(raw, benchmark),
    }
    (scored,) = score_rows([row], {0: [completion]}, benchmark)
    assert scored["verdicts"] == {"math-verify": [math_verify], "qwen-math": [qwen_math_verdict]}, scored


def test_the_training_reward_under_each_grader():
    completions = [
        r"so \boxed{809.}",  # right, boxed
        r"so \boxed{7}",  # wrong, boxed
        "The answer is 809.",  # right, not boxed: -1 under both (the paper's format penalty)
        r"\boxed{\frac{\frac{\frac{1}{2}}{1}}{1}}",  # 3 levels of braces: not "boxed" for simplelr_math's regex
        r"\boxed{50}",  # gold 0.5: right only for the harness (gold x100)
    ]
    solutions = ["809", "809", "809", "0.5", "0.5"]
    assert boxed_math_reward(completions, solution=solutions) == [1.0, -0.5, -1.0, 1.0, -0.5]
    assert boxed_math_reward(completions, solution=solutions, grader="qwen-math") == [1.0, -0.5, -1.0, -1.0, 1.0]
    with pytest.raises(ValueError, match="grader must be one of"):
        boxed_math_reward(completions, solution=solutions, grader="sympy")


def test_recipe_reward_grader_binds_the_reward():
    graded = load_reward_function("boxed_math_reward", "qwen-math")
    assert graded.__name__ == "boxed_math_reward"  # TRL names the logged reward after it
    assert graded([r"\boxed{50}"], solution=["0.5"]) == [1.0]
    assert load_reward_function("boxed_math_reward")([r"\boxed{50}"], solution=["0.5"]) == [-0.5]
    with pytest.raises(ValueError, match="reward_grader must be one of"):
        load_reward_function("boxed_math_reward", "exact")


def test_a_pathological_case_costs_at_most_the_cap():
    # sympy would expand this for minutes; the harness's 3 s cap ends it, and the next case is checked as usual.
    slow = (r"\left(x+1\right)^{40000}-\left(x+1\right)^{39999}", r"x\left(x+1\right)^{39999}+1")
    checker = AnswerChecker(workers=1)
    try:
        assert checker.check([("1", "1")], "qwen-math", case_seconds("qwen-math")) == [True]  # workers started
        started = time.monotonic()
        assert checker.check([slow, ("2", "2")], "qwen-math", case_seconds("qwen-math")) == [False, True]
        assert time.monotonic() - started < QWEN_MATH_TIMEOUT_SECONDS + 3
    finally:
        checker.close()


def test_scoring_1024_completions_is_cheap():
    completions = [rf"Reasoning. \boxed{{\frac{{{i}}}{{{i + 1}}}}}" for i in range(1024)]
    started = time.monotonic()
    for grader in ("math-verify", "qwen-math"):
        verdicts = check_answers([(qwen_math.extract_answer(c, "math"), r"\frac{1}{2}") for c in completions], grader)
        assert [i for i, v in enumerate(verdicts) if v] == [1]
    assert time.monotonic() - started < 60


def test_eval_score_writes_both_verdicts_per_row(tmp_path, benchmarks_dir, capsys):
    predictions = tmp_path / "pred.jsonl"
    rows = BENCHMARKS["gsm8k"].load_rows(benchmarks_dir)
    lines = [
        {"idx": rows[0]["idx"], "completions": [f"so \\boxed{{{rows[0]['answer']}}}", "no answer here"]},
        {"idx": rows[1]["idx"], "completions": [f"I count {rows[1]['answer']}"]},  # the harness's last number
    ]
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "score.json"
    arguments = ["eval", "score", "--benchmark", "gsm8k", "--predictions", str(predictions)]
    arguments += ["--data-dir", str(benchmarks_dir), "--output", str(output), "--grader", "qwen-math"]
    assert main(arguments) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(output.read_text())
    assert "rows" not in printed and {k: v for k, v in written.items() if k != "rows"} == printed
    assert printed["grader"] == "qwen-math" and printed["n"] == len(rows)
    first, second = written["rows"][:2]
    assert first["verdicts"] == {"math-verify": [True, False], "qwen-math": [True, False]}
    assert second["verdicts"] == {"math-verify": [False], "qwen-math": [True]}
    assert second["extracted"] == {"math-verify": [None], "qwen-math": [rows[1]["qwen_math_answer"]]}
    half_and_one = 100 * 1.5 / len(rows)
    assert printed["accuracy"] == pytest.approx(half_and_one)
    assert printed["graders"]["math-verify"]["accuracy"] == pytest.approx(100 * 0.5 / len(rows))


def test_the_comparison_page_scores_real_predictions(tmp_path, benchmarks_dir, monkeypatch):
    # scripts/compare_graders.py --report-only: what docs/graders.md is made from, on the stand-in files.
    predictions_dir = tmp_path / "predictions"
    predictions_dir.mkdir()
    (predictions_dir / "settings.json").write_text(json.dumps({"max_new_tokens": 8, "batch_size": 2}))
    rows = BENCHMARKS["math500"].load_rows(benchmarks_dir)
    rows = [rows[0], next(row for row in rows[1:] if row["qwen_math_answer"].isdigit())]  # a last number to find
    completions = [f"so \\boxed{{{rows[0]['answer']}}}", f"I think it is {rows[1]['qwen_math_answer']}"]
    lines = [{"idx": row["idx"], "completions": [text]} for row, text in zip(rows, completions)]
    (predictions_dir / "math500.predictions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = tmp_path / "graders.md"
    arguments = ["compare_graders.py", "--report-only", "--data-dir", str(benchmarks_dir)]
    monkeypatch.setattr(sys, "argv", arguments + ["--output-dir", str(predictions_dir), "--docs", str(page)])
    spec = importlib.util.spec_from_file_location("compare_graders", ROOT / "scripts" / "compare_graders.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main()  # in this process: the registry is pinned to the stand-ins here
    text = page.read_text()
    assert "| math500 | 2 | 50.0 | 100.0 | 1 |" in text  # the unboxed answer: only the harness's last number
    assert "no box, no stated answer: qwen-math takes the last number of the text" in text
    for name in BENCHMARKS:  # the gold tables cover every set
        assert text.count(f"| {name} | {len(BENCHMARKS[name].load_rows(benchmarks_dir))} |") == 2
