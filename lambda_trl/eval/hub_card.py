"""
A model's scores on its model card: the `model-index` metadata the Hugging Face Hub reads and shows beside the model,
and a Table-1 section in the card's body (`lambda-trl eval --card TARGET`, and `lambda-trl train` when it pushes).

One `model-index` result per benchmark and grader (`huggingface_hub.EvalResult`): the dataset by its Hub id, and the
exact file scored — the evaluation harness's copy at a pinned commit — with its SHA-256 in `dataset_args` (not
`dataset_revision`, which would name a revision of the Hub dataset itself); the metric (`pass@1` or `avg@k`) with the
grader in its name and `metric_config`, so math-verify and qwen-math numbers never mix, and "first N rows" in the
name when only part of the set was scored; and how it was produced in `metric_args` (rows scored, samples per row, the
command, `evaluated_by`). A new evaluation replaces the entries of the same benchmark and grader written by lambda-trl
and keeps everything else in the card; the body's section is rebuilt from the metadata, so the two always agree.
"""

import os
import re

from ..graders import GRADERS
from .benchmarks import BENCHMARKS
from .harness import results_table


EVALUATED_BY = "lambda-trl"
"""`metric_args["evaluated_by"]` of every result lambda-trl writes: what a later evaluation may replace. (Not
`source_name`, which the Hub's schema ties to a `source_url` such as a leaderboard's.)"""

SECTION_START, SECTION_END = "<!-- lambda-trl evaluation: start -->", "<!-- lambda-trl evaluation: end -->"
_SECTION = re.compile(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), re.DOTALL)
_HUB_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def eval_results(run: dict, command: str, during_training: bool = False) -> list:
    """The `EvalResult`s of a `results.json`-shaped run, one per benchmark and grader; `command` already redacted."""
    from huggingface_hub import EvalResult

    results = []
    for name, result in run["results"].items():
        benchmark = BENCHMARKS[name]
        for grader in GRADERS:
            graded = result["graders"][grader]
            metric = result["metric"]
            label = metric.replace("pass", "Pass").replace("avg", "Avg")
            # Not a test-set score when only the first rows were scored (`--limit`, the training's eval_limit).
            notes = [grader] + [f"first {result['n']} rows"] * (result.get("limit") is not None)
            notes += ["during training"] * during_training
            results.append(
                EvalResult(
                    task_type="text-generation",
                    task_name="Mathematical reasoning",
                    dataset_type=benchmark.hub_id or name,
                    dataset_name=name,
                    dataset_config=benchmark.hub_config,
                    dataset_split=benchmark.hub_split,
                    dataset_args={"file": benchmark.source_url, "sha256": benchmark.sha256}
                    if benchmark.sha256
                    else None,
                    metric_type=metric,
                    metric_name=f"{label} ({', '.join(notes)})",
                    metric_config=grader,
                    metric_value=round(float(graded["accuracy"]), 4),
                    metric_args={
                        "grader": grader,
                        "rows": result["n"],
                        "samples_per_row": result["samples_per_row"],
                        "command": command,
                        "evaluated_by": EVALUATED_BY,
                    },
                )
            )
    return results


def merge_eval_results(existing: list, new: list) -> list:
    """`existing` without lambda-trl's results for the benchmarks and graders in `new`, then `new`."""
    replaced = {(result.dataset_name, result.metric_config) for result in new}
    kept = [
        result
        for result in existing or []
        if not is_ours(result) or (result.dataset_name, result.metric_config) not in replaced
    ]
    return kept + new


def is_ours(result) -> bool:
    return (result.metric_args or {}).get("evaluated_by") == EVALUATED_BY


def evaluation_section(results: list) -> str:
    """The card body's section: a Table-1 table per grader from lambda-trl's results, and the commands behind them."""
    ours = [result for result in results if is_ours(result)]
    by_benchmark: dict[str, dict] = {}
    commands: dict[str, list[str]] = {}
    for result in ours:
        graders = by_benchmark.setdefault(result.dataset_name, {"graders": {}})["graders"]
        graders[result.metric_config] = {"accuracy": result.metric_value}
        command = (result.metric_args or {}).get("command", "")
        if result.dataset_name not in commands.setdefault(command, []):
            commands[command].append(result.dataset_name)
    names = [name for name in BENCHMARKS if name in by_benchmark]
    metrics = {result.dataset_name: result.metric_name.split(" (")[0] for result in ours}
    lines = [SECTION_START, "## Evaluation", ""]
    lines.append(", ".join(f"{name}: {metrics[name]}" for name in names) + " (accuracy, %).")
    for grader in GRADERS:
        graded = {name: by_benchmark[name] for name in names if grader in by_benchmark[name]["graders"]}
        if graded:
            lines += ["", results_table({"this model": graded}, list(graded), grader).strip()]
    lines += ["", "Produced by:", ""]
    lines += [f"- `{command}` ({', '.join(benchmarks)})" for command, benchmarks in commands.items()]
    return "\n".join(lines + ["", SECTION_END])


def with_evaluation(card, run: dict, command: str, during_training: bool = False):
    """`card` (a `huggingface_hub.ModelCard`) with the run's results in its metadata and its body's section."""
    card.data.eval_results = merge_eval_results(card.data.eval_results, eval_results(run, command, during_training))
    if not card.data.model_name:
        card.data.model_name = run["model"].rstrip("/").split("/")[-1]
    section = evaluation_section(card.data.eval_results)
    card.text = (
        _SECTION.sub(lambda _: section, card.text) if _SECTION.search(card.text) else f"{card.text}\n{section}\n"
    )
    return card


def is_local_target(target: str) -> bool:
    return os.path.isdir(target) or not _HUB_REPO_ID.fullmatch(target)


def load_card(target: str):
    """The model card of a local model folder (a new one if it has none) or of a Hub repo; one-line errors."""
    from huggingface_hub import ModelCard, ModelCardData

    if is_local_target(target):
        if not os.path.isdir(target):
            raise FileNotFoundError(f"--card {target}: no such folder, and not a Hub repo id (namespace/name).")
        path = os.path.join(target, "README.md")
        if os.path.isfile(path):
            return ModelCard.load(path)
        name = os.path.basename(os.path.abspath(target))
        return ModelCard(f"---\n{ModelCardData(model_name=name).to_yaml()}\n---\n\n# {name}\n")
    try:
        return ModelCard.load(target)
    except Exception as error:  # offline, unreachable, missing repo, no permission: all the Hub's
        raise OSError(_hub_failure(target, "cannot read the model card of", error)) from error


def save_card(card, target: str, command: str):
    """Writes the card to the folder's README.md, or pushes it to the Hub repo."""
    if is_local_target(target):
        card.save(os.path.join(target, "README.md"))
        return
    try:
        card.push_to_hub(target, commit_message="Evaluation results (lambda-trl eval)", commit_description=command)
    except Exception as error:
        raise OSError(_hub_failure(target, "cannot push the model card to", error)) from error


def _hub_failure(target: str, what: str, error: BaseException) -> str:
    from huggingface_hub import constants

    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    offline = " (HF_HUB_OFFLINE=1 is set: unset it)" if constants.HF_HUB_OFFLINE else ""
    return (
        f"--card {target}: {what} {target!r} at {constants.ENDPOINT}{offline}: {first_line}. Check the repo id and "
        "your token (hf auth login), or pass a local model folder."
    )
