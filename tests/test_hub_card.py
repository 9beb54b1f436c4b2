"""Evaluation results on the model card: model-index metadata and a Table-1 section (lambda_trl.eval.hub_card)."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import write_push_recipe, write_recipe
from huggingface_hub import ModelCard, metadata_load

from lambda_trl.cli import main
from lambda_trl.eval.hub_card import SECTION_START, eval_results, is_ours


def _results(card) -> dict:
    """{(benchmark, grader): (value, rows, metric_name)} of lambda-trl's results in a card."""
    return {
        (r.dataset_name, r.metric_config): (r.metric_value, r.metric_args["rows"], r.metric_name)
        for r in card.data.eval_results
        if is_ours(r)
    }


def _eval(model_dir, benchmarks_dir, output, benchmarks, limit, card):
    arguments = ["eval", "--model", str(model_dir), "--benchmarks", benchmarks, "--data-dir", str(benchmarks_dir)]
    arguments += ["--output-dir", str(output), "--limit", str(limit), "--max-new-tokens", "4", "--card", str(card)]
    assert main(arguments) == 0
    return json.loads((output / "results.json").read_text())


def test_a_trained_model_evaluated_twice_carries_each_score_once(tmp_path, tiny_model_dir, benchmarks_dir):
    recipe = write_recipe(tmp_path, tiny_model_dir, max_steps=1, plot=False)
    assert main(["train", "--config", str(recipe)]) == 0
    run_dir = tmp_path / "run"
    trl_card = ModelCard.load(run_dir / "README.md")

    first = _eval(run_dir, benchmarks_dir, tmp_path / "eval1", "gsm8k,math500", 2, run_dir)
    card = ModelCard.load(run_dir / "README.md")
    written = {
        (b, g): first["results"][b]["graders"][g]["accuracy"]
        for b in ("gsm8k", "math500")
        for g in ("math-verify", "qwen-math")
    }
    assert {key: value for key, (value, _, _) in _results(card).items()} == pytest.approx(written)
    # Parsed back exactly as written: the same EvalResult objects the command built.
    command = card.data.eval_results[0].metric_args["command"]
    assert command.startswith("lambda-trl eval --model") and "--card" in command
    assert card.data.eval_results == eval_results(first, command)
    gsm8k = next(r for r in card.data.eval_results if r.dataset_name == "gsm8k" and r.metric_config == "qwen-math")
    assert (gsm8k.dataset_type, gsm8k.dataset_config, gsm8k.dataset_split) == ("openai/gsm8k", "main", "test")
    assert gsm8k.metric_type == "pass@1" and gsm8k.metric_name == "Pass@1 (qwen-math, first 2 rows)"
    assert gsm8k.dataset_args["file"].endswith("gsm8k/test.jsonl") and len(gsm8k.dataset_args["sha256"]) == 64
    assert gsm8k.dataset_revision is None and gsm8k.task_type == "text-generation"
    # TRL's card survives: its tags, base model, datasets and the λ-GRPO section with the paper link.
    assert set(trl_card.data.tags) <= set(card.data.tags) and card.data.datasets == trl_card.data.datasets
    assert card.data.base_model == trl_card.data.base_model
    assert "## λ-GRPO" in card.text and "arxiv.org/abs/2510.06870" in card.text
    # The header stays valid Hub metadata: plain YAML, model-index with a name and results.
    metadata = metadata_load(run_dir / "README.md")
    assert metadata["model-index"][0]["name"] == card.data.model_name
    grouped = metadata["model-index"][0]["results"]  # the Hub groups a dataset's metrics under one result
    assert [entry["dataset"]["name"] for entry in grouped] == ["gsm8k", "math500"]
    assert [len(entry["metrics"]) for entry in grouped] == [2, 2]
    header = (run_dir / "README.md").read_text().split("---")[1]
    assert yaml.safe_load(header)["model-index"] == metadata["model-index"]
    assert "| this model | 0.0 | 0.0 | 0.0 |" in card.text or "| this model |" in card.text
    assert "Graded by qwen-math" in card.text and "Graded by math-verify" in card.text

    # A second evaluation of one benchmark replaces its two results and keeps the other's.
    _eval(run_dir, benchmarks_dir, tmp_path / "eval2", "gsm8k", 3, run_dir)
    again = ModelCard.load(run_dir / "README.md")
    results = _results(again)
    assert len(again.data.eval_results) == 4 and set(results) == set(written)
    assert results["gsm8k", "math-verify"][1] == 3 and results["math500", "math-verify"][1] == 2
    assert again.text.count(SECTION_START) == 1 and again.text.count("## λ-GRPO") == 1
    assert again.text.count("- `lambda-trl eval") == 2  # each command with the benchmarks it produced


def test_a_card_in_a_folder_without_one_is_created(tmp_path, benchmarks_dir):
    predictions = tmp_path / "pred.jsonl"
    predictions.write_text(json.dumps({"idx": 0, "completions": ["\\boxed{1}"]}) + "\n")
    model = tmp_path / "my-model"
    model.mkdir()
    arguments = ["eval", "score", "--benchmark", "gsm8k", "--predictions", str(predictions)]
    assert main([*arguments, "--data-dir", str(benchmarks_dir), "--card", str(model)]) == 0
    card = ModelCard.load(model / "README.md")
    assert card.data.model_name == "my-model" and len(card.data.eval_results) == 2


def test_bad_and_offline_card_targets_fail_in_one_line(tmp_path, benchmarks_dir, capsys, monkeypatch):
    predictions = tmp_path / "pred.jsonl"
    predictions.write_text(json.dumps({"idx": 0, "completions": ["\\boxed{1}"]}) + "\n")
    arguments = ["eval", "score", "--benchmark", "gsm8k", "--predictions", str(predictions)]
    arguments += ["--data-dir", str(benchmarks_dir)]
    assert main([*arguments, "--card", str(tmp_path / "missing" / "folder")]) == 2
    assert "no such folder, and not a Hub repo id" in capsys.readouterr().err
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert main([*arguments, "--card", "someone/tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("lambda-trl: error: --card someone/tiny: cannot read the model card of 'someone/tiny' at ")
    assert "HF_HUB_OFFLINE=1 is set" in err


def _in_subprocess(arguments, **environment):
    completed = subprocess.run(
        [sys.executable, "-m", "lambda_trl.cli", *arguments],
        env={**os.environ, "HF_TOKEN": "hf_fake", "HF_HUB_DISABLE_XET": "1", **environment},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def test_a_pushed_run_carries_its_final_evaluation_and_a_later_one_replaces_it(
    tmp_path, tiny_model_dir, benchmarks_dir
):
    from fake_hub import FakeHub

    recipe = write_push_recipe(
        tmp_path,
        tiny_model_dir,
        eval_benchmarks="gsm8k,math500",
        eval_data_dir=str(benchmarks_dir),
        eval_allow_unverified=True,  # the stand-ins: this process pins the registry to them, the run does not
        eval_every_steps=5,  # none at the last step: the run evaluates once more before saving the card
        eval_limit=2,
        eval_max_new_tokens=4,
    )
    with FakeHub() as hub:
        environment = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(tmp_path / "hub-cache")}
        _in_subprocess(["train", "--config", str(recipe)], **environment)
        pushed = hub.repos["someone/tiny-lambda-grpo"]["README.md"].decode()
        card = ModelCard(pushed)
        results = _results(card)
        assert set(results) == {(b, g) for b in ("gsm8k", "math500") for g in ("math-verify", "qwen-math")}
        assert all(name.endswith(", during training)") and rows == 2 for _, rows, name in results.values())
        assert "lambda-trl train --config" in card.data.eval_results[0].metric_args["command"]
        assert "## λ-GRPO" in card.text and card.text.count(SECTION_START) == 1

        predictions = tmp_path / "pred.jsonl"
        predictions.write_text("".join(json.dumps({"idx": i, "completions": ["\\boxed{1}"]}) + "\n" for i in range(3)))
        arguments = ["eval", "score", "--benchmark", "gsm8k", "--predictions", str(predictions), "--data-dir"]
        arguments += [str(benchmarks_dir), "--allow-unverified", "--card", "someone/tiny-lambda-grpo"]
        _in_subprocess(arguments, **environment)
        card = ModelCard(hub.repos["someone/tiny-lambda-grpo"]["README.md"].decode())
    results = _results(card)
    assert len(card.data.eval_results) == 4
    assert results["gsm8k", "qwen-math"][2] == "Pass@1 (qwen-math)"  # replaced: no longer the training's
    assert results["math500", "qwen-math"][2] == "Pass@1 (qwen-math, first 2 rows, during training)"  # kept
    assert "## λ-GRPO" in card.text and card.text.count(SECTION_START) == 1
