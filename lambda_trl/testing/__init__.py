"""What the tests, `benchmarks/overhead.py` and `scripts/gpu_check.py` share: a tiny model built offline, the pieces
of a tiny scripted GRPO run, a hand-built loss batch, and the worker the engine checks launch
(`accelerate launch ... -m lambda_trl.testing.distributed_worker`).

`import lambda_trl` does not import this package; it needs no pytest.
"""

from .loss_batch import PROMPT_LENGTH, fixed_batch
from .tiny_model import CHARACTERS, QWEN2_5_0_5B_SHAPE, TINY_SHAPE, tiny_model, tiny_tokenizer
from .tiny_runs import (
    StepCounter,
    count_a_reward,
    scripted_rollout,
    scripted_trainer,
    short_answer_reward,
    sum_dataset,
    tiny_config,
    tiny_config_fields,
    tiny_trainer,
)


__all__ = [
    "CHARACTERS",
    "PROMPT_LENGTH",
    "QWEN2_5_0_5B_SHAPE",
    "TINY_SHAPE",
    "StepCounter",
    "count_a_reward",
    "fixed_batch",
    "scripted_rollout",
    "scripted_trainer",
    "short_answer_reward",
    "sum_dataset",
    "tiny_config",
    "tiny_config_fields",
    "tiny_model",
    "tiny_tokenizer",
    "tiny_trainer",
]
