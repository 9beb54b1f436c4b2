"""GRPO-λ trainer: both ε-trace paths agree on-policy, λ = 0 recent is GRPO, composition with λ-GRPO, training."""

import pytest
import torch
from helpers import assert_same, build_trainer, group_batch, loss_and_gradients
from trl import GRPOConfig, GRPOTrainer

from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer, LambdaReturnGRPOConfig, LambdaReturnGRPOTrainer
from lambda_trl.testing import StepCounter, fixed_batch, tiny_config_fields, tiny_trainer
from lambda_trl.traces import column_sums


LENGTHS = [3, 9, 14, 6, 2, 16, 5, 11]
ADVANTAGES = [1.2, -0.4, -1.1, 0.3, 0.9, -1.3, 0.1, 0.3]
SHUFFLE = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])


def trainer(tmp_path, **overrides):
    return build_trainer(LambdaReturnGRPOTrainer, LambdaReturnGRPOConfig, tmp_path, **overrides)


def training_run(output_dir, **overrides):
    return tiny_trainer(output_dir, LambdaReturnGRPOTrainer, config_class=LambdaReturnGRPOConfig, **overrides)


def with_old_logps(trainer, batch):
    """The batch as TRL hands it over when old log-probs exist (num_iterations > 1): here equal to the current ones."""
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        old, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, attention_mask, batch["completion_ids"].size(1)
        )
    return {**batch, "old_per_token_logps": old}


@pytest.mark.parametrize("style", ["recent", "both", "early"])
@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_exact_traced_ratio_and_per_token_advantages_agree_on_policy(tmp_path, style, loss_type):
    ours = trainer(tmp_path, trace_style=style, trace_lambda=0.9, loss_type=loss_type)
    batch = fixed_batch(LENGTHS, ADVANTAGES, 4, SHUFFLE)
    per_token = loss_and_gradients(ours, batch)
    exact = loss_and_gradients(ours, with_old_logps(ours, batch))
    for name in per_token[1]:
        torch.testing.assert_close(per_token[1][name], exact[1][name], atol=1e-6, rtol=0, msg=name)


def test_lambda_zero_recent_without_clamp_is_plain_grpo(tmp_path):
    ours = trainer(tmp_path, trace_style="recent", trace_lambda=0.0, trace_advantage_clamp=None, loss_type="grpo")
    plain = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="grpo")
    batch = fixed_batch(LENGTHS, ADVANTAGES, 4, SHUFFLE)
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(plain, batch))


def test_per_token_advantages_reach_trls_loss(tmp_path):
    ours = trainer(tmp_path, trace_style="both", trace_lambda=0.5, loss_type="dapo")
    batch = fixed_batch(LENGTHS, ADVANTAGES, 4, SHUFFLE)
    seen = {}
    original = GRPOTrainer._compute_loss

    def spy(self, model, inputs):
        seen["advantages"] = inputs["advantages"]
        return original(self, model, inputs)

    GRPOTrainer._compute_loss = spy
    try:
        ours.compute_loss(ours.model, batch)
    finally:
        GRPOTrainer._compute_loss = original
    mask = batch["completion_mask"]
    expected = batch["advantages"].clamp(min=-0.1)[:, None] * column_sums(mask, 0.5, "both")
    torch.testing.assert_close(seen["advantages"], expected)


def test_composes_with_lambda_token_preference(tmp_path):
    # f(λ) multiplies every token advantage of its completion: equal to λ-GRPO fed the traced per-token advantages.
    composed = trainer(tmp_path, token_preference="lambda", lambda_init=1.5, learn_lambda=False, trace_lambda=0.8)
    reference = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, lambda_init=1.5, learn_lambda=False)
    batch = fixed_batch(LENGTHS, ADVANTAGES, 4, SHUFFLE)
    traced = batch["advantages"].clamp(min=-0.1)[:, None] * column_sums(batch["completion_mask"], 0.8, "both")
    assert_same(loss_and_gradients(composed, batch), loss_and_gradients(reference, {**batch, "advantages": traced}))


def test_exact_path_keeps_the_kl_untraced(tmp_path):
    ours = trainer(tmp_path, trace_style="recent", trace_lambda=0.9, loss_type="dapo", use_bias_correction_kl=False)
    batch = with_old_logps(ours, fixed_batch(LENGTHS, ADVANTAGES, 4, SHUFFLE))
    shift = torch.randn(batch["old_per_token_logps"].shape, generator=torch.Generator().manual_seed(0)) * 0.1
    batch["ref_per_token_logps"] = batch["old_per_token_logps"] + shift
    batch["advantages"] = torch.zeros_like(batch["advantages"])  # isolate the KL term
    plain = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="dapo", use_bias_correction_kl=False)
    ours.beta = plain.beta = 0.1  # set after construction: the batch carries the reference log-probs itself
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(plain, batch))


@pytest.mark.parametrize("overrides", [{}, {"trace_update": "weight"}, {"num_iterations": 2}, {"trace_impl": "verl"}])
def test_short_training_run(tmp_path, overrides):
    run = training_run(tmp_path, loss_type="grpo", **overrides)
    run.train()
    logs = [entry for entry in run.state.log_history if "trace/column_sum_mean" in entry]
    assert len(logs) == 3 and all(entry["trace/column_sum_mean"] >= 1.0 for entry in logs)
    assert all(0.0 <= entry["trace/clamped_fraction"] <= 1.0 for entry in logs)
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in run.state.log_history if "loss" in entry)


def test_resume_from_checkpoint_is_exact(tmp_path):
    """GRPO-λ keeps no state of its own: resuming (here combined with a learnable λ, two iterations) is exact."""

    def run(output_dir, **overrides):
        return training_run(output_dir, max_steps=4, token_preference="lambda", num_iterations=2, **overrides)

    straight = run(tmp_path / "straight")
    straight.train()
    run(tmp_path / "resumed", save_steps=2, save_strategy="steps").train()
    resumed = run(tmp_path / "resumed")
    counter = StepCounter()
    resumed.add_callback(counter)
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    assert counter.steps == 2

    assert resumed.token_preference_lambda.item() == straight.token_preference_lambda.item() != 0.0
    for (name, ours), (_, theirs) in zip(resumed.model.named_parameters(), straight.model.named_parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trace_style": "late"}, "trace_style must be"),
        ({"trace_update": "both"}, "trace_update must be"),
        ({"trace_impl": "verl", "trace_style": "early"}, "no 'early' style"),
        ({"trace_lambda": 1.2}, "must lie in"),
        ({"trace_advantage_clamp": 0.5}, "must be <= 0"),
        ({"loss_type": "cispo"}, "not supported by GRPO-λ"),
        ({"importance_sampling_level": "sequence", "loss_type": "grpo"}, "importance_sampling_level='token'"),
        ({"num_iterations": 2, "beta": 0.01}, "use_bias_correction_kl=False"),
        ({"gradient_accumulation_steps": 4, "steps_per_generation": 3, "beta": 0.01}, "use_bias_correction_kl=False"),
    ],
)
def test_invalid_trace_configuration(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        LambdaReturnGRPOConfig(**tiny_config_fields(tmp_path, **overrides))


@pytest.mark.parametrize(
    ("accumulation", "steps_per_generation", "iterations"), [(4, 3, 1), (2, 2, 1), (1, 1, 2), (2, 1, 2)]
)
def test_old_logps_rule_is_what_trl_does(tmp_path, accumulation, steps_per_generation, iterations):
    run = training_run(
        tmp_path,
        max_steps=1,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=steps_per_generation,
        num_iterations=iterations,
    )
    seen = []
    compute_loss = run._compute_loss

    def recording_compute_loss(model, inputs):
        seen.append(inputs.get("old_per_token_logps") is not None)
        return compute_loss(model, inputs)

    run._compute_loss = recording_compute_loss
    run.train()
    assert seen and set(seen) == {run.args.uses_old_logps}


def test_traced_advantages_take_the_group_normalizer(tmp_path):
    # λ = 0 with the `recent` trace is the identity, so GRPO-λ's per-token advantages with grpo + group must give
    # TRL's grpo exactly, on several groups of different total length.
    ours = trainer(
        tmp_path,
        trace_lambda=0.0,
        trace_style="recent",
        trace_advantage_clamp=None,
        token_preference="grpo",
        token_preference_normalizer="group",
        loss_type="dapo",
    )
    trl = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="grpo")
    batch, _ = group_batch()
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(trl, batch))
