"""
Every kind of bad input to `lambda-trl train` and `lambda-trl eval` (generate, `score`, `table`), one table: each case
must exit with code 2 and print exactly one line on stderr, naming the field or file and the fix, and must leave
nothing in the output directory that could pass for a result. The model is never loaded: `model_name_or_path` points
at a folder that does not exist, so a case that got that far would fail with a different message.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from benchmark_standins import STANDIN_BENCHMARKS
from helpers import write_recipe

from lambda_trl.cli import main


def recipe(**overrides):
    """A build step: the CPU test recipe with `overrides`, on a model that is never loaded."""

    def build(tmp_path):
        path = write_recipe(tmp_path, tmp_path / "model-never-loaded", **overrides)
        return ["train", "--config", str(path)]

    return build


def raw_recipe(content):
    """A build step: a recipe file with exactly this text (str) or these bytes."""

    def build(tmp_path):
        path = tmp_path / "recipe.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["train", "--config", str(path)]

    return build


def with_flags(build, *flags):
    return lambda tmp_path: build(tmp_path) + list(flags)


def write_file(tmp_path, name, content):
    """tmp_path/name holding `content`: str, bytes, None (a directory) or a callable writing to the path."""
    path = tmp_path / name
    if content is None:
        path.mkdir()
    elif callable(content):
        content(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def dataset(name, content, dataset_name="simplerl_zoo_hard", **overrides):
    """A build step: a recipe training on the local file `name` holding `content` (see `write_file`)."""

    def build(tmp_path):
        path = write_file(tmp_path, name, content)
        return recipe(dataset_name=dataset_name, dataset_path=path, **overrides)(tmp_path)

    return build


def incomplete_checkpoint(tmp_path):
    """A build step: resuming from a checkpoint folder that holds only the model's config (a kill during the save)."""
    checkpoint = tmp_path / "elsewhere" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    return recipe(resume_from_checkpoint=str(checkpoint))(tmp_path)


def empty_parquet(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"question": pa.array([], pa.string()), "gt_answer": pa.array([], pa.string())}), path)


def score(content, benchmark="gsm8k", data_dir=str(STANDIN_BENCHMARKS)):
    """A build step: `lambda-trl eval score` of a predictions file holding `content` (see `write_file`)."""

    def build(tmp_path):
        path = write_file(tmp_path, "pred.jsonl", content)
        arguments = ["eval", "score", "--benchmark", benchmark, "--predictions", path, "--data-dir", data_dir]
        return arguments + ["--output", str(tmp_path / "run" / "score.json")]

    return build


def evaluate(*flags):
    """A build step: `lambda-trl eval` of the never-loaded model with `flags`."""

    def build(tmp_path):
        model, output = str(tmp_path / "model-never-loaded"), str(tmp_path / "run")
        return ["eval", "--model", model, "--data-dir", str(STANDIN_BENCHMARKS), "--output-dir", output, *flags]

    return build


def table(make_folder):
    """A build step: `lambda-trl eval table` of one folder that `make_folder(folder)` fills."""

    def build(tmp_path):
        folder = tmp_path / "earlier-run"
        folder.mkdir()
        make_folder(folder)
        return ["eval", "table", str(folder)]

    return build


GOOD_RESULTS = json.dumps(
    {
        "model": "m",
        "results": {
            "gsm8k": {
                "accuracy": 50.0,
                "graders": {"math-verify": {"accuracy": 50.0}, "qwen-math": {"accuracy": 40.0}},
            }
        },
    }
)
PREDICTION = '{"idx": 0, "completions": ["\\\\boxed{18}"]}\n'
FILE = r"/\S+"  # an absolute path in the message

CASES = [
    # ---- the recipe file -----------------------------------------------------------------------------------------
    pytest.param(raw_recipe("a: [1, 2\nb: c\n"), [FILE + "recipe.yaml", "not valid YAML at line 2"], id="yaml-syntax"),
    pytest.param(raw_recipe("- max_steps: 3\n"), ["recipe.yaml", "YAML mapping", "got a list"], id="top-level-list"),
    pytest.param(raw_recipe("max_steps\n"), ["recipe.yaml", "YAML mapping", "got a str"], id="top-level-scalar"),
    pytest.param(raw_recipe(""), ["recipe.yaml", "YAML mapping", "empty file"], id="empty-recipe"),
    pytest.param(raw_recipe(b"max_steps: 3\n# caf\xe9\n"), ["recipe.yaml", "not UTF-8"], id="recipe-not-utf8"),
    pytest.param(raw_recipe("env: [A]\n"), ["`env`", "recipe.yaml", "mapping"], id="env-not-mapping"),
    pytest.param(
        lambda tmp_path: ["train", "--config", str(tmp_path / "nope.yaml")],
        ["nope.yaml", "not found"],
        id="recipe-missing",
    ),
    pytest.param(
        lambda tmp_path: ["train", "--config", str(tmp_path)],
        ["is a directory", ".yaml file"],
        id="recipe-is-directory",
    ),
    pytest.param(
        recipe(lambda_learning_rat=0.1),
        [r"Unknown recipe key\(s\) \['lambda_learning_rat'\]", "--help"],
        id="unknown-key",
    ),
    # ---- wrong types, in the recipe and on the command line ------------------------------------------------------
    pytest.param(
        recipe(learning_rate="abc"),
        ["learning_rate", "recipe.yaml", "must be a number", "'abc'"],
        id="float-given-text",
    ),
    pytest.param(recipe(max_steps=[1]), ["max_steps", "must be an integer", r"\[1\]"], id="int-given-list"),
    pytest.param(recipe(max_steps=2.5), ["max_steps", "must be an integer", "2.5"], id="int-given-fraction"),
    pytest.param(recipe(max_steps=True), ["max_steps", "must be an integer", "True"], id="int-given-bool"),
    pytest.param(recipe(learn_lambda="maybe"), ["learn_lambda", "true or false", "'maybe'"], id="bool-given-maybe"),
    pytest.param(
        recipe(save_strategy="best", metric_for_best_model="reward"),
        ["save_strategy 'best'", "save_strategy: steps"],
        id="save-strategy-best-without-evaluation",
    ),
    pytest.param(recipe(reward_weights=["x"]), ["reward_weights", "each a number", "'x'"], id="list-item-wrong-type"),
    pytest.param(
        with_flags(recipe(), "--learning_rate", "abc"),
        ["--learning_rate", "invalid float", "--help"],
        id="flag-given-text",
    ),
    pytest.param(with_flags(recipe(), "--max_stepz", "3"), ["--max_stepz", "spelling", "--help"], id="unknown-flag"),
    # ---- bad choices -----------------------------------------------------------------------------------------------
    pytest.param(
        recipe(lambda_optimizer="adam"),
        ["lambda_optimizer", r"one of \['sgd', 'adamw'\]", "'adam'"],
        id="choice-lambda-optimizer",
    ),
    pytest.param(recipe(dataset_name="gsm8"), ["dataset_name", "one of", "'gsm8'"], id="choice-dataset-name"),
    pytest.param(recipe(save_strategy="sometimes"), ["save_strategy", "one of", "'sometimes'"], id="choice-trl-field"),
    pytest.param(recipe(trainer="ppo"), ["trainer", "lambda_grpo", "'ppo'"], id="choice-trainer"),
    # ---- out-of-range numbers --------------------------------------------------------------------------------------
    pytest.param(recipe(max_steps=-5), ["max_steps", "positive", "-1", "num_train_epochs"], id="max-steps-negative"),
    pytest.param(recipe(learning_rate=-1e-3), ["learning_rate", ">= 0"], id="learning-rate-negative"),
    pytest.param(recipe(lambda_learning_rate=0), ["lambda_learning_rate", "> 0"], id="lambda-lr-zero"),
    pytest.param(recipe(lambda_init=float("nan")), ["lambda_init", "finite"], id="lambda-init-nan"),
    pytest.param(recipe(reducer=-0.1), ["reducer", "> 0"], id="reducer-negative"),
    pytest.param(recipe(num_generations=1), ["num_generations", ">= 2"], id="num-generations-1"),
    pytest.param(recipe(temperature=0), ["temperature", "> 0"], id="temperature-zero"),
    pytest.param(recipe(max_completion_length=0), ["max_completion_length", ">= 1"], id="completion-length-zero"),
    pytest.param(recipe(per_device_train_batch_size=6), ["divisible by num_generations"], id="batch-not-groups"),
    pytest.param(recipe(trainer="grpo_lambda", trace_lambda=1.5), ["trace_lambda", r"\[0, 1\]"], id="trace-lambda"),
    pytest.param(
        recipe(trainer="grpo_lambda", trace_advantage_clamp=float("nan")),
        ["trace_advantage_clamp", "<= 0"],
        id="trace-clamp-nan",
    ),
    pytest.param(recipe(dataset_size=0), ["dataset_size", ">= 1"], id="dataset-size-zero"),
    pytest.param(
        recipe(eval_benchmarks="gsm8k", eval_every_steps=0), ["eval_every_steps", ">= 1"], id="eval-every-zero"
    ),
    pytest.param(recipe(eval_benchmarks="gsm9k"), ["eval_benchmarks", "gsm9k", "choose from"], id="eval-benchmark"),
    pytest.param(recipe(model_name_or_path=None), ["model_name_or_path"], id="no-model"),
    pytest.param(
        recipe(resume_from_checkpoint="/nonexistent/checkpoint-5"),
        ["resume_from_checkpoint", "/nonexistent/checkpoint-5"],
        id="resume-path-missing",
    ),
    pytest.param(
        incomplete_checkpoint,
        ["resume_from_checkpoint", "checkpoint-3", "trainer_state.json"],
        id="resume-path-incomplete",
    ),
    # ---- reward functions -----------------------------------------------------------------------------------------
    pytest.param(
        recipe(reward_funcs=["boxed_maths_reward"]),
        ["boxed_maths_reward", "reward_funcs", "dotted"],
        id="reward-unknown-name",
    ),
    pytest.param(
        recipe(reward_funcs=["no_such_pkg.rewards.f"]),
        ["reward_funcs", "no_such_pkg", "folder"],
        id="reward-module-missing",
    ),
    pytest.param(
        recipe(reward_funcs=["lambda_trl.rewards.no_such_reward"]),
        ["reward_funcs", "no_such_reward"],
        id="reward-function-missing",
    ),
    # ---- the training set -----------------------------------------------------------------------------------------
    pytest.param(dataset("train.jsonl", ""), ["train.jsonl", "is empty"], id="dataset-empty-jsonl"),
    pytest.param(dataset("train.parquet", empty_parquet), ["train.parquet", "no rows"], id="dataset-0-row-parquet"),
    pytest.param(
        dataset("train.parquet", b"PAR1 not parquet"),
        ["train.parquet", "not a readable parquet"],
        id="dataset-broken-parquet",
    ),
    pytest.param(
        dataset("train.jsonl", '{"question": "1+1?", "gt_answer": "2"}\n{"question": \n'),
        ["train.jsonl", "line 2", "not valid JSON"],
        id="dataset-broken-jsonl",
    ),
    pytest.param(
        dataset("train.jsonl", b'{"question": "caf\xe9?", "gt_answer": "2"}\n'),
        ["train.jsonl", "line 1", "not UTF-8", "UTF-8"],
        id="dataset-not-utf8",
    ),
    pytest.param(
        dataset("train.jsonl", '{"question": "1+1?", "gt_answer": "2"}\n{"question": "2+2?"}\n'),
        ["Row 1", "train.jsonl", "ground-truth answer", "gt_answer"],
        id="dataset-row-without-answer",
    ),
    pytest.param(
        dataset("train.jsonl", '{"question": "2+2?", "answer": "four"}\n', dataset_name="gsm8k"),
        ["Row 0", "GSM8K", "train.jsonl", "####"],
        id="dataset-gsm8k-answer-format",
    ),
    pytest.param(
        dataset("train.jsonl", '{"problem": "1+1?", "gt_answer": "2"}\n'),
        ["no `question` column", "problem"],
        id="dataset-no-question-column",
    ),
    pytest.param(dataset("train.txt", "1+1?\n"), ["train.txt", ".parquet"], id="dataset-wrong-extension"),
    pytest.param(
        dataset("train.parquet", None),
        ["dataset_path", "train.parquet", "holds no .parquet"],
        id="dataset-path-is-empty-directory",
    ),
    pytest.param(
        recipe(dataset_name="gsm8k", dataset_path="/nonexistent/train.jsonl"),
        ["dataset_path", "/nonexistent/train.jsonl"],
        id="dataset-missing",
    ),
    # ---- eval: generation -----------------------------------------------------------------------------------------
    pytest.param(evaluate("--benchmarks", "gsm9k"), ["gsm9k", "choose from"], id="eval-unknown-benchmark"),
    pytest.param(evaluate("--benchmarks", "gsm8k", "--limit", "-1"), ["--limit", ">= 1"], id="eval-limit-negative"),
    pytest.param(
        evaluate("--benchmarks", "gsm8k", "--temperature", "0"), ["--temperature", "> 0"], id="eval-temperature-zero"
    ),
    pytest.param(evaluate("--backend", "tpu"), ["--backend", "invalid choice", "'tpu'"], id="eval-bad-choice"),
    pytest.param(lambda tmp_path: ["eval", "--benchmarks", "gsm8k"], ["--model", "required"], id="eval-no-model"),
    pytest.param(
        lambda tmp_path: [
            "eval",
            "--model",
            "m",
            "--data-dir",
            str(tmp_path / "nothing-here"),
            "--output-dir",
            str(tmp_path / "run"),
        ],
        ["nothing-here", "test.jsonl", "--data-dir"],
        id="eval-missing-data-dir",
    ),
    # ---- eval score -----------------------------------------------------------------------------------------------
    pytest.param(
        score(PREDICTION, benchmark="gsm9k"),
        ["--benchmark", "invalid choice", "'gsm9k'"],
        id="score-unknown-benchmark",
    ),
    pytest.param(
        score(PREDICTION + '{"idx": 1, "completions": \n'),
        ["pred.jsonl:2", "not valid JSON"],
        id="score-broken-json-line",
    ),
    pytest.param(
        score(PREDICTION + '{"idx": 999, "completions": ["1"]}\n'),
        ["pred.jsonl", r"idx \[999\]", "gsm8k"],
        id="score-unknown-idx",
    ),
    pytest.param(score('{"idx": 0}\n'), ["pred.jsonl:1", "`completions`"], id="score-missing-field"),
    pytest.param(
        score('{"idx": "zero", "completions": ["1"]}\n'), ["pred.jsonl:1", "integer `idx`"], id="score-idx-not-integer"
    ),
    pytest.param(score('[0, ["1"]]\n'), ["pred.jsonl:1", "`idx`"], id="score-line-not-object"),
    pytest.param(score(""), ["pred.jsonl", "no predictions"], id="score-empty-file"),
    pytest.param(score(None), ["pred.jsonl", "is a directory", ".jsonl file"], id="score-predictions-is-directory"),
    pytest.param(
        lambda tmp_path: [
            *("eval", "score", "--benchmark", "gsm8k", "--data-dir", str(STANDIN_BENCHMARKS)),
            *("--predictions", str(tmp_path / "p.jsonl")),
        ],
        ["p.jsonl", "not found"],
        id="score-predictions-missing",
    ),
    pytest.param(
        score(PREDICTION, data_dir="/nonexistent/benchmarks"),
        ["/nonexistent/benchmarks", "--data-dir"],
        id="score-missing-data-dir",
    ),
    # ---- eval table -----------------------------------------------------------------------------------------------
    pytest.param(
        table(lambda folder: None), ["earlier-run", "no results.json", "--output-dir"], id="table-no-results"
    ),
    pytest.param(
        table(lambda folder: (folder / "results.json").write_text('{"model": ')),
        ["results.json", "not valid JSON"],
        id="table-broken-results",
    ),
    pytest.param(
        table(lambda folder: (folder / "results.json").write_text('{"model": "m"}')),
        ["results.json", "`results`"],
        id="table-results-without-scores",
    ),
    pytest.param(
        with_flags(table(lambda folder: (folder / "results.json").write_text(GOOD_RESULTS)), "--labels", "a,b"),
        ["--labels", "2 label", "1 folder"],
        id="table-labels-count",
    ),
]


def assert_nothing_written(tmp_path):
    run = tmp_path / "run"
    assert not run.exists() or not any(run.iterdir()), sorted(p.name for p in run.iterdir())


def assert_one_line(stderr, expected):
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lambda-trl: error: "), stderr[-3000:]
    for pattern in expected:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_bad_input_is_one_line(build, expected, tmp_path, capsys, pinned_standins, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a dotted reward path may import from the working directory
    argv = build(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    assert_one_line(capsys.readouterr().err, expected)
    assert_nothing_written(tmp_path)


SUBPROCESS_CASES = ["yaml-syntax", "dataset-broken-parquet", "table-no-results"]


@pytest.mark.parametrize(("build", "expected"), [case for case in CASES if case.id in SUBPROCESS_CASES])
def test_bad_input_in_a_fresh_process(build, expected, tmp_path):
    """As a user runs it: the real exit code, and stderr exactly one line (no library warning or progress bar)."""
    environment = {key: value for key, value in os.environ.items() if key != "TRL_EXPERIMENTAL_SILENCE"}
    completed = subprocess.run(
        [sys.executable, "-m", "lambda_trl.cli", *build(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert_one_line(completed.stderr, expected)
    assert completed.stdout == ""
    assert_nothing_written(tmp_path)


def test_training_with_a_transformers_too_old_to_train_says_which_to_install(tmp_path, capsys, monkeypatch):
    from lambda_trl.commands import train

    monkeypatch.setattr(train.transformers, "__version__", "5.17.0")
    assert main(recipe()(tmp_path)) == 2
    assert_one_line(capsys.readouterr().err, [r"transformers>=5\.18, found 5\.17\.0", r"pip install"])
    assert_nothing_written(tmp_path)


def test_debug_shows_the_traceback(tmp_path):
    build, _ = next(case.values for case in CASES if case.id == "yaml-syntax")
    with pytest.raises(ValueError, match="not valid YAML"):
        main([*build(tmp_path), "--debug"])


def test_a_single_value_for_a_list_field_is_a_one_item_list(tmp_path):
    from lambda_trl.commands.train import parse_arguments

    path = write_recipe(tmp_path, tmp_path / "model", reward_funcs="boxed_format_reward")
    script_args = parse_arguments(["--config", str(path)])[0]
    assert script_args.reward_funcs == ["boxed_format_reward"]


def test_valid_predictions_still_score(tmp_path, pinned_standins, capsys):
    # The checks above must not reject a good file: one correct line scores.
    predictions = tmp_path / "pred.jsonl"
    gold = json.loads((STANDIN_BENCHMARKS / "gsm8k" / "test.jsonl").read_text().splitlines()[0])["answer"]
    predictions.write_text(json.dumps({"idx": 0, "completions": [f"\\boxed{{{gold.split('####')[-1].strip()}}}"]}))
    assert (
        main(
            [
                "eval",
                "score",
                "--benchmark",
                "gsm8k",
                "--predictions",
                str(predictions),
                "--data-dir",
                str(STANDIN_BENCHMARKS),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["n_predicted"] == 1 and result["accuracy"] > 0


def test_valid_results_still_tabulate(tmp_path, capsys):
    (tmp_path / "results.json").write_text(GOOD_RESULTS)
    assert main(["eval", "table", str(tmp_path), "--labels", "ours"]) == 0
    assert "| ours | 50.0 | 50.0 |" in capsys.readouterr().out
