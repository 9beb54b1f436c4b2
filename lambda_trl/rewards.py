r"""
Rule-based math rewards with TRL's reward-function signature `f(completions, **columns) -> list[float]`.

`boxed_math_reward` is the reward of the λ-GRPO paper (§3, after SimpleRL's `simplelr_math.py`): +1 for a correct
final answer, -0.5 for a boxed but wrong one, -1 without a `\boxed{...}` — correct or not. Its `grader` decides
"correct" and "boxed" (`lambda_trl.graders`):

- `math-verify` (default): the answer is the LAST complete box, compared by math-verify; no complete box is -1.
- `qwen-math`: `simplelr_math.py` itself — the Qwen2.5-Math harness's `extract_answer` (the last box, else its
  fallbacks) compared by its `math_equal` with the ground truth as given; "boxed" is its regex, a `\boxed{}` with
  at most two levels of nested braces anywhere in the text.
"""

import functools
import importlib
import os
import sys

from . import qwen_math
from .answers import ground_truth_answer, last_boxed_answer
from .graders import DEFAULT_GRADER, QWEN_MATH, check_answers, check_grader


CORRECT, WRONG, UNBOXED = 1.0, -0.5, -1.0


def completion_text(completion) -> str:
    """The text of a standard (str) or conversational (list of messages) completion."""
    if isinstance(completion, str):
        return completion
    return "".join(
        message["content"]
        if isinstance(message["content"], str)
        else "".join(part.get("text", "") for part in message["content"])
        for message in completion
        if message.get("role", "assistant") == "assistant"
    )


def _ground_truths(solution, count: int) -> list[str]:
    if solution is None:
        raise ValueError(
            "boxed_math_reward needs the ground truth in a `solution` column of the training dataset; the dataset has "
            "none. Rename your answer column to `solution` (lambda_trl.data's loaders do this)."
        )
    if len(solution) != count:
        raise ValueError(f"Got {count} completions but {len(solution)} solutions.")
    answers = []
    for index, value in enumerate(solution):
        if value is None or not str(value).strip():
            raise ValueError(f"Row {index} of the batch has an empty `solution`; every prompt needs a ground truth.")
        answers.append(ground_truth_answer(str(value)))
    return answers


def boxed_math_reward(completions, solution=None, grader: str = DEFAULT_GRADER, **kwargs) -> list[float]:
    """+1 correct, -0.5 boxed but wrong, -1 not boxed; "correct" and "boxed" as `grader` decides; never raising."""
    truths = _ground_truths(solution, len(completions))
    texts = [completion_text(completion) for completion in completions]
    if check_grader(grader) == QWEN_MATH:
        predictions = [qwen_math.extract_answer(text, "math") for text in texts]
        boxed = [i for i, text in enumerate(texts) if qwen_math.is_boxed(text)]
    else:
        predictions = [last_boxed_answer(text) for text in texts]
        boxed = [i for i, prediction in enumerate(predictions) if prediction is not None]
    verdicts = check_answers([(predictions[i], truths[i]) for i in boxed], grader)
    rewards = [UNBOXED] * len(completions)
    for i, correct in zip(boxed, verdicts):
        rewards[i] = CORRECT if correct else WRONG
    log_metric = kwargs.get("log_metric")  # TRL passes it to reward functions
    if log_metric is not None and rewards:
        log_metric("accuracy", sum(r == CORRECT for r in rewards) / len(rewards))
        log_metric("boxed_fraction", len(boxed) / len(rewards))
    return rewards


def boxed_format_reward(completions, **kwargs) -> list[float]:
    """1 when the completion ends its reasoning with a complete `\\boxed{}`, else 0 (a diagnostic, not for training)."""
    return [float(last_boxed_answer(completion_text(completion)) is not None) for completion in completions]


REWARD_FUNCTIONS = {"boxed_math_reward": boxed_math_reward, "boxed_format_reward": boxed_format_reward}
"""Reward functions by the name recipes use in `reward_funcs`."""


def boxed_math_reward_graded_by(grader: str):
    """`boxed_math_reward` with `grader` (what a recipe's `reward_grader` picks), under the same name for TRL's logs."""
    if check_grader(grader, "reward_grader") == DEFAULT_GRADER:
        return boxed_math_reward
    return functools.wraps(boxed_math_reward)(functools.partial(boxed_math_reward, grader=grader))


def load_reward_function(name: str, grader: str = DEFAULT_GRADER):
    """
    A reward function by its name in `REWARD_FUNCTIONS` (`boxed_math_reward` with `grader`) or by a dotted import path
    ('pkg.module.func'), which may name a module in the working directory (as TRL's `trl grpo` script allows).
    """
    if name == "boxed_math_reward":
        return boxed_math_reward_graded_by(grader)
    if name in REWARD_FUNCTIONS:
        return REWARD_FUNCTIONS[name]
    if "." in name:
        module_name, attribute = name.rsplit(".", 1)
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not (module_name + ".").startswith(error.name + "."):
                raise  # the module exists but imports something missing: its own problem, with its traceback
            raise ValueError(
                f"reward_funcs: cannot import {module_name!r} (from {name!r}): no module {error.name!r}. Run from the "
                "folder that holds it, or install it."
            ) from error
        function = getattr(module, attribute, None)
        if not callable(function):
            raise ValueError(f"reward_funcs: {module_name} has no function {attribute!r} (from {name!r}).")
        return function
    raise ValueError(
        f"Unknown reward function {name!r} in reward_funcs: use one of {list(REWARD_FUNCTIONS)} or a dotted import "
        "path ('pkg.module.func')."
    )
