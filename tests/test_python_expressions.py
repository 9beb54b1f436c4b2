"""The harness's `parse_expr` fallback, read without evaluating code (lambda_trl.python_expressions)."""

import time

import pytest
import sympy
from hostile import hostile_answer
from sympy.parsing.sympy_parser import parse_expr

from lambda_trl import qwen_math
from lambda_trl.python_expressions import MAX_POWER_BITS, parse_python_expression


def harness_parse_expr(text: str):
    """What the Qwen2.5-Math harness runs: `parse_expr` over all of sympy (ours to call only on our own strings)."""
    namespace = {}
    exec("from sympy import *", namespace)
    namespace["__builtins__"] = {}
    namespace.update(abs=namespace["Abs"], max=namespace["Max"], min=namespace["Min"])
    return parse_expr(text, global_dict=namespace)


BENIGN = [
    "2*sqrt(3)/x**2",
    "x**2 + 2*x + 1",
    "-3/4",
    "1.5e-3",
    "0.125",
    "2j",
    "(1, 2)",
    "[1, 2, 3]",
    "{1, 2}",
    "sqrt(2)/2",
    "pi/4",
    "E**2",
    "I*3",
    "oo",
    "-oo",
    "abs(x - 1)",
    "max(1, 2)",
    "min(x, y)",
    "log(8, 2)",
    "ln(x)",
    "sin(pi/6)",
    "atan2(1, 1)",
    "factorial(5)",
    "binomial(10, 3)",
    "f(x) + 1",
    "a*b - c",
    "alpha + beta_1",
    "Rational(1, 3)",
    "Matrix([[1, 2], [3, 4]])",
    "x < 3",
    "x >= -1",
    "2 % 3",
    "7 // 2",
    "10**100",
    "1_000",
    "0x1F",
    "...",
]


@pytest.mark.parametrize("text", BENIGN)
def test_reads_what_the_harness_reads_the_same_way(text):
    assert sympy.srepr(parse_python_expression(text)) == sympy.srepr(harness_parse_expr(text))


@pytest.mark.parametrize(
    "text",
    [
        "x.evalf()",  # attribute access
        "sstr(x)[0]",  # subscripts, and a printer
        "'1'",  # strings
        "S(1)",  # sympy names outside the grammar
        "sympify(x)",
        "N(1)",
        "lambda x: x",
        "sqrt(x, evaluate=False)",  # keywords
        "sqrt(*x)",
        "__import__",
        "[x for x in y]",
        "x if y else z",
        "(x := 1)",
        "not x",
        "1 < x < 2",  # chained comparison: eval would ask a Relational for its truth value
        "Integer(x)",
    ],
)
def test_refuses_everything_outside_the_grammar(text):
    with pytest.raises(ValueError, match="not"):
        parse_python_expression(text)


@pytest.mark.parametrize(
    "text",
    [
        "3**(10**7+1/2)",  # a rational exponent
        "sqrt(3)**(2*10**7)",  # an irrational base
        "exp(10**7*log(3))",  # sympy rewrites it as 3**(10**7)
        "root(3, Rational(1, 10**7))",
        "Matrix([[3]])**10**7",
        "Integer(1e2000000)",  # sympy's Float of the literal alone takes minutes
        "floor(1e300000)",
        "[0]*10**9",  # Python's list repetition
        "(1, 2) + (3,)",
        "(2**4000000)*(2**4000000)*(2**4000000)",  # each step is cheap, the result is not carried on
    ],
)
def test_exact_numbers_too_large_to_compute_are_refused_however_written(text):
    started = time.monotonic()
    with pytest.raises(ValueError, match="not parsed"):
        parse_python_expression(text)
    assert time.monotonic() - started < 0.5


def test_towers_of_exponents_are_refused_at_once():
    with pytest.raises(ValueError, match="exact power"):
        parse_python_expression("10**10**10")
    with pytest.raises(ValueError, match="exact power"):
        parse_python_expression("(-3)**(-10**7)")
    with pytest.raises(ValueError, match="factorial"):
        parse_python_expression("factorial(10**9)")
    bits = MAX_POWER_BITS // 2
    assert parse_python_expression(f"2**{bits}") == sympy.Integer(2) ** bits  # large, but computed
    assert parse_python_expression("x**(10**12)") == sympy.Symbol("x") ** (10**12)  # symbolic: nothing to compute
    assert parse_python_expression("0.5**(10**9)") == sympy.Float("0.5") ** (10**9)


@pytest.mark.parametrize("evaluator", ["S", "sympify", "N", "Abs", "simplify", "nsimplify"])
def test_an_answer_that_runs_code_under_the_harness_runs_nothing_here(tmp_path, evaluator):
    harness_canary, our_canary = tmp_path / "harness", tmp_path / "ours"
    try:
        harness_parse_expr(hostile_answer(harness_canary, evaluator))
    except Exception:  # the payload has run by then; what it returns makes some evaluators raise afterwards
        pass
    assert harness_canary.exists(), "the hostile answer no longer runs code under parse_expr: the test proves nothing"
    answer = hostile_answer(our_canary, evaluator)
    with pytest.raises(ValueError):
        parse_python_expression(answer)
    assert not qwen_math.math_equal(answer, "0")
    assert not qwen_math.math_equal("0", answer)
    assert not qwen_math.math_equal(qwen_math.strip_string(answer), qwen_math.strip_string(answer + "+1"))
    assert not our_canary.exists()
