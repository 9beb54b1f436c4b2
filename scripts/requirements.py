"""
The package's declared requirements, read from pyproject.toml, the one place that declares them.

    python scripts/requirements.py floors                # name==floor for every dependency (`make test-floors`)
    python scripts/requirements.py without transformers  # the requirements less those names (`make test-vllm`)

`floors` pins each dependency at the lower bound of its range, as a constraints file for pip. torch is the exception:
the only CPU build of torch this machine installs is `TORCH` (PyPI's Linux wheels are the multi-GB CUDA builds), so
the floors job runs on it and the declared torch floor, transformers' own, is not tested (docs/compatibility.md).
"""

import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement


PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
TORCH = "2.13.0"


def requirements() -> list[Requirement]:
    return [Requirement(line) for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]


def floor(requirement: Requirement) -> str:
    """The version in the `>=` clause: every dependency declares one, and the floor itself must be allowed."""
    lower = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    if len(lower) != 1 or not requirement.specifier.contains(lower[0], prereleases=True):
        raise SystemExit(f"pyproject.toml: {requirement} needs exactly one allowed '>=' floor")
    return lower[0]


def main(argv: list[str]) -> None:
    if argv == ["floors"]:
        for requirement in requirements():
            print(f"{requirement.name}=={TORCH if requirement.name == 'torch' else floor(requirement)}")
    elif argv[:1] == ["without"] and len(argv) > 1:
        print("\n".join(str(r) for r in requirements() if r.name not in argv[1:]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
