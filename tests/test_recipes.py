"""Every recipe parses through the real `lambda-trl train` parser and has a consistent batch geometry."""

import difflib
from pathlib import Path

import pytest
import yaml
from helpers import RECIPES, parse

from lambda_trl.commands.train import parse_arguments


GPUS = {"qwen2.5-1.5b": 4, "qwen2.5-3b": 4, "qwen2.5-7b": 8}
METHODS = ("lambda_grpo", "grpo", "dapo")
ALL_RECIPES = sorted(str(p.relative_to(RECIPES)) for p in RECIPES.glob("**/*.yaml") if p.parent.name != "accelerate")
GRPO_LAMBDA = {"deepseek-r1-distill-qwen-1.5b": 256, "deepseek-r1-distill-qwen-7b": 768}


def test_every_size_has_the_three_methods():
    assert sorted(GPUS) == sorted({Path(r).parts[0] for r in ALL_RECIPES} - {"cpu", "grpo-lambda"})
    for size in GPUS:
        assert {p.stem for p in (RECIPES / size).glob("*.yaml")} == set(METHODS)


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_recipe_parses_and_validates(recipe):
    script_args, training_args, model_args = parse(recipe)
    assert model_args.model_name_or_path
    assert script_args.reward_funcs == ["boxed_math_reward"]
    assert training_args.output_dir.startswith("outputs/")
    assert training_args.generation_batch_size % training_args.num_generations == 0
    if recipe.startswith(("cpu/", "grpo-lambda/")):
        return
    size, method = recipe.split("/")[0], Path(recipe).stem
    processes = GPUS[size]
    assert training_args.model_init_kwargs is None and model_args.dtype == "bfloat16"
    completions_per_step = (
        training_args.per_device_train_batch_size * processes * training_args.gradient_accumulation_steps
    )
    assert completions_per_step == 256 * 8, "mini-batch: 256 prompts × 8 completions per optimizer step"
    assert training_args.steps_per_generation == 4 * training_args.gradient_accumulation_steps
    assert training_args.per_device_train_batch_size * processes * training_args.steps_per_generation == 1024 * 8
    assert training_args.per_device_train_batch_size == 8 and training_args.num_generations == 8
    assert training_args.max_completion_length == 2048 and training_args.num_train_epochs == 2
    assert script_args.dataset_name == "simplerl_zoo_hard" and script_args.max_question_chars == 1024
    expected = {"lambda_grpo": ("lambda", "dapo"), "grpo": ("none", "grpo"), "dapo": ("none", "dapo")}[method]
    assert (training_args.token_preference, training_args.loss_type) == expected
    if method == "lambda_grpo":
        assert training_args.lambda_learning_rate == 0.1 and training_args.lambda_optimizer == "sgd"
        assert training_args.reducer == pytest.approx(1 / 9) and training_args.lambda_init == 0.0


# pyproject's filterwarnings ignores these two categories for the whole suite; here they fail the test, whichever of
# transformers, TRL, accelerate or our code raises them.
AS_ERRORS = ("error::DeprecationWarning", "error::FutureWarning")


def checkpointing(training_args) -> tuple:
    """Activation checkpointing under both names; the new one is absent before transformers 5.23."""
    return training_args.gradient_checkpointing, getattr(training_args, "activation_checkpointing", "absent")


@pytest.mark.parametrize("recipe", ALL_RECIPES)
@pytest.mark.filterwarnings(*AS_ERRORS)
def test_recipe_parses_without_deprecation_warnings(recipe):
    # The recipes use transformers' new name (the old one warns from 5.23 and goes in v6); `lambda-trl train`
    # reads it as the old name on transformers that predate it (5.18 to 5.22).
    wanted = yaml.safe_load((RECIPES / recipe).read_text())["activation_checkpointing"]
    _, training_args, _ = parse(recipe)
    assert checkpointing(training_args) in {(wanted, wanted), (wanted, "absent")}


@pytest.mark.filterwarnings(*AS_ERRORS)
def test_old_and_new_checkpointing_names_set_the_same_field_without_warnings(tmp_path):
    text = (RECIPES / "cpu" / "smollm2_135m_lambda_grpo.yaml").read_text()
    assert "activation_checkpointing: false" in text
    old = tmp_path / "old_name.yaml"
    old.write_text(text.replace("activation_checkpointing: false", "gradient_checkpointing: true"))
    _, training_args, _, _ = parse_arguments(["--config", str(old), "--use_cpu", "true"])
    assert checkpointing(training_args) in {(True, True), (True, "absent")}
    for flag in ("--activation_checkpointing", "--gradient_checkpointing"):
        _, training_args, _ = parse("cpu/smollm2_135m_lambda_grpo.yaml", f"{flag}=true")
        assert checkpointing(training_args) in {(True, True), (True, "absent")}, flag
    # TRL's own default (True, on the old name) carried to the new name, as a Python user meets it.
    from lambda_trl import LambdaGRPOConfig

    assert checkpointing(LambdaGRPOConfig(output_dir=str(tmp_path), use_cpu=True)) in {(True, True), (True, "absent")}


@pytest.mark.parametrize("size", sorted(GPUS))
def test_methods_differ_only_in_the_method_block(size):
    def settings(method):
        values = yaml.safe_load((RECIPES / size / f"{method}.yaml").read_text())
        for key in (
            "token_preference",
            "loss_type",
            "lambda_init",
            "lambda_learning_rate",
            "lambda_optimizer",
            "reducer",
            "output_dir",
            "run_name",
        ):
            values.pop(key, None)
        return values

    reference = settings("lambda_grpo")
    for method in ("grpo", "dapo"):
        assert settings(method) == reference, "\n".join(difflib.unified_diff(str(reference), str(settings(method))))


def test_command_line_overrides_the_recipe():
    _, training_args, _ = parse("qwen2.5-1.5b/lambda_grpo.yaml", "--learning_rate", "2e-6", "--reducer", "0.0333")
    assert training_args.learning_rate == 2e-6 and training_args.reducer == 0.0333


def test_accelerate_configs_are_valid_yaml():
    for path in (RECIPES / "accelerate").glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        assert config["distributed_type"] in {"MULTI_GPU", "DEEPSPEED", "FSDP"}, path
        assert config["mixed_precision"] == "bf16", path


@pytest.mark.parametrize("model", sorted(GRPO_LAMBDA))
def test_grpo_lambda_recipes_follow_the_spec_next_to_a_grpo_baseline(model):
    from lambda_trl import LambdaReturnGRPOConfig

    _, traced, _ = parse(f"grpo-lambda/{model}/grpo_lambda.yaml")
    _, baseline, _ = parse(f"grpo-lambda/{model}/grpo.yaml")
    assert isinstance(traced, LambdaReturnGRPOConfig) and not isinstance(baseline, LambdaReturnGRPOConfig)
    assert (traced.trace_lambda, traced.trace_advantage_clamp, traced.trace_style) == (0.99, -0.1, "both")
    assert traced.max_completion_length == baseline.max_completion_length == GRPO_LAMBDA[model]
    assert traced.loss_type == baseline.loss_type == "grpo"
    assert baseline.token_preference == traced.token_preference == "none"

    def settings(method):
        values = yaml.safe_load((RECIPES / "grpo-lambda" / model / f"{method}.yaml").read_text())
        return {
            k: v
            for k, v in values.items()
            if not k.startswith("trace_") and k not in ("trainer", "output_dir", "run_name")
        }

    assert settings("grpo") == settings("grpo_lambda"), "the two files differ only in the method block"
