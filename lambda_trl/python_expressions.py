r"""
Python-syntax math (`2*sqrt(3)/x**2`, `(1, 2)`) read into sympy objects without evaluating any code.

The Qwen2.5-Math harness falls back to sympy's `parse_expr` when LaTeX parsing fails, and `parse_expr` is Python
`eval` over a namespace holding all of sympy: from `sstr`, `latex`, indexing and `+` any string can be assembled, and
`S`, `sympify`, `N`, `simplify` ... evaluate a string argument again, with the builtins. No denylist closes that (the
same hole is CVE-2026-6878 in verl's `prime_math`). This parser reads the text with Python's `ast` and builds the
value itself from a fixed grammar, so no text is ever executed, and strings reach sympy only as a numeric literal's
digits (`Float`) or an identifier (`Symbol`, `Function`), which sympy never parses as code:

- numbers, as `parse_expr`'s `auto_number` reads them (`Integer`, `Float` from the literal's digits, `j` as `I`);
- names: the constants and functions of `CONSTANTS` and `FUNCTIONS`; any other name that sympy does not export and
  that does not start with `_` is a `Symbol` (a `Function` when called), as `auto_symbol` makes it; the rest are
  refused;
- `+ - * / ** % // ^`, unary `-` and `+`, one comparison, tuples, lists and sets, calls without keywords.

Attribute access, subscripts, keywords, lambdas, strings, arithmetic on containers and everything else are refused
(`ValueError`), as is any exact number that would exceed `MAX_POWER_BITS` bits — however it is written: a power, an
`exp` or `root` that sympy turns into one, a product — a float literal beyond `MAX_DECIMAL_EXPONENT`, a matrix power
above `MAX_MATRIX_POWER`, or a factorial above `MAX_FACTORIAL_ARGUMENT` (the harness would time out on them). Where the harness's `parse_expr` and this parser both accept a text they return the
same value (`tests/test_python_expressions.py`; on every gold answer of the 8 benchmarks that reaches this fallback,
339 texts, the two agree on all).
"""

import ast
import math
import operator
from functools import cache

from .exact_size import power_bits, value_bits


MAX_POWER_BITS = 1 << 22
"""The largest exact integer power computed (4 Mbit, 1.26 million digits); `10**10**10` is refused at once."""

MAX_DECIMAL_EXPONENT = 10_000
"""Float literals with a larger exponent are refused: sympy's `Float("1e300000")` alone takes 3 s."""

MAX_MATRIX_POWER = 64
"""Matrix powers above this are refused: each step multiplies the entries' sizes."""

MAX_FACTORIAL_ARGUMENT = 100_000
"""`factorial`, `binomial` and `gamma` of larger integers are refused: exact values of millions of digits."""

MAX_LENGTH = 10_000
"""Longer texts are refused before parsing: no answer is that long, and Python's parser costs memory per character."""

CONSTANTS = ("pi", "E", "I", "oo", "zoo", "nan", "EulerGamma", "GoldenRatio", "Catalan")
FUNCTIONS = (
    "sqrt cbrt root exp log ln sin cos tan cot sec csc asin acos atan acot asec acsc atan2 sinh cosh tanh coth "
    "asinh acosh atanh Abs floor ceiling factorial binomial gcd lcm re im arg sign conjugate gamma Max Min Rational "
    "Integer Float Matrix Mod"
).split()
ALIASES = {"abs": "Abs", "max": "Max", "min": "Min"}
"""Python's names, which the harness's namespace maps to sympy's (its `abs`, `max`, `min` are sympy's)."""

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
    ast.BitXor: operator.xor,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def parse_python_expression(text: str):
    """The sympy value of `text` read as Python-syntax math; `ValueError` for anything outside the grammar."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"not parsed: longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"not Python-syntax math: {error}") from None
    return _Builder(text.strip()).build(tree.body)


@cache
def _sympy_exports() -> frozenset[str]:
    import sympy

    return frozenset(name for name in dir(sympy) if not name.startswith("_"))


@cache
def _known_names() -> dict:
    import sympy

    known = {name: getattr(sympy, name) for name in CONSTANTS + tuple(FUNCTIONS) if name != "ln"}
    known["ln"] = sympy.log
    known.update({alias: known[name] for alias, name in ALIASES.items()})
    return known


class _Builder:
    def __init__(self, source: str):
        self.source = source

    def build(self, node):
        value = self._build(node)
        self._check_value(value)
        return value

    def _build(self, node):
        import sympy

        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node.id, called=False)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = _operand(self.build(node.left)), _operand(self.build(node.right))
            if isinstance(node.op, ast.Pow):
                _check_power_size(left, right)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](_operand(self.build(node.operand)))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            left, right = _operand(self.build(node.left)), _operand(self.build(node.comparators[0]))
            return _COMPARE[type(node.ops[0])](left, right)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            elements = [self.build(element) for element in node.elts]
            return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](elements)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if any(isinstance(argument, ast.Starred) for argument in node.args):
                raise ValueError("not parsed: starred arguments")
            function = self._name(node.func.id, called=True)
            arguments = [self.build(argument) for argument in node.args]
            _check_call_size(node.func.id, arguments)
            if function in (sympy.Integer, sympy.Rational, sympy.Float) and not all(
                isinstance(a, sympy.Number) for a in arguments
            ):
                raise ValueError("not parsed: a number constructor of a non-number")
            return function(*arguments)
        raise ValueError(f"not parsed: {type(node).__name__} is outside the expression grammar")

    def _number(self, node: ast.Constant):
        import sympy

        value = node.value
        if value is Ellipsis:  # `...`, which the harness's eval reads as Python's Ellipsis
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
            raise ValueError(f"not parsed: the constant {value!r}")
        literal = ast.get_source_segment(self.source, node) or repr(value)
        imaginary = literal.endswith(("j", "J"))
        digits = literal[:-1] if imaginary else literal
        if "." in digits or (("e" in digits or "E" in digits) and not digits.startswith(("0x", "0X"))):
            exponent = digits.lower().partition("e")[2].replace("_", "")
            if exponent and abs(int(exponent)) > MAX_DECIMAL_EXPONENT:
                raise ValueError(f"not parsed: a decimal exponent above {MAX_DECIMAL_EXPONENT}")
            number = sympy.Float(digits.replace("_", ""))
        else:
            number = sympy.Integer(int(digits, 0))
        return number * sympy.I if imaginary else number

    def _name(self, name: str, called: bool):
        import sympy

        known = _known_names()
        if name in known:
            return known[name]
        if name in ("True", "False", "None") or name in _sympy_exports() or name.startswith("_"):
            raise ValueError(f"not parsed: the name {name!r} is outside the expression grammar")
        return sympy.Function(name) if called else sympy.Symbol(name)

    @staticmethod
    def _check_value(value):
        import sympy

        # Every value is a sympy object, a container of them or a comparison's truth value: never a string, which a
        # later sympy call would evaluate.
        if isinstance(value, (tuple, list, set)) or value is Ellipsis:
            return
        if not isinstance(value, (sympy.Basic, sympy.MatrixBase, bool)):
            raise ValueError(f"not parsed: a value of type {type(value).__name__}")
        # Each step's operands are within the limit, so a product or sum is cheap to compute once; larger results
        # are not carried into the next step.
        if isinstance(value, sympy.Rational) and value_bits(value) > MAX_POWER_BITS:
            raise ValueError(f"not parsed: a number of more than {MAX_POWER_BITS} bits")


def _operand(value):
    """Containers take no part in arithmetic: `[0] * 10**9` would be Python's list repetition."""
    if isinstance(value, (tuple, list, set)) or value is Ellipsis:
        raise ValueError("not parsed: arithmetic on a tuple, list or set")
    return value


def _check_power_size(base, exponent):
    import sympy

    # An exact power is computed at once however large (`3**(10**7 + 1/2)`, `sqrt(3)**(2*10**7)`); one with a float
    # in it, or a symbolic one, stays cheap.
    if isinstance(base, sympy.MatrixBase):
        if isinstance(exponent, sympy.Basic) and exponent.is_number and abs(exponent) > MAX_MATRIX_POWER:
            raise ValueError(f"not parsed: a matrix power above {MAX_MATRIX_POWER}")
        return
    if any(isinstance(side, sympy.Basic) and side.has(sympy.Float) for side in (base, exponent)):
        return
    if power_bits(base, exponent) > MAX_POWER_BITS:
        raise ValueError(f"not parsed: an exact power of more than {MAX_POWER_BITS} bits")


def _check_call_size(name: str, arguments: list):
    import sympy

    name = ALIASES.get(name, name)
    if name in ("factorial", "binomial", "gamma") and any(
        isinstance(a, sympy.Integer) and abs(a) > MAX_FACTORIAL_ARGUMENT for a in arguments
    ):
        raise ValueError(f"not parsed: {name} of an integer above {MAX_FACTORIAL_ARGUMENT}")
    numeric = [a for a in arguments if isinstance(a, sympy.Basic) and a.is_number and not a.has(sympy.Float)]
    # exp(n*log(3)) becomes 3**n, and root(b, n) is b**(1/n): the same exact powers, written another way.
    if name == "exp" and numeric and abs(float(numeric[0])) / math.log(2) > MAX_POWER_BITS:
        raise ValueError(f"not parsed: exp of more than {MAX_POWER_BITS} bits")
    if (
        name == "root"
        and len(numeric) >= 2
        and numeric[1] != 0
        and power_bits(numeric[0], 1 / numeric[1]) > MAX_POWER_BITS
    ):
        raise ValueError(f"not parsed: an exact power of more than {MAX_POWER_BITS} bits")
