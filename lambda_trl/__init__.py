"""
λ-GRPO (learnable token preference for GRPO, arXiv 2510.06870) on Hugging Face TRL.

Not the "λ-GRPO" of arXiv 2509.21154 (*GRPO is Secretly a Process Reward Model*), a different method of the same name.
"""

import importlib


__version__ = "0.1.0"

# Submodules are imported on first use: the answer-checking worker processes and the CLI's `--help` must not pay
# for importing torch and TRL.
_EXPORTS = {
    "LambdaGRPOConfig": "config",
    "LambdaGRPOTrainer": "trainer",
    "LambdaReturnGRPOConfig": "lambda_return_config",
    "LambdaReturnGRPOTrainer": "lambda_return_trainer",
    "TokenPreferenceOptimizer": "optimizer",
    "PreemptionCallback": "preemption",
    "REDUCER_PRESETS": "weighting",
    "token_preference_weights": "weighting",
    "normalized_lengths": "weighting",
    "grpo_weights": "weighting",
    "dapo_weights": "weighting",
    "dr_grpo_weights": "weighting",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
