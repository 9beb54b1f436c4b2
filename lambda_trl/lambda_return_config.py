import math
from dataclasses import dataclass, field

from .config import LambdaGRPOConfig
from .traces import IMPLEMENTATIONS, STYLES, UPDATES, check_trace_settings


TRACE_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


@dataclass
class LambdaReturnGRPOConfig(LambdaGRPOConfig):
    r"""
    Configuration class for [`LambdaReturnGRPOTrainer`][lambda_trl.lambda_return_trainer.LambdaReturnGRPOTrainer]
    (GRPO-λ, https://huggingface.co/papers/2510.00194).

    Inherits every parameter of [`LambdaGRPOConfig`][lambda_trl.config.LambdaGRPOConfig]. `token_preference` defaults
    to `"none"` here (plain GRPO-λ on TRL's `loss_type`); set it to `"lambda"` to combine λ-GRPO's learnable token
    preference with the traces.

    Parameters:
        trace_lambda (`float`, *optional*, defaults to `0.99`):
            λ of the λ-return (the trace decay is γ·λ).
        trace_gamma (`float`, *optional*, defaults to `1.0`):
            Discount γ (outcome-only reward; not stated by the paper).
        trace_style (`str`, *optional*, defaults to `"both"`):
            Trace matrix: `"recent"` (d^(t-j)), `"both"` (max(d^(t-j), d^j), reported best) or `"early"` (d^j).
        trace_update (`str`, *optional*, defaults to `"trace"`):
            `"trace"` (ε-trace: the trace goes inside the clipped ratio) or `"weight"` (ε-weight: the plain surrogate
            times eligibility weights E = W·(1 + sigmoid(ℓ - 1)), detached).
        trace_advantage_clamp (`float` or `None`, *optional*, defaults to `-0.1`):
            Negative advantages are clamped to at least this value; `None` disables the clamp.
        trace_impl (`str`, *optional*, defaults to `"paper"`):
            `"paper"` (lag-based W) or `"verl"` (the authors' verl port, row-independent weights).
    """

    token_preference: str = field(
        default="none",
        metadata={
            "help": "'none': GRPO-λ on TRL's loss_type; 'lambda' (or 'grpo'/'dapo'/'dr_grpo'): combine with λ-GRPO's "
            "token preference weights on the token-mean loss.",
            "choices": ["none", "lambda", "grpo", "dapo", "dr_grpo"],
        },
    )
    trace_lambda: float = field(default=0.99, metadata={"help": "λ of the λ-return; the trace decay is γ·λ."})
    trace_gamma: float = field(default=1.0, metadata={"help": "Discount γ (outcome-only reward)."})
    trace_style: str = field(
        default="both",
        metadata={"help": "'recent' (d^(t-j)), 'both' (max(d^(t-j), d^j)) or 'early' (d^j).", "choices": list(STYLES)},
    )
    trace_update: str = field(
        default="trace",
        metadata={
            "help": "'trace' (ε-trace, inside the clip) or 'weight' (ε-weight).",
            "choices": list(UPDATES),
        },
    )
    trace_advantage_clamp: float | None = field(
        default=-0.1, metadata={"help": "Clamp negative advantages to at least this value; None disables it."}
    )
    trace_impl: str = field(
        default="paper",
        metadata={
            "help": "'paper' (lag-based trace matrix) or 'verl' (the authors' port).",
            "choices": list(IMPLEMENTATIONS),
        },
    )

    def __post_init__(self):
        if not (0.0 <= self.trace_lambda <= 1.0 and 0.0 <= self.trace_gamma <= 1.0):
            raise ValueError(
                f"trace_lambda and trace_gamma must lie in [0, 1], got λ={self.trace_lambda}, γ={self.trace_gamma}."
            )
        check_trace_settings(self.trace_style, self.trace_impl, self.trace_decay, self.trace_update)
        if self.trace_advantage_clamp is not None and not (
            math.isfinite(self.trace_advantage_clamp) and self.trace_advantage_clamp <= 0
        ):
            raise ValueError(
                f"trace_advantage_clamp must be <= 0 and finite (default -0.1), or None to disable the clamp; got "
                f"{self.trace_advantage_clamp}."
            )
        if self.token_preference == "none" and self.loss_type not in TRACE_LOSS_TYPES:
            raise ValueError(
                f"loss_type={self.loss_type!r} is not supported by GRPO-λ, whose traces act on the clipped ratio "
                f"surrogate; choose one of {list(TRACE_LOSS_TYPES)}."
            )
        if self.importance_sampling_level != "token":
            raise ValueError("GRPO-λ traces per-token log-ratios: set importance_sampling_level='token'.")
        if self.use_liger_kernel:
            raise ValueError("use_liger_kernel=True is not supported by LambdaReturnGRPOTrainer.")
        super().__post_init__()
        if self.trace_update == "trace" and self.uses_old_logps and self.beta != 0 and self.use_bias_correction_kl:
            raise ValueError(
                "This configuration computes old log-probs (gradient_accumulation_steps is not a multiple of "
                "steps_per_generation × num_iterations, or vLLM importance-sampling correction is on), so GRPO-λ "
                "traces the ratio inside the clip, and use_bias_correction_kl=True would weight the KL term by that "
                "traced ratio. Set use_bias_correction_kl=False (or beta=0) to keep the KL untraced."
            )

    @property
    def trace_decay(self) -> float:
        """d = γ·λ, the decay of the trace matrix W."""
        return self.trace_gamma * self.trace_lambda

    @property
    def uses_old_logps(self) -> bool:
        """Whether TRL's GRPOTrainer computes old log-probs for this configuration (TRL 1.10-1.16's own condition)."""
        generate_every = self.steps_per_generation * self.num_iterations
        return self.gradient_accumulation_steps % generate_every != 0 or (
            self.use_vllm and self.vllm_importance_sampling_correction
        )
