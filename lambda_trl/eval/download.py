"""
The benchmark files, fetched on first use, verified and cached.

Each published benchmark is pinned to one file at one commit (`Benchmark.source_url`) with its SHA-256 and row
count. Without `--data-dir`, the file is downloaded once (with a progress bar) into the cache, verified, and read from
there afterwards without network:

- cache: `$LAMBDA_TRL_BENCHMARKS_CACHE`, else `$LAMBDA_TRL_CACHE/benchmarks`, else `~/.cache/lambda_trl/benchmarks`;
- mirror: `$LAMBDA_TRL_BENCHMARKS_MIRROR` replaces GitHub for clusters without GitHub access; it serves
  `<mirror>/<name>/test.jsonl` (any `http(s)://` or `file://` base URL).

A `--data-dir` copy is checked against the same hashes; `allow_unverified` accepts a modified copy on purpose (with a
warning naming both hashes). A download that does not match is never cached.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from ..models import cache_dir


MIRROR_ENV = "LAMBDA_TRL_BENCHMARKS_MIRROR"
CACHE_ENV = "LAMBDA_TRL_BENCHMARKS_CACHE"
DOWNLOAD_TIMEOUT_SECONDS = 60


def benchmarks_cache_dir() -> Path:
    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else cache_dir() / "benchmarks"


def file_fingerprint(path: Path) -> tuple[str, int]:
    """SHA-256 and the number of non-empty lines (one JSON row each)."""
    digest, rows = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for line in f:
            digest.update(line)
            rows += bool(line.strip())
    return digest.hexdigest(), rows


def _mismatch(benchmark, source, sha256: str, rows: int) -> str | None:
    if sha256 == benchmark.sha256 and rows == benchmark.rows:
        return None
    return (
        f"{source} is not the published {benchmark.name} file: SHA-256 {sha256} ({rows} rows), expected "
        f"{benchmark.sha256} ({benchmark.rows} rows) from {benchmark.source_url}"
    )


def _download_url(benchmark) -> str:
    mirror = os.environ.get(MIRROR_ENV)
    return f"{mirror.rstrip('/')}/{benchmark.name}/test.jsonl" if mirror else benchmark.source_url


def _download(benchmark, target: Path):
    from tqdm.auto import tqdm

    url = _download_url(benchmark)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial_path = None
    try:  # whatever happens, no partial file stays in the cache
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".download-", delete=False) as partial:
            partial_path = Path(partial.name)
            try:
                response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS)
            except (urllib.error.URLError, OSError) as error:
                raise FileNotFoundError(
                    f"Could not download the {benchmark.name} benchmark from {url} ({error}). Offline? Pass "
                    f"--data-dir DIR with {benchmark.name}/test.jsonl, put the file at {target}, or set {MIRROR_ENV} "
                    "to a reachable copy."
                ) from error
            with response:
                announced = response.headers.get("Content-Length")
                size = int(announced) if announced and announced.isdigit() else None
                with tqdm(total=size, unit="B", unit_scale=True, desc=f"{benchmark.name} (download)") as progress:
                    while True:
                        try:
                            chunk = response.read(1 << 16)
                        except (OSError, http.client.HTTPException) as error:
                            raise FileNotFoundError(
                                f"The download of {url} was interrupted ({error!r}); nothing cached, run again."
                            ) from error
                        if not chunk:
                            break
                        partial.write(chunk)
                        progress.update(len(chunk))
        received = partial_path.stat().st_size
        if size is not None and received != size:
            raise FileNotFoundError(
                f"The download of {url} was cut off after {received} of {size} bytes; nothing cached, run again."
            )
        problem = _mismatch(benchmark, url, *file_fingerprint(partial_path))
        if problem:
            raise ValueError(f"Downloaded file rejected, nothing cached: {problem}.")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial_path, 0o666 & ~umask)  # temporary files are owner-only; a shared cache is not
        os.replace(partial_path, target)
        partial_path = None
    finally:
        if partial_path is not None:
            partial_path.unlink(missing_ok=True)


def benchmark_file(benchmark, data_dir: str | os.PathLike | None = None, allow_unverified: bool = False) -> Path:
    """The verified `<name>/test.jsonl` of `benchmark`: from `data_dir` if given, else from the cache (downloaded once)."""
    if data_dir is not None:
        path = Path(data_dir) / benchmark.name / "test.jsonl"
        if not path.is_file():
            hint = " (or leave out --data-dir to download it)" if benchmark.source_url else ""
            raise FileNotFoundError(f"{path} not found: --data-dir must hold <benchmark>/test.jsonl files{hint}.")
        if benchmark.sha256 is None:
            return path
        problem = _mismatch(benchmark, path, *file_fingerprint(path))
        if problem and not allow_unverified:
            raise ValueError(
                f"{problem}. To evaluate on this copy anyway, pass --allow-unverified (lambda-trl eval) or "
                "--eval_allow_unverified true (lambda-trl train)."
            )
        if problem:
            warnings.warn(f"Evaluating on an unverified copy: {problem}.", stacklevel=2)
        return path
    if benchmark.source_url is None:
        raise FileNotFoundError(f"The {benchmark.name} benchmark has no published file: pass --data-dir.")
    path = benchmarks_cache_dir() / benchmark.name / "test.jsonl"
    if path.is_file() and _mismatch(benchmark, path, *file_fingerprint(path)) is None:
        return path
    # Missing, or a cached copy that was changed since: fetch the published file again.
    _download(benchmark, path)
    return path
