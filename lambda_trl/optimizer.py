from collections.abc import Callable

import torch


LAMBDA_GROUP_NAME = "token_preference_lambda"


class TokenPreferenceOptimizer(torch.optim.Optimizer):
    """
    The trainer's optimizer for λ-GRPO: the model's (already prepared) optimizer plus λ as one extra, named parameter
    group with its own update rule.

    λ follows the paper (§2.3): its own optimizer (plain SGD by default), its own learning rate, no weight decay, one
    update per optimizer step with the gradient accumulated over the micro-batches. It is wrapped *around* the
    prepared model optimizer, so DDP/DeepSpeed/FSDP never see it: λ is not in the model's state dict, not in the
    model's gradient clipping and not partitioned; instead its gradient is averaged over processes here, so every
    rank applies the same update to the same value.

    The engines differ in what `model_optimizer.step()` does: under DeepSpeed the engine already stepped inside
    `accelerator.backward` at the accumulation boundary and accelerate's wrapper step is a no-op. Either way λ's
    gradient has accumulated over the same micro-batches with the same loss scaling as the model's (it flows through
    the same backward), and λ steps once here, after the model, and not at all when the model's step was skipped.

    The trainer saves λ and `lambda_optimizer`'s state in λ's own file (`lambda_trl.lambda_state`); the optimizer's
    state dict is the model optimizer's alone.
    """

    def __init__(
        self,
        model_optimizer: torch.optim.Optimizer,
        token_preference_lambda: torch.nn.Parameter,
        lr: float,
        rule: str,
        average_across_processes: Callable[[torch.Tensor], torch.Tensor],
        follows_schedule: bool = False,
        on_step: Callable[[float, float], None] | None = None,
    ):
        group = {"params": [token_preference_lambda], "lr": lr, "weight_decay": 0.0, "name": LAMBDA_GROUP_NAME}
        if rule == "sgd":
            self.lambda_optimizer = torch.optim.SGD([group], lr=lr, momentum=0.0, weight_decay=0.0)
        elif rule == "adamw":
            self.lambda_optimizer = torch.optim.AdamW([group], lr=lr, weight_decay=0.0)
        else:
            raise ValueError(f"Unknown λ update rule {rule!r}; expected 'sgd' or 'adamw'.")
        self.model_optimizer = model_optimizer
        self.token_preference_lambda = token_preference_lambda
        self.base_lambda_lr = lr
        self.average_across_processes = average_across_processes
        if follows_schedule and "initial_lr" not in model_optimizer.param_groups[0]:
            raise ValueError(
                "lambda_lr_follows_schedule=True needs the model's learning-rate schedule to record `initial_lr`, "
                "which a scheduler defined in a DeepSpeed config does not: remove its `scheduler` block (the Trainer "
                "then builds the schedule) or set lambda_lr_follows_schedule=False."
            )
        self.follows_schedule = follows_schedule
        self.on_step = on_step
        # Optimizer.__init__ would copy the groups; sharing the dicts keeps schedulers and the two inner optimizers
        # looking at the same learning rates. DeepSpeed's ZeRO optimizers have no `defaults`.
        self.defaults = getattr(model_optimizer, "defaults", None) or {}
        self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks = {}, {}

    @property
    def param_groups(self) -> list[dict]:
        return self.model_optimizer.param_groups + self.lambda_optimizer.param_groups

    @property
    def state(self):
        return {**self.model_optimizer.state, **self.lambda_optimizer.state}

    def _model_lr_scale(self) -> float:
        group = self.model_optimizer.param_groups[0]
        return group["lr"] / group.get("initial_lr", group["lr"]) if group.get("initial_lr") else 1.0

    def step(self, closure=None):
        loss = self.model_optimizer.step() if closure is None else self.model_optimizer.step(closure)
        lam = self.token_preference_lambda
        # An overflow-skipped model step (DeepSpeed's loss scaler) is skipped on every rank alike, so λ skips it too.
        if getattr(self.model_optimizer, "step_was_skipped", False):
            self.lambda_optimizer.zero_grad(set_to_none=True)
            return loss
        # Every rank must join the collective, even one whose λ received no gradient.
        gradient = lam.grad if lam.grad is not None else torch.zeros_like(lam)
        lam.grad = self.average_across_processes(gradient.detach().clone())
        value_used = lam.item()
        group = self.lambda_optimizer.param_groups[0]
        group["lr"] = self.base_lambda_lr * (self._model_lr_scale() if self.follows_schedule else 1.0)
        self.lambda_optimizer.step()
        if self.on_step is not None:
            self.on_step(value_used, lam.grad.item())
        # The Trainer zeroes only the model's gradients after a step.
        self.lambda_optimizer.zero_grad(set_to_none=True)
        return loss

    def zero_grad(self, set_to_none: bool = True):
        self.model_optimizer.zero_grad(set_to_none=set_to_none)
        self.lambda_optimizer.zero_grad(set_to_none=set_to_none)

    # torch's inherited methods would pack λ's group in with the model's and, on loading, silently set nothing.
    def state_dict(self) -> dict:
        return self.model_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict):
        self.model_optimizer.load_state_dict(state_dict)

    def __getattr__(self, name):
        # Wrapper-specific attributes of the prepared optimizer (accelerate, DeepSpeed) stay reachable.
        if name == "model_optimizer":
            raise AttributeError(name)
        return getattr(self.model_optimizer, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_optimizer={self.model_optimizer!r}, lambda={self.lambda_optimizer!r})"
