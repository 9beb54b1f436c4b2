r"""
The library's grader (`math-verify`): final-answer extraction and equivalence, shared by the training reward and the
evaluation harness.

The answer is the content of the LAST complete `\boxed{...}` (nested braces allowed). In evaluation only, a completion
without one is read for an answer it states (`evaluation_answer`): an unbraced `\boxed 5`, "the answer is 5",
GSM8K's `#### 5` — never a guess from its last number, which the paper's harness makes (`lambda_trl.qwen_math`).
Equivalence is decided by Hugging Face `math-verify` (fractions vs decimals, sets, intervals, symbolic forms,
`\text{}` and units, `\%`, `\dfrac`), after three rewrites math-verify lacks: a sentence's period inside the box
(`809.`), a multiple-choice letter written with its option's text (`\text{(D) } 4x`), and plain scientific notation.
`lambda_trl.graders` runs it in worker processes with a hard time cap per answer.
"""

import re
from decimal import Decimal

from .exact_size import exceeds_exact_size


TIMEOUT_SECONDS = 1
"""math-verify's own cap (signal-based, whole seconds) on parsing and on comparing one answer."""


def last_boxed_answer(text: str) -> str | None:
    r"""Content of the last complete `\boxed{...}` (or `\fbox{...}`) in `text`; None if there is none."""
    closing = _closing_braces(text)
    best = None
    for command in ("\\boxed", "\\fbox"):
        start = text.rfind(command + "{")
        while start != -1:
            open_brace = start + len(command)
            if open_brace in closing:
                if best is None or start > best[0]:
                    best = (start, text[open_brace + 1 : closing[open_brace]])
                break
            start = text.rfind(command + "{", 0, start)
    return None if best is None else best[1]


def _closing_braces(text: str) -> dict[int, int]:
    """The position of the `}` that closes each `{` that is closed, in one pass (not one scan per unclosed box)."""
    closing, opened = {}, []
    for position, char in enumerate(text):
        if char == "{":
            opened.append(position)
        elif char == "}" and opened:
            closing[opened.pop()] = position
    return closing


_STATED_ANSWER = re.compile(
    r"\\boxed\s+(?P<unbraced>[^\s$]+)"  # `\boxed 5$`: the brace-less form models write
    r"|answer is\s*:?\s*(?P<phrase>[^\n]*)"  # "the answer is $5$." / "The final answer is 5"
    r"|^####\s*(?P<gsm8k>[^\n]+)",  # GSM8K's own answer line
    re.IGNORECASE | re.MULTILINE,
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)")


def stated_answer(text: str) -> str | None:
    r"""The last answer `text` states without a braced box (`\boxed 5`, "the answer is 5", `#### 5`); None if none."""
    matches = list(_STATED_ANSWER.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    answer = match["unbraced"] or match["gsm8k"]
    if answer is None:
        answer = _SENTENCE_END.split(match["phrase"], maxsplit=1)[0]
    answer = answer.strip().strip("$").removeprefix("\\(").removesuffix("\\)").strip()
    return answer or None


def evaluation_answer(text: str) -> str | None:
    """The answer evaluation scores: the last complete box, else an answer the text states (`stated_answer`)."""
    boxed = last_boxed_answer(text)
    return boxed if boxed is not None else stated_answer(text)


def ground_truth_answer(solution: str) -> str:
    """The gold answer: the last boxed answer when the solution text has one, otherwise the text itself."""
    boxed = last_boxed_answer(solution)
    return (boxed if boxed is not None else solution).strip()


# `\d+(?:\.\d*)?` rather than `\d+\.?\d*`: the same numbers, without trying every split of a digit run.
_MANTISSA = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"
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


_CHOICE_LETTER = re.compile(r"\s*(?:\\text\{\s*)?\(?([A-E])\)?(?=$|[\s}.:,])")


def chosen_letter(answer: str) -> str | None:
    r"""The option letter an answer starts with (`D`, `(D)`, `\text{(D) } 4(x+1)=4x`); None otherwise."""
    match = _CHOICE_LETTER.match(answer)
    return match[1] if match else None


def without_sentence_period(answer: str) -> str:
    """`809.` as `809`: the sentence's full stop written inside the box, which math-verify cannot parse."""
    answer = answer.strip()
    return answer[:-1].rstrip() if answer.endswith(".") and not answer.endswith("..") else answer


def answers_match(prediction: str, ground_truth: str) -> bool:
    """Whether two final answers are mathematically equivalent; any failure or time-out counts as not equivalent."""
    from math_verify import parse, verify

    # Both sides: College Math's prose golds end their sentence too, and are then compared as text.
    prediction, ground_truth = without_sentence_period(prediction), without_sentence_period(ground_truth)
    if re.fullmatch(r"\s*\(?[A-E]\)?\s*", ground_truth):  # a multiple-choice gold: the letter decides
        return chosen_letter(prediction) == chosen_letter(ground_truth)
    numeric = scientific_numbers_match(prediction, ground_truth)
    if numeric is not None:
        return numeric
    try:
        gold = parse(f"\\boxed{{{latex_scientific_notation(ground_truth)}}}", parsing_timeout=TIMEOUT_SECONDS)
        target = parse(f"\\boxed{{{latex_scientific_notation(prediction)}}}", parsing_timeout=TIMEOUT_SECONDS)
        if not gold or not target:
            return prediction.strip() == ground_truth.strip()
        if exceeds_exact_size(gold[0]) or exceeds_exact_size(target[0]):
            return gold[0] == target[0]  # a tower of exponents: verify would only reach its time-out
        return bool(verify(gold, target, timeout_seconds=TIMEOUT_SECONDS))
    except Exception:
        return False
