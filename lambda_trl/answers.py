r"""
Final-answer extraction and equivalence: one checker shared by the training reward and the evaluation harness.

The answer is the content of the LAST complete `\boxed{...}` (nested braces allowed). Equivalence is decided by
Hugging Face `math-verify` (fractions vs decimals, sets, intervals, symbolic forms, `\text{}` and units, `\%`,
`\dfrac`), run in a pool of worker processes with a hard time cap per answer, so a pathological answer such as
`\boxed{10^{10^{10^{10}}}}` costs about a second and never stalls a training step.
"""

import math
import multiprocessing
import os
import re
import time
from decimal import Decimal
from multiprocessing.pool import Pool


TIMEOUT_SECONDS = 1
"""math-verify's own cap (signal-based, whole seconds) on parsing and on comparing one answer."""


def last_boxed_answer(text: str) -> str | None:
    r"""Content of the last complete `\boxed{...}` (or `\fbox{...}`) in `text`; None if there is none."""
    best = None
    for command in ("\\boxed", "\\fbox"):
        start = text.rfind(command + "{")
        while start != -1:
            content = _balanced_content(text, start + len(command))
            if content is not None:
                if best is None or start > best[0]:
                    best = (start, content)
                break
            start = text.rfind(command + "{", 0, start)
    return None if best is None else best[1]


def _balanced_content(text: str, open_brace: int) -> str | None:
    depth = 0
    for position in range(open_brace, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return text[open_brace + 1 : position]
    return None


def ground_truth_answer(solution: str) -> str:
    """The gold answer: the last boxed answer when the solution text has one, otherwise the text itself."""
    boxed = last_boxed_answer(solution)
    return (boxed if boxed is not None else solution).strip()


_MANTISSA = r"([-+]?(?:\d+\.?\d*|\.\d+))"
SCIENTIFIC_NOTATION = re.compile(rf"\s*{_MANTISSA}[eE]([-+]?\d{{1,4}})\s*")
PLAIN_NUMBER = re.compile(
    rf"\s*{_MANTISSA}(?:[eE]([-+]?\d{{1,4}})|\s*\\(?:times|cdot)\s*10\^(?:\{{([-+]?\d{{1,4}})\}}|(\d)))?\s*"
)
RELATIVE_TOLERANCE = Decimal("1e-9")


def latex_scientific_notation(answer: str) -> str:
    r"""
    `4.5e33` as `4.5\times 10^{33}`; anything else unchanged. math-verify reads `4.5e33` as a number equal only to
    itself written the same way, so a gold answer in that form (58 of Minerva Math's 272) would mark the LaTeX form
    a model writes wrong.
    """
    match = SCIENTIFIC_NOTATION.fullmatch(answer)
    return f"{Decimal(match[1])}\\times 10^{{{int(match[2])}}}" if match else answer


def scientific_numbers_match(prediction: str, ground_truth: str) -> bool | None:
    r"""
    Whether two plain numbers, at least one in scientific notation (`2.88e-19`, `2.88 \times 10^{-19}`), are equal
    to a relative 1e-9; None when either is something else. math-verify compares numbers on an absolute scale (to
    6 decimals, or sympy's chop), which would equate `2.9e-19` with `2.88e-19` (23 of Minerva's gold answers are
    below 1e-6).
    """
    numbers = []
    for answer in (prediction, ground_truth):
        match = PLAIN_NUMBER.fullmatch(answer)
        if match is None:
            return None
        exponent = next((e for e in match.groups()[1:] if e is not None), None)
        numbers.append((Decimal(match[1]).scaleb(int(exponent or 0)), exponent is not None))
    (a, a_scientific), (b, b_scientific) = numbers
    if not (a_scientific or b_scientific):
        return None
    return abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def answers_match(prediction: str, ground_truth: str) -> bool:
    """Whether two final answers are mathematically equivalent; any failure or time-out counts as not equivalent."""
    from math_verify import parse, verify

    numeric = scientific_numbers_match(prediction, ground_truth)
    if numeric is not None:
        return numeric
    try:
        gold = parse(f"\\boxed{{{latex_scientific_notation(ground_truth)}}}", parsing_timeout=TIMEOUT_SECONDS)
        target = parse(f"\\boxed{{{latex_scientific_notation(prediction)}}}", parsing_timeout=TIMEOUT_SECONDS)
        if not gold or not target:
            return prediction.strip() == ground_truth.strip()
        return bool(verify(gold, target, timeout_seconds=TIMEOUT_SECONDS))
    except Exception:
        return False


def _answers_match_pair(pair: tuple[str, str]) -> bool:
    return answers_match(*pair)


class AnswerChecker:
    """
    Checks many (prediction, ground truth) pairs in parallel worker processes.

    Workers are forked once and reused; they only run math-verify (pure Python), never torch or CUDA, and math-verify
    is imported before forking so no worker needs the import lock. (`spawn` would re-run the user's unguarded
    training script in every worker.) Each answer is capped by math-verify's timeouts inside the worker; as a second
    line of defence a batch has an overall deadline, after which unfinished answers count as wrong and the pool is
    killed and rebuilt.
    """

    def __init__(self, workers: int | None = None, start_up_seconds: float = 60.0, slack_seconds: float = 5.0):
        self.workers = workers or int(os.environ.get("LAMBDA_TRL_ANSWER_WORKERS", min(32, os.cpu_count() or 1)))
        self.start_up_seconds = start_up_seconds
        self.slack_seconds = slack_seconds
        self._pool: Pool | None = None

    def _get_pool(self) -> Pool:
        if self._pool is None:
            import math_verify  # noqa: F401

            methods = multiprocessing.get_all_start_methods()
            self._pool = multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(self.workers)
        return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def check(self, pairs: list[tuple[str, str]]) -> list[bool]:
        if not pairs:
            return []
        starting = self._pool is None
        pool = self._get_pool()
        pending = [pool.apply_async(_answers_match_pair, (pair,)) for pair in pairs]
        # Parse + compare, for each round of `workers` answers, plus the workers' start-up on first use.
        rounds = math.ceil(len(pairs) / self.workers)
        budget = 3 * TIMEOUT_SECONDS * rounds + (self.start_up_seconds if starting else self.slack_seconds)
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


def check_answers(pairs: list[tuple[str, str]]) -> list[bool]:
    """Equivalence of each (prediction, ground truth) pair, in parallel, with a hard time cap."""
    global _default_checker
    if _default_checker is None:
        _default_checker = AnswerChecker()
    return _default_checker.check(pairs)
