import os

import pytest


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


@pytest.fixture(scope="session")
def benchmark_mirror():
    """The published benchmark files served as a mirror (LAMBDA_TRL_BENCHMARKS_MIRROR) from loopback."""
    from helpers import PUBLISHED_BENCHMARKS, serve_directory

    if not (PUBLISHED_BENCHMARKS / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"the published benchmark files are not in {PUBLISHED_BENCHMARKS} (set LAMBDA_TRL_BENCHMARKS)")
    with serve_directory(PUBLISHED_BENCHMARKS) as url:
        yield url


@pytest.fixture(scope="session")
def benchmarks_dir(benchmark_mirror, tmp_path_factory):
    """All eight benchmarks downloaded through the mirror into a fresh cache and verified: a valid --data-dir."""
    from lambda_trl.eval.benchmarks import BENCHMARKS
    from lambda_trl.eval.download import CACHE_ENV, MIRROR_ENV, benchmark_file

    cache = tmp_path_factory.mktemp("benchmarks-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MIRROR_ENV, benchmark_mirror)
        patch.setenv(CACHE_ENV, str(cache))
        for benchmark in BENCHMARKS.values():
            assert benchmark_file(benchmark) == cache / benchmark.name / "test.jsonl"
    return cache
