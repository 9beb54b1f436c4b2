"""
Small-scale replication on CPU: GRPO, DAPO, λ-GRPO with the paper's SGD λ step, λ-GRPO with an AdamW λ step, and
GRPO-λ (eligibility traces, arXiv 2510.00194), trained on the embedded SmolLM2-135M-Instruct with identical seeds,
data, batch geometry and step count, then evaluated on held-out generated problems with `lambda-trl eval`.
Writes docs/results.md (paired comparisons with 95 % intervals, λ per seed, completion length, f's spread, the
commands, versions and machine), docs/results_curves.png and docs/results_lambda.png. `make replicate` runs it.

    python scripts/replicate.py --seeds 1,2,3,4 --steps 6 --eval-size 256

A rerun with the same --work-dir keeps the runs that finished. Paired differences are per seed (same seed = same
data order, initial model and first generation for every method); their 95 % interval is Student's t over seeds.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from scipy.stats import t as student_t

from lambda_trl.eval.scoring import read_predictions


ROOT = Path(__file__).resolve().parent.parent
RECIPE = "recipes/cpu/smollm2_135m_lambda_grpo.yaml"
LAMBDA = ["--token_preference", "lambda", "--loss_type", "dapo"]
METHODS = {
    "GRPO": ["--token_preference", "none", "--loss_type", "grpo"],
    "DAPO": ["--token_preference", "none", "--loss_type", "dapo"],
    # The paper's λ step: plain SGD, lr 0.1 (the recipe's). λ's gradient is ~1e-2 at this batch size.
    "λ-GRPO (SGD)": [*LAMBDA, "--lambda_optimizer", "sgd"],
    # The same λ learning rate with AdamW (no weight decay): steps of ~lr whatever the gradient's scale.
    "λ-GRPO (AdamW)": [*LAMBDA, "--lambda_optimizer", "adamw"],
    # The paper's setting (spec §2) on GRPO's aggregation, as in recipes/grpo-lambda/.
    "GRPO-λ": [
        *("--trainer", "grpo_lambda", "--token_preference", "none", "--loss_type", "grpo"),
        *("--trace_lambda", "0.99", "--trace_style", "both", "--trace_update", "trace"),
        *("--trace_advantage_clamp", "-0.1"),
    ],
}
SLUGS = {"GRPO": "GRPO", "DAPO": "DAPO", "λ-GRPO (SGD)": "lambda-GRPO-sgd", "λ-GRPO (AdamW)": "lambda-GRPO-adamw"}
SLUGS["GRPO-λ"] = "GRPO-lambda"
COLORS = dict(zip(METHODS, ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:red"]))
LAMBDA_METHODS = ["λ-GRPO (SGD)", "λ-GRPO (AdamW)"]
COMPARISONS = [
    ("λ-GRPO (AdamW)", "DAPO"),
    ("λ-GRPO (SGD)", "DAPO"),
    ("λ-GRPO (AdamW)", "λ-GRPO (SGD)"),
    ("GRPO", "DAPO"),
    ("GRPO-λ", "GRPO"),
]
CURVES = [
    ("reward", "reward"),
    ("accuracy", "accuracy"),
    ("lambda/value", "λ"),
    ("completions/mean_length", "mean length"),
    ("token_preference/f_std", "std of f"),
]


def paired_interval(differences: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of Student's t interval for the mean of paired differences; half-width inf for one pair."""
    mean = statistics.mean(differences)
    if len(differences) < 2:
        return mean, float("inf")
    quantile = student_t.ppf((1 + confidence) / 2, df=len(differences) - 1)
    return mean, quantile * statistics.stdev(differences) / len(differences) ** 0.5


def conclusion(method: str, baseline: str, differences: list[float]) -> str:
    """What the paired interval over these per-seed differences allows one to say, whatever its sign."""
    mean, half_width = paired_interval(differences)
    if len(differences) > 1 and len({round(d, 9) for d in differences}) == 1:
        # A t interval of zero width says the seeds agreed, not that the difference is known to that precision.
        return (
            f"{method} − {baseline}: {mean:+.1f} points on every one of the {len(differences)} seeds, so the t "
            "interval has zero width; that shows the seeds agree at this scale, it bounds nothing beyond them."
        )
    low, high = mean - half_width, mean + half_width
    interval = f"{mean:+.1f} points, 95 % interval [{low:+.1f}, {high:+.1f}]"
    if low > 0:
        return f"{method} beats {baseline} ({interval}): the gain is real at this scale, between {low:.1f} and {high:.1f} points."
    if high < 0:
        return f"{method} is worse than {baseline} ({interval}): a loss of between {-high:.1f} and {-low:.1f} points."
    return (
        f"{method} − {baseline}: {interval}, which includes 0: this run cannot tell them apart; it rules out (at "
        f"95 %) a gain larger than {high:.1f} points and a loss larger than {-low + 0.0:.1f} points."
    )


def run(command: list[str], log_path: Path) -> float:
    """Runs `command`, its output in `log_path`; returns its wall time in seconds."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def write_held_out(directory: Path, size: int):
    from lambda_trl.data import arithmetic_problems

    target = directory / "arithmetic" / "test.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    problems = arithmetic_problems(size, seed=10_000, max_operand=10, instruction_braces="single")
    with open(target, "w") as f:
        for row in problems:
            f.write(
                json.dumps({"question": row["prompt"][-1]["content"].split("\n")[0], "answer": row["solution"]}) + "\n"
            )


def eval_command(cli: list[str], model: str, work: Path, output: Path, label: str | None = None) -> list[str]:
    command = [*cli, "eval", "--model", model, "--benchmarks", "arithmetic", "--data-dir", str(work / "data")]
    command += ["--output-dir", str(output), "--max-new-tokens", "40", "--batch-size", "16", "--one-shot"]
    return command + (["--label", label] if label else [])


def run_summary(output: Path, records: list[dict], accuracy: float, seconds: float) -> dict:
    """
    One run's figures: held-out accuracy, its greedy held-out completions, λ's trajectory (λ before each step, then
    the saved final λ), completion length and f's spread over training.
    """
    trajectory = [r["lambda/value"] for r in records if "lambda/value" in r]
    if trajectory:
        trajectory.append(json.loads((output / "token_preference_lambda.json").read_text())["lambda"])
    steps = [r for r in records if "reward" in r]

    def mean_of(key):
        values = [r[key] for r in steps if key in r]
        return statistics.mean(values) if values else None

    return {
        "accuracy": accuracy,
        "completions": read_predictions(output / "eval" / "arithmetic.predictions.jsonl"),
        "lambda": trajectory,
        "mean_length": mean_of("completions/mean_length"),
        "f_std": mean_of("token_preference/f_std"),
        "f_max": max((r["token_preference/f_max"] for r in steps if "token_preference/f_max" in r), default=None),
        "seconds": seconds,
    }


def mean_curve(runs: list[list[dict]], key: str):
    steps = sorted({r["step"] for records in runs for r in records if key in r})
    points = []
    for step in steps:
        values = [r[key] for records in runs for r in records if r["step"] == step and key in r]
        points.append((step, statistics.mean(values)))
    return points


def plot_curves(curves_by_method: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(CURVES), figsize=(3.3 * len(CURVES), 3))
    for axis, (key, label) in zip(axes, CURVES):
        for method, runs in curves_by_method.items():
            points = mean_curve(runs, key)
            if points:
                style = "--" if method == "λ-GRPO (SGD)" else "-"  # DAPO and SGD λ-GRPO overlap while λ stays near 0
                axis.plot(*zip(*points), style, marker="o", markersize=3, label=method, color=COLORS[method])
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_lambda(summaries: dict, seeds: list[int], path: Path):
    """λ after each step, one line per seed, SGD and AdamW side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for axis, method in zip(axes, LAMBDA_METHODS):
        for seed, summary in zip(seeds, summaries[method]):
            axis.plot(range(len(summary["lambda"])), summary["lambda"], marker="o", markersize=3, label=f"seed {seed}")
        axis.axhline(0.0, color="gray", linewidth=0.8)
        axis.set_title(f"λ under {method}", fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("λ after this many steps")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def same_completion(runs: list[dict], baseline_runs: list[dict]) -> float:
    """% of held-out problems whose greedy completion is identical under both methods, mean over the paired seeds."""
    shares = []
    for run, baseline in zip(runs, baseline_runs):
        same = sum(run["completions"].get(idx) == completions for idx, completions in baseline["completions"].items())
        shares.append(100 * same / len(baseline["completions"]))
    return statistics.mean(shares)


def figure_or_dash(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3,4")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--eval-size", type=int, default=256)
    parser.add_argument("--work-dir", default="outputs/replicate")
    parser.add_argument("--output", default="docs/results.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work_dir)  # relative to the repository root, so the recorded commands are portable
    (ROOT / work).mkdir(parents=True, exist_ok=True)
    write_held_out(ROOT / work / "data", args.eval_size)
    cli = [sys.executable, "-m", "lambda_trl.cli"]
    started = time.perf_counter()
    commands, summaries, curves = [], {m: [] for m in METHODS}, {m: [] for m in METHODS}
    for seed in seeds:
        for method, flags in METHODS.items():
            name = f"{SLUGS[method]}-seed{seed}"
            output = work / name
            train = [*cli, "train", "--config", RECIPE, *flags, "--seed", str(seed), "--max_steps", str(args.steps)]
            train += ["--output_dir", str(output), "--plot", "false"]
            evaluate = eval_command(cli, str(output), work, output / "eval", method)
            timing = ROOT / output / "run_seconds.json"
            if not (ROOT / output / "eval" / "results.json").is_file():  # a rerun resumes: finished runs are kept
                print(f"[{method}, seed {seed}] training ...", flush=True)
                seconds = run(train, ROOT / work / f"{name}.train.log")
                seconds += run(evaluate, ROOT / work / f"{name}.eval.log")
                timing.write_text(json.dumps(seconds))
            result = json.loads((ROOT / output / "eval" / "results.json").read_text())["results"]["arithmetic"]
            records = [json.loads(line) for line in (ROOT / output / "metrics.jsonl").read_text().splitlines()]
            summary = run_summary(ROOT / output, records, result["accuracy"], json.loads(timing.read_text()))
            summaries[method].append(summary)
            curves[method].append(records)
            print(f"[{method}, seed {seed}] held-out accuracy {result['accuracy']:.1f}%", flush=True)
            commands += [shlex.join(["lambda-trl", *train[3:]]), shlex.join(["lambda-trl", *evaluate[3:]])]
    base = ROOT / args.output
    base.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(curves, base.with_name("results_curves.png"))
    plot_lambda(summaries, seeds, base.with_name("results_lambda.png"))
    base_output = work / "base-eval"
    if not (ROOT / base_output / "results.json").is_file():
        run(eval_command(cli, "embedded:SmolLM2-135M-Instruct", work, base_output), ROOT / work / "base.eval.log")
    base_accuracy = json.loads((ROOT / base_output / "results.json").read_text())["results"]["arithmetic"]["accuracy"]
    (ROOT / work / "summary.json").write_text(json.dumps({"seeds": seeds, "runs": summaries}, indent=1))
    wall_minutes = (time.perf_counter() - started) / 60
    base.write_text("\n".join(report(args, seeds, summaries, base_accuracy, commands, wall_minutes)))
    print(f"wrote {base}")


def report(args, seeds, summaries, base_accuracy, commands, wall_minutes) -> list[str]:
    point = 100 / args.eval_size
    per_seed = lambda method, key, fmt: ", ".join(figure_or_dash(s[key], fmt) for s in summaries[method])  # noqa: E731
    lines = [
        "# Small-scale replication on CPU: GRPO, DAPO, λ-GRPO (SGD and AdamW λ step), GRPO-λ",
        "",
        f"Generated by `make replicate` (`scripts/replicate.py --seeds {args.seeds} --steps {args.steps} "
        f"--eval-size {args.eval_size}`) on {time.strftime('%Y-%m-%d')}. Model: the embedded SmolLM2-135M-Instruct; "
        f"training data: generated arithmetic and word problems (`{RECIPE}`, one worked example turn); evaluation: "
        f"{args.eval_size} held-out generated problems (another seed), greedy, same prompt, scored by the training "
        "reward's checker. All methods share seeds, data, batch geometry (4 prompts × 4 completions per step), "
        "learning rate and step count; only the loss differs. λ-GRPO (SGD) is the paper's λ step (plain SGD, "
        "lr 0.1); λ-GRPO (AdamW) is the same λ learning rate with AdamW and no weight decay "
        "(`lambda_optimizer: adamw`); GRPO-λ: λ = 0.99, `both` traces, ε-trace, negative advantages clamped at −0.1, "
        "on GRPO's aggregation. Nothing was tuned for one method.",
        "",
        "## Held-out accuracy",
        "",
        "| method | accuracy (%), mean ± std over seeds | per seed | final λ per seed | mean completion length | "
        "std of f within the batch (max f) |",
        "|---|---|---|---|---|---|",
        f"| SmolLM2-135M-Instruct (no training) | {base_accuracy:.1f} | – | – | – | – |",
    ]
    for method, runs in summaries.items():
        accuracies = [s["accuracy"] for s in runs]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        final_lambda = ", ".join(f"{s['lambda'][-1]:+.3f}" for s in runs) if runs[0]["lambda"] else "–"
        lengths = statistics.mean(s["mean_length"] for s in runs)
        f_spread = "–"
        if runs[0]["f_std"] is not None:
            f_spread = f"{statistics.mean(s['f_std'] for s in runs):.4f} ({max(s['f_max'] for s in runs):.3f})"
        lines.append(
            f"| {method} | {statistics.mean(accuracies):.1f} ± {spread:.1f} | {per_seed(method, 'accuracy', '.1f')} "
            f"| {final_lambda} | {lengths:.1f} | {f_spread} |"
        )
    lines += [
        "",
        f"One held-out problem is {point:.2f} points. Final λ is the value after the last step (λ = 0 is DAPO). The "
        "length is the mean over training steps of the mean completion length; f's spread is the mean over steps of "
        "the standard deviation of the token-preference weights f within the batch (f ≡ 1 for DAPO).",
        "",
        "## Paired differences (by seed, 95 % Student-t interval over seeds)",
        "",
        "| comparison | per seed (points) | mean | 95 % interval | half-width | same completion (% of problems) |",
        "|---|---|---|---|---|---|",
    ]
    sentences = []
    for method, baseline in COMPARISONS:
        differences = [a["accuracy"] - b["accuracy"] for a, b in zip(summaries[method], summaries[baseline])]
        mean, half_width = paired_interval(differences)
        lines.append(
            f"| {method} − {baseline} | {', '.join(f'{d:+.1f}' for d in differences)} | {mean:+.1f} | "
            f"[{mean - half_width:+.1f}, {mean + half_width:+.1f}] | {half_width:.1f} | "
            f"{same_completion(summaries[method], summaries[baseline]):.1f} |"
        )
        sentences.append(f"- {conclusion(method, baseline, differences)}")
    runtimes = [s["seconds"] / 60 for runs in summaries.values() for s in runs]
    lines += [
        "",
        *sentences,
        "",
        f"With {len(seeds)} seeds the interval is the mean ± t(0.975, {len(seeds) - 1}) · sd / √{len(seeds)} of the "
        "per-seed differences: it covers seed-to-seed variation of training and the sampling error of the held-out "
        "set together. Same completion: the share of held-out problems on which both methods generated the identical "
        "greedy completion, mean over seeds.",
        "",
        "![λ per step, every seed: SGD (the paper's step) and AdamW](results_lambda.png)",
        "",
        "![training curves: mean over seeds](results_curves.png)",
        "",
        "## Commands",
        "",
        "```bash",
        *commands,
        "```",
        "",
        "## Software and machine",
        "",
        f"- Python {platform.python_version()}, torch {version('torch')}, trl {version('trl')}, transformers "
        f"{version('transformers')}, lambda-trl {version('lambda-trl')}",
        f"- {platform.platform()}, {os.cpu_count()} CPU cores, no GPU; one run (training + evaluation) took "
        f"{statistics.mean(runtimes):.1f} min on average ({min(runtimes):.1f}–{max(runtimes):.1f}); this invocation "
        f"ran {wall_minutes:.0f} min (runs kept from an earlier invocation are not re-timed).",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
