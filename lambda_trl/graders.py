r"""
The two graders a completion can be scored by, and the time-capped worker pool both run in.

- `math-verify` (the default, the library's own; `lambda_trl.answers`): the last complete `\boxed{}` (in evaluation,
  else an answer the completion states), equivalence by Hugging Face math-verify.
- `qwen-math` (the paper's; `lambda_trl.qwen_math`): the Qwen2.5-Math evaluation harness's rules, which the λ-GRPO
  paper's Table 1 (https://huggingface.co/papers/2510.06870, §3) and SimpleRL-Zoo's reward were computed with: its
  per-benchmark extraction chain (down to the last number of the text), `strip_string`, `math_equal`, 3 s a case.

Cases are decided in `lambda_trl.grading_pool`'s worker processes, apart from the trainer, each under a time cap.
Evaluation scores every completion under both (`lambda_trl.eval.scoring`), so a result can be put next to the paper's
and next to the library's at once; `--grader` only picks which one a summary leads with.
"""

import atexit
import signal

from . import answers, qwen_math
from .grading_pool import AnswerChecker


MATH_VERIFY, QWEN_MATH = "math-verify", "qwen-math"
GRADERS = (MATH_VERIFY, QWEN_MATH)
DEFAULT_GRADER = MATH_VERIFY

QWEN_MATH_TIMEOUT_SECONDS = 3
"""The harness's cap on one (prediction, gold) comparison (its `evaluate.py` runs each in a pebble pool, 3 s)."""


def check_grader(grader: str, field: str = "grader") -> str:
    if grader not in GRADERS:
        raise ValueError(f"{field} must be one of {list(GRADERS)}, got {grader!r}.")
    return grader


def evaluation_answer(grader: str, text: str, benchmark: str) -> str | None:
    """The answer `grader` reads from a completion in evaluation; None (math-verify) or '' (qwen-math) if none."""
    if grader == QWEN_MATH:
        # The harness compares '' too: it equals a gold that normalises to '' (MATH500's `\text{east}` loses its
        # "unit" east), as in the paper's numbers.
        return qwen_math.evaluation_prediction(text, benchmark)
    return answers.evaluation_answer(text)


def gold_answer(grader: str, row: dict, benchmark: str) -> str:
    """The ground truth `grader` compares with: the harness derives its own (`qwen_math.ground_truth`) per benchmark."""
    if grader == QWEN_MATH:
        return row.get("qwen_math_answer") or qwen_math.strip_string(row["answer"])
    return row["answer"]


class _CaseTimeout(BaseException):
    """Not an Exception: the harness's rules catch those, and a time-out must end the case, not one step of it."""


def _raise_case_timeout(signum, frame):
    raise _CaseTimeout


def _qwen_math_equal(prediction: str, gold: str) -> bool:
    # Workers run cases in their main thread, so a timer signal can interrupt sympy wherever it is in Python code.
    previous = signal.signal(signal.SIGALRM, _raise_case_timeout)
    signal.setitimer(signal.ITIMER_REAL, QWEN_MATH_TIMEOUT_SECONDS)
    try:
        return qwen_math.math_equal(prediction, gold)
    except _CaseTimeout:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_EQUIVALENCE = {MATH_VERIFY: answers.answers_match, QWEN_MATH: _qwen_math_equal}


def verdict(grader: str, prediction: str, gold: str) -> bool:
    """Whether `grader` counts `prediction` equal to `gold`, under its own time cap; never raising."""
    try:
        return bool(_EQUIVALENCE[grader](prediction, gold))
    except Exception:  # MemoryError at the worker's memory cap included
        return False


def case_seconds(grader: str) -> float:
    """The most one case may take: math-verify caps parsing each side and the comparison at TIMEOUT_SECONDS each."""
    return QWEN_MATH_TIMEOUT_SECONDS + 1 if grader == QWEN_MATH else 3 * answers.TIMEOUT_SECONDS


def import_graders():
    """Imports what the graders need up front, so that no case pays for it inside its time cap."""
    import latex2sympy2_extended  # noqa: F401
    import math_verify  # noqa: F401
    import sympy  # noqa: F401

    qwen_math.math_equal("1", "x")
    answers.answers_match("1", "x")


_default_checker: AnswerChecker | None = None


def check_answers(pairs: list[tuple[str, str]], grader: str = DEFAULT_GRADER) -> list[bool]:
    """Equivalence of each (prediction, ground truth) pair under `grader`, in worker processes, each case capped."""
    global _default_checker
    check_grader(grader)
    if _default_checker is None:
        _default_checker = AnswerChecker()
        atexit.register(_default_checker.close)
    return _default_checker.check(pairs, grader, case_seconds(grader))
