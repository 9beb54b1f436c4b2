"""The trainer's loss on a fixed batch against TRL's built-in loss types and the paper's equations computed directly."""

import pytest
import torch
from helpers import (
    ADVANTAGES_THREE_GROUPS,
    LENGTHS_THREE_GROUPS,
    SHUFFLE_THREE,
    assert_same,
    build_trainer,
    group_batch,
    loss_and_gradients,
)
from reference import closed_form_lambda_gradient, reference_weights
from trl import GRPOConfig, GRPOTrainer

from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer
from lambda_trl.testing import (
    PROMPT_LENGTH,
    fixed_batch,
    scripted_trainer,
    tiny_config_fields,
    tiny_model,
    tiny_tokenizer,
)


def independent_copy(model):
    """A fresh model with the same weights: the prepared one's forward is wrapped by accelerate and TRL."""
    copy = tiny_model(tiny_tokenizer())
    copy.load_state_dict(model.state_dict())
    return copy


def completion_logps(model, batch):
    """Per-token log-probs computed here, independently of TRL's helpers."""
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, PROMPT_LENGTH - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)


def unified_objective_loss(model, batch, weights, epsilon=0.2):
    """-J of Eq. 7: -(1/Σ|o|) Σ_i f_i Σ_t min(r Â, clip(r) Â), on-policy (r = exp(logp - logp.detach()))."""
    logps = completion_logps(model, batch)
    ratio = torch.exp(logps - logps.detach())
    advantages = batch["advantages"].unsqueeze(1)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - epsilon, 1 + epsilon) * advantages)
    mask = batch["completion_mask"]
    per_completion = (surrogate * mask).sum(dim=1)
    return -(weights * per_completion).sum() / mask.sum()


LENGTHS_TWO_GROUPS = [3, 9, 14, 6, 2, 16, 5, 11]
ADVANTAGES_TWO_GROUPS = [1.2, -0.4, -1.1, 0.3, 0.9, -1.3, 0.1, 0.3]
SHUFFLE = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])


def test_dapo_scheme_equals_trl_dapo(tmp_path):
    ours = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="dapo")
    trl = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="dapo")
    batch = fixed_batch(LENGTHS_TWO_GROUPS, ADVANTAGES_TWO_GROUPS, 4, SHUFFLE)
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(trl, batch))


def test_frozen_lambda_zero_equals_trl_dapo(tmp_path):
    ours = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, lambda_init=0.0, learn_lambda=False)
    trl = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="dapo")
    batch = fixed_batch(LENGTHS_TWO_GROUPS, ADVANTAGES_TWO_GROUPS, 4, SHUFFLE)
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(trl, batch))


def test_grpo_scheme_equals_trl_grpo_on_one_group(tmp_path):
    # On one group Σ|o_i| = Gμ, so (1/Σ|o|) Σ (μ/|o_i|) L_i = (1/G) Σ L_i/|o_i|: TRL's per-sequence mean. Across groups
    # of different mean length the unified normalizer weighs each group by its μ, TRL's `grpo` weighs groups equally.
    ours = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="grpo")
    trl = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="grpo")
    batch = fixed_batch([3, 9, 14, 6], [1.2, -0.4, -1.1, 0.3], 4, torch.tensor([2, 0, 3, 1]))
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(trl, batch))

    two_groups = fixed_batch(LENGTHS_TWO_GROUPS, ADVANTAGES_TWO_GROUPS, 4, SHUFFLE)
    _, ours_gradients = loss_and_gradients(ours, two_groups)
    _, trl_gradients = loss_and_gradients(trl, two_groups)
    difference = max((ours_gradients[n] - trl_gradients[n]).abs().max() for n in ours_gradients)
    assert difference > 1e-4


def test_dr_grpo_scheme_equals_eq_6(tmp_path):
    ours = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="dr_grpo")
    batch = fixed_batch([3, 9, 14, 6], [1.2, -0.4, -1.1, 0.3], 4)
    direct_model = independent_copy(ours.model)
    # Eq. 6 for one group: -(1/G) Σ_i Σ_t min(r Â, clip(r) Â)
    logps = completion_logps(direct_model, batch)
    ratio = torch.exp(logps - logps.detach())
    advantages = batch["advantages"].unsqueeze(1)
    surrogate = torch.min(ratio * advantages, ratio.clamp(0.8, 1.2) * advantages)
    direct_loss = -(surrogate * batch["completion_mask"]).sum() / 4
    direct_loss.backward()
    direct = (direct_loss.detach(), {n: p.grad.clone() for n, p in direct_model.named_parameters()})
    assert_same(loss_and_gradients(ours, batch), direct)


@pytest.mark.parametrize("lam", [-1.7, 0.7, 4.0])
def test_lambda_scheme_equals_eq_7_on_shuffled_groups(tmp_path, lam):
    ours = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, lambda_init=lam, learn_lambda=False)
    batch = fixed_batch(LENGTHS_TWO_GROUPS, ADVANTAGES_TWO_GROUPS, 4, SHUFFLE)
    weights = torch.tensor(
        [w for group in (LENGTHS_TWO_GROUPS[:4], LENGTHS_TWO_GROUPS[4:]) for w in reference_weights(group, lam)]
    )[SHUFFLE]
    direct_model = independent_copy(ours.model)
    direct_loss = unified_objective_loss(direct_model, batch, weights)
    direct_loss.backward()
    direct = (direct_loss.detach(), {n: p.grad.clone() for n, p in direct_model.named_parameters()})
    assert_same(loss_and_gradients(ours, batch), direct)


def test_trainer_lambda_gradient_equals_eq_20(tmp_path):
    lam = 0.8
    ours = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, lambda_init=lam)
    lengths, advantages = [3, 9, 14, 6], [1.2, -0.4, -1.1, 0.3]
    batch = fixed_batch(lengths, advantages, 4, torch.tensor([1, 3, 0, 2]))
    ours.compute_loss(ours.model, batch).backward()
    # On-policy r = 1, so L_i = Σ_t Â_i = |o_i| Â_i; TRL's loss is -J.
    objective_terms = [length * advantage for length, advantage in zip(lengths, advantages)]
    expected = -closed_form_lambda_gradient(lengths, objective_terms, lam, 1 / 9)
    assert ours.token_preference_lambda.grad.item() == pytest.approx(expected, rel=1e-5)


# --- token_preference_normalizer="group": Eq. 7 as written, per group then averaged over the groups -----------------
# helpers.group_batch: three groups of different total length, shuffled; the batch and group normalizers differ on it.


def per_group_objective_loss(model, batch, weights, group_of, denominator_of):
    """-(1/K) Σ_g (1/denominator_g) Σ_{i∈g} weight_i Σ_t min(r Â, clip(r) Â), computed directly (on-policy)."""
    logps = completion_logps(model, batch)
    ratio = torch.exp(logps - logps.detach())
    advantages = batch["advantages"].unsqueeze(1)
    surrogate = torch.min(ratio * advantages, ratio.clamp(0.8, 1.2) * advantages)
    per_completion = (surrogate * batch["completion_mask"]).sum(dim=1)
    groups = sorted(set(group_of.tolist()))
    total = sum(
        (weights[group_of == g] * per_completion[group_of == g]).sum() / denominator_of(g, group_of == g)
        for g in groups
    )
    return -total / len(groups)


def direct_per_group(trainer, batch, weights, group_of, denominator_of):
    model = independent_copy(trainer.model)
    loss = per_group_objective_loss(model, batch, weights, group_of, denominator_of)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_grpo_with_group_normalizer_equals_trl_grpo_on_several_groups(tmp_path):
    ours = build_trainer(
        LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="grpo", token_preference_normalizer="group"
    )
    trl = build_trainer(GRPOTrainer, GRPOConfig, tmp_path, loss_type="grpo")
    batch, _ = group_batch()
    assert_same(loss_and_gradients(ours, batch), loss_and_gradients(trl, batch))


def test_dr_grpo_with_group_normalizer_equals_eq_6(tmp_path):
    ours = build_trainer(
        LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="dr_grpo", token_preference_normalizer="group"
    )
    batch, group_of = group_batch()
    # Eq. 6 averaged over prompts: -(1/K) Σ_g (1/G) Σ_{i∈g} Σ_t (...)
    direct = direct_per_group(ours, batch, torch.ones(12), group_of, lambda g, members: 4)
    assert_same(loss_and_gradients(ours, batch), direct)


def test_dapo_with_group_normalizer_is_the_per_prompt_token_mean(tmp_path):
    ours = build_trainer(
        LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="dapo", token_preference_normalizer="group"
    )
    batch, group_of = group_batch()
    lengths = batch["completion_mask"].sum(dim=1).float()
    direct = direct_per_group(ours, batch, torch.ones(12), group_of, lambda g, members: lengths[members].sum())
    assert_same(loss_and_gradients(ours, batch), direct)
    # On this batch the batch normalizer is a different objective.
    batch_normalized = build_trainer(LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, token_preference="dapo")
    batch_loss, _ = loss_and_gradients(batch_normalized, batch)
    assert abs(batch_loss - direct[0]) > 1e-4


@pytest.mark.parametrize("lam", [-1.7, 0.7, 4.0])
def test_lambda_with_group_normalizer_equals_eq_7_per_group(tmp_path, lam):
    ours = build_trainer(
        LambdaGRPOTrainer,
        LambdaGRPOConfig,
        tmp_path,
        lambda_init=lam,
        learn_lambda=False,
        token_preference_normalizer="group",
    )
    batch, group_of = group_batch()
    groups = [LENGTHS_THREE_GROUPS[i : i + 4] for i in range(0, 12, 4)]
    weights = torch.tensor([w for group in groups for w in reference_weights(group, lam)])[SHUFFLE_THREE]
    lengths = batch["completion_mask"].sum(dim=1).float()
    direct = direct_per_group(ours, batch, weights, group_of, lambda g, members: lengths[members].sum())
    assert_same(loss_and_gradients(ours, batch), direct)


def test_lambda_gradient_with_group_normalizer_is_eq_20_averaged_over_groups(tmp_path):
    lam = 0.8
    ours = build_trainer(
        LambdaGRPOTrainer, LambdaGRPOConfig, tmp_path, lambda_init=lam, token_preference_normalizer="group"
    )
    batch, _ = group_batch()
    ours.compute_loss(ours.model, batch).backward()
    groups = [list(range(i, i + 4)) for i in range(0, 12, 4)]
    per_group = [
        closed_form_lambda_gradient(
            [LENGTHS_THREE_GROUPS[i] for i in g],
            [LENGTHS_THREE_GROUPS[i] * ADVANTAGES_THREE_GROUPS[i] for i in g],  # on-policy L_i = |o_i| Â_i
            lam,
            1 / 9,
        )
        for g in groups
    ]
    assert ours.token_preference_lambda.grad.item() == pytest.approx(-sum(per_group) / len(groups), rel=1e-5)


def test_group_normalizer_under_accumulation_and_longer_generation_batches(tmp_path):
    # gradient_accumulation_steps 2, steps_per_generation 4: one generation batch (4 groups) spans two optimizer
    # steps and TRL's `num_items_in_batch` counts all of it. grpo + group must still train exactly like TRL's grpo.
    fields = tiny_config_fields(
        tmp_path,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        steps_per_generation=4,
        max_steps=2,
        optim="sgd",
        learning_rate=0.5,
    )
    runs = {}
    for name, trainer_class, args in [
        (
            "ours",
            LambdaGRPOTrainer,
            LambdaGRPOConfig(**fields, token_preference="grpo", token_preference_normalizer="group"),
        ),
        ("trl", GRPOTrainer, GRPOConfig(**fields, loss_type="grpo")),
    ]:
        trainer = scripted_trainer(trainer_class, args)
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
        runs[name] = {n: p.detach() - before[n] for n, p in trainer.model.named_parameters()}
    assert max(update.abs().max() for update in runs["trl"].values()) > 1e-3
    for name, update in runs["trl"].items():
        torch.testing.assert_close(runs["ours"][name], update, atol=1e-6, rtol=0, msg=name)
