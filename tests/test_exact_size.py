"""Towers of exponents recognised without computing them (lambda_trl.exact_size), and decided at once."""

import math
import time

import pytest
import sympy

from lambda_trl import graders
from lambda_trl.exact_size import HUGE_POWER_BITS, exceeds_exact_size, value_bits


def unevaluated_power(base, exponent):
    return sympy.Pow(base, exponent, evaluate=False)


def test_sizes_are_estimated_without_evaluating():
    ten = sympy.Integer(10)
    tower = unevaluated_power(ten, unevaluated_power(ten, unevaluated_power(ten, ten)))
    assert value_bits(unevaluated_power(ten, ten)) == pytest.approx(10 * math.log2(10))
    assert value_bits(tower) == math.inf
    assert exceeds_exact_size(tower) and exceeds_exact_size([sympy.Integer(1), tower + 1])
    assert exceeds_exact_size(sympy.sin(unevaluated_power(ten, unevaluated_power(ten, ten))))  # at any depth
    assert not exceeds_exact_size(unevaluated_power(sympy.Integer(2), sympy.Integer(HUGE_POWER_BITS)))  # at the limit
    assert exceeds_exact_size(unevaluated_power(sympy.Integer(2), sympy.Integer(HUGE_POWER_BITS + 1)))
    x = sympy.Symbol("x")
    assert not exceeds_exact_size(x ** (10**12))  # symbolic: nothing to compute
    assert exceeds_exact_size(unevaluated_power(x, tower))  # the exponent itself is a tower
    assert not exceeds_exact_size("10^{10^{10}}")


@pytest.mark.parametrize("grader", graders.GRADERS)
def test_a_tower_is_decided_at_once_with_the_capped_verdict(grader):
    graders.import_graders()  # the first import of math-verify is not the case's cost
    tower = r"10^{10^{10^{10}}}"
    for prediction, gold, expected in [(tower, "5", False), ("5", tower, False), (tower, tower, True)]:
        started = time.monotonic()
        assert graders.verdict(grader, prediction, gold) is expected
        assert time.monotonic() - started < 0.9  # not the cap (1 s, 3 s) every such case used to cost
