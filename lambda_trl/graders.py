r"""
The two graders a completion can be scored by, and the time-capped worker pool both run in.

- `math-verify` (the default, the library's own; `lambda_trl.answers`): the last complete `\boxed{}` (in evaluation,
  else an answer the completion states), equivalence by Hugging Face math-verify.
- `qwen-math` (the paper's; `lambda_trl.qwen_math`): the Qwen2.5-Math evaluation harness's rules, which the λ-GRPO
  paper's Table 1 (https://huggingface.co/papers/2510.06870, §3) and SimpleRL-Zoo's reward were computed with: its
  per-benchmark extraction chain (down to the last number of the text), `strip_string`, `math_equal`, 3 s a case.

Evaluation scores every completion under both (`lambda_trl.eval.scoring`), so a result can be put next to the paper's
and next to the library's at once; `--grader` only picks which one a summary leads with.
"""

import atexit
import math
import multiprocessing
import os
import signal
import time
from multiprocessing.pool import Pool

from . import answers, qwen_math


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


def _qwen_math_equal(pair: tuple[str, str]) -> bool:
    # Pool workers run tasks in their main thread, so a timer signal can interrupt sympy wherever it is.
    previous = signal.signal(signal.SIGALRM, _raise_case_timeout)
    signal.setitimer(signal.ITIMER_REAL, QWEN_MATH_TIMEOUT_SECONDS)
    try:
        return qwen_math.math_equal(*pair)
    except _CaseTimeout:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _math_verify_equal(pair: tuple[str, str]) -> bool:
    return answers.answers_match(*pair)


_EQUIVALENCE = {MATH_VERIFY: _math_verify_equal, QWEN_MATH: _qwen_math_equal}


def _case_seconds(grader: str) -> float:
    # math-verify caps parsing each side and the comparison at TIMEOUT_SECONDS each.
    return QWEN_MATH_TIMEOUT_SECONDS + 1 if grader == QWEN_MATH else 3 * answers.TIMEOUT_SECONDS


class AnswerChecker:
    """
    Checks many (prediction, ground truth) pairs under a grader, in parallel worker processes.

    Workers are forked once and reused; they only run the graders (pure Python: math-verify, sympy), never torch or
    CUDA, and both are imported before forking so no worker needs the import lock. (`spawn` would re-run the user's
    unguarded training script in every worker.) Each answer is capped inside the worker (math-verify's own timeouts;
    the harness's 3 s for qwen-math); as a second line of defence a batch has an overall deadline, after which
    unfinished answers count as wrong and the pool is killed and rebuilt.
    """

    def __init__(self, workers: int | None = None, start_up_seconds: float = 60.0, slack_seconds: float = 5.0):
        self.workers = workers or int(os.environ.get("LAMBDA_TRL_ANSWER_WORKERS", min(32, os.cpu_count() or 1)))
        self.start_up_seconds = start_up_seconds
        self.slack_seconds = slack_seconds
        self._pool: Pool | None = None

    def _get_pool(self) -> Pool:
        if self._pool is None:
            import latex2sympy2_extended  # noqa: F401
            import math_verify  # noqa: F401
            import sympy  # noqa: F401

            methods = multiprocessing.get_all_start_methods()
            self._pool = multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(self.workers)
        return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def check(self, pairs: list[tuple[str, str]], grader: str = DEFAULT_GRADER) -> list[bool]:
        if not pairs:
            return []
        starting = self._pool is None
        pool = self._get_pool()
        pending = [pool.apply_async(_EQUIVALENCE[grader], (pair,)) for pair in pairs]
        rounds = math.ceil(len(pairs) / self.workers)
        budget = _case_seconds(grader) * rounds + (self.start_up_seconds if starting else self.slack_seconds)
        deadline = time.monotonic() + budget
        results, timed_out = [], False
        for result in pending:
            try:
                results.append(bool(result.get(timeout=max(0.0, deadline - time.monotonic()))))
            except multiprocessing.TimeoutError:
                results.append(False)
                timed_out = True
            except Exception:
                results.append(False)
        if timed_out:
            self.close()
        return results


_default_checker: AnswerChecker | None = None


def check_answers(pairs: list[tuple[str, str]], grader: str = DEFAULT_GRADER) -> list[bool]:
    """Equivalence of each (prediction, ground truth) pair under `grader`, in parallel, with a hard time cap."""
    global _default_checker
    if _default_checker is None:
        _default_checker = AnswerChecker()
        # Closed before interpreter teardown: a pool left to its __del__ then may print a traceback at exit.
        atexit.register(_default_checker.close)
    return _default_checker.check(pairs, grader)
