r"""
The Qwen2.5-Math evaluation grader, re-implemented as pure functions: answer extraction, `strip_string`
normalisation, per-benchmark ground truth, and `math_equal` equivalence.

The original is the harness in QwenLM/Qwen2.5-Math `evaluation/` (`parser.py`, `grader.py`), which SimpleRL-Zoo copies
as `examples/simplelr_math_eval/`. The λ-GRPO paper (https://huggingface.co/papers/2510.06870 §3) scores Table 1 with
it, and trains with SimpleRL's `simplelr_math.py` reward built on the same `extract_answer`/`math_equal`. This module
was written from the documented behaviour (`shared/specs/math-rl-setup.md` §1.3 and §2) and checked against the
harness; no harness code is reused. The harness's quirks are kept on purpose (gold×100 and gold/100 accepted,
relative tolerance 1e-4, bracket types ignored, deletion of standalone unit letters such as `a` or `m`, ...).

Deliberate differences from the harness:
1. Plain e-notation. The harness's sympy 1.12 `parse_latex` reads `1.24e-8` as 1.24·e − 8, so a Minerva gold
   `1.24e-8` never equals `1.24 \times 10^{-8}`. Here a string that `float()` accepts (commas removed) is that number.
2. Parsers. The harness tries sympy `parse_latex`, then `parse_expr`, then latex2sympy2. Here: plain number, then
   latex2sympy2_extended, then `lambda_trl.python_expressions` in place of `parse_expr` (each on
   `s.replace("\\\\", "\\")`, then `s`). Known verdict changes:
   - sympy 1.12 `parse_latex` stops at a top-level comma (`1{,}200` -> 1, `\frac12,3` -> 1/2), so the harness
     rejects `1{,}200` vs `1200` and accepts a list whose first element matches; here `1{,}200` is 1200 and a
     list never equals its first element (a plain `5,3` is the number 53 under both, as the harness's digit rule
     removes commas);
   - `(1,\,2)` vs `(1,2)`: both are read as the interval (1, 2) here (equal); the harness parses neither (unequal);
   - latex2sympy2_extended reads `2\frac{1}{2}` as 5/2, `parse_latex` as 2·(1/2).
3. No code execution or tool paths (SimpleRL disabled them), and no multiple-choice extraction path for
   mmlu_stem/sat_math/aqua/gaokao2023: every benchmark name is extracted like `math`.
4. Number words: a string that is purely an English number phrase (`five`, `twenty-one`, `one hundred and five`) is
   converted; word2number would also pull number words out of other text (`one solution` -> 1).
5. Safety: where the harness calls sympy's `parse_expr` (Python `eval` over all of sympy, which a completion or a
   gold answer can turn into any code), `lambda_trl.python_expressions` reads the same Python-syntax math without
   evaluating anything; and text no parser understood is never handed to sympy (whose `sympify` would `eval` it).
6. Towers of exponents: a case holding a power of more than 2^30 bits (`10^{10^{10}}`) is decided at once, equal
   only when the two parse identically (`lambda_trl.exact_size`); the harness reaches the same verdict at its 3 s cap.
7. `math_equal` never raises: any exception gives False (SimpleRL's reward treats exceptions the same way).
"""

import math
import re
from functools import cache, lru_cache

from .exact_size import exceeds_exact_size
from .python_expressions import parse_python_expression


BENCHMARKS_SKIPPING_UNITS = frozenset({"minerva_math", "carp_en"})
"""Benchmarks whose answers keep their unit words (their units are part of the answer, e.g. Minerva's physics)."""

_BENCHMARKS_WITH_BOXED_SOLUTIONS = frozenset({"math", "math500", "minerva_math"})
_BENCHMARKS_WITH_DOLLAR_ANSWERS = frozenset({"gaokao2023en", "college_math"})

# ---------------------------------------------------------------------------------------------------------------
# Extraction (§2.1)


def extract_answer(text: str, benchmark: str) -> str:
    r"""The harness's answer for one completion, normalised with `strip_string`; '' when nothing is found."""
    text = text.replace("ки", "")  # a step marker of Qwen's process-reward data
    answer = _raw_answer(text)
    answer = re.sub(r"\n\s*", "", answer)
    if answer.startswith(":"):
        answer = answer[1:]
    if answer.endswith("."):
        answer = answer[:-1]
    if answer.endswith("/"):
        answer = answer[:-1]
    return strip_string(answer, skip_unit=benchmark in BENCHMARKS_SKIPPING_UNITS)


def evaluation_prediction(text: str, benchmark: str) -> str:
    """What the harness scores: its `run_execute` applies `strip_string` once more to `extract_answer`'s result."""
    return strip_string(extract_answer(text, benchmark), skip_unit=benchmark in BENCHMARKS_SKIPPING_UNITS)


def _raw_answer(text: str) -> str:
    if "final answer is $" in text and "$. I hope" in text:  # the Minerva few-shot format
        return text.partition("final answer is $")[2].partition("$. I hope")[0].strip()
    if "boxed" in text:  # a bare substring test: `\fbox` does not count, any later word containing "boxed" does
        return _after_last_boxed(text)
    for phrase in ("he answer is", "final answer is"):
        if phrase in text:
            return text.rpartition(phrase)[2].strip()
    if "答案是" in text:
        return text.split("答案是")[1].strip().split("\n\n")[0].strip()
    numbers = re.findall(r"-?\d*\.?\d+", text.replace(",", ""))
    return numbers[-1] if numbers else ""


def _after_last_boxed(text: str) -> str:
    tail = text.rpartition("boxed")[2]
    if not tail.startswith("{"):
        return tail.split("$")[0].strip()  # `\boxed 5$`
    depth = 0
    for position, char in enumerate(tail):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return tail[1:position]
    return tail[1:]  # an unclosed box keeps everything after its brace


def is_boxed(text: str) -> bool:
    """SimpleRL `simplelr_math.py`'s format check: its regex only sees boxes with at most 2 levels of inner braces."""
    return re.search(r"\\boxed\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}", text) is not None


# ---------------------------------------------------------------------------------------------------------------
# Normalisation (§2.2)

# The harness's unit list (mostly from MathQA), in its order and with its duplicates: each entry is used as a regex
# fragment, so the `.` in entries such as "q ." matches any character. The plural of every entry follows.
_UNIT_WORDS = (
    "east|degree|mph|kmph|ft|m sqaure| m east|sq m|deg|mile|q .|monkey|prime|ratio|profit of rs|rd|o|gm|p . m|lb|"
    "tile|per|dm|lt|gain|ab|way|west|a .|b .|c .|d .|e .|f .|g .|h .|t|a|h|no change|men|soldier|pie|bc|excess|st|"
    "inches|noon|percent|by|gal|kmh|c|acre|rise|a . m|th|π r 2|sq|mark|l|toy|coin|sq . m|gallon|° f|profit|minw|yr|"
    "women|feet|am|pm|hr|cu cm|square|v â € ™|are|rupee|rounds|cubic|cc|mtr|s|ohm|number|kmph|day|hour|minute|min|"
    "second|man|woman|sec|cube|mt|sq inch|mp|∏ cm ³|hectare|more|sec|unit|cu . m|cm 2|rs .|rs|kg|g|month|km|m|cm|mm|"
    "apple|liter|loss|yard|pure|year|increase|decrease|d|less|Surface|litre|pi sq m|s .|metre|meter|inch"
).split("|")
_UNIT_PATTERNS = [
    (unit, re.compile(r"(^|\W)" + unit + r"($|\W)")) for unit in _UNIT_WORDS + [u + "s" for u in _UNIT_WORDS]
]


def strip_string(text: str, skip_unit: bool = False) -> str:
    """The harness's `strip_string`: every step, in its order (the order matters, e.g. units go before `\\text{}`)."""
    s = str(text).strip().replace("\n", "").rstrip(".").replace("\\!", "")
    s = _replace_braced(s, "\\begin{array}{", lambda content: "\\begin{pmatrix}")
    s = s.replace("\\end{array}", "\\end{pmatrix}").replace("bmatrix", "pmatrix")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\{", "{").replace("\\}", "}")
    without_text_suffix = _without_text_suffix(s).strip()  # a trailing `\text{ cm}` is taken as a unit
    if without_text_suffix:
        s = without_text_suffix
    if not skip_unit:
        s = _delete_unit_words(s)
    for token in ("^{\\circ}", "^\\circ", "\\$", "$", "\\(", "\\)"):
        s = s.replace(token, "")
    s = _number_words_to_digits(s)
    s = _replace_braced(s, "\\text{", lambda content: content)
    for variable_prefix in ("x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to"):
        s = s.replace(variable_prefix, "")
    s = s.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    # (The harness's unwrapping of `{x}` when the whole string is alphanumeric can never fire: omitted.)
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("+\\inity", "\\infty")
    s = s.replace("and", "").replace("\\mathbf", "")  # every "and", also inside words
    s = _replace_braced(s, "\\mbox{", lambda content: "")
    if "j" in s and "i" not in s:  # an engineer's imaginary unit
        s = s.replace("j", "i")
    s = _TRAILING_ZEROS_INSIDE.sub(r"\1\2", s)
    s = _TRAILING_ZEROS_AT_END.sub(r"\1", s)
    if not s:
        return s
    if s.startswith("."):
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "k = 5" -> "5"
        s = sides[1]
    s = re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", s).replace(" ", "")
    return _slash_to_frac(_brace_frac_arguments(s))


# The harness's `(\d+)\.0*([^\d])` and `(\d+)\.0*$`, which retry every digit of a run as a start (quadratic in
# its length): a match starting inside a run implies one starting at its first digit, which is tried first, so
# starting only there changes no result.
_TRAILING_ZEROS_INSIDE = re.compile(r"(?<!\d)(\d+)\.0*([^\d])")
_TRAILING_ZEROS_AT_END = re.compile(r"(?<!\d)(\d+)\.0*$")
_WORD = re.compile(r"\w+")


def _delete_unit_words(s: str) -> str:
    # 532 patterns, twice: each is only run where it can match. A unit of word characters matches `(^|\W)unit($|\W)`
    # exactly when it is one of the text's words; any other unit needs each of its literal pieces in the text.
    words = set(_WORD.findall(s))
    for _ in range(2):
        for unit, pattern in _UNIT_PATTERNS:
            if not (unit in words if _WORD.fullmatch(unit) else all(piece in s for piece in unit.split("."))):
                continue
            without_unit = pattern.sub(r"\1\2", s)
            if without_unit and without_unit != s:  # a deletion that would empty the answer is skipped
                s = without_unit
                words = set(_WORD.findall(s))
    return s


def _replace_braced(s: str, opener: str, replacement) -> str:
    r"""
    `re.sub(opener + r"(.*?)\}", replacement, s)` in one pass: the regex rescans to the end for every unclosed opener.
    (Equal on text without newlines, which `strip_string` removes first.)
    """
    pieces, position = [], 0
    while (start := s.find(opener, position)) != -1:
        end = s.find("}", start + len(opener))
        if end == -1:  # no `}` after this opener, so none after any later one either
            break
        pieces += [s[position:start], replacement(s[start + len(opener) : end])]
        position = end + 1
    return "".join(pieces) + s[position:]


def _without_text_suffix(s: str) -> str:
    r"""`re.sub(r"\\text\{.*?\}$", "", s)`: from the first `\text{` to the end, when the text ends with `}`."""
    start = s.find("\\text{")
    return s[:start] if start != -1 and s.endswith("}") and len(s) > start + len("\\text{") else s


def _brace_frac_arguments(s: str) -> str:
    r"""`\frac12` -> `\frac{1}{2}`, `\frac1{7}` -> `\frac{1}{7}`; a `\frac` with under 2 characters after it aborts."""
    head, *pieces = s.split("\\frac")
    fixed = [head]
    for piece in pieces:
        if piece.startswith("{"):
            fixed.append(piece)
        elif len(piece) < 2:
            return s
        elif piece[1] == "{":
            fixed.append("{" + piece[0] + "}" + piece[1:])
        else:
            fixed.append("{" + piece[0] + "}{" + piece[1] + "}" + piece[2:])
    return "\\frac".join(fixed)


def _slash_to_frac(s: str) -> str:
    """`3/4` -> `\\frac{3}{4}` when both sides are integers written canonically (or contain `sqrt`)."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        numerator, denominator = (part if "sqrt" in part else str(int(part)) for part in parts)
    except ValueError:
        return s
    if f"{numerator}/{denominator}" != s:
        return s
    return "\\frac{" + numerator + "}{" + denominator + "}"


_SMALL_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen"
).split()
_TENS_WORDS = {
    word: 10 * (i + 2) for i, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_NUMBER_WORD_VALUES = {word: value for value, word in enumerate(_SMALL_NUMBER_WORDS)} | _TENS_WORDS
_DIGIT_WORDS = _SMALL_NUMBER_WORDS[:10]
_SCALE_WORDS = {"thousand": 10**3, "million": 10**6, "billion": 10**9}


def _number_words_to_digits(s: str) -> str:
    """`five` -> `5`, `Twenty-one` -> `21`; like word2number, a string of digits loses its leading zeros."""
    phrase = s.replace("-", " ").lower()
    if phrase.isdigit():
        try:
            return str(int(phrase))
        except ValueError:  # e.g. superscript digits, which isdigit() accepts
            return s
    words = [word for word in phrase.split() if word != "and"]
    integer_words, point, decimal_words = _partition_list(words, "point")
    if not integer_words or (point and not decimal_words):
        return s
    total, group = 0, 0
    for word in integer_words:
        if word in _NUMBER_WORD_VALUES:
            group += _NUMBER_WORD_VALUES[word]
        elif word == "hundred":
            group = (group or 1) * 100
        elif word in _SCALE_WORDS:
            total, group = total + (group or 1) * _SCALE_WORDS[word], 0
        else:
            return s  # not purely a number phrase
    if not point:
        return str(total + group)
    if any(word not in _DIGIT_WORDS for word in decimal_words):
        return s
    return str(total + group + float("0." + "".join(str(_DIGIT_WORDS.index(word)) for word in decimal_words)))


def _partition_list(words: list[str], separator: str) -> tuple[list[str], bool, list[str]]:
    if separator not in words:
        return words, False, []
    at = words.index(separator)
    return words[:at], True, words[at + 1 :]


# ---------------------------------------------------------------------------------------------------------------
# Ground truth (§2.4)


def ground_truth(record: dict, benchmark: str) -> str:
    """The harness's gold answer for one row of a benchmark's `test.jsonl`, normalised as the harness does."""
    if benchmark in _BENCHMARKS_WITH_BOXED_SOLUTIONS:
        answer = extract_answer(record["solution"], benchmark)
        if benchmark == "minerva_math":  # units kept and no second normalisation, only the relation rewrite
            return answer.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    elif benchmark == "gsm8k":
        answer = record["answer"].split("####")[-1]
    elif benchmark in _BENCHMARKS_WITH_DOLLAR_ANSWERS:
        answer = record["answer"].replace("$", "").strip()
    elif benchmark == "olympiadbench":
        answer = record["final_answer"][0].strip("$")
    else:  # aime24, amc23 (a float such as 27.0), and any other benchmark
        answer = record["answer"]
    return strip_string(answer, skip_unit=benchmark in BENCHMARKS_SKIPPING_UNITS)


# ---------------------------------------------------------------------------------------------------------------
# Equivalence (§2.3)


def choice_answer_clean(prediction: str) -> str:
    """The last standalone letter A-E in the prediction (uppercased), or the trimmed prediction if it has none."""
    prediction = prediction.strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    letters = re.findall(r"\b(A|B|C|D|E)\b", prediction.upper())
    chosen = letters[-1] if letters else prediction.strip().strip(".")
    return chosen.rstrip(".").rstrip("/")


def math_equal(prediction: str, reference: str) -> bool:
    """Whether the harness counts `prediction` as equal to `reference` (include_percentage and is_close on)."""
    try:
        return _math_equal(prediction, reference)
    except Exception:
        return False


def _math_equal(prediction: str, reference: str) -> bool:
    if prediction is None or reference is None:
        return False
    if prediction.strip().lower() == reference.strip().lower():
        return True
    if reference in ("A", "B", "C", "D", "E") and choice_answer_clean(prediction) == reference:
        return True
    predicted_number, reference_number = _as_number(prediction), _as_number(reference)
    if predicted_number is not None and reference_number is not None:
        # Two numbers are never compared symbolically; a percentage written with or without `%` both pass.
        candidates = (reference_number / 100, reference_number, reference_number * 100)
        return any(math.isclose(candidate, predicted_number, rel_tol=1e-4) for candidate in candidates)
    if not prediction:
        return False
    prediction, reference = prediction.strip(), reference.strip()
    if "pmatrix" in prediction and "pmatrix" not in reference:
        reference = _braces_to_pmatrix(reference)
    return (
        _equal_ignoring_brackets(prediction, reference)
        or _equal_part_by_part(prediction, reference)
        or _equal_cell_by_cell(prediction, reference)
        or _equal_as_equations(prediction, reference)
        or _symbolic_equal(prediction, reference)
    )


def _as_number(text: str) -> float | None:
    text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith("%"):
        text = text[:-1].removesuffix("\\")
        try:
            return float(text) / 100
        except ValueError:
            pass
    return None


def _braces_to_pmatrix(reference: str) -> str:
    # The harness turns each greedy `{..,..}` span into a pmatrix whose commas become ONE backslash (not a row
    # break `\\`), so the result rarely parses; kept as it is, since later steps compare what it produces.
    spans = _greedy_comma_spans(reference.strip())
    return ", ".join("\\begin{pmatrix}" + span.strip("{}").replace(",", "\\") + "\\end{pmatrix}" for span in spans)


def _greedy_comma_spans(text: str) -> list[str]:
    r"""`re.findall(r"\{.*,.*\}", text)` in linear time: per line, its first `{` to its last `}` if a comma is between."""
    spans = []
    for line in text.split("\n"):
        start, end = line.find("{"), line.rfind("}")
        if start != -1 and end > start and "," in line[start + 1 : end]:
            spans.append(line[start : end + 1])
    return spans


def _equal_ignoring_brackets(prediction: str, reference: str) -> bool:
    predicted, referenced = prediction, reference
    if (prediction.startswith("[") and prediction.endswith("]") and not reference.startswith("(")) or (
        prediction.startswith("(") and prediction.endswith(")") and not reference.startswith("[")
    ):
        predicted, referenced = predicted.strip("[]()"), referenced.strip("[]()")
    for bracket in "{}()":
        predicted, referenced = predicted.replace(bracket, ""), referenced.replace(bracket, "")
    return predicted.lower() == referenced.lower()


def _equal_part_by_part(prediction: str, reference: str) -> bool:
    # Only the first character must be a bracket: the first and last characters are dropped whatever they are, which
    # is why the interval types `(0,1]` and `(0,1)` compare equal.
    looks_bracketed = re.compile(r"(\(|\[).+(\)|\])")
    if not (looks_bracketed.match(prediction) and looks_bracketed.match(reference)):
        return False
    predicted_parts, reference_parts = prediction[1:-1].split(","), reference[1:-1].split(",")
    return len(predicted_parts) == len(reference_parts) and all(
        _math_equal(p, r) for p, r in zip(predicted_parts, reference_parts)
    )


def _matrix_rows(text: str) -> list[list[str]] | None:
    begins, ends = ("\\begin{pmatrix}", "\\begin{bmatrix}"), ("\\end{pmatrix}", "\\end{bmatrix}")
    if not (text.startswith(begins) and text.endswith(ends)):
        return None
    inner = text[len(begins[0]) : -len(ends[0])]
    return [row.strip().split("&") for row in inner.split("\\\\") if row.strip()]


def _equal_cell_by_cell(prediction: str, reference: str) -> bool:
    predicted_rows, reference_rows = _matrix_rows(prediction), _matrix_rows(reference)
    if predicted_rows is None or reference_rows is None or len(predicted_rows) != len(reference_rows):
        return False
    for predicted_row, reference_row in zip(predicted_rows, reference_rows):
        if len(predicted_row) != len(reference_row):
            return False
        if not all(_math_equal(p, r) for p, r in zip(predicted_row, reference_row)):
            return False
    return True


def _equal_as_equations(prediction: str, reference: str) -> bool:
    if prediction.count("=") == 1 and reference.count("=") == 1:
        predicted_lhs, predicted_rhs = prediction.split("=")
        reference_lhs, reference_rhs = reference.split("=")
        predicted_zero = f"{predicted_lhs.strip()} - ({predicted_rhs.strip()})"
        reference_zero = f"{reference_lhs.strip()} - ({reference_rhs.strip()})"
        return _symbolic_equal(predicted_zero, reference_zero) or _symbolic_equal(
            f"-({predicted_zero})", reference_zero
        )
    # `x = 3` against `3`: a short left-hand side is taken as a variable name
    if prediction.count("=") == 1 and len(prediction.split("=")[0].strip()) <= 2 and "=" not in reference:
        return _math_equal(prediction.split("=")[1], reference)
    if reference.count("=") == 1 and len(reference.split("=")[0].strip()) <= 2 and "=" not in prediction:
        return _math_equal(prediction, reference.split("=")[1])
    return False


def _symbolic_equal(prediction: str, reference: str) -> bool:
    import sympy

    a, b = _parse(prediction), _parse(reference)
    try:
        if str(a) == str(b) or a == b:
            return True
    except Exception:
        pass
    if isinstance(a, str) or isinstance(b, str):
        return False  # the remaining checks need two parsed values (and sympy would `eval` raw text)
    if exceeds_exact_size(a) or exceeds_exact_size(b):
        return False  # a tower of exponents: every check below would run until the case's cap
    checks = (
        lambda: a.equals(b) or sympy.simplify(a - b) == 0,
        lambda: abs(a.lhs - a.rhs).equals(abs(b.lhs - b.rhs)),  # equations, either way round
        lambda: math.isclose(float(sympy.N(a)), float(sympy.N(b)), rel_tol=1e-4),
        lambda: a.shape == b.shape and a.applyfunc(lambda x: round(x, 3)).equals(b.applyfunc(lambda x: round(x, 3))),
    )
    for check in checks:
        try:
            if check():
                return True
        except Exception:
            pass
    return False


@lru_cache(maxsize=64)
def _parse(text: str):
    """The first parser that accepts the text (unescaped `\\\\` first, as written second); the text itself if none."""
    # Cached: one comparison parses the same side in several checks, and LaTeX parsing is the slow part of a case
    # (a second of latex2sympy for a box of 1,000 characters of prose). A text without `\\\\` is tried once.
    candidates = dict.fromkeys((text.replace("\\\\", "\\"), text))
    for parser in (_parse_plain_number, _parse_latex, parse_python_expression):
        for candidate in candidates:
            try:
                return parser(candidate)
            except Exception:
                pass
    return text


def _parse_plain_number(text: str):
    import sympy

    number = text.replace(",", "")
    try:
        return sympy.Integer(int(number))
    except ValueError:
        return sympy.Float(float(number))


def _parse_latex(text: str):
    from latex2sympy2_extended import latex2sympy

    normalization, conversion = _latex2sympy_configs()
    return latex2sympy(text, normalization_config=normalization, conversion_config=conversion)


@cache
def _latex2sympy_configs():
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    # Closest to sympy's parse_latex: no unboxing or unit stripping, symbols keep their case, `x \in S` stays a
    # membership, and simple equations stay equations.
    normalization = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=False, nits=False, boxed="none"
    )
    conversion = ConversionConfig(
        interpret_as_mixed_fractions=False,
        interpret_simple_eq_as_assignment=False,
        interpret_contains_as_eq=False,
        lowercase_symbols=False,
    )
    return normalization, conversion
