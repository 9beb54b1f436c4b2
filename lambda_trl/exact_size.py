r"""
How large an exact number a sympy expression stands for, estimated without computing it.

A tower such as `10^{10^{10^{10}}}` parses in microseconds, and then every exact comparison of it (sympy's `equals`,
`simplify`, numeric evaluation) runs until a time cap ends it — often inside C code that no signal interrupts, so
only killing the worker does. Both graders therefore decide a case holding a power of more than `HUGE_POWER_BITS`
bits at once: equal only if the two expressions are identical, which is the verdict the capped comparison reached.
"""

import math


HUGE_POWER_BITS = 1 << 30
"""A power whose exact value needs more bits (128 MiB of digits) is not computed: no comparison of it finishes."""


def power_bits(base, exponent) -> float:
    """log2 of |base ** exponent| for numeric sympy values (0 when either is not a number); may be inf."""
    try:
        if not (base.is_number and exponent.is_number):
            return 0.0
        exponent_bits = value_bits(exponent)
        if exponent_bits > 62:
            return math.inf
        return abs(float(exponent)) * value_bits(base)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return 0.0


def value_bits(value) -> float:
    """An estimate of log2 |value| for a numeric sympy expression, evaluated or not; 0 for what it cannot bound."""
    if value.is_Rational:
        return math.log2(max(abs(int(value.p)), abs(int(value.q)), 1))
    if value.is_Float:
        _, mantissa, exponent, bits = value._mpf_  # |value| = mantissa * 2**exponent, mantissa of `bits` bits
        return float(max(exponent + bits, 0)) if mantissa else 0.0
    if value.is_Pow:
        return power_bits(value.base, value.exp)
    if value.is_Mul:
        return sum(value_bits(factor) for factor in value.args)
    if value.is_Add:
        return max((value_bits(term) for term in value.args), default=0.0) + 1
    return 0.0


def exceeds_exact_size(value, bits: float = HUGE_POWER_BITS) -> bool:
    """Whether `value` (a sympy expression, or a list or tuple of them) holds a power of more than `bits` bits."""
    import sympy

    if isinstance(value, (list, tuple)):
        return any(exceeds_exact_size(item, bits) for item in value)
    if not isinstance(value, sympy.Basic):
        return False
    return any(power_bits(node.base, node.exp) > bits for node in sympy.preorder_traversal(value) if node.is_Pow)
