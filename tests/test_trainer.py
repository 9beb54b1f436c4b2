"""End-to-end training on a tiny random model: λ's update rule, optimizer group, checkpointing, PEFT and errors."""

import dataclasses
import inspect
import json
import math

import pytest
import torch
from accelerate.state import AcceleratorState
from peft import LoraConfig
from transformers import TrainerCallback
from trl import GRPOTrainer

from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer, LambdaReturnGRPOConfig, LambdaReturnGRPOTrainer
from lambda_trl.lambda_state import LAMBDA_STATE_NAME, read_lambda_state
from lambda_trl.optimizer import LAMBDA_GROUP_NAME, TokenPreferenceOptimizer
from lambda_trl.testing import (
    StepCounter,
    count_a_reward,
    sum_dataset,
    tiny_config,
    tiny_model,
    tiny_tokenizer,
    tiny_trainer,
)


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


def test_masked_truncated_completions_leave_their_group(tmp_path):
    # Most completions of the tiny model hit max_completion_length; masked, they must not take λ-dependent weight.
    trainer = tiny_trainer(tmp_path, max_steps=3, mask_truncated_completions=True, lambda_init=2.0)
    seen = []
    group_weights = trainer.group_weights

    def recording_group_weights(group_lengths):
        weights = group_weights(group_lengths)
        seen.append((group_lengths.clone(), weights.detach().clone()))
        return weights

    trainer.group_weights = recording_group_weights
    trainer.train()
    lengths = torch.cat([lengths for lengths, _ in seen])
    weights = torch.cat([weights for _, weights in seen])
    assert (lengths == 0).any() and (lengths > 0).any(), "the run should mask some completions and keep others"
    assert torch.equal(weights[lengths == 0], torch.zeros_like(weights[lengths == 0]))
    torch.testing.assert_close(weights.sum(dim=1), (lengths > 0).sum(dim=1).to(weights.dtype))
    assert all(math.isfinite(e["loss"]) and math.isfinite(e["lambda/grad"]) for e in step_logs(trainer))


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
    with pytest.raises(FileNotFoundError, match="λ cannot be restored"):
        tiny_trainer(tmp_path, max_steps=4).train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))


def test_lambda_state_travels_with_the_model(tmp_path):
    # save_only_model checkpoints and the final output carry λ and its optimizer state; resuming from such a
    # checkpoint restores both, and the run continues exactly as the uninterrupted one.
    straight = tiny_trainer(tmp_path / "straight", max_steps=4, lambda_optimizer="adamw")
    straight.train()
    first = tiny_trainer(
        tmp_path / "run",
        max_steps=4,
        lambda_optimizer="adamw",
        save_steps=2,
        save_strategy="steps",
        save_only_model=True,
    )
    first.train()
    first.save_model(str(tmp_path / "final"))
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert not (checkpoint / "optimizer.pt").exists()
    saved = json.loads((checkpoint / LAMBDA_STATE_NAME).read_text())
    assert saved["global_step"] == 2 and saved["lambda_optimizer"] == "adamw" and saved["lambda"] != 0.0
    final = read_lambda_state(str(tmp_path / "final"))
    assert final["lambda"] == first.token_preference_lambda.item() and final["global_step"] == 4
    assert final["optimizer_state"]["state"][0]["exp_avg"].dtype == torch.float32

    resumed = tiny_trainer(tmp_path / "run", max_steps=4, lambda_optimizer="adamw")
    restored = LambdaAtTrainBegin()
    resumed.add_callback(restored)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    # save_only_model keeps no RNG state, so the resumed generations differ; what must hold is that the first
    # resumed step starts from the saved λ and λ's saved AdamW moments.
    assert restored.value == saved["lambda"] == step_logs(straight)[2]["lambda/value"]
    assert {k: v.item() for k, v in restored.optimizer_state.items()} == saved["optimizer_state"]["state"]["0"]
    assert restored.optimizer_state["step"].item() == 2.0
    assert resumed.optimizer.lambda_optimizer.state_dict()["state"][0]["step"].item() == 4.0


class LambdaAtTrainBegin(TrainerCallback):
    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        self.value = optimizer.token_preference_lambda.item()
        self.optimizer_state = {k: v.clone() for k, v in optimizer.lambda_optimizer.state_dict()["state"][0].items()}


def test_resuming_with_another_lambda_optimizer_says_so(tmp_path):
    tiny_trainer(tmp_path, max_steps=2, save_steps=2, save_strategy="steps", lambda_optimizer="adamw").train()
    with pytest.raises(ValueError, match="lambda_optimizer='adamw', this run asks for 'sgd'"):
        tiny_trainer(tmp_path, max_steps=4).train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))


def test_lambda_lr_can_follow_only_a_schedule_that_records_its_initial_lr():
    # A scheduler from a DeepSpeed config does not set `initial_lr`; λ's lr would silently never follow it.
    parameter = torch.nn.Parameter(torch.zeros(()))
    model_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="lambda_lr_follows_schedule=True needs"):
        TokenPreferenceOptimizer(model_optimizer, parameter, 0.1, "sgd", lambda g: g, follows_schedule=True)


def test_fixed_lambda_is_saved_without_optimizer_state(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=1, lambda_init=0.5, learn_lambda=False)
    trainer.train()
    trainer.save_model()
    state = read_lambda_state(str(tmp_path))
    assert state["lambda"] == 0.5 and state["optimizer_state"] is None and state["learn_lambda"] is False


def test_baseline_schemes_write_no_lambda_state(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=1, token_preference="dapo")
    trainer.train()
    trainer.save_model()
    assert not (tmp_path / LAMBDA_STATE_NAME).exists()


@pytest.mark.parametrize("trainer_class", [LambdaGRPOTrainer, LambdaReturnGRPOTrainer])
def test_constructor_accepts_exactly_what_trl_accepts(trainer_class):
    ours = inspect.signature(trainer_class.__init__).parameters
    theirs = inspect.signature(GRPOTrainer.__init__).parameters
    assert list(ours) == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name


def test_positional_arguments_in_trls_order(tmp_path):
    tokenizer = tiny_tokenizer()
    args = tiny_config(tmp_path, max_steps=1)
    trainer = LambdaGRPOTrainer(tiny_model(tokenizer), count_a_reward, args, sum_dataset(), None, tokenizer)
    assert trainer.train_dataset is not None and trainer.processing_class is tokenizer


def test_no_reward_source_gets_trls_error(tmp_path):
    tokenizer = tiny_tokenizer()
    with pytest.raises(ValueError, match="reward"):
        LambdaGRPOTrainer(
            tiny_model(tokenizer), args=tiny_config(tmp_path), train_dataset=sum_dataset(), processing_class=tokenizer
        )


# TRL's defaults ask for bf16, which a CPU refuses: each config class with CPU defaults stands in for it.
@dataclasses.dataclass
class CPUDefaults:
    use_cpu: bool = True
    bf16: bool = False
    max_steps: int = 1
    report_to: str = "none"


@dataclasses.dataclass
class CPULambdaGRPOConfig(CPUDefaults, LambdaGRPOConfig):
    pass


@dataclasses.dataclass
class CPULambdaReturnGRPOConfig(CPUDefaults, LambdaReturnGRPOConfig):
    pass


CPU_CONFIGS = {LambdaGRPOConfig: CPULambdaGRPOConfig, LambdaReturnGRPOConfig: CPULambdaReturnGRPOConfig}


@pytest.mark.parametrize(
    ("trainer_class", "config_class"),
    [(LambdaGRPOTrainer, LambdaGRPOConfig), (LambdaReturnGRPOTrainer, LambdaReturnGRPOConfig)],
)
def test_default_args_are_the_trainers_own_config(tmp_path, monkeypatch, trainer_class, config_class):
    assert trainer_class.config_class is config_class
    cpu_config = CPU_CONFIGS[config_class]
    monkeypatch.setattr(trainer_class, "config_class", cpu_config)
    monkeypatch.chdir(tmp_path)
    tokenizer = tiny_tokenizer()
    trainer = trainer_class(
        tiny_model(tokenizer), count_a_reward, train_dataset=sum_dataset(), processing_class=tokenizer
    )
    assert type(trainer.args) is cpu_config
    trainer.train()  # one real loss: GRPO-λ's reads its trace fields from the config


@pytest.mark.parametrize("learn_lambda", [True, False])
def test_fp16_from_the_accelerate_config_is_rejected_while_lambda_learns(tmp_path, monkeypatch, learn_lambda):
    # `accelerate launch --mixed_precision fp16` (or a config file saying so) reaches the trainer only this way.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        if learn_lambda:
            with pytest.raises(ValueError, match="mixed_precision='fp16'.*not supported while λ is learned"):
                tiny_trainer(tmp_path, learn_lambda=True)
        else:
            assert tiny_trainer(tmp_path, learn_lambda=False).accelerator.mixed_precision == "fp16"
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


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
        ({"fp16": True}, "fp16=True is not supported while λ is learned"),
        ({"token_preference": "gspo"}, "token_preference='gspo' is not supported"),
        ({"lambda_optimizer": "lion"}, "lambda_optimizer must be"),
        ({"lambda_learning_rate": 0.0}, "lambda_learning_rate must be > 0"),
        ({"lambda_init": float("nan")}, "lambda_init must be finite"),
        ({"token_preference_normalizer": "prompt"}, "token_preference_normalizer='prompt' is not supported"),
        ({"token_preference_normalizer": "group", "token_preference": "none"}, "does not use"),
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
