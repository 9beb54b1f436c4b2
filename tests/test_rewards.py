import time

import pytest

from lambda_trl.answers import (
    answers_match,
    ground_truth_answer,
    last_boxed_answer,
    latex_scientific_notation,
)
from lambda_trl.graders import AnswerChecker
from lambda_trl.rewards import boxed_format_reward, boxed_math_reward


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{42}.", "42"),
        (r"\boxed{1} then \boxed{2}", "2"),
        (r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{1}{\sqrt{2}}"),
        (r"\boxed{{a}^{b_{c}}}", r"{a}^{b_{c}}"),
        (r"\boxed{3} and an unfinished \boxed{4", "3"),
        (r"\fbox{7}", "7"),
        (r"\boxed{}", ""),
        ("no box here", None),
        (r"\boxed{5", None),
    ],
)
def test_last_boxed_answer(text, expected):
    assert last_boxed_answer(text) == expected


def test_ground_truth_answer_takes_the_solutions_last_box():
    assert ground_truth_answer(r"Thus $x = \boxed{\frac{3}{4}}$.") == r"\frac{3}{4}"
    assert ground_truth_answer(" 27 ") == "27"


@pytest.mark.parametrize(
    ("prediction", "truth"),
    [
        (r"\frac{1}{2}", "0.5"),
        (r"\dfrac{3}{4}", r"\frac34"),
        (r"50\%", "0.5"),
        (r"\{2, 1\}", r"\{1,2\}"),
        (r"(1, 2]", "(1,2]"),
        (r"(x+1)^2", "x^2+2x+1"),
        (r"10\text{ cm}", "10"),
        (r"\sqrt{8}", r"2\sqrt{2}"),
        ("27", "27.0"),
        # Minerva Math writes 58 of its 272 gold answers in e-notation.
        (r"4.5 \times 10^{33}", "4.5e33"),
        (r"2.7778\cdot10^{-6}", "2.7778e-6"),
        ("4.5e33", r"4.5\times10^{33}"),
        ("0.000012", "1.2e-5"),
        (r"38\times 10^{27}", "3.8e28"),
        ("2.88e-19", r"2.88 \times 10^{-19}"),
    ],
)
def test_equivalent_forms_are_correct(prediction, truth):
    assert boxed_math_reward([rf"The answer is \boxed{{{prediction}}}."], solution=[truth]) == [1.0]


@pytest.mark.parametrize(
    ("prediction", "truth"),
    [
        (r"4.5 \times 10^{32}", "4.5e33"),
        ("4.6e33", r"4.5\times 10^{33}"),
        ("4.5", "4.5e33"),
        ("33", "4.5e33"),
        # math-verify alone compares on an absolute scale and would call these equal
        ("2.9e-19", "2.88e-19"),
        (r"2.9\times10^{-19}", "2.88e-19"),
        ("0", "2.88e-19"),
        ("0.0000029", "2.7778e-6"),
    ],
)
def test_scientific_notation_near_misses_are_wrong(prediction, truth):
    assert boxed_math_reward([rf"The answer is \boxed{{{prediction}}}."], solution=[truth]) == [-0.5]  # boxed, wrong


@pytest.mark.parametrize(
    ("answer", "latex"),
    [
        ("4.5e33", "4.5\\times 10^{33}"),
        ("-1.5e-3", "-1.5\\times 10^{-3}"),
        ("1e+05", "1\\times 10^{5}"),
        (".5e3", "0.5\\times 10^{3}"),
        ("+4.e2", "4\\times 10^{2}"),
    ],
)
def test_scientific_notation_becomes_latex_math_verify_reads(answer, latex):
    assert latex_scientific_notation(answer) == latex


@pytest.mark.parametrize("answer", ["2e", "e^{3}", "3e^2", "4.5e33 m", "x e 3", "10^{5}", "1e" + "9" * 5000])
def test_only_plain_scientific_notation_is_rewritten(answer):
    assert latex_scientific_notation(answer) == answer


def test_reward_levels():
    completions = [
        r"\boxed{4}",  # correct
        r"\boxed{5}",  # boxed, wrong
        "the answer is 4",  # correct but unboxed: -1, as in the paper's reward
        r"\boxed{4",  # incomplete box
        r"first \boxed{4}, finally \boxed{5}",  # the last box counts
        r"first \boxed{5}, finally \boxed{4}",
    ]
    assert boxed_math_reward(completions, solution=["4"] * 6) == [1.0, -0.5, -1.0, -1.0, -0.5, 1.0]


def test_conversational_completions():
    completions = [
        [{"role": "assistant", "content": r"So \boxed{\frac{2}{3}}"}],
        [{"role": "assistant", "content": "?"}],
    ]
    assert boxed_math_reward(completions, solution=[r"\frac{2}{3}", "1"]) == [1.0, -1.0]
    assert boxed_format_reward(completions) == [1.0, 0.0]


def test_pathological_answers_neither_raise_nor_hang():
    completions = [r"\boxed{10^{10^{10^{10}}}}", r"\boxed{\frac{}{}}", r"\boxed{}", r"\boxed{\left(}", "\\boxed{\x00}"]
    started = time.monotonic()
    rewards = boxed_math_reward(completions, solution=["1"] * len(completions))
    assert rewards == [-0.5] * len(completions)
    assert time.monotonic() - started < 10  # includes starting the worker processes


def test_a_large_batch_is_scored_correctly():
    completions = [rf"\boxed{{{i}}}" for i in range(256)]
    solutions = [str(i) if i % 3 else str(i + 1) for i in range(256)]
    assert boxed_math_reward(completions, solution=solutions) == [1.0 if i % 3 else -0.5 for i in range(256)]


def test_a_case_past_its_deadline_kills_its_worker_and_the_rest_are_checked():
    checker = AnswerChecker(workers=1, slack_seconds=0.0)
    try:
        assert checker.check([("1", "1")], "math-verify", 1.0) == [True]  # the worker started
        (first,) = checker._idle
        started = time.monotonic()
        # A deadline this comparison cannot meet (it takes math-verify's 1 s time-out): its worker is killed, a new
        # one checks the next case.
        slow = (r"2^{10^{6}}", r"2^{1000000}")
        assert checker.check([slow, ("2", "2")], "math-verify", 0.05) == [False, True]
        assert time.monotonic() - started < 10  # the replacement's start-up included
        assert first.process.poll() is not None
        assert checker.check([("3", "3")], "math-verify", 1.0) == [True]
    finally:
        checker.close()


def test_answers_match_in_process():
    assert answers_match("0.25", r"\frac{1}{4}")
    assert not answers_match("0.26", r"\frac{1}{4}")


@pytest.mark.parametrize("solution", [None, [None], [""]])
def test_missing_ground_truth_is_a_clear_error(solution):
    with pytest.raises(ValueError, match="solution"):
        boxed_math_reward([r"\boxed{1}"], solution=solution)
