"""λ-GRPO (learnable token preference for GRPO, arXiv 2510.06870) on Hugging Face TRL."""

from .config import LambdaGRPOConfig
from .optimizer import TokenPreferenceOptimizer
from .trainer import LambdaGRPOTrainer
from .weighting import (
    REDUCER_PRESETS,
    dapo_weights,
    dr_grpo_weights,
    grpo_weights,
    normalized_lengths,
    token_preference_weights,
)


__version__ = "0.1.0"

__all__ = [
    "REDUCER_PRESETS",
    "LambdaGRPOConfig",
    "LambdaGRPOTrainer",
    "TokenPreferenceOptimizer",
    "dapo_weights",
    "dr_grpo_weights",
    "grpo_weights",
    "normalized_lengths",
    "token_preference_weights",
]
