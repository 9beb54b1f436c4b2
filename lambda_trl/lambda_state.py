"""
λ's state on disk: `token_preference_lambda.json`, written beside the model in every checkpoint and in the final
output directory (so it travels with `save_only_model` checkpoints and Hub pushes), e.g.

    {"lambda": -0.0173, "global_step": 16, "token_preference": "lambda", "reducer": 0.1111, "learn_lambda": true,
     "lambda_optimizer": "sgd", "lambda_learning_rate": 0.1,
     "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1, ...}]}}

`optimizer_state` is λ's own optimizer's `state_dict()` (null when λ is not learned). λ and all of its optimizer
state are float32 scalars, so writing them as JSON numbers and reading them back is exact.
"""

import json
import os

import torch


LAMBDA_STATE_NAME = "token_preference_lambda.json"


def optimizer_state_to_json(value):
    """An optimizer `state_dict()` with its 0-d tensors as numbers (and integer keys as strings)."""
    if isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, dict):
        return {str(key): optimizer_state_to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [optimizer_state_to_json(item) for item in value]
    return value


def optimizer_state_from_json(state: dict) -> dict:
    """Inverse of `optimizer_state_to_json` for λ's single float32 parameter."""
    per_parameter = {
        int(index): {key: torch.tensor(value, dtype=torch.float32) for key, value in entries.items()}
        for index, entries in state["state"].items()
    }
    return {"state": per_parameter, "param_groups": state["param_groups"]}


def write_lambda_state(directory: str, lambda_value: float, global_step: int, config, optimizer_state: dict | None):
    state = {
        "lambda": lambda_value,
        "global_step": global_step,
        "token_preference": config.token_preference,
        "reducer": config.reducer,
        "learn_lambda": config.learn_lambda,
        "lambda_optimizer": config.lambda_optimizer,
        "lambda_learning_rate": config.lambda_learning_rate,
        "optimizer_state": None if optimizer_state is None else optimizer_state_to_json(optimizer_state),
    }
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, LAMBDA_STATE_NAME), "w") as f:
        json.dump(state, f, indent=2)


def read_lambda_state(directory: str) -> dict | None:
    """The state written by `write_lambda_state`, or None when `directory` has none."""
    path = os.path.join(directory, LAMBDA_STATE_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        state = json.load(f)
    if state.get("optimizer_state") is not None:
        state["optimizer_state"] = optimizer_state_from_json(state["optimizer_state"])
    return state
