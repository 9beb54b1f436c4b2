import contextlib
import functools
import os
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

# The eight published files as they are in the repositories the registry pins (see shared/benchmarks/README.md).
PUBLISHED_BENCHMARKS = Path(
    os.environ.get("LAMBDA_TRL_BENCHMARKS", Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory):
    """An HTTP server on 127.0.0.1 (ephemeral port) serving `directory`; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def benchmark_mirror():
    """The published benchmark files served as a mirror (LAMBDA_TRL_BENCHMARKS_MIRROR) from loopback."""
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
