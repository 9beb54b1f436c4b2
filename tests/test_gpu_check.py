"""The GPU kit's CPU dry run: every part runs its code path at toy size and writes a report that says it is no GPU
evidence; without CUDA the real run refuses."""

import json
import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "scripts" / "gpu_check.py"


def run_kit(*arguments, timeout=900):
    environment = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(KIT), *arguments], capture_output=True, text=True, timeout=timeout, env=environment
    )


def test_dry_run_runs_every_part_and_labels_its_report(tmp_path):
    gpu_report = ROOT / "docs" / "gpu.md"
    before = gpu_report.read_text() if gpu_report.exists() else None
    completed = run_kit("--dry-run", "--output-dir", str(tmp_path))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "5/5 parts passed" in completed.stdout

    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# GPU kit dry run (CPU, toy sizes: NOT GPU numbers)")
    assert "no CUDA" in report and "failed" not in report and "not run" not in report
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"bf16", "engines", "overhead", "traces", "long_run"}
    assert results["bf16"]["checks"] == dict.fromkeys(results["bf16"]["checks"], True)
    engines = results["engines"]["engines"]
    assert [engines[name]["engine"] for name in ("zero2", "zero3")] == ["DEEPSPEED", "DEEPSPEED"]
    assert engines["zero3"]["zero_stage"] == 3 and all(e["matches_ddp"] for e in engines.values())
    assert results["overhead"]["device"] == "cpu" and len(results["overhead"]["time_ratio"]) == 2
    assert {"recent", "both", "early", "forward_backward"} <= set(results["traces"]["rows"][0])
    assert results["long_run"]["runs"]["lambda"]["lambda"][-1] != 0.0
    assert (tmp_path / "gpu_long_run.png").stat().st_size > 10_000
    # A dry run never writes the GPU evidence file.
    assert (gpu_report.read_text() if gpu_report.exists() else None) == before


def test_without_cuda_the_real_run_refuses():
    completed = run_kit("--parts", "traces")
    assert completed.returncode == 2 and "no CUDA device" in completed.stderr and "--dry-run" in completed.stderr
