import os
from pathlib import Path

import pytest
from helpers import PUBLISHED_BENCHMARKS, serve_directory


os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """The tiny model and its tokenizer saved to a directory: a local `model_name_or_path`."""
    from lambda_trl.testing import tiny_model, tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny-model")
    tokenizer = tiny_tokenizer()
    tiny_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def download_all_benchmarks(mirror: str, cache: Path) -> Path:
    """Every registry benchmark downloaded from `mirror` into `cache` and verified against the registry's pins."""
    from lambda_trl.eval.benchmarks import BENCHMARKS
    from lambda_trl.eval.download import CACHE_ENV, MIRROR_ENV, benchmark_file

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MIRROR_ENV, mirror)
        patch.setenv(CACHE_ENV, str(cache))
        for benchmark in BENCHMARKS.values():
            assert benchmark_file(benchmark) == cache / benchmark.name / "test.jsonl"
    return cache


@pytest.fixture
def pinned_standins(monkeypatch):
    """The registry pinned to the committed stand-ins for this test (tests/benchmark_standins.py)."""
    from benchmark_standins import pin_standins

    pin_standins(monkeypatch)


@pytest.fixture
def benchmark_mirror(pinned_standins):
    """The stand-in benchmark files served as a mirror (LAMBDA_TRL_BENCHMARKS_MIRROR) from loopback."""
    from benchmark_standins import STANDIN_BENCHMARKS

    with serve_directory(STANDIN_BENCHMARKS) as url:
        yield url


@pytest.fixture
def benchmarks_dir(benchmark_mirror, tmp_path):
    """All eight stand-ins downloaded through the mirror into a fresh cache and verified: a valid --data-dir."""
    return download_all_benchmarks(benchmark_mirror, tmp_path / "benchmarks-cache")


@pytest.fixture(scope="session")
def published_benchmarks_dir(tmp_path_factory):
    """All eight published files downloaded through a loopback mirror and verified against the registry's pins."""
    if not (PUBLISHED_BENCHMARKS / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"the published benchmark files are not in {PUBLISHED_BENCHMARKS} (set LAMBDA_TRL_BENCHMARKS)")
    with serve_directory(PUBLISHED_BENCHMARKS) as url:
        return download_all_benchmarks(url, tmp_path_factory.mktemp("published-benchmarks-cache"))
