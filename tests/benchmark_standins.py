"""The registry pinned to the committed benchmark stand-ins (tests/data/benchmarks, see its README), for tests and for
the processes they launch."""

import dataclasses
import hashlib
from pathlib import Path

from lambda_trl.eval import benchmarks


STANDIN_BENCHMARKS = Path(__file__).resolve().parent / "data" / "benchmarks"
COLLEGE_MATH_SUBSAMPLE = (0, 2, 4, 5, 7)
"""Line numbers of the college_math stand-in that play the part of the shipped 500-of-2,818 indices."""


def standin_fingerprint(name: str) -> tuple[str, int]:
    """SHA-256 and row count of a stand-in, computed here rather than by the download code the tests check."""
    data = (STANDIN_BENCHMARKS / name / "test.jsonl").read_bytes()
    return hashlib.sha256(data).hexdigest(), sum(1 for line in data.splitlines() if line.strip())


def pin_standins(patch):
    """
    Pins every registry entry to its stand-in's SHA-256 and row count and swaps the college_math subsample for
    `COLLEGE_MATH_SUBSAMPLE`; `patch` is a `pytest.MonkeyPatch` (undone after a test, or never, in a launched process).
    """
    for name, benchmark in list(benchmarks.BENCHMARKS.items()):
        sha256, rows = standin_fingerprint(name)
        patch.setitem(benchmarks.BENCHMARKS, name, dataclasses.replace(benchmark, sha256=sha256, rows=rows))
    patch.setattr(benchmarks, "COLLEGE_MATH_ROWS", standin_fingerprint("college_math")[1])
    patch.setattr(benchmarks, "_shipped_college_math_indices", lambda: COLLEGE_MATH_SUBSAMPLE)
