"""Generate answers for the benchmarks, score them, and write results and a Table-1 row (`lambda-trl eval`)."""

import json
import os

from ..graders import DEFAULT_GRADER, GRADERS, MATH_VERIFY, QWEN_MATH
from .benchmarks import resolve_benchmarks
from .generation import SamplingSettings, TransformersBackend, VLLMBackend, checkpoint_dtype, generate_predictions
from .scoring import score_rows, summarize


GRADER_CAPTIONS = {
    MATH_VERIFY: "Graded by math-verify (lambda-trl's grader).",
    QWEN_MATH: "Graded by qwen-math (the Qwen2.5-Math harness's rules, as the paper's Table 1).",
}


def results_table(
    results_by_model: dict[str, dict[str, dict]], benchmarks: list[str], grader: str = DEFAULT_GRADER
) -> str:
    """
    Markdown in the layout of the paper's Table 1 — one row per model, one column per benchmark, then Avg. — under
    `grader`, which the line below the table names.
    """
    header = "| model | " + " | ".join(benchmarks) + " | Avg. |"
    lines = [header, "|" + "---|" * (len(benchmarks) + 2)]
    for model, results in results_by_model.items():
        scores = {name: graded_accuracy(results[name], grader) for name in benchmarks if name in results}
        cells = [f"{scores[name]:.1f}" if name in scores else "–" for name in benchmarks]
        average = f"{sum(scores.values()) / len(scores):.1f}" if scores else "–"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {average} |")
    return "\n".join(lines) + f"\n\n{GRADER_CAPTIONS[grader]}\n"


def graded_accuracy(result: dict, grader: str) -> float:
    """A benchmark's accuracy under `grader` from its results.json entry."""
    try:
        return result["graders"][grader]["accuracy"]
    except KeyError:
        raise ValueError(
            f"The results hold no {grader} accuracy (written before lambda-trl scored with both graders): rescore the "
            "predictions with `lambda-trl eval score --grader ...` or rerun the evaluation."
        ) from None


def library_versions(backend: str) -> dict[str, str]:
    """The versions that produced the answers, for `results.json`."""
    import torch
    import transformers
    import trl

    import lambda_trl

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}
    if backend == "vllm":
        import vllm

        versions["vllm"] = vllm.__version__
    return {**versions, "lambda-trl": lambda_trl.__version__}


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
    dtype: str | None = None,
    gpu_memory_utilization: float = 0.9,
    grader: str = DEFAULT_GRADER,
) -> dict[str, dict]:
    """
    Generates answers for the benchmarks (resuming from `output_dir`'s predictions files), scores them under both
    graders, and writes `<benchmark>.scored.jsonl`, `results.json` and `results.md` (a Table-1 row per grader,
    `grader`'s first) into `output_dir`.
    """
    from tqdm.auto import tqdm

    from ..models import resolve_model_name

    settings = settings or SamplingSettings()
    selected = resolve_benchmarks(benchmarks)
    # Every benchmark file is fetched and verified before the model loads, so a missing file fails in seconds.
    all_rows = {benchmark.name: benchmark.load_rows(data_dir, allow_unverified)[:limit] for benchmark in selected}
    resolved = resolve_model_name(model)
    dtype = dtype or checkpoint_dtype(resolved)
    if backend == "vllm":
        runner = VLLMBackend(resolved, gpu_memory_utilization=gpu_memory_utilization, dtype=dtype)
    else:
        runner = TransformersBackend(resolved, batch_size=batch_size, dtype=dtype)
    os.makedirs(output_dir, exist_ok=True)
    results = {}
    for benchmark in selected:
        rows = all_rows[benchmark.name]
        predictions_path = os.path.join(output_dir, f"{benchmark.name}.predictions.jsonl")
        with tqdm(total=len(rows), desc=benchmark.name, unit="problem") as progress:
            already = _count_lines(predictions_path) if os.path.isfile(predictions_path) else 0
            progress.update(min(already, len(rows)))
            predictions = generate_predictions(benchmark, rows, runner, predictions_path, settings, progress=progress)
        scored = score_rows(rows, predictions, benchmark.name)
        with open(os.path.join(output_dir, f"{benchmark.name}.scored.jsonl"), "w") as f:
            for row in scored:
                f.write(json.dumps(row) + "\n")
        results[benchmark.name] = result = {**summarize(benchmark, scored, grader), "limit": limit}
        accuracies = ", ".join(f"{g} {result['graders'][g]['accuracy']:.1f}" for g in ordered_graders(grader))
        print(f"{benchmark.name}: {accuracies} ({benchmark.metric}, n={len(rows)})")
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        run = {
            "model": model,
            "backend": backend,
            "dtype": dtype,
            "grader": grader,
            "versions": library_versions(backend),
        }
        json.dump({**run, "settings": vars(settings), "results": results}, f, indent=2)
    names = [b.name for b in selected]
    table = "\n".join(results_table({model_label or model: results}, names, g) for g in ordered_graders(grader))
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(table)
    print(table)
    return results


def ordered_graders(first: str) -> list[str]:
    return [first, *(g for g in GRADERS if g != first)]


def _count_lines(path: str) -> int:
    with open(path) as f:
        return sum(1 for _ in f)
