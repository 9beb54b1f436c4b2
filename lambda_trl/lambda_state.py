"""
λ's state on disk: `token_preference_lambda.json`, written beside the model in every checkpoint and in the final
output directory (so it travels with `save_only_model` checkpoints and Hub pushes), e.g.

    {"lambda": -0.0173, "global_step": 16, "token_preference": "lambda", "reducer": 0.1111, "learn_lambda": true,
     "lambda_optimizer": "sgd", "lambda_learning_rate": 0.1,
     "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1, ...}]}}

`optimizer_state` is λ's own optimizer's `state_dict()` (null when λ is not learned). λ and all of its optimizer
state are float32 scalars, so writing them as JSON numbers and reading them back is exact. This file is λ's only
saved state: the Trainer's `optimizer.pt` (or engine checkpoint) holds the model's optimizer alone.
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


def write_lambda_state(
    directory: str,
    token_preference_lambda: torch.Tensor,
    global_step: int,
    config,
    lambda_optimizer: torch.optim.Optimizer | None,
):
    """Writes λ, the run's λ settings and λ's optimizer state (None when λ is not learned) to `directory`."""
    optimizer_state = None if lambda_optimizer is None else optimizer_state_to_json(lambda_optimizer.state_dict())
    state = {
        "lambda": token_preference_lambda.item(),
        "global_step": global_step,
        "token_preference": config.token_preference,
        "reducer": config.reducer,
        "learn_lambda": config.learn_lambda,
        "lambda_optimizer": config.lambda_optimizer,
        "lambda_learning_rate": config.lambda_learning_rate,
        "optimizer_state": optimizer_state,
    }
    os.makedirs(directory, exist_ok=True)
    # Atomically: a kill in the middle of the write leaves the previous file (or none), never half of one.
    path = os.path.join(directory, LAMBDA_STATE_NAME)
    temporary = f"{path}.{os.getpid()}.tmp"  # in the same folder, so that os.replace is a rename
    try:
        with open(temporary, "w") as f:
            json.dump(state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


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


def restore_lambda_state(
    checkpoint: str, config, token_preference_lambda: torch.Tensor, lambda_optimizer: torch.optim.Optimizer
) -> dict:
    """
    Sets λ, and λ's optimizer state when the checkpoint's run learned λ, from `checkpoint` for a run with `config`
    that resumes learning λ; returns the checkpoint's state. Fails with the fix when the checkpoint cannot resume it.
    """
    state = read_lambda_state(checkpoint)
    if state is None:
        raise FileNotFoundError(
            f"{os.path.join(checkpoint, LAMBDA_STATE_NAME)} is missing, so λ cannot be restored: the checkpoint was "
            "not written by LambdaGRPOTrainer with token_preference='lambda' (or by a lambda-trl before 0.1.0's "
            "release, which kept λ in token_preference_lambda.pt). To start λ afresh (lambda_init) on this "
            "checkpoint's model, load the model from it (model_name_or_path) instead of resuming."
        )
    if state["optimizer_state"] is not None and state["lambda_optimizer"] != config.lambda_optimizer:
        raise ValueError(
            f"The checkpoint {checkpoint} trained λ with lambda_optimizer={state['lambda_optimizer']!r}, this run "
            f"asks for {config.lambda_optimizer!r}: resume with lambda_optimizer={state['lambda_optimizer']!r}, "
            "or start a new run from the checkpoint's model (model_name_or_path) with lambda_init="
            f"{state['lambda']:.6g}."
        )
    with torch.no_grad():
        token_preference_lambda.fill_(state["lambda"])
    if state["optimizer_state"] is not None:
        lambda_optimizer.load_state_dict(state["optimizer_state"])
    return state
