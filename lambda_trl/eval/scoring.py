"""Scores predictions with the training reward's own answer checker (last `\\boxed{}` + math-verify)."""

import json
import os

from ..answers import check_answers, last_boxed_answer
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


def score_rows(rows: list[dict], predictions: dict[int, list[str]]) -> list[dict]:
    """Per row: the extracted answers, each completion's correctness and the row's score (mean; 0 if missing)."""
    pairs, owners = [], []
    extracted = {}
    for row in rows:
        answers = [last_boxed_answer(c) for c in predictions.get(row["idx"], [])]
        extracted[row["idx"]] = answers
        for position, answer in enumerate(answers):
            if answer is not None:
                pairs.append((answer, row["answer"]))
                owners.append((row["idx"], position))
    verdicts = {owner: correct for owner, correct in zip(owners, check_answers(pairs))}
    scored = []
    for row in rows:
        answers = extracted[row["idx"]]
        correct = [verdicts.get((row["idx"], position), False) for position in range(len(answers))]
        scored.append(
            {
                "idx": row["idx"],
                "gold": row["answer"],
                "extracted": answers,
                "correct": correct,
                "score": sum(correct) / len(correct) if correct else 0.0,
            }
        )
    return scored


def summarize(benchmark: Benchmark, scored: list[dict]) -> dict:
    predicted = [row for row in scored if row["extracted"]]
    return {
        "benchmark": benchmark.name,
        "metric": benchmark.metric,
        "accuracy": 100.0 * sum(row["score"] for row in scored) / len(scored) if scored else 0.0,
        "n": len(scored),
        "n_predicted": len(predicted),
        "samples_per_row": max((len(row["extracted"]) for row in predicted), default=0),
    }


def score_predictions(benchmark: Benchmark, predictions_path, data_dir=None, allow_unverified: bool = False) -> dict:
    """The summary of a predictions file, which must predict some rows of `benchmark` and only its rows."""
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
    return summarize(benchmark, score_rows(rows, predictions))
