"""Generate answers for the benchmarks, score them, and write results and a Table-1 row (`lambda-trl eval`)."""

import json
import os

from .benchmarks import resolve_benchmarks
from .generation import SamplingSettings, TransformersBackend, VLLMBackend, generate_predictions
from .scoring import score_rows, summarize


def results_table(results_by_model: dict[str, dict[str, dict]], benchmarks: list[str]) -> str:
    """Markdown in the layout of the paper's Table 1: one row per model, one column per benchmark, then Avg."""
    header = "| model | " + " | ".join(benchmarks) + " | Avg. |"
    lines = [header, "|" + "---|" * (len(benchmarks) + 2)]
    for model, results in results_by_model.items():
        scores = [results[name]["accuracy"] for name in benchmarks if name in results]
        cells = [f"{results[name]['accuracy']:.1f}" if name in results else "–" for name in benchmarks]
        average = f"{sum(scores) / len(scores):.1f}" if scores else "–"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {average} |")
    return "\n".join(lines) + "\n"


def evaluate(
    model: str,
    benchmarks: str = "all",
    data_dir: str | None = None,
    output_dir: str = "eval_results",
    limit: int | None = None,
    backend: str = "transformers",
    batch_size: int = 8,
    settings: SamplingSettings | None = None,
    model_label: str | None = None,
    allow_unverified: bool = False,
) -> dict[str, dict]:
    from tqdm.auto import tqdm

    from ..models import resolve_model_name

    settings = settings or SamplingSettings()
    selected = resolve_benchmarks(benchmarks)
    # Every benchmark file is fetched and verified before the model loads, so a missing file fails in seconds.
    all_rows = {benchmark.name: benchmark.load_rows(data_dir, allow_unverified)[:limit] for benchmark in selected}
    resolved = resolve_model_name(model)
    runner = VLLMBackend(resolved) if backend == "vllm" else TransformersBackend(resolved, batch_size=batch_size)
    os.makedirs(output_dir, exist_ok=True)
    results = {}
    for benchmark in selected:
        rows = all_rows[benchmark.name]
        predictions_path = os.path.join(output_dir, f"{benchmark.name}.predictions.jsonl")
        with tqdm(total=len(rows), desc=benchmark.name, unit="problem") as progress:
            already = _count_lines(predictions_path) if os.path.isfile(predictions_path) else 0
            progress.update(min(already, len(rows)))
            predictions = generate_predictions(benchmark, rows, runner, predictions_path, settings, progress=progress)
        scored = score_rows(rows, predictions)
        with open(os.path.join(output_dir, f"{benchmark.name}.scored.jsonl"), "w") as f:
            for row in scored:
                f.write(json.dumps(row) + "\n")
        results[benchmark.name] = {**summarize(benchmark, scored), "limit": limit}
        print(f"{benchmark.name}: {results[benchmark.name]['accuracy']:.1f} ({benchmark.metric}, n={len(rows)})")
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump({"model": model, "settings": vars(settings), "results": results}, f, indent=2)
    table = results_table({model_label or model: results}, [b.name for b in selected])
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(table)
    print(table)
    return results


def _count_lines(path: str) -> int:
    with open(path) as f:
        return sum(1 for _ in f)
