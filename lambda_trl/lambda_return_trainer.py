import torch

from .lambda_return_config import LambdaReturnGRPOConfig
from .traces import apply_trace, clamp_advantages, column_sums, eligibility_weights
from .trainer import LambdaGRPOTrainer


TRACED_LOG_RATIO_LIMIT = 20.0


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

    Confidence notes (shared/specs/grpo-lambda-return.md): the trace styles and the ε-trace/ε-weight split are from
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

    @property
    def trace_decay(self) -> float:
        return self.args.trace_gamma * self.args.trace_lambda

    def _trace(self, values, mask):
        return apply_trace(values, mask, self.trace_decay, self.args.trace_style, self.args.trace_impl)

    def _compute_loss(self, model, inputs):
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        raw = inputs["advantages"]
        advantages = clamp_advantages(raw, self.args.trace_advantage_clamp)
        inputs = {**inputs, "advantages": advantages}
        sums = column_sums(mask, self.trace_decay, self.args.trace_style, self.args.trace_impl)
        self._log_trace_metrics(raw, sums, mask)
        if self.args.trace_update == "trace" and "old_per_token_logps" not in inputs:
            inputs["advantages"] = advantages[:, None] * sums.to(advantages.dtype)
        return super()._compute_loss(model, inputs)

    def _policy_loss(self, model, inputs):
        if inputs["advantages"].dim() == 2:  # on-policy ε-trace: nothing left to do inside TRL's loss
            return super()._policy_loss(model, inputs)
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        compute = self._get_per_token_logps_and_entropies

        # TRL reads the advantages, old and reference log-probs from `inputs` only after computing the policy's
        # log-probs, so rewriting them here is what its loss then uses.
        def traced_logps_and_entropies(*args, **kwargs):
            logps, entropies, aux_loss = compute(*args, **kwargs)
            if self.args.trace_update == "weight":
                weights = eligibility_weights(
                    logps, mask, self.trace_decay, self.args.trace_style, self.args.trace_impl
                )
                inputs["advantages"] = inputs["advantages"][:, None] * weights.to(logps.dtype)
                return logps, entropies, aux_loss
            old = inputs.get("old_per_token_logps")
            old = logps.detach() if old is None else old
            traced = self._trace(logps - old, mask).clamp(-TRACED_LOG_RATIO_LIMIT, TRACED_LOG_RATIO_LIMIT)
            traced_logps = old + traced
            if "ref_per_token_logps" in inputs:
                inputs["ref_per_token_logps"] = inputs["ref_per_token_logps"] + (traced_logps - logps)
            return traced_logps, entropies, aux_loss

        self._get_per_token_logps_and_entropies = traced_logps_and_entropies
        try:
            return super()._policy_loss(model, inputs)
        finally:
            del self._get_per_token_logps_and_entropies

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
