import math
import warnings
from dataclasses import dataclass, field

from trl import GRPOConfig

from .redaction import redact_values
from .weighting import FIXED_TOKEN_PREFERENCES


TOKEN_PREFERENCES = ("lambda", *FIXED_TOKEN_PREFERENCES, "none")
NORMALIZERS = ("batch", "group")
RENAMED_FIELDS = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}
"""TrainingArguments fields renamed in transformers 5.23 (old → new): the old names warn and go in v6."""


@dataclass
class LambdaGRPOConfig(GRPOConfig):
    r"""
    Configuration class for [`LambdaGRPOTrainer`][lambda_trl.trainer.LambdaGRPOTrainer] (λ-GRPO,
    https://huggingface.co/papers/2510.06870).

    Inherits every parameter of `trl.GRPOConfig`. The loss is the paper's unified token-mean objective (TRL's
    `loss_type="dapo"` normalizer, $1/\sum_i |o_i|$ over the optimizer batch) with a per-completion weight $f(o_i)$
    chosen by `token_preference`. `token_preference="none"` instead runs TRL's own `loss_type` unchanged, for the
    paper's baselines exactly as TRL (and verl) define them.

    Parameters:
        token_preference (`str`, *optional*, defaults to `"lambda"`):
            Weight f(o_i): `"lambda"` (learnable, G·softmax(h^λ)), `"grpo"` (μ/|o_i|), `"dapo"` (1) or `"dr_grpo"` (μ);
            `"none"`: no weighting, TRL's `loss_type` as is (baselines).
        lambda_init (`float`, *optional*, defaults to `0.0`):
            Initial λ. λ = 0 weighs all completions equally (DAPO); λ > 0 prefers long and λ < 0 short completions.
        learn_lambda (`bool`, *optional*, defaults to `True`):
            Train λ jointly with the policy. `False` keeps λ at `lambda_init` (fixed-λ ablations).
        lambda_learning_rate (`float`, *optional*, defaults to `0.1`):
            Learning rate of λ (paper: 1e-1).
        lambda_optimizer (`str`, *optional*, defaults to `"sgd"`):
            Update rule of λ: `"sgd"` (paper: plain SGD, no momentum, no weight decay) or `"adamw"` (weight decay 0).
        lambda_lr_follows_schedule (`bool`, *optional*, defaults to `False`):
            Let the model's learning-rate schedule (warm-up, decay) scale λ's learning rate too.
        reducer (`float`, *optional*, defaults to `1/9`):
            r in h_i = 1 + r·z_i. Paper presets: 1/30 (conservative), 1/15 (moderate), 1/9 (aggressive, used in §3).
        token_preference_normalizer (`str`, *optional*, defaults to `"batch"`):
            `"batch"`: 1/Σ|o_i| over the optimizer batch (the paper's verl code, "token-mean"); `"group"`: Eq. 7 as
            written, 1/Σ_{i∈g}|o_i| per group, averaged over the groups. With `"group"`, `grpo` is exactly TRL's
            `loss_type="grpo"` (Eq. 4), `dr_grpo` exactly Eq. 6 and `dapo` the per-prompt token mean, in the policy
            term (the KL term keeps TRL's token mean, so with `beta=0` the whole loss) and with every completion
            counted (masked ones leave their group, which is then averaged over its G' others).
    """

    token_preference: str = field(
        default="lambda",
        metadata={
            "help": "Per-completion weight f(o_i) of the unified objective: 'lambda' (learnable G·softmax(h^λ)), "
            "'grpo' (μ/|o_i|), 'dapo' (1) or 'dr_grpo' (μ); 'none': TRL's `loss_type` unchanged (baselines).",
            "choices": list(TOKEN_PREFERENCES),
        },
    )
    lambda_init: float = field(
        default=0.0,
        metadata={"help": "Initial λ. 0 weighs completions equally; >0 prefers long, <0 short completions."},
    )
    learn_lambda: bool = field(
        default=True,
        metadata={"help": "Train λ jointly with the policy; False keeps λ fixed at `lambda_init`."},
    )
    lambda_learning_rate: float = field(default=0.1, metadata={"help": "Learning rate of λ (paper: 1e-1)."})
    lambda_optimizer: str = field(
        default="sgd",
        metadata={
            "help": "Update rule of λ: 'sgd' (paper: plain SGD, no momentum) or 'adamw'. Weight decay is always 0.",
            "choices": ["sgd", "adamw"],
        },
    )
    lambda_lr_follows_schedule: bool = field(
        default=False,
        metadata={"help": "Let the model's learning-rate schedule (warm-up, decay) scale λ's learning rate too."},
    )
    reducer: float = field(
        default=1 / 9,
        metadata={
            "help": "r in h_i = 1 + r·z_i (> 0). Paper presets: 1/30 conservative, 1/15 moderate, 1/9 aggressive."
        },
    )

    token_preference_normalizer: str = field(
        default="batch",
        metadata={
            "help": "'batch': 1/Σ|o_i| over the optimizer batch (the paper's verl code); 'group': Eq. 7 as written, "
            "the mean over groups of per-group token means (grpo then equals TRL's loss_type='grpo' exactly).",
            "choices": list(NORMALIZERS),
        },
    )

    def __getstate__(self):
        """
        What pickling keeps: every field but secrets (`hub_token`, credentials in URLs). transformers pickles the
        config into `training_args.bin`, which `push_to_hub` uploads; the live config keeps its token for the push.
        """
        state, _ = redact_values(dict(self.__dict__))
        return state

    def __post_init__(self):
        self._carry_renamed_fields()
        self._check_training_ranges()
        if self.token_preference_normalizer not in NORMALIZERS:
            raise ValueError(
                f"token_preference_normalizer={self.token_preference_normalizer!r} is not supported; choose 'batch' "
                "or 'group'."
            )
        if self.token_preference_normalizer == "group" and self.token_preference == "none":
            raise ValueError(
                "token_preference_normalizer='group' normalizes the unified objective, which token_preference='none' "
                "does not use: choose a token_preference ('grpo', 'dapo', 'dr_grpo' or 'lambda') or leave the "
                "normalizer at 'batch'."
            )
        if self.token_preference not in TOKEN_PREFERENCES:
            raise ValueError(
                f"token_preference={self.token_preference!r} is not supported; choose one of {list(TOKEN_PREFERENCES)}."
            )
        if not (math.isfinite(self.reducer) and self.reducer > 0):
            raise ValueError(f"reducer must be a finite number > 0 (paper: 1/9), got {self.reducer}.")
        if not math.isfinite(self.lambda_init):
            raise ValueError(f"lambda_init must be finite, got {self.lambda_init}.")
        if not (math.isfinite(self.lambda_learning_rate) and self.lambda_learning_rate > 0):
            raise ValueError(f"lambda_learning_rate must be > 0 (paper: 0.1), got {self.lambda_learning_rate}.")
        if self.lambda_optimizer not in ("sgd", "adamw"):
            raise ValueError(f"lambda_optimizer must be 'sgd' or 'adamw', got {self.lambda_optimizer!r}.")
        if self.token_preference == "none":
            super().__post_init__()
            return
        if self.loss_type != "dapo":
            raise ValueError(
                f"loss_type={self.loss_type!r} conflicts with token_preference={self.token_preference!r}, which uses "
                "the unified token-mean (TRL's 'dapo' normalizer) weighted by f(o_i). Leave loss_type at 'dapo' and "
                "choose the baseline with `token_preference` ('grpo', 'dapo', 'dr_grpo' or 'lambda'), or set "
                "token_preference='none' to run TRL's loss_type unchanged."
            )
        if self.importance_sampling_level != "token":
            raise ValueError(
                f"importance_sampling_level={self.importance_sampling_level!r} is not supported: λ-GRPO's objective "
                "(Eq. 7) clips per-token ratios. Set importance_sampling_level='token'."
            )
        if self.use_liger_kernel:
            raise ValueError(
                "use_liger_kernel=True is not supported by LambdaGRPOTrainer: the λ weights enter through TRL's own "
                "loss, which the Liger path does not use. Set use_liger_kernel=False."
            )
        if self.fp16 and self.token_preference == "lambda" and self.learn_lambda:
            raise ValueError(
                "fp16=True is not supported while λ is learned: λ lives outside the model and its gradient would stay "
                "loss-scaled by the fp16 GradScaler. Use bf16=True (or full precision), or learn_lambda=False."
            )
        super().__post_init__()
        group_size = self.num_generations
        if self.token_preference == "lambda" and self.reducer * (group_size - 1) / math.sqrt(group_size) >= 1:
            warnings.warn(
                f"With reducer={self.reducer:.4g} and num_generations={group_size}, the shortest completion of a "
                "group can reach h = 1 + r·z <= 0, where h is floored (weighting.MIN_NORMALIZED_LENGTH). Use a "
                "smaller reducer to keep every h positive.",
                stacklevel=2,
            )

    def _carry_renamed_fields(self):
        """
        Where transformers has the new names (`RENAMED_FIELDS`), a value under the old one, TRL's default
        `gradient_checkpointing=True` included, moves to the new one unless that is set: the same setting, without
        transformers' deprecation warning. Older transformers keep the old names.
        """
        for old, new in RENAMED_FIELDS.items():
            if hasattr(self, new) and getattr(self, new) is None:
                setattr(self, new, getattr(self, old))
                setattr(self, old, None)

    def _check_training_ranges(self):
        """
        Inherited fields whose out-of-range values transformers and TRL accept and then train wrongly or fail on deep
        in the first step: negative max_steps silently trains num_train_epochs, temperature 0 divides the logits by
        zero, an empty completion has no length to weigh.
        """
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(
                f"max_steps must be a positive number of optimizer steps, or -1 (the default) to train "
                f"num_train_epochs; got {self.max_steps}."
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate >= 0):
            raise ValueError(f"learning_rate must be a finite number >= 0 (e.g. 1e-6), got {self.learning_rate}.")
        if self.num_generations is not None and self.num_generations < 2:
            raise ValueError(
                f"num_generations must be >= 2 (at least 2 generations per prompt: the group-relative advantage "
                f"compares them); got {self.num_generations}."
            )
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(
                f"temperature must be > 0 (TRL divides the logits by it; 1.0 samples), got {self.temperature}."
            )
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise ValueError(f"max_completion_length must be >= 1 token, got {self.max_completion_length}.")
