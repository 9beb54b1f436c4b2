"""Scores predictions with the training reward's own answer checker (last `\\boxed{}` + math-verify)."""

import json
import os

from ..answers import check_answers, last_boxed_answer
from ..rewards import completion_text
from .benchmarks import Benchmark


def read_predictions(path: str | os.PathLike) -> dict[int, list[str]]:
    """PRED.jsonl: one `{"idx": <row>, "completions": [...]}` per line; a later line for the same idx wins."""
    predictions = {}
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "idx" not in record or not isinstance(record.get("completions"), list):
                raise ValueError(f"{path}:{number}: each line needs an integer `idx` and a list `completions`.")
            predictions[int(record["idx"])] = [completion_text(c) for c in record["completions"]]
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
    rows = benchmark.load_rows(data_dir, allow_unverified)
    return summarize(benchmark, score_rows(rows, read_predictions(predictions_path)))
