"""
Small-scale replication on CPU: GRPO, DAPO, λ-GRPO and GRPO-λ (eligibility traces, arXiv 2510.00194) trained on the
embedded SmolLM2-135M-Instruct with identical seeds, data, batch geometry and step count, then evaluated on held-out
generated problems with `lambda-trl eval`.
Writes docs/results.md (table, curves, commands, versions, machine). `make replicate` runs it.

    python scripts/replicate.py --seeds 1,2,3 --steps 8 --eval-size 64
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


ROOT = Path(__file__).resolve().parent.parent
RECIPE = "recipes/cpu/smollm2_135m_lambda_grpo.yaml"
METHODS = {
    "GRPO": ["--token_preference", "none", "--loss_type", "grpo"],
    "DAPO": ["--token_preference", "none", "--loss_type", "dapo"],
    "λ-GRPO": ["--token_preference", "lambda", "--loss_type", "dapo"],
    # The paper's setting (spec §2) on GRPO's aggregation, as in recipes/grpo-lambda/.
    "GRPO-λ": [
        *("--trainer", "grpo_lambda", "--token_preference", "none", "--loss_type", "grpo"),
        *("--trace_lambda", "0.99", "--trace_style", "both", "--trace_update", "trace"),
        *("--trace_advantage_clamp", "-0.1"),
    ],
}
CURVES = [
    ("reward", "reward"),
    ("accuracy", "accuracy"),
    ("lambda/value", "λ"),
    ("completions/mean_length", "mean length"),
    ("entropy", "entropy"),
]


def run(command: list[str], log_path: Path):
    with open(log_path, "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)


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


def mean_curve(runs: list[list[dict]], key: str):
    steps = sorted({r["step"] for records in runs for r in records if key in r})
    points = []
    for step in steps:
        values = [r[key] for records in runs for r in records if r["step"] == step and key in r]
        points.append((step, statistics.mean(values)))
    return points


def plot(curves_by_method: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(METHODS, ["tab:blue", "tab:orange", "tab:green", "tab:red"]))  # the same color in every panel
    figure, axes = plt.subplots(1, len(CURVES), figsize=(3.3 * len(CURVES), 3))
    for axis, (key, label) in zip(axes, CURVES):
        for method, runs in curves_by_method.items():
            points = mean_curve(runs, key)
            if points:
                style = "--" if method == "λ-GRPO" else "-"  # DAPO and λ-GRPO can overlap while λ stays near 0
                axis.plot(*zip(*points), style, marker="o", markersize=3, label=method, color=colors[method])
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--eval-size", type=int, default=64)
    parser.add_argument("--work-dir", default="outputs/replicate")
    parser.add_argument("--output", default="docs/results.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work_dir)  # relative to the repository root, so the recorded commands are portable
    (ROOT / work).mkdir(parents=True, exist_ok=True)
    write_held_out(ROOT / work / "data", args.eval_size)
    cli = [sys.executable, "-m", "lambda_trl.cli"]
    commands, accuracies, curves = [], {m: [] for m in METHODS}, {m: [] for m in METHODS}
    for seed in seeds:
        for method, flags in METHODS.items():
            name = f"{method.replace('λ', 'lambda')}-seed{seed}"
            output = work / name
            train = cli + [
                "train",
                "--config",
                RECIPE,
                *flags,
                "--seed",
                str(seed),
                "--max_steps",
                str(args.steps),
                "--output_dir",
                str(output),
                "--plot",
                "false",
            ]
            evaluate = cli + [
                "eval",
                "--model",
                str(output),
                "--benchmarks",
                "arithmetic",
                "--data-dir",
                str(work / "data"),
                "--output-dir",
                str(output / "eval"),
                "--max-new-tokens",
                "40",
                "--batch-size",
                "16",
                "--one-shot",
                "--label",
                method,
            ]
            if not (ROOT / output / "eval" / "results.json").is_file():  # a rerun resumes: finished runs are kept
                print(f"[{method}, seed {seed}] training ...", flush=True)
                run(train, ROOT / work / f"{name}.train.log")
                run(evaluate, ROOT / work / f"{name}.eval.log")
            result = json.loads((ROOT / output / "eval" / "results.json").read_text())["results"]["arithmetic"]
            accuracies[method].append(result["accuracy"])
            metrics = (ROOT / output / "metrics.jsonl").read_text().splitlines()
            curves[method].append([json.loads(line) for line in metrics])
            print(f"[{method}, seed {seed}] held-out accuracy {result['accuracy']:.1f}%", flush=True)
            commands += [shlex.join(["lambda-trl", *train[3:]]), shlex.join(["lambda-trl", *evaluate[3:]])]
    base = ROOT / args.output
    base.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, base.with_name("results_curves.png"))
    base_before = run_base(cli, work)
    lines = [
        "# Small-scale replication on CPU: GRPO vs DAPO vs λ-GRPO vs GRPO-λ",
        "",
        f"Generated by `make replicate` (`scripts/replicate.py --seeds {args.seeds} --steps {args.steps} "
        f"--eval-size {args.eval_size}`) on {time.strftime('%Y-%m-%d')}. Model: the embedded SmolLM2-135M-Instruct; "
        f"training data: generated arithmetic and word problems (`{RECIPE}`, one worked example turn); evaluation: "
        f"{args.eval_size} held-out generated problems (another seed), greedy, same prompt, scored by the training "
        "reward's checker. All methods share seeds, data, batch geometry (4 prompts × 4 completions per step), "
        "learning rate and step count; only the loss differs (GRPO-λ: λ = 0.99, `both` traces, ε-trace, negative "
        "advantages clamped at −0.1, on GRPO's aggregation). Nothing was tuned for one method.",
        "",
        "| method | held-out accuracy (%), mean ± std over seeds | per seed | − GRPO, paired by seed | − DAPO, paired by seed |",
        "|---|---|---|---|---|",
        f"| SmolLM2-135M-Instruct (no training) | {base_before:.1f} | – | – | – |",
    ]
    for method, values in accuracies.items():
        paired = [
            "–" if method == baseline else mean_and_spread([a - b for a, b in zip(values, accuracies[baseline])], "+")
            for baseline in ("GRPO", "DAPO")
        ]
        lines.append(
            f"| {method} | {mean_and_spread(values)} | {', '.join(f'{v:.1f}' for v in values)} | {' | '.join(paired)} |"
        )
    final_lambdas = [[r["lambda/value"] for r in records if "lambda/value" in r][-1] for records in curves["λ-GRPO"]]
    runtimes = [
        r["train_runtime"] for runs in curves.values() for records in runs for r in records if "train_runtime" in r
    ]
    lines += [
        "",
        f"One held-out problem is {100 / args.eval_size:.1f} points. λ-GRPO's final λ per seed: "
        + ", ".join(f"{value:+.4f}" for value in final_lambdas)
        + " (λ = 0 is DAPO).",
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
        f"- {platform.platform()}, {os.cpu_count()} CPU cores, no GPU; training took "
        f"{statistics.mean(runtimes) / 60:.1f} min per run on average ({min(runtimes) / 60:.1f}–"
        f"{max(runtimes) / 60:.1f}).",
        "",
    ]
    base.write_text("\n".join(lines))
    print(f"wrote {base}")


def mean_and_spread(values: list[float], sign: str = "") -> str:
    return f"{statistics.mean(values):{sign}.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"


def run_base(cli, work: Path) -> float:
    output = work / "base-eval"
    command = cli + [
        "eval",
        "--model",
        "embedded:SmolLM2-135M-Instruct",
        "--benchmarks",
        "arithmetic",
        "--data-dir",
        str(work / "data"),
        "--output-dir",
        str(output),
        "--max-new-tokens",
        "40",
        "--batch-size",
        "16",
        "--one-shot",
    ]
    if not (ROOT / output / "results.json").is_file():
        run(command, ROOT / work / "base.eval.log")
    return json.loads((ROOT / output / "results.json").read_text())["results"]["arithmetic"]["accuracy"]


if __name__ == "__main__":
    main()
