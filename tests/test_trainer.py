"""End-to-end training on a tiny random model: λ's update rule, optimizer group, checkpointing, PEFT and errors."""

import math

import pytest
import torch
from peft import LoraConfig
from tiny import StepCounter, count_a_reward, sum_dataset, tiny_config, tiny_model, tiny_tokenizer, tiny_trainer

from lambda_trl import LambdaGRPOTrainer
from lambda_trl.optimizer import LAMBDA_GROUP_NAME, TokenPreferenceOptimizer
from lambda_trl.trainer import LAMBDA_STATE_NAME


def step_logs(trainer):
    return [entry for entry in trainer.state.log_history if "lambda/grad" in entry]


def test_lambda_follows_plain_sgd_and_is_not_clipped_or_scheduled(tmp_path):
    # A tiny max_grad_norm clips the model's gradients hard; λ's update must not notice.
    trainer = tiny_trainer(tmp_path, max_steps=4, max_grad_norm=1e-6, lr_scheduler_type="linear")
    trainer.train()
    logs = step_logs(trainer)
    assert len(logs) == 4
    lam = trainer.token_preference_lambda.item()
    assert abs(lam) > 1e-4, "λ should move with non-zero advantages and varied lengths"
    predicted = logs[0]["lambda/value"]
    for entry in logs:
        assert entry["lambda/value"] == pytest.approx(predicted, abs=1e-7)
        predicted = entry["lambda/value"] - 0.1 * entry["lambda/grad"]
    assert lam == pytest.approx(predicted, abs=1e-7)

    group = trainer.optimizer.param_groups[-1]
    assert group["name"] == LAMBDA_GROUP_NAME and group["weight_decay"] == 0.0 and group["lr"] == 0.1
    assert group["params"][0] is trainer.token_preference_lambda
    assert logs[-1]["learning_rate"] < logs[0]["learning_rate"]  # the model's schedule moved, λ's lr did not
    assert not any("lambda" in name for name in trainer.model.state_dict())


def test_lambda_learning_rate_can_follow_the_model_schedule(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=3, lr_scheduler_type="linear", lambda_lr_follows_schedule=True)
    trainer.train()
    logs = step_logs(trainer)
    for step, (entry, following) in enumerate(zip(logs, logs[1:])):
        scale = 1 - step / 3  # linear decay to 0 over 3 steps, without warm-up
        assert following["lambda/value"] == pytest.approx(
            entry["lambda/value"] - 0.1 * scale * entry["lambda/grad"], abs=1e-7
        )


def test_adamw_rule_first_step(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=1, lambda_optimizer="adamw", lambda_learning_rate=0.05)
    trainer.train()
    (entry,) = step_logs(trainer)
    gradient = entry["lambda/grad"]
    # Adam's bias-corrected first step is lr · g / (|g| + ε) with ε = 1e-8.
    assert trainer.token_preference_lambda.item() == pytest.approx(-0.05 * gradient / (abs(gradient) + 1e-8), abs=1e-6)


def test_fixed_lambda_and_fixed_schemes_add_no_parameter_group(tmp_path):
    for overrides in ({"learn_lambda": False, "lambda_init": 0.5}, {"token_preference": "grpo"}):
        trainer = tiny_trainer(tmp_path, max_steps=1, **overrides)
        trainer.train()
        assert not isinstance(trainer.optimizer, TokenPreferenceOptimizer)
        assert trainer.token_preference_lambda.item() == overrides.get("lambda_init", 0.0)
        assert all("lambda/grad" not in entry for entry in trainer.state.log_history)
    fixed_logs = [entry for entry in trainer.state.log_history if "token_preference/f_std" in entry]
    assert fixed_logs and fixed_logs[0]["token_preference/f_std"] > 0  # μ/|o_i| varies with the lengths


def test_metrics_are_logged(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=2)
    trainer.train()
    entry = step_logs(trainer)[0]
    for key in (
        "lambda/value",
        "lambda/grad",
        "token_preference/f_min",
        "token_preference/f_max",
        "token_preference/f_std",
        "token_preference/group_length_mean",
        "token_preference/group_length_std",
    ):
        assert math.isfinite(entry[key]), key
    assert entry["token_preference/f_min"] <= 1.0 <= entry["token_preference/f_max"]


def test_resume_from_checkpoint_is_exact(tmp_path):
    straight = tiny_trainer(tmp_path / "straight", max_steps=4, lambda_optimizer="adamw")
    straight.train()

    first_half = tiny_trainer(
        tmp_path / "resumed", max_steps=4, lambda_optimizer="adamw", save_steps=2, save_strategy="steps"
    )
    first_half.train()
    checkpoint = tmp_path / "resumed" / "checkpoint-2"
    assert (checkpoint / LAMBDA_STATE_NAME).is_file()
    resumed = tiny_trainer(tmp_path / "resumed", max_steps=4, lambda_optimizer="adamw")
    counter = StepCounter()
    resumed.add_callback(counter)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert counter.steps == 2

    assert resumed.token_preference_lambda.item() == straight.token_preference_lambda.item()
    assert resumed.optimizer.lambda_optimizer.state_dict()["state"][0]["exp_avg_sq"].item() == (
        straight.optimizer.lambda_optimizer.state_dict()["state"][0]["exp_avg_sq"].item()
    )
    for (name, ours), (_, theirs) in zip(resumed.model.named_parameters(), straight.model.named_parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0, msg=name)


def test_resume_from_a_checkpoint_without_lambda_state_fails_clearly(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=2, save_steps=2, save_strategy="steps")
    trainer.train()
    (tmp_path / "checkpoint-2" / LAMBDA_STATE_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="λ and its optimizer state"):
        tiny_trainer(tmp_path, max_steps=4).train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))


def test_peft_lora(tmp_path):
    tokenizer = tiny_tokenizer()
    trainer = LambdaGRPOTrainer(
        model=tiny_model(tokenizer),
        reward_funcs=count_a_reward,
        args=tiny_config(tmp_path, max_steps=3, learning_rate=1e-2),
        train_dataset=sum_dataset(),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    frozen_before = trainer.model.get_base_model().model.layers[0].mlp.up_proj.weight.clone()
    trainer.train()
    assert abs(trainer.token_preference_lambda.item()) > 1e-4
    assert len(step_logs(trainer)) == 3
    torch.testing.assert_close(trainer.model.get_base_model().model.layers[0].mlp.up_proj.weight, frozen_before)
    trainer.save_model(str(tmp_path / "final"))
    assert (tmp_path / "final" / "adapter_model.safetensors").is_file()


def test_evaluation_logs_lambda(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=1, per_device_eval_batch_size=8, eval_strategy="no")
    trainer.eval_dataset = sum_dataset(8)
    metrics = trainer.evaluate()
    assert metrics["eval_lambda/value"] == 0.0
    assert math.isfinite(metrics["eval_loss"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_generations": 1}, "at least 2 generations"),
        ({"reducer": 0.0}, "reducer must be"),
        ({"reducer": -1 / 9}, "reducer must be"),
        ({"importance_sampling_level": "sequence"}, "importance_sampling_level='sequence' is not supported"),
        ({"use_liger_kernel": True}, "use_liger_kernel=True is not supported"),
        ({"loss_type": "grpo"}, "loss_type='grpo' conflicts"),
        ({"loss_type": "dr_grpo"}, "choose the baseline with `token_preference`"),
        ({"fp16": True}, "fp16=True is not supported"),
        ({"token_preference": "gspo"}, "token_preference='gspo' is not supported"),
        ({"lambda_optimizer": "lion"}, "lambda_optimizer must be"),
        ({"lambda_learning_rate": 0.0}, "lambda_learning_rate must be > 0"),
        ({"lambda_init": float("nan")}, "lambda_init must be finite"),
    ],
)
def test_invalid_configuration_fails_early(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tmp_path, **overrides)


def test_large_groups_warn_about_the_h_floor(tmp_path):
    with pytest.warns(UserWarning, match="h is floored"):
        tiny_config(tmp_path, num_generations=128, per_device_train_batch_size=128)


def test_args_must_be_a_lambda_config(tmp_path):
    from trl import GRPOConfig

    tokenizer = tiny_tokenizer()
    with pytest.raises(TypeError, match="LambdaGRPOConfig"):
        LambdaGRPOTrainer(
            model=tiny_model(tokenizer),
            reward_funcs=count_a_reward,
            args=GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[]),
            train_dataset=sum_dataset(),
            processing_class=tokenizer,
        )
