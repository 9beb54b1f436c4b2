from dataclasses import dataclass

import torch

from .lambda_return_config import LambdaReturnGRPOConfig
from .traces import clamp_advantages, column_sums, trace_advantages, traced_log_probs
from .trainer import LambdaGRPOTrainer


@dataclass
class PolicyLogProbTrace:
    """
    What `LambdaReturnGRPOTrainer._get_per_token_logps_and_entropies` needs to trace the policy's log-probs in one
    loss call. TRL 1.16's `GRPOTrainer._compute_loss` computes those log-probs first and only then reads the
    advantages and the old and reference log-probs from its batch `loss_inputs`; the entries that depend on the
    traced log-probs are `held` out of it until they are computed, so a TRL that read them earlier would fail with a
    KeyError instead of training untraced.
    """

    loss_inputs: dict
    mask: torch.Tensor
    held: dict


class LambdaReturnGRPOTrainer(LambdaGRPOTrainer):
    r"""
    Trainer for GRPO-λ: Credit Assignment improves LLM Reasoning (https://huggingface.co/papers/2510.00194).

    GRPO's advantage $\hat A_i$ stands in for the TD error of every token, and eligibility traces over the token
    log-probs turn it into a critic-free λ-return (see `lambda_trl.traces`). Negative advantages are clamped,
    $\tilde A_i = \max(\hat A_i, c)$.

    - ε-trace on-policy (no old log-probs): TRL's loss gets per-token advantages
      $\tilde A_i C_{ij}$ (trace column sums), which give exactly the gradient of the traced-ratio surrogate.
    - ε-trace with old log-probs (TRL computes them when `gradient_accumulation_steps` is not a multiple of
      `steps_per_generation × num_iterations`, or for vLLM importance-sampling correction):
      the trace goes inside the clip exactly. The log-probs TRL's loss consumes become
      $\ell^{old} + \mathrm{clamp}(W(\ell - \ell^{old}), \pm 20)$, so TRL's own ratio is the traced ratio; the
      reference log-probs are shifted by the same amount, so the KL term keeps its untraced value and gradient, and
      the vLLM importance weights (computed before) are untouched.
    - ε-weight: per-token advantages $\tilde A_i E_{ij}$, $E = W (1 + \sigma(\ell - 1))$, detached.

    Confidence notes: the trace styles and the ε-trace/ε-weight split are from
    the paper [high]; W's lag form and λ = 0.99 [medium]; `trace_impl="verl"`, g = 1 + σ(ℓ - 1) and the ±20 clamp of
    the traced log-ratio come from the authors' code or are ours [low]. With `token_preference="lambda"` the
    per-completion weights f(λ) of λ-GRPO multiply the traced advantages: f > 0 is constant within a completion, so
    f·min(r̃Ã, clip(r̃)Ã) = min(r̃·fÃ, clip(r̃)·fÃ) and the two compose exactly.
    """

    _tag_names = ["trl", "grpo", "grpo-lambda"]
    _name = "GRPO-λ"
    _paper = {
        "title": "GRPO-λ: Credit Assignment improves LLM Reasoning",
        "id": "2510.00194",
        "citation": "@article{grpolambda2025,\n    title  = {{GRPO-$\\lambda$: Credit Assignment improves LLM Reasoning}},"
        "\n    year   = 2025,\n    eprint = {arXiv:2510.00194},\n}",
    }

    config_class = LambdaReturnGRPOConfig

    # Set by `_loss_inputs` for the policy log-prob call that TRL's loss makes next; None at generation time.
    _policy_log_prob_trace: PolicyLogProbTrace | None = None

    def _loss_inputs(self, inputs: dict) -> dict:
        """
        The batch for TRL's loss with GRPO-λ's advantages, then weighted by λ-GRPO's f (`LambdaGRPOTrainer`).
        On-policy ε-trace only needs the per-token advantages Ã·C. ε-weight and ε-trace with old log-probs act on the
        policy's log-probs, which TRL's loss computes itself: the batch gets the clamped advantages Ã and
        `_get_per_token_logps_and_entropies` traces those log-probs.
        """
        args = self.args
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        sums = column_sums(mask, args.trace_decay, args.trace_style, args.trace_impl)
        self._log_trace_metrics(inputs["advantages"], sums, mask)
        if args.trace_update == "trace" and "old_per_token_logps" not in inputs:
            advantages = trace_advantages(
                inputs["advantages"],
                mask,
                args.trace_decay,
                args.trace_style,
                clamp=args.trace_advantage_clamp,
                implementation=args.trace_impl,
                sums=sums,
            )
            return super()._loss_inputs({**inputs, "advantages": advantages})
        advantages = clamp_advantages(inputs["advantages"], args.trace_advantage_clamp)
        loss_inputs = super()._loss_inputs({**inputs, "advantages": advantages})
        traced_entries = ["advantages"] if args.trace_update == "weight" else ["ref_per_token_logps"]
        held = {name: loss_inputs.pop(name) for name in traced_entries if name in loss_inputs}
        self._policy_log_prob_trace = PolicyLogProbTrace(loss_inputs, mask, held)
        return loss_inputs

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        """TRL's per-token log-probs; in a loss that `_loss_inputs` prepared for it, traced (see the class docstring)."""
        trace, self._policy_log_prob_trace = self._policy_log_prob_trace, None
        logps, entropies, aux_loss = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if trace is None:
            return logps, entropies, aux_loss
        config, batch = self.args, trace.loss_inputs
        decay, style, implementation = config.trace_decay, config.trace_style, config.trace_impl
        if config.trace_update == "weight":
            batch["advantages"] = trace_advantages(
                trace.held["advantages"],
                trace.mask,
                decay,
                style,
                update="weight",
                clamp=None,
                per_token_logps=logps,
                implementation=implementation,
            )
            return logps, entropies, aux_loss
        traced = traced_log_probs(logps, batch["old_per_token_logps"], trace.mask, decay, style, implementation)
        if "ref_per_token_logps" in trace.held:
            batch["ref_per_token_logps"] = trace.held["ref_per_token_logps"] + (traced - logps)
        return traced, entropies, aux_loss

    def model_card_lines(self) -> list[str]:
        args = self.args
        return super().model_card_lines() + [
            f"GRPO-λ eligibility traces ([arXiv 2510.00194](https://arxiv.org/abs/2510.00194)): style "
            f"`{args.trace_style}`, update `{args.trace_update}`, λ = {args.trace_lambda:g}, γ = {args.trace_gamma:g}, "
            f"negative-advantage clamp {args.trace_advantage_clamp}, implementation `{args.trace_impl}`."
        ]

    def _log_trace_metrics(self, advantages, sums, mask):
        mode = "train" if self.model.training else "eval"
        valid = mask.bool()
        clamp = -float("inf") if self.args.trace_advantage_clamp is None else self.args.trace_advantage_clamp
        stats = torch.stack(
            [
                (sums * mask).sum(),
                mask.sum().to(sums.dtype),
                (advantages < clamp).sum().to(sums.dtype),
                torch.tensor(float(advantages.numel()), dtype=sums.dtype, device=sums.device),
            ]
        )
        totals = self.accelerator.reduce(stats, reduction="sum")
        maximum = self.accelerator.gather(sums[valid].max() if valid.any() else sums.new_zeros(())).max()
        self._metrics[mode]["trace/column_sum_mean"].append((totals[0] / totals[1].clamp(min=1)).item())
        self._metrics[mode]["trace/column_sum_max"].append(maximum.item())
        self._metrics[mode]["trace/clamped_fraction"].append((totals[2] / totals[3].clamp(min=1)).item())
