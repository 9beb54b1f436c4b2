"""
Property-based tests of the graders on hostile and degenerate text (hypothesis).

- Arbitrary text, and text generated from a grammar of sympy calls, printers, indexing and concatenation around a
  payload that creates a file when evaluated, never runs code (the canary file stays absent), never raises, and each
  case ends within its grader's time cap — in this process, and through the worker processes of `boxed_math_reward`
  and `eval score` on both sides (completion and gold).
- Each linear rewrite of a harness regex gives the regex's result on text from a small alphabet rich in the
  characters the regex reacts to.
- Extraction and normalisation cost grows linearly with the text.

`make test` runs `EXAMPLES` (200) examples per property; `make fuzz` sets LAMBDA_TRL_FUZZ_EXAMPLES to many more.
"""

import os
import re
import time
from pathlib import Path

import pytest
from hostile import PRINTED, hostile_answer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_trl import answers, graders, qwen_math
from lambda_trl.eval.scoring import score_rows
from lambda_trl.rewards import boxed_math_reward


EXAMPLES = int(os.environ.get("LAMBDA_TRL_FUZZ_EXAMPLES", "200"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,  # time is asserted against the graders' caps instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("canary") / "ran"
    yield path
    assert not path.exists(), "a graded text ran code"


# ---- a grammar of sympy calls -------------------------------------------------------------------------------------

EVALUATORS = ("S", "sympify", "N", "Abs", "simplify", "nsimplify", "parse_expr", "Symbol", "latex", "sstr", "srepr")


def sympy_expressions(canary: Path):
    leaves = st.one_of(
        st.sampled_from(["x", "y", "f(x)", "Dummy()", "Symbol", "pi", "E", "I", "1", "42", "0.5"]),
        st.sampled_from(PRINTED),
        st.just(hostile_answer(canary)),
        st.sampled_from([hostile_answer(canary, evaluator) for evaluator in ("sympify", "N", "simplify")]),
    )

    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from(EVALUATORS), children).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(children, st.integers(0, 40)).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(children, children).map(lambda t: f"{t[0]}+{t[1]}"),
            st.tuples(children, children).map(lambda t: f"({t[0]}, {t[1]})"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


def boxed(answer_text: str) -> str:
    return f"Reasoning. Therefore the answer is $\\boxed{{{answer_text}}}$."


# ---- never runs code, never raises, inside the cap ----------------------------------------------------------------


def _decide_in_process(prediction: str, gold: str):
    for grader in graders.GRADERS:
        started = time.monotonic()
        assert graders.verdict(grader, prediction, gold) in (True, False)
        assert time.monotonic() - started < graders.case_seconds(grader) + 1


def _extract_everything(text: str):
    qwen_math.evaluation_prediction(text, "math")
    qwen_math.extract_answer(text, "minerva_math")
    qwen_math.is_boxed(text)
    answers.evaluation_answer(text)
    answers.ground_truth_answer(text)


@fuzz
@given(text=st.text(max_size=400))
def test_arbitrary_text_is_extracted_and_decided_without_raising(text, canary):
    _extract_everything(text)
    _decide_in_process(qwen_math.strip_string(text), "1")
    _decide_in_process(text, text + "1")


@fuzz
@given(data=st.data())
def test_sympy_call_grammar_runs_nothing_in_either_grader(data, canary):
    expression = data.draw(sympy_expressions(canary))
    _extract_everything(boxed(expression))
    prediction = qwen_math.extract_answer(boxed(expression), "math")
    _decide_in_process(prediction, "2")
    _decide_in_process("2", prediction)  # the gold side
    _decide_in_process(expression, expression + "+1")
    assert not canary.exists()


@settings(fuzz, max_examples=max(5, EXAMPLES // 20))
@given(expressions=st.lists(st.data(), min_size=1, max_size=1))
def test_hostile_batches_through_the_workers(expressions, canary):
    # The reward (both graders, both sides) and eval score's scoring, as training and evaluation call them.
    texts = [expressions[0].draw(sympy_expressions(canary)) for _ in range(16)]
    completions = [boxed(text) for text in texts]
    for grader in graders.GRADERS:
        rewards = boxed_math_reward(completions, solution=["2"] * len(texts), grader=grader)
        assert set(rewards) <= {-0.5, -1.0}
        boxed_math_reward([boxed("2")] * len(texts), solution=texts, grader=grader)
    rows = [
        {"idx": i, "answer": text, "qwen_math_answer": qwen_math.strip_string(text)} for i, text in enumerate(texts)
    ]
    scored = score_rows(rows, {row["idx"]: completions[:2] for row in rows}, "math500")
    assert len(scored) == len(rows)
    assert not canary.exists()


def test_the_known_exploit_through_every_entry_point(canary):
    payloads = [hostile_answer(canary, evaluator) for evaluator in ("S", "sympify", "N", "Abs", "simplify")]
    completions = [boxed(payload) for payload in payloads]
    for grader in graders.GRADERS:
        assert boxed_math_reward(completions, solution=["0"] * len(payloads), grader=grader) == [-0.5] * len(payloads)
        assert boxed_math_reward([boxed("0")] * len(payloads), solution=payloads, grader=grader) == [-0.5] * len(
            payloads
        )
    rows = [{"idx": i, "answer": p, "qwen_math_answer": qwen_math.strip_string(p)} for i, p in enumerate(payloads)]
    scored = score_rows(rows, {i: [boxed(p), "no answer 7"] for i, p in enumerate(payloads)}, "math500")
    # the completion repeats the gold: both graders see two equal strings, which is not evaluating them
    assert all(row["verdicts"]["qwen-math"][0] for row in scored)
    assert not canary.exists()


# ---- each linear rewrite equals the harness regex it replaces -----------------------------------------------------

HARNESS_ALPHABET = st.text(alphabet="10.a x{},\\textmbo=$ ", max_size=60)


@fuzz
@given(text=HARNESS_ALPHABET)
def test_trailing_zero_rules_equal_the_harness_regexes(text):
    assert qwen_math._TRAILING_ZEROS_INSIDE.sub(r"\1\2", text) == re.sub(r"(\d+)\.0*([^\d])", r"\1\2", text)
    assert qwen_math._TRAILING_ZEROS_AT_END.sub(r"\1", text) == re.sub(r"(\d+)\.0*$", r"\1", text)


@fuzz
@given(text=st.text(alphabet="ab{}\\textmboxgin[array]", max_size=60).map(lambda t: t.replace("[array]", "array")))
def test_braced_rules_equal_the_harness_regexes(text):
    def content(match):
        return match.group(1)

    assert qwen_math._replace_braced(text, "\\text{", lambda c: c) == re.sub(r"\\text\{(.*?)\}", content, text)
    assert qwen_math._replace_braced(text, "\\mbox{", lambda c: "") == re.sub(r"\\mbox\{.*?\}", "", text)
    assert qwen_math._replace_braced(text, "\\begin{array}{", lambda c: "\\begin{pmatrix}") == re.sub(
        r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", text
    )
    assert qwen_math._without_text_suffix(text) == re.sub(r"\\text\{.*?\}$", "", text)


@fuzz
@given(text=st.text(alphabet="{},a\n", max_size=40))
def test_pmatrix_spans_equal_the_harness_regex(text):
    assert qwen_math._greedy_comma_spans(text) == re.findall(r"\{.*,.*\}", text)


def _harness_unit_deletion(s: str) -> str:
    for _ in range(2):
        for _, pattern in qwen_math._UNIT_PATTERNS:
            without_unit = pattern.sub(r"\1\2", s)
            if without_unit:
                s = without_unit
    return s


@fuzz
@given(
    words=st.lists(
        st.sampled_from(["a", "cm", "m", "s", "q", ".", " ", "sq", "rs", "°", "f", "5", "-", "π", "r", "2"])
    )
)
def test_unit_deletion_equals_the_harness_loop(words):
    text = "".join(words)
    assert qwen_math._delete_unit_words(text) == _harness_unit_deletion(text)


def _harness_last_boxed(text: str):
    def balanced(open_brace):
        depth = 0
        for position in range(open_brace, len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                return text[open_brace + 1 : position]
        return None

    best = None
    for command in ("\\boxed", "\\fbox"):
        start = text.rfind(command + "{")
        while start != -1:
            content = balanced(start + len(command))
            if content is not None:
                if best is None or start > best[0]:
                    best = (start, content)
                break
            start = text.rfind(command + "{", 0, start)
    return None if best is None else best[1]


@fuzz
@given(pieces=st.lists(st.sampled_from(["\\boxed{", "\\fbox{", "{", "}", "x", "1", "\\boxed", " "]), max_size=30))
def test_last_boxed_answer_equals_the_scan_per_box(pieces):
    text = "".join(pieces)
    assert answers.last_boxed_answer(text) == _harness_last_boxed(text)


@fuzz
@given(text=st.text(alphabet="0123456789.eE-+ x\\timescdo^{}", max_size=30))
def test_plain_number_reading_is_unchanged(text):
    mantissa = r"([-+]?(?:\d+\.?\d*|\.\d+))"
    harness = re.compile(
        rf"\s*{mantissa}(?:[eE]([-+]?\d{{1,4}})|\s*\\(?:times|cdot)\s*10\^(?:\{{([-+]?\d{{1,4}})\}}|(\d)))?\s*"
    )
    ours, theirs = answers.PLAIN_NUMBER.fullmatch(text), harness.fullmatch(text)
    assert (ours and ours.groups()) == (theirs and theirs.groups())


# ---- linear in the text's length ------------------------------------------------------------------------------------

DEGENERATE = {
    "digits": "7",
    "digits and a point": "1.0",
    "open braces": "{",
    "unclosed boxes": "\\boxed{",
    "unclosed text": "\\text{",
    "unclosed mbox": "\\mbox{",
    "prose": "so the answer is a sum of 3 cm per day. ",
}


def _cost(text: str) -> float:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        for candidate in (text, f"\\boxed{{{text}}}", f"the answer is {text}"):
            _extract_everything(candidate)
            qwen_math.strip_string(candidate)
        timings.append(time.perf_counter() - started)
    return min(timings)


@pytest.mark.parametrize("kind", DEGENERATE)
def test_extraction_grows_linearly_with_the_text(kind):
    unit = DEGENERATE[kind]
    short, long = unit * (2_000 // len(unit)), unit * (16_000 // len(unit))
    _cost(short)  # warm caches
    ratio = _cost(long) / max(_cost(short), 1e-4)
    # 8 times the text: a linear cost grows ~8x, a quadratic one 64x
    assert ratio < 24, f"{kind}: 8x the text cost {ratio:.1f}x"
    assert _cost(long) < 0.25


def _batch_seconds(completions: list[str], grader: str) -> float:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        boxed_math_reward(completions, solution=["12"] * len(completions), grader=grader)
        timings.append(time.perf_counter() - started)
    return min(timings)


@pytest.mark.parametrize(
    "kind, grader",
    [
        ("digits", "math-verify"),
        ("digits", "qwen-math"),
        ("open braces", "math-verify"),
        ("open braces", "qwen-math"),
        ("prose", "math-verify"),
        # Not ("prose", "qwen-math"): a box of prose is parsed by latex2sympy2 (0.6 s for 500 characters, 2 s for
        # 4,000), which the case's 3 s cap bounds; 32 such cases take minutes, too long for `make test`.
    ],
)
def test_a_batch_through_the_workers_grows_linearly_with_its_text(kind, grader):
    # Extraction here, the comparison in the workers: both inside the cost of a batch.
    unit = DEGENERATE[kind]

    def batch(length):
        return [f"{unit * (length // len(unit))} \\boxed{{{unit * (length // len(unit))} {i}}}" for i in range(32)]

    _batch_seconds(batch(1_000), grader)  # workers started
    ratio = _batch_seconds(batch(8_000), grader) / max(_batch_seconds(batch(1_000), grader), 1e-3)
    assert ratio < 24, f"{kind} under {grader}: 8x the text cost {ratio:.1f}x"
