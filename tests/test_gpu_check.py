"""The GPU kit's CPU dry run: every part runs its code path at toy size and writes a report that says it is no GPU
evidence; without CUDA the real run refuses. Its time budget: a part that does not fit is skipped and reported so, the
long run sizes itself to the time left (on a fake clock, in milliseconds)."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


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


def load_kit():
    spec = importlib.util.spec_from_file_location("gpu_check", KIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def fake_kit(kit, tmp_path, minutes, clock):
    model = kit.Model("model", "a test model", None)
    return kit.Kit(False, kit.GPU, model, tmp_path, kit.Budget(minutes, clock))


def test_a_part_whose_estimate_exceeds_the_time_left_is_skipped_and_later_ones_still_run(tmp_path):
    kit = load_kit()
    clock = FakeClock()
    ran = []

    def part(name, estimate, takes):
        def run(context, progress):
            ran.append(name)
            clock.now += takes
            return {"passed": True}

        return kit.Part(name, run, lambda result: [], lambda profile: estimate)

    parts = [part("first", 100, 120), part("too_long", 200, 0), part("fits", 150, 60)]
    results, writes = {}, []
    kit.run_parts(parts, fake_kit(kit, tmp_path, 5, clock), results, lambda: writes.append(dict(results)))

    assert ran == ["first", "fits"]  # 180 s were left for too_long's 200
    assert results["too_long"] == {"skipped": "skipped for the budget: needs ~3.3 min, 3.0 min left"}
    assert results["first"]["minutes"] == 2.0 and results["fits"]["estimate_minutes"] == 2.5
    assert len(writes) == 3  # the report is rewritten after every part


def test_the_report_names_every_part_skipped_for_the_budget(tmp_path):
    kit = load_kit()
    context = fake_kit(kit, tmp_path, 0.1, FakeClock())  # 6 s: less than any part's estimate
    results = {}
    kit.run_parts(kit.PARTS, context, results, lambda: None)

    report = kit.render_report(results, context, ["- device: test"])
    assert report.startswith("# GPU verification") and "- time budget: 0.1 min" in report
    for part in kit.PARTS:
        assert f"## {part.name}\n\nskipped for the budget: needs ~" in report


def test_the_long_run_takes_as_many_steps_as_the_time_left_allows(tmp_path, monkeypatch):
    kit = load_kit()
    arrivals = [20.0, 22.0, 24.0]  # the first step logged after 20 s of start-up, then 2 s per step
    assert kit.planned_steps(arrivals, 60, cap=500) == 3 + 18
    assert kit.planned_steps(arrivals, 120, cap=500) == 3 + 48
    assert kit.planned_steps(arrivals, 10_000, cap=500) == 500
    assert kit.planned_steps(arrivals[:2], 60, cap=500) == 500  # nothing measured yet

    def fake_training_run(context, name, steps, method="lambda", stop=None, on_step=None):
        logged = []
        while len(logged) < steps and not (stop and stop(logged)):
            logged.append(20.0 + 2.0 * len(logged))
        calls.append((method, len(logged)))
        return {"steps": len(logged), "reward": [0.0] * len(logged), "lambda": [0.1] * len(logged)}

    monkeypatch.setattr(kit, "training_run", fake_training_run)
    steps = {}
    for minutes in (5, 10):
        calls = []
        kit.run_long_run(fake_kit(kit, tmp_path, minutes, FakeClock()), lambda partial: None)
        assert calls[1] == ("dapo", calls[0][1])  # DAPO takes as many steps as λ-GRPO did
        steps[minutes] = calls[0][1]
    # Half of (budget - 10 s) each: λ-GRPO's steps end by 145 s and 295 s after its start.
    assert steps == {5: 63, 10: 138}


def test_a_process_that_outlasts_the_budget_is_stopped_with_what_it_started(tmp_path):
    kit = load_kit()
    context = kit.Kit(True, kit.DRY_RUN, None, tmp_path, kit.Budget((kit.FINISH_SECONDS + 1) / 60))
    child = tmp_path / "child.pid"
    process = kit.run_process(["bash", "-c", f"sleep 60 & echo $! > {child}; wait"], context, "sleeper")

    assert process.stopped == "budget" and process.seconds < 5
    with pytest.raises(RuntimeError, match="the budget ran out"):
        process.result()
    status = Path(f"/proc/{child.read_text().strip()}/stat")
    deadline = time.monotonic() + 5
    while status.exists() and status.read_text().split()[2] != "Z" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not status.exists() or status.read_text().split()[2] == "Z"  # the launched child is gone too
