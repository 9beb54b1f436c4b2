import math

import pytest
import torch
from reference import closed_form_lambda_gradient, reference_weights

from lambda_trl.weighting import (
    MIN_NORMALIZED_LENGTH,
    REDUCER_PRESETS,
    dapo_weights,
    dr_grpo_weights,
    grpo_weights,
    normalized_lengths,
    token_preference_weights,
)


def test_two_completions_by_hand():
    # G = 2, lengths 1 and 3: μ = 2, σ = √2, z = ∓1/√2, so g_2 - g_1 = 2r/√2 at λ = 1 and f_1 = 2 / (1 + e^{2r/√2}).
    r = 1 / 9
    f = token_preference_weights(torch.tensor([1.0, 3.0]), 2, 1.0, r)
    expected_first = 2 / (1 + math.exp(2 * r / math.sqrt(2)))
    assert f.tolist() == pytest.approx([expected_first, 2 - expected_first], abs=1e-6)
    assert expected_first == pytest.approx(0.921594, abs=1e-6)


@pytest.mark.parametrize("lam", [-20.0, -2.0, -0.3, 0.0, 0.5, 1.0, 7.0, 20.0])
@pytest.mark.parametrize("reducer", list(REDUCER_PRESETS.values()))
def test_matches_independent_implementation(lam, reducer):
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 2048, (3 * 8,), generator=generator).double()
    f = token_preference_weights(lengths, 8, torch.tensor(lam, dtype=torch.float64), reducer)
    expected = [w for group in lengths.view(3, 8).tolist() for w in reference_weights(group, lam, reducer)]
    assert f.tolist() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_groups_are_independent_and_sum_to_group_size():
    lengths = torch.tensor([5.0, 50.0, 500.0, 7.0, 7.0, 7.0, 1.0, 2.0, 3.0])
    f = token_preference_weights(lengths, 3, 1.5)
    assert f.view(3, 3).sum(dim=1).tolist() == pytest.approx([3.0, 3.0, 3.0], abs=1e-5)
    assert f[3:6].tolist() == pytest.approx([1.0, 1.0, 1.0])  # σ = 0: all h = 1
    alone = token_preference_weights(lengths[6:], 3, 1.5)
    torch.testing.assert_close(f[6:], alone)


def test_sign_of_lambda_sets_the_preference():
    lengths = torch.tensor([10.0, 20.0, 30.0, 40.0])
    longer_first = token_preference_weights(lengths, 4, 2.0)
    shorter_first = token_preference_weights(lengths, 4, -2.0)
    assert torch.all(longer_first.diff() > 0)
    assert torch.all(shorter_first.diff() < 0)
    assert token_preference_weights(lengths, 4, 0.0).tolist() == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("group_size", [2, 4, 16, 256, 1024])
@pytest.mark.parametrize("lam", [-20.0, 0.0, 20.0])
def test_edge_cases_stay_finite_positive_and_normalized(group_size, lam):
    generator = torch.Generator().manual_seed(group_size)
    # One extreme outlier per group pushes the others' z far below -9 for large G, engaging the h floor.
    lengths = torch.randint(1, 30, (2, group_size), generator=generator).float()
    lengths[:, 0] = 8192
    lam_tensor = torch.tensor(lam, requires_grad=True)
    f = token_preference_weights(lengths.view(-1), group_size, lam_tensor)
    # At λ = 20 the outlier's g = h^λ exceeds the others' by > 1000, so exact softmax weights below e^-745 underflow.
    assert torch.isfinite(f).all() and (f >= 0).all()
    assert f.view(2, group_size).sum(dim=1).tolist() == pytest.approx([group_size] * 2, rel=1e-5)
    (f * torch.arange(f.numel())).sum().backward()
    assert torch.isfinite(lam_tensor.grad)
    assert normalized_lengths(lengths.view(-1), group_size).min() >= MIN_NORMALIZED_LENGTH


@pytest.mark.parametrize("lam", [-20.0, 20.0])
def test_extreme_lambda_on_typical_groups_keeps_every_weight_positive(lam):
    lengths = torch.randint(50, 2048, (4 * 16,), generator=torch.Generator().manual_seed(1)).float()
    f = token_preference_weights(lengths, 16, lam)
    assert torch.isfinite(f).all() and (f > 0).all()
    assert f.view(4, 16).sum(dim=1).tolist() == pytest.approx([16.0] * 4, rel=1e-5)


def test_bf16_lengths_and_float_lambda():
    lengths = torch.tensor([12.0, 100.0, 37.0, 64.0], dtype=torch.bfloat16)
    f = token_preference_weights(lengths, 4, 3.0)
    assert f.dtype == torch.float32
    assert f.tolist() == pytest.approx(reference_weights([12.0, 100.0, 37.0, 64.0], 3.0), rel=1e-5)
    integer_lengths = token_preference_weights(torch.tensor([3, 9]), 2, 1.0)
    assert integer_lengths.dtype == torch.float32


@pytest.mark.parametrize("seed", range(5))
def test_autograd_matches_appendix_c_eq_20(seed):
    generator = torch.Generator().manual_seed(seed)
    group_size = 8
    lengths = torch.randint(4, 600, (group_size,), generator=generator).double()
    objective_terms = torch.randn(group_size, generator=generator, dtype=torch.float64) * lengths
    lam_value = float(torch.empty(1).uniform_(-3, 3, generator=generator))
    lam = torch.tensor(lam_value, dtype=torch.float64, requires_grad=True)
    f = token_preference_weights(lengths, group_size, lam, reducer=1 / 9)
    objective = (f * objective_terms).sum() / lengths.sum()  # Appendix C: J = 1/Σ|o| Σ f(o_i) L_i
    objective.backward()
    expected = closed_form_lambda_gradient(lengths.tolist(), objective_terms.tolist(), lam_value, 1 / 9)
    assert lam.grad.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_fixed_schemes_by_hand():
    lengths = torch.tensor([10.0, 20.0, 30.0, 40.0, 2.0, 6.0])
    # group 1: μ = 25; group 2: μ = 4
    assert grpo_weights(lengths[:4], 4).tolist() == pytest.approx([2.5, 1.25, 25 / 30, 0.625])
    assert grpo_weights(lengths[4:], 2).tolist() == pytest.approx([2.0, 2 / 3])
    assert dapo_weights(lengths, 2).tolist() == [1.0] * 6
    assert dr_grpo_weights(lengths, 2).tolist() == [15.0, 15.0, 35.0, 35.0, 4.0, 4.0]


@pytest.mark.parametrize("lam", [-3.0, 0.0, 2.5])
def test_length_zero_completions_are_not_part_of_their_group(lam):
    # A masked (truncated) completion has no loss tokens: every scheme weighs the group as if it had only the others.
    members = [12.0, 40.0, 25.0]
    lengths = torch.tensor([12.0, 0.0, 40.0, 25.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0], dtype=torch.float64)
    expected = reference_weights(members, lam)
    f = token_preference_weights(lengths, 4, lam)
    assert f[:4].tolist() == pytest.approx([expected[0], 0.0, expected[1], expected[2]], rel=1e-12)
    assert f[4:8].tolist() == [0.0] * 4  # a group with no member: no weight, no NaN
    assert f[8:].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0])  # a lone member: z = 0, f = 1
    mean = sum(members) / 3
    assert grpo_weights(lengths, 4)[:4].tolist() == pytest.approx([mean / 12, 0.0, mean / 40, mean / 25])
    assert dapo_weights(lengths, 4).tolist() == [1.0, 0.0, 1.0, 1.0] + [0.0] * 5 + [1.0, 0.0, 0.0]
    assert dr_grpo_weights(lengths, 4)[:4].tolist() == pytest.approx([mean, 0.0, mean, mean])
    # λ's gradient stays finite and ignores the empty completions' positions.
    lam_tensor = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    (token_preference_weights(lengths, 4, lam_tensor) * torch.arange(12.0)).sum().backward()
    assert torch.isfinite(lam_tensor.grad)


@pytest.mark.parametrize(
    ("lengths", "group_size", "message"),
    [(torch.ones(2, 3), 3, "must be 1-D"), (torch.ones(7), 4, "not a multiple of group_size")],
)
def test_malformed_lengths_are_rejected(lengths, group_size, message):
    with pytest.raises(ValueError, match=message):
        token_preference_weights(lengths, group_size, 0.0)


def test_non_positive_reducer_is_rejected():
    with pytest.raises(ValueError, match="reducer"):
        token_preference_weights(torch.ones(4), 2, 1.0, reducer=0.0)
