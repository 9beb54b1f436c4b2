"""Benchmark files fetched on first use from a loopback mirror: verified, cached, reused without network; tampered or
unreachable sources fail clearly and cache nothing. The mirror serves the committed stand-ins, with the registry pinned
to them; the published files, where present, are checked against the registry's own pins."""

import hashlib
import json
import os
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from benchmark_standins import STANDIN_BENCHMARKS
from helpers import serve_directory

from lambda_trl.cli import main
from lambda_trl.eval.benchmarks import BENCHMARKS
from lambda_trl.eval.download import CACHE_ENV, MIRROR_ENV, benchmark_file


def unreachable_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed once we return: connections are refused


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def cached_files(cache):
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def test_registry_pins_every_benchmark():
    for benchmark in BENCHMARKS.values():
        assert benchmark.source_url.endswith(f"/{benchmark.name}/test.jsonl")
        assert "/a45202bd16f1ec06f433442dc1152d0074773465/" in benchmark.source_url or (
            benchmark.name == "math500" and "/cf1c7858bfc145a27aa733e75d930d34f0d318a6/" in benchmark.source_url
        )
        assert len(benchmark.sha256) == 64 and benchmark.rows > 0


def test_registry_pins_the_published_files(published_benchmarks_dir):
    # The fixture downloaded all eight through a loopback mirror and verified them; the pins are those files'.
    for benchmark in BENCHMARKS.values():
        data = (published_benchmarks_dir / benchmark.name / "test.jsonl").read_bytes()
        assert hashlib.sha256(data).hexdigest() == benchmark.sha256
        assert sum(1 for line in data.splitlines() if line.strip()) == benchmark.rows


def test_download_verify_cache_and_reuse_without_network(benchmark_mirror, cache, monkeypatch, capsys):
    monkeypatch.setenv(MIRROR_ENV, benchmark_mirror)
    gsm8k = BENCHMARKS["gsm8k"]
    path = benchmark_file(gsm8k)
    assert path == cache / "gsm8k" / "test.jsonl"
    served = (STANDIN_BENCHMARKS / "gsm8k" / "test.jsonl").read_bytes()
    assert path.read_bytes() == served and hashlib.sha256(served).hexdigest() == gsm8k.sha256
    assert "gsm8k (download)" in capsys.readouterr().err  # the progress bar
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # readable by others sharing the cache
    assert cached_files(cache) == ["gsm8k/test.jsonl"]

    monkeypatch.setenv(MIRROR_ENV, unreachable_url())
    assert benchmark_file(gsm8k) == path
    assert len(gsm8k.load_rows()) == gsm8k.rows == len(served.splitlines())


def test_a_changed_cache_entry_is_fetched_again(benchmark_mirror, cache, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, benchmark_mirror)
    path = benchmark_file(BENCHMARKS["gsm8k"])
    path.write_text(path.read_text()[:500])  # truncated on disk
    assert (
        benchmark_file(BENCHMARKS["gsm8k"]).read_bytes() == (STANDIN_BENCHMARKS / "gsm8k" / "test.jsonl").read_bytes()
    )


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_bad_download_names_the_file_and_hashes_and_caches_nothing(
    benchmark_mirror, tmp_path, cache, monkeypatch, damage
):
    text = (STANDIN_BENCHMARKS / "gsm8k" / "test.jsonl").read_text()
    (tmp_path / "mirror" / "gsm8k").mkdir(parents=True)
    bad = text.replace("####", "###", 1) if damage == "tampered" else text[: len(text) // 2]
    (tmp_path / "mirror" / "gsm8k" / "test.jsonl").write_text(bad)
    with serve_directory(tmp_path / "mirror") as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        with pytest.raises(ValueError) as error:
            benchmark_file(BENCHMARKS["gsm8k"])
    message = str(error.value)
    assert "nothing cached" in message and "gsm8k/test.jsonl" in message
    assert hashlib.sha256(bad.encode()).hexdigest() in message and BENCHMARKS["gsm8k"].sha256 in message
    assert cached_files(cache) == []


class CutOffHandler(BaseHTTPRequestHandler):
    """Announces the whole file, sends half of it and hangs up."""

    def do_GET(self):
        data = (STANDIN_BENCHMARKS / "gsm8k" / "test.jsonl").read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def test_a_cut_off_download_is_reported_as_such_and_leaves_nothing(benchmark_mirror, cache, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), CutOffHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(FileNotFoundError, match="interrupted|cut off"):
            benchmark_file(BENCHMARKS["gsm8k"])
    finally:
        server.shutdown()
        server.server_close()
    assert cached_files(cache) == []


def test_offline_without_cache_says_what_to_do(cache, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, unreachable_url())
    with pytest.raises(FileNotFoundError) as error:
        benchmark_file(BENCHMARKS["gsm8k"])
    message = str(error.value)
    assert "--data-dir" in message and str(cache / "gsm8k" / "test.jsonl") in message and MIRROR_ENV in message
    assert cached_files(cache) == []


def test_a_file_url_mirror(pinned_standins, cache, monkeypatch):
    # A shared filesystem on a cluster without GitHub access.
    monkeypatch.setenv(MIRROR_ENV, STANDIN_BENCHMARKS.as_uri())
    assert len(BENCHMARKS["amc23"].load_rows()) == BENCHMARKS["amc23"].rows
    assert cached_files(cache) == ["amc23/test.jsonl"]


def test_a_data_dir_copy_is_checked_against_the_pinned_hash(benchmarks_dir, tmp_path):
    copy = tmp_path / "copy" / "amc23"
    copy.mkdir(parents=True)
    lines = (benchmarks_dir / "amc23" / "test.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["answer"] = 1.0  # a "fixed" answer: results on it are not comparable
    (copy / "test.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    assert len(BENCHMARKS["amc23"].load_rows(benchmarks_dir)) == len(lines)
    with pytest.raises(ValueError, match="--allow-unverified") as error:
        BENCHMARKS["amc23"].load_rows(tmp_path / "copy")
    assert BENCHMARKS["amc23"].sha256 in str(error.value)
    with pytest.warns(UserWarning, match="unverified copy"):
        rows = BENCHMARKS["amc23"].load_rows(tmp_path / "copy", allow_unverified=True)
    assert rows[0]["answer"] == "1"


def test_score_command_fetches_the_file_itself(benchmark_mirror, cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(MIRROR_ENV, benchmark_mirror)
    predictions = tmp_path / "pred.jsonl"
    predictions.write_text(json.dumps({"idx": 0, "completions": ["\\boxed{1}"]}) + "\n")
    assert main(["eval", "score", "--benchmark", "aime24", "--predictions", str(predictions)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["benchmark"] == "aime24" and result["n"] == BENCHMARKS["aime24"].rows
    assert cached_files(cache) == ["aime24/test.jsonl"]
