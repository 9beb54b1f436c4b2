"""`lambda-trl eval` end to end on a tiny model on CPU: generation, resume, scoring, tables, during-training eval."""

import json

from helpers import write_recipe

from lambda_trl.cli import main
from lambda_trl.eval.generation import TransformersBackend, checkpoint_dtype
from lambda_trl.eval.harness import results_table


def test_eval_generates_scores_and_resumes(tmp_path, tiny_model_dir, benchmarks_dir):
    output = tmp_path / "eval"
    arguments = [
        "eval",
        "--model",
        str(tiny_model_dir),
        "--benchmarks",
        "gsm8k,amc23",
        "--data-dir",
        str(benchmarks_dir),
        "--output-dir",
        str(output),
        "--limit",
        "3",
        "--samples",
        "2",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
    ]
    assert main(arguments) == 0
    gsm8k = [json.loads(line) for line in (output / "gsm8k.predictions.jsonl").read_text().splitlines()]
    amc23 = [json.loads(line) for line in (output / "amc23.predictions.jsonl").read_text().splitlines()]
    assert [r["idx"] for r in gsm8k] == [0, 1, 2] and all(len(r["completions"]) == 1 for r in gsm8k)  # greedy
    assert all(len(r["completions"]) == 2 for r in amc23)  # sampled, --samples 2 instead of 32
    assert gsm8k[0]["prompt"][-1]["content"].endswith("within \\boxed{}.")
    run = json.loads((output / "results.json").read_text())
    assert run["backend"] == "transformers" and run["dtype"] == "float32"  # the tiny checkpoint's own dtype
    assert set(run["versions"]) == {"torch", "transformers", "trl", "lambda-trl"}
    results = run["results"]
    assert set(results) == {"gsm8k", "amc23"} and results["gsm8k"]["n"] == 3 and results["amc23"]["metric"] == "avg@32"
    scored = [json.loads(line) for line in (output / "gsm8k.scored.jsonl").read_text().splitlines()]
    assert {"idx", "gold", "extracted", "verdicts", "score"} <= set(scored[0])
    assert set(scored[0]["verdicts"]) == {"math-verify", "qwen-math"}
    assert run["grader"] == "math-verify" and set(results["gsm8k"]["graders"]) == {"math-verify", "qwen-math"}
    markdown = (output / "results.md").read_text()
    assert markdown.count("| model | gsm8k | amc23 | Avg. |") == 2  # one Table-1 row per grader, the chosen first
    assert markdown.index("Graded by math-verify") < markdown.index("Graded by qwen-math")

    # A resumed run finds every row done and generates nothing new.
    before = (output / "gsm8k.predictions.jsonl").read_text()
    assert main(arguments + ["--limit", "4"]) == 0
    after = (output / "gsm8k.predictions.jsonl").read_text().splitlines()
    assert "\n".join(after[:3]) + "\n" == before and len(after) == 4


def test_transformers_backend_loads_the_checkpoint_dtype_unless_told(tiny_model_dir):  # noqa: F811
    import torch

    assert checkpoint_dtype(str(tiny_model_dir)) == "float32"
    assert TransformersBackend(str(tiny_model_dir)).model.dtype == torch.float32
    assert TransformersBackend(str(tiny_model_dir), dtype="bfloat16").model.dtype == torch.bfloat16


def graded(math_verify: float, qwen_math: float) -> dict:
    return {"graders": {"math-verify": {"accuracy": math_verify}, "qwen-math": {"accuracy": qwen_math}}}


def test_results_table_layout():
    results = {
        "GRPO": {"gsm8k": graded(70.0, 71.0), "aime24": graded(10.0, 20.0)},
        "λ-GRPO": {"gsm8k": graded(72.5, 70.0)},
    }
    assert results_table(results, ["gsm8k", "aime24"]).splitlines() == [
        "| model | gsm8k | aime24 | Avg. |",
        "|---|---|---|---|",
        "| GRPO | 70.0 | 10.0 | 40.0 |",
        "| λ-GRPO | 72.5 | – | 72.5 |",
        "",
        "Graded by math-verify (lambda-trl's grader).",
    ]
    assert results_table(results, ["gsm8k", "aime24"], "qwen-math").splitlines()[2:6] == [
        "| GRPO | 71.0 | 20.0 | 45.5 |",
        "| λ-GRPO | 70.0 | – | 70.0 |",
        "",
        "Graded by qwen-math (the Qwen2.5-Math harness's rules, as the paper's Table 1).",
    ]


def test_during_training_evaluation_is_logged(tmp_path, tiny_model_dir, benchmarks_dir):
    recipe = write_recipe(
        tmp_path,
        tiny_model_dir,
        max_steps=2,
        plot=False,
        eval_benchmarks="gsm8k",
        eval_data_dir=str(benchmarks_dir),
        eval_every_steps=2,
        eval_limit=2,
        eval_max_new_tokens=4,
    )
    assert main(["train", "--config", str(recipe)]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r["step"] for r in records if "benchmarks/gsm8k" in r]
    assert logged and all(0.0 <= r["benchmarks/gsm8k"] <= 100.0 for r in records if "benchmarks/gsm8k" in r)


def test_bad_eval_arguments_fail_early(tmp_path, tiny_model_dir, capsys):
    # A missing benchmark file: one line naming it, before any model is loaded.
    assert main(["eval", "--model", str(tiny_model_dir), "--benchmarks", "gsm8k", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and str(tmp_path / "gsm8k" / "test.jsonl") in error and "--data-dir" in error
