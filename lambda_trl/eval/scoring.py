"""Scores predictions under both graders (`lambda_trl.graders`): the library's (math-verify) and the paper's (qwen-math)."""

import json
import os

from ..graders import DEFAULT_GRADER, GRADERS, check_answers, evaluation_answer, gold_answer
from ..rewards import completion_text
from . import benchmarks
from .benchmarks import Benchmark


def read_predictions(path: str | os.PathLike) -> dict[int, list[str]]:
    """
    PRED.jsonl: one `{"idx": <row>, "completions": [...]}` per line; a later line for the same idx wins. A line that
    is not such a record is an error naming the file and the line.
    """
    predictions = {}
    try:
        f = open(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"Predictions file {path} not found: check the path.") from error
    except IsADirectoryError as error:
        raise IsADirectoryError(f"Predictions file {path} is a directory: pass the .jsonl file.") from error
    with f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}, column {error.colno}).") from None
            idx = record.get("idx") if isinstance(record, dict) else None
            completions = record.get("completions") if isinstance(record, dict) else None
            if (
                not isinstance(idx, int)
                or isinstance(idx, bool)
                or not isinstance(completions, list)
                or not all(isinstance(c, (str, list)) for c in completions)
            ):
                raise ValueError(
                    f"{path}:{number}: each line needs an integer `idx` and a list `completions` of strings, as in "
                    '{"idx": 0, "completions": ["... \\boxed{42}"]}.'
                )
            predictions[idx] = [completion_text(c) for c in record["completions"]]
    return predictions


def score_rows(rows: list[dict], predictions: dict[int, list[str]], benchmark: str) -> list[dict]:
    """
    Per row, under each grader (`lambda_trl.graders.GRADERS`): the gold answer, the answer extracted from each
    completion, each completion's verdict (in the order given) and the row's score (their mean; 0 if missing).
    """
    scored = [{"idx": row["idx"], "gold": {}, "extracted": {}, "verdicts": {}, "score": {}} for row in rows]
    for grader in GRADERS:
        pairs, owners = [], []
        for position, row in enumerate(rows):
            gold = gold_answer(grader, row, benchmark)
            answers = [evaluation_answer(grader, c, benchmark) for c in predictions.get(row["idx"], [])]
            scored[position]["gold"][grader] = gold
            scored[position]["extracted"][grader] = answers
            for sample, answer in enumerate(answers):
                if answer is not None:
                    pairs.append((answer, gold))
                    owners.append((position, sample))
        verdicts = dict(zip(owners, check_answers(pairs, grader)))
        for position, row in enumerate(scored):
            correct = [verdicts.get((position, sample), False) for sample in range(len(row["extracted"][grader]))]
            row["verdicts"][grader] = correct
            row["score"][grader] = sum(correct) / len(correct) if correct else 0.0
    return scored


def summarize(benchmark: Benchmark, scored: list[dict], grader: str = DEFAULT_GRADER) -> dict:
    """The benchmark's accuracy (%) under `grader`, and under every grader in `graders`."""
    by_grader = {
        name: {
            "accuracy": 100.0 * sum(row["score"][name] for row in scored) / len(scored) if scored else 0.0,
            "n_predicted": sum(any(row["extracted"][name]) for row in scored),
        }
        for name in GRADERS
    }
    return {
        "benchmark": benchmark.name,
        "metric": benchmark.metric,
        "grader": grader,
        **by_grader[grader],
        "n": len(scored),
        "samples_per_row": max((len(row["extracted"][grader]) for row in scored), default=0),
        "graders": by_grader,
    }


def score_predictions(
    benchmark: Benchmark, predictions_path, data_dir=None, allow_unverified: bool = False, grader: str = DEFAULT_GRADER
) -> dict:
    """
    The summary of a predictions file, which must predict some rows of `benchmark` and only its rows, with `rows`:
    each scored row (`score_rows`).
    """
    predictions = read_predictions(predictions_path)  # first: a mistake in it shows before a benchmark download
    if not predictions:
        raise ValueError(f'{predictions_path} holds no predictions: one JSON line per row, {{"idx", "completions"}}.')
    rows = benchmark.load_rows(data_dir, allow_unverified)
    # idx is a line of the whole file: a subsample's file has more lines than rows (College Math, checked by load_rows).
    lines = benchmarks.COLLEGE_MATH_ROWS if benchmark.subsample else len(rows)
    unknown = sorted(idx for idx in predictions if not 0 <= idx < lines)
    if unknown:
        raise ValueError(
            f"{predictions_path}: idx {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are not rows of "
            f"{benchmark.name}, whose idx run from 0 to {lines - 1} (the lines of its test.jsonl): is it the "
            "predictions file of another benchmark?"
        )
    scored = score_rows(rows, predictions, benchmark.name)
    return {**summarize(benchmark, scored, grader), "rows": scored}
