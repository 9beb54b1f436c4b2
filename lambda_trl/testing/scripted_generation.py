"""Scripted completions for `lambda-trl train` itself, so that a CLI run under any launcher can be compared exactly
with one process: importing this module makes every `LambdaGRPOTrainer` built afterwards in the process take its
completions from `scripted_rollout` (unless given a `rollout_func`). Sampled generation cannot be compared: each
process draws from its own random stream, so 2 processes sample other completions than one process with the whole
batch.

A recipe loads it in every training process through its reward (shorter answers score higher, so it varies within
every group of scripted completions):

    reward_funcs: [lambda_trl.testing.scripted_generation.short_answer_reward]
"""

import functools

from ..trainer import LambdaGRPOTrainer
from .tiny_runs import scripted_rollout, short_answer_reward


__all__ = ["short_answer_reward"]


def _with_scripted_rollout(init):
    @functools.wraps(init)
    def __init__(self, *args, rollout_func=None, **kwargs):
        init(self, *args, rollout_func=rollout_func or scripted_rollout, **kwargs)

    return __init__


LambdaGRPOTrainer.__init__ = _with_scripted_rollout(LambdaGRPOTrainer.__init__)
