"""
Hostile answers for the grader tests: text that runs a shell command when sympy's `parse_expr` (Python `eval` over
sympy's namespace) reads it, written only with letters, digits, brackets, `+` and sympy names — no quotes, no `__` —
the way the issue report built it: sympy's printers return strings, indexing and `+` assemble any string from them,
and `S(...)` evaluates that string again with the builtins.
"""

import functools

import sympy


# Printed sympy values whose characters spell the payload: `sstr(Symbol)` is "<class 'sympy.core.symbol.Symbol'>",
# `sstr(f(x))` "f(x)", `sstr(x+y)` "x + y", `sstr(x/y)` "x/y", `sstr(Dummy())` "_Dummy_12".
PRINTED = ("sstr(Symbol)", "sstr(f(x))", "sstr(x+y)", "sstr(x/y)", "sstr(Dummy())", "sstr(x-y)")


@functools.cache
def _character_sources() -> dict[str, str]:
    x, y, f = sympy.Symbol("x"), sympy.Symbol("y"), sympy.Function("f")
    names = {"x": x, "y": y, "f": f, "sstr": sympy.sstr, "Symbol": sympy.Symbol, "Dummy": sympy.Dummy}
    sources = {}
    for expression in PRINTED:
        printed = eval(expression, {"__builtins__": {}}, names)  # our own constant expressions, not input
        for index, character in enumerate(printed):
            sources.setdefault(character, f"{expression}[{index}]")
    return sources


def spelled(text: str) -> str:
    """An expression whose value is the string `text`, built from sympy printers, indexing and `+`."""
    sources = _character_sources()
    parts = [f"sstr({c})" if c.isascii() and (c.islower() or c.isdigit()) else sources[c] for c in text]
    return "+".join(parts)


def shell_payload(canary) -> str:
    """Python that creates the file `canary` (a path of letters, digits, `/`, `_`, `-` and `.`)."""
    return f"__import__('os').system('touch {canary}')"


def hostile_answer(canary, evaluator: str = "S") -> str:
    """A boxed-answer body that creates `canary` when `parse_expr` evaluates it (`evaluator`: S, sympify, N, ...)."""
    return f"{evaluator}({spelled(shell_payload(canary))})"
