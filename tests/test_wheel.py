"""
The package as users install it. `python -m build` makes the sdist and builds the wheel from it; the wheel goes into
a fresh virtual environment with its dependencies (CPU torch first), and the installed package runs from a folder
outside the checkout with nothing pointing back at it: import, `lambda-trl --help`, `lambda-trl eval score` on
College Math (which reads the shipped subsample indices) and one `lambda-trl train` step. The rest of the suite
imports the editable checkout and cannot see a file that is missing from the wheel.

The full suite runs on Python 3.11, the only one this machine has a CPU torch build for. On the lowest supported
Python (requires-python's floor) pip resolves the wheel with every dependency, torch included, and installs all of
them but the CUDA torch stack that PyPI's Linux torch is (no CPU build of it here); on the other Pythons
(`OTHER_PYTHONS`, from pyenv) the wheel goes in with only what its torch-free part needs. On each, the whole package
must compile (syntax warnings are errors) and its torch-free part — the CLI's help, benchmark scoring, the reward —
must run.

These tests need the package index (the isolated build environment, the dependencies): `make test-wheel`.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from helpers import write_recipe
from packaging.requirements import Requirement


pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[1]
OTHER_PYTHONS = ["3.12", "3.13"]
# The torch-free part (`lambda-trl eval score`, the reward) needs only these of the package's dependencies.
TORCH_FREE_DEPENDENCIES = {"math-verify", "datasets"}
# Scoring refuses a College Math file of another length: the shipped indices are lines of the 2,818-row file.
COLLEGE_MATH_ROWS = 2818


def run(command, cwd=None, environment=None, timeout=600) -> str:
    completed = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, f"{command}\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}"
    return completed.stdout


def outside_the_checkout(venv: Path) -> dict:
    """The environment of a user's shell with `venv` activated: nothing on PYTHONPATH."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    environment.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", WANDB_MODE="disabled", HF_HUB_OFFLINE="1"
    )
    return environment


def run_installed(venv: Path, command: str, *arguments, cwd: Path, timeout=600) -> str:
    """`command` from the venv's bin/, run from `cwd`, a folder outside the checkout."""
    assert not cwd.resolve().is_relative_to(REPO), f"{cwd} is inside the checkout"
    return run([venv / "bin" / command, *arguments], cwd=cwd, environment=outside_the_checkout(venv), timeout=timeout)


def pip_install(venv: Path, *requirements):
    """
    The dev environment's pip installing into `venv`, which was made without one (`--without-pip` saves ~10 s). It
    runs from the venv: from the checkout, a `lambda_trl.egg-info` left by an earlier build would count as installed.
    `--no-compile` halves the install time; what runs compiles on import instead.
    """
    python = venv / "bin" / "python"
    command = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile", *requirements]
    run(command, cwd=venv, environment=outside_the_checkout(venv))


def source_files() -> list[str]:
    """The checkout's files as a fresh clone with the working tree's changes has them: tracked or new, not ignored."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO)
    return [path for path in listed.split("\0") if path and (REPO / path).is_file()]


def package_files() -> set[str]:
    return {path for path in source_files() if path.startswith("lambda_trl/")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> tuple[Path, Path]:
    """
    The sdist and the wheel that `python -m build` builds from it, from a copy of the source files: in the checkout,
    a leftover `lambda_trl.egg-info/SOURCES.txt` puts files into the sdist that the configuration does not declare.
    """
    source, output = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for path in source_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, source / path)
    run([sys.executable, "-m", "build", "--outdir", output, source], timeout=300)
    (sdist,) = output.glob("*.tar.gz")
    (wheel,) = output.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A fresh virtual environment holding the wheel and its dependencies, as `pip install lambda-trl` leaves it."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    # The CPU build the suite runs on, first: left to the resolver, `torch` means the multi-GB CUDA wheels.
    pip_install(venv, f"torch=={version('torch').split('+')[0]}")
    pip_install(venv, dist[1])
    return venv


@pytest.fixture(scope="module")
def college_math(tmp_path_factory) -> tuple[Path, Path]:
    """
    A `--data-dir` with a generated stand-in `college_math/test.jsonl` in the published layout and fields, and
    predictions that are right on the rows of the shipped subsample and wrong on every other row: scoring reaches
    100 % on 500 rows only by reading the shipped indices and mapping each to its line.
    """
    data_dir = tmp_path_factory.mktemp("benchmarks")
    (data_dir / "college_math").mkdir()
    with open(data_dir / "college_math" / "test.jsonl", "w") as f:
        for row in range(COLLEGE_MATH_ROWS):
            record = {
                "data_source": "college_math.stand_in",
                "question_number": f"exercise.{row}",
                "question": f"Compute ${row} + 7$.",
                "answer": f"${row + 7}$",
                "license": "CC0",
                "data_topic": "college_math.arithmetic",
            }
            f.write(json.dumps(record) + "\n")
    subsample = set(json.loads((REPO / "lambda_trl" / "eval" / "college_math_subsample.json").read_text()))
    predictions = data_dir / "predictions.jsonl"
    with open(predictions, "w") as f:
        for row in range(COLLEGE_MATH_ROWS):
            answer = row + 7 if row in subsample else -1
            f.write(json.dumps({"idx": row, "completions": [f"So the answer is \\boxed{{{answer}}}."]}) + "\n")
    return data_dir, predictions


def assert_runs_the_installed_package(venv: Path, cwd: Path) -> Path:
    """The installed package is the one imported, and `lambda-trl --help` answers; returns the package folder."""
    printed = run_installed(venv, "python", "-c", "import lambda_trl; print(lambda_trl.__file__)", cwd=cwd)
    package = Path(printed.strip()).resolve().parent
    assert package.is_relative_to(venv.resolve()) and not package.is_relative_to(REPO), package
    assert "usage: lambda-trl {train,eval}" in run_installed(venv, "lambda-trl", "--help", cwd=cwd)
    return package


def assert_scores_college_math(venv: Path, college_math, cwd: Path):
    data_dir, predictions = college_math
    arguments = ["eval", "score", "--benchmark", "college_math", "--predictions", predictions, "--data-dir", data_dir]
    result = json.loads(run_installed(venv, "lambda-trl", *arguments, "--allow-unverified", cwd=cwd))
    both = {"accuracy": 100.0, "n_predicted": 500}
    assert result == {
        "benchmark": "college_math",
        "metric": "pass@1",
        "grader": "math-verify",
        **both,
        "n": 500,
        "samples_per_row": 1,
        "graders": {"math-verify": both, "qwen-math": both},
    }


def test_sdist_and_wheel_ship_every_package_file(dist):
    sdist, wheel = dist
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    missing = {"sdist": package_files() - in_sdist, "wheel": package_files() - in_wheel}
    assert missing == {"sdist": set(), "wheel": set()}, "declare them in [tool.setuptools.package-data]"


def test_installed_wheel_runs_help_scoring_and_training(installed, college_math, tiny_model_dir, tmp_path):  # noqa: F811
    assert_runs_the_installed_package(installed, tmp_path)
    assert_scores_college_math(installed, college_math, tmp_path)

    recipe = write_recipe(tmp_path, tiny_model_dir, max_steps=1)
    run_installed(installed, "lambda-trl", "train", "--config", recipe, cwd=tmp_path)
    output = tmp_path / "run"
    assert (output / "model.safetensors").is_file() and (output / "training_curves.png").is_file()
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "lambda/value" in record] == [1]
    assert "## λ-GRPO" in (output / "README.md").read_text()


def interpreter(minor: str) -> Path:
    """pyenv's python<minor> (its shims run only the selected version), else one on PATH."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(root.glob(f"versions/{minor}.*/bin/python{minor}"))
    found = candidates[-1] if candidates else shutil.which(f"python{minor}")
    if found is None or subprocess.run([found, "--version"], capture_output=True).returncode != 0:
        pytest.skip(f"no Python {minor} found (pyenv install {minor}, or put python{minor} on PATH)")
    return Path(found)


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA")))
    lines = metadata.decode().splitlines()
    return [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]


def lowest_python() -> str:
    """The floor of pyproject.toml's requires-python (">=3.10" -> "3.10")."""
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert declared.startswith(">=") and "," not in declared, declared
    return declared.removeprefix(">=")


def is_torch_stack(name: str) -> bool:
    """torch and the CUDA libraries PyPI's Linux torch wheels pull in."""
    return name in ("torch", "triton") or name.startswith(("nvidia-", "cuda-"))


def assert_torch_free_part_runs(venv: Path, college_math, cwd: Path):
    package = assert_runs_the_installed_package(venv, cwd)
    run_installed(venv, "python", "-W", "error::SyntaxWarning", "-m", "compileall", "-q", "-f", package, cwd=cwd)
    assert_scores_college_math(venv, college_math, cwd)
    check = (
        "from lambda_trl.rewards import boxed_math_reward; "
        "print(boxed_math_reward(['\\\\boxed{4}', '\\\\boxed{5}', '4'], solution=['4', '4', '4']))"
    )
    assert run_installed(venv, "python", "-c", check, cwd=cwd).strip() == "[1.0, -0.5, -1.0]"


def test_lowest_python_resolves_and_installs_the_dependencies(dist, college_math, tmp_path):
    venv = tmp_path / "venv"
    run([interpreter(lowest_python()), "-m", "venv", "--without-pip", venv])
    plan_file = tmp_path / "plan.json"
    pip_install(venv, "--dry-run", "--ignore-installed", "--report", plan_file, dist[1])
    plan = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(plan_file.read_text())["install"]
    }
    for requirement in wheel_requirements(dist[1]):
        if requirement.marker is None:
            assert requirement.specifier.contains(plan[requirement.name], prereleases=True), (requirement, plan)
    pinned = [f"{name}=={v}" for name, v in plan.items() if name != "lambda-trl" and not is_torch_stack(name)]
    pip_install(venv, "--no-deps", *pinned, dist[1])
    assert_torch_free_part_runs(venv, college_math, tmp_path)
    # The resolver's TRL and transformers for this Python, installed (transformers imports without torch).
    check = (
        "from importlib.metadata import version; import transformers; print(version('trl'), transformers.__version__)"
    )
    assert run_installed(venv, "python", "-c", check, cwd=tmp_path).split() == [plan["trl"], plan["transformers"]]


@pytest.mark.parametrize("minor", OTHER_PYTHONS)
def test_torch_free_part_on_other_pythons(minor, dist, college_math, tmp_path):
    venv = tmp_path / "venv"
    run([interpreter(minor), "-m", "venv", "--without-pip", venv])
    requirements = wheel_requirements(dist[1])
    torch_free = [str(r) for r in requirements if r.name in TORCH_FREE_DEPENDENCIES and r.marker is None]
    assert len(torch_free) == len(TORCH_FREE_DEPENDENCIES), torch_free
    pip_install(venv, "--no-deps", dist[1])
    pip_install(venv, *torch_free)
    assert_torch_free_part_runs(venv, college_math, tmp_path)
