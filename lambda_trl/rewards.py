r"""
Rule-based math rewards with TRL's reward-function signature `f(completions, **columns) -> list[float]`.

`boxed_math_reward` is the reward of the λ-GRPO paper (§3, after SimpleRL's `simplelr_math.py`): +1 for a correct
final answer, -0.5 for a boxed but wrong one, -1 without a complete `\boxed{...}` — correct or not. The final
answer is the LAST box.
"""

import importlib
import os
import sys

from .answers import check_answers, ground_truth_answer, last_boxed_answer


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


def boxed_math_reward(completions, solution=None, **kwargs) -> list[float]:
    """+1 correct, -0.5 boxed but wrong, -1 no complete `\\boxed{}`; equivalence by math-verify, never raising."""
    truths = _ground_truths(solution, len(completions))
    predictions = [last_boxed_answer(completion_text(completion)) for completion in completions]
    boxed = [i for i, prediction in enumerate(predictions) if prediction is not None]
    verdicts = check_answers([(predictions[i], truths[i]) for i in boxed])
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


def load_reward_function(name: str):
    """
    A reward function by its name in `REWARD_FUNCTIONS` or by a dotted import path ('pkg.module.func'), which may
    name a module in the working directory (as TRL's `trl grpo` script allows).
    """
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
