"""GRPO-λ trace math: the numeric cases of shared/specs/grpo-lambda-return.md §5, recursions vs matrices, gradients."""

import math

import pytest
import torch

from lambda_trl.traces import apply_trace, column_sums, eligibility_weights, trace_advantages, trace_matrix


def advantages_of(adv, mask, decay, style, clamp=None, **kwargs):
    return trace_advantages(torch.tensor(adv), torch.tensor(mask), decay, style, clamp=clamp, **kwargs).tolist()


def test_case_1_recent():
    assert advantages_of([1.0], [[1, 1, 1]], 0.5, "recent")[0] == pytest.approx([1.75, 1.5, 1.0])


def test_case_2_negative_clamp():
    assert advantages_of([-1.0], [[1, 1, 1]], 0.5, "recent", clamp=-0.1)[0] == pytest.approx([-0.175, -0.15, -0.1])
    assert advantages_of([-1.0], [[1, 1, 1]], 0.5, "recent", clamp=None)[0] == pytest.approx([-1.75, -1.5, -1.0])
    assert advantages_of([2.0], [[1, 1, 1]], 0.5, "recent", clamp=-0.1)[0] == pytest.approx([3.5, 3.0, 2.0])


def test_case_3_padding():
    result = advantages_of([2.0, 0.5], [[1, 1, 1, 1], [1, 1, 0, 0]], 0.5, "recent")
    assert result == [pytest.approx([3.75, 3.5, 3.0, 2.0]), pytest.approx([0.75, 0.5, 0.0, 0.0])]


def test_case_4_both_and_recent_values():
    assert advantages_of([1.0], [[1, 1, 1, 1]], 0.5, "both")[0] == pytest.approx([4.0, 2.0, 1.5, 1.0])
    assert advantages_of([1.0], [[1, 1, 1]], 0.5, "both")[0] == pytest.approx([3.0, 1.5, 1.0])
    assert advantages_of([1.0], [[1, 1, 1]], 0.99, "recent")[0] == pytest.approx([2.9701, 1.99, 1.0])
    assert advantages_of([1.0], [[1, 1, 1]], 0.99, "both")[0] == pytest.approx([3.0, 1.99, 1.0])


def test_case_5_lambda_zero():
    assert advantages_of([0.7], [[1, 1, 1, 0]], 0.0, "recent")[0] == pytest.approx([0.7, 0.7, 0.7, 0.0])
    assert advantages_of([1.0], [[1, 1, 1]], 0.0, "both")[0] == pytest.approx([3.0, 1.0, 1.0])


def test_case_6_exact_traced_ratio_and_surrogate():
    delta = torch.tensor([[0.1, 0.0, -0.2]])
    traced = apply_trace(delta, torch.ones(1, 3), 0.5, "recent")
    assert traced[0].tolist() == pytest.approx([0.1, 0.05, -0.175])
    ratio = torch.exp(traced)[0]
    assert ratio.tolist() == pytest.approx([1.105171, 1.051271, 0.839457], abs=1e-6)

    def surrogate(advantage, epsilon):
        return torch.min(ratio * advantage, ratio.clamp(1 - epsilon, 1 + epsilon) * advantage).tolist()

    assert surrogate(1.0, 0.2) == pytest.approx([1.105171, 1.051271, 0.839457], abs=1e-6)
    assert surrogate(1.0, 0.05) == pytest.approx([1.05, 1.05, 0.839457], abs=1e-6)
    assert surrogate(-1.0, 0.05) == pytest.approx([-1.105171, -1.051271, -0.95], abs=1e-6)
    assert surrogate(-0.1, 0.2) == pytest.approx([-0.110517, -0.105127, -0.083946], abs=1e-6)


def test_case_7_eligibility_weights():
    logps, mask = torch.tensor([[0.0, -1.0, -2.0]]), torch.ones(1, 3)
    g = 1 + torch.sigmoid(logps - 1)
    assert g[0].tolist() == pytest.approx([1.268941, 1.119203, 1.047426], abs=1e-6)
    recent = eligibility_weights(logps, mask, 0.5, "recent")[0]
    both = eligibility_weights(logps, mask, 0.5, "both")[0]
    assert recent.tolist() == pytest.approx([1.268941, 1.753674, 1.924263], abs=1e-6)
    assert both.tolist() == pytest.approx([1.268941, 2.388144, 2.875969], abs=1e-6)


def test_case_8_verl_variant():
    assert column_sums(torch.ones(1, 3), 0.5, "recent", "verl")[0].tolist() == pytest.approx([1.5, 1.5, 1.0])
    assert column_sums(torch.ones(1, 4), 0.5, "both", "verl")[0].tolist() == pytest.approx([4.0, 2.0, 1.25, 1.0])
    ragged = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert column_sums(ragged, 0.5, "both", "verl").tolist() == [
        pytest.approx([3.0, 1.5, 1.0, 0.0]),  # n = 3: weights max(d^(3-j), d^j) = [1, .5, .5]: C[1] = 1 + w_1
        pytest.approx([4.0, 2.0, 1.25, 1.0]),
    ]


@pytest.mark.parametrize("style", ["recent", "both", "early"])
@pytest.mark.parametrize("implementation", ["paper", "verl"])
def test_recursions_and_blocks_agree_with_the_full_matrix(style, implementation, monkeypatch):
    if implementation == "verl" and style == "early":
        pytest.skip("no early style in the verl port")
    monkeypatch.setattr("lambda_trl.traces.ROW_BLOCK", 3)  # several row blocks even at T = 9
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([9, 4, 1, 7])
    mask = (torch.arange(9)[None, :] < lengths[:, None]).float()
    values = torch.randn(4, 9, generator=generator, dtype=torch.float64)
    for b, n in enumerate(lengths.tolist()):
        matrix = (
            trace_matrix(9, 0.9, style, implementation)
            if implementation == "paper"
            else __import__("lambda_trl.traces", fromlist=["x"]).trace_matrix_rows(
                torch.arange(9), 9, 0.9, style, implementation, sequence_length=n
            )
        )
        expected_sums = (mask[b].double() @ matrix) * mask[b]
        expected_trace = (matrix @ (values[b] * mask[b])) * mask[b]
        torch.testing.assert_close(column_sums(mask, 0.9, style, implementation)[b].double(), expected_sums)
        torch.testing.assert_close(apply_trace(values, mask, 0.9, style, implementation)[b], expected_trace)


@pytest.mark.parametrize("style", ["recent", "both", "early"])
def test_per_token_advantages_give_the_traced_surrogate_gradient(style):
    # Spec §5.8: on-policy, ∇ Σ m·(-Ã·exp(traced Δℓ)) == ∇ Σ m·(-A_tok·exp(ℓ - ℓ.detach())).
    generator = torch.Generator().manual_seed(1)
    logps = torch.randn(2, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float64)
    advantages = torch.tensor([0.8, -1.3], dtype=torch.float64)
    clamped = advantages.clamp(min=-0.1)
    traced = apply_trace(logps - logps.detach(), mask, 0.95, style)
    (-(clamped[:, None] * torch.exp(traced)) * mask).sum().backward()
    traced_gradient = logps.grad.clone()
    logps.grad = None
    per_token = trace_advantages(advantages, mask, 0.95, style, clamp=-0.1)
    (-(per_token * torch.exp(logps - logps.detach())) * mask).sum().backward()
    torch.testing.assert_close(logps.grad, traced_gradient, atol=1e-6, rtol=0)


def test_recent_builds_no_quadratic_tensor(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("recent must not build trace matrix rows")

    monkeypatch.setattr("lambda_trl.traces.trace_matrix_rows", forbidden)
    mask = torch.ones(2, 4096)
    sums = column_sums(mask, 0.99, "recent")
    assert sums[0, -1] == 1.0 and sums[0, 0] == pytest.approx((1 - 0.99**4096) / 0.01, rel=1e-4)
    apply_trace(torch.randn(2, 4096), mask, 0.99, "recent")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"style": "late"}, "trace style"),
        ({"implementation": "openrlhf"}, "trace implementation"),
        ({"decay": 1.5}, "must lie in"),
        ({"style": "early", "implementation": "verl"}, "no 'early' style"),
    ],
)
def test_bad_trace_settings(kwargs, message):
    arguments = {"decay": 0.9, "style": "recent", "implementation": "paper", **kwargs}
    with pytest.raises(ValueError, match=message):
        column_sums(torch.ones(1, 3), **arguments)


def test_weight_update_needs_logps_and_unknown_update_fails():
    with pytest.raises(ValueError, match="needs the per-token log-probs"):
        trace_advantages(torch.ones(1), torch.ones(1, 2), 0.5, "recent", update="weight")
    with pytest.raises(ValueError, match="update must be"):
        trace_advantages(torch.ones(1), torch.ones(1, 2), 0.5, "recent", update="both")
    assert math.isclose(
        trace_advantages(
            torch.ones(1), torch.ones(1, 2), 0.5, "recent", update="weight", per_token_logps=torch.zeros(1, 2)
        )[0, 1].item(),
        (1 + torch.sigmoid(torch.tensor(-1.0)).item()) * 1.5,
        rel_tol=1e-6,
    )
