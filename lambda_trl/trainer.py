import os
import textwrap

import torch
from trl import GRPOTrainer
from trl.trainer.utils import get_config_model_id

from .config import LambdaGRPOConfig
from .model_card import token_preference_card_section
from .optimizer import TokenPreferenceOptimizer
from .weighting import FIXED_TOKEN_PREFERENCES, token_preference_weights


LAMBDA_STATE_NAME = "token_preference_lambda.pt"


class LambdaGRPOTrainer(GRPOTrainer):
    r"""
    Trainer for λ-GRPO: Unifying the GRPO Frameworks with Learnable Token Preferences
    (https://huggingface.co/papers/2510.06870).

    Optimizes the unified token-preference objective (Eq. 7)

    $$
    \mathcal{J}(\theta, \lambda) = \frac{1}{\sum_i |o_i|} \sum_i f_i(\lambda)
        \sum_t \min\big(r_{i,t} \hat{A}_i,\ \mathrm{clip}(r_{i,t}, 1-\epsilon_{low}, 1+\epsilon_{high}) \hat{A}_i\big),
    \qquad f_i(\lambda) = G \cdot \mathrm{softmax}_i\big((1 + r z_i)^\lambda\big)
    $$

    with $z_i$ the z-score of completion i's length within its group; `token_preference` swaps f for the fixed GRPO,
    DAPO or Dr. GRPO weights. Because $f_i > 0$ is constant within a completion,
    $f_i \min(r \hat{A}, \mathrm{clip}(r) \hat{A}) = \min(r f_i \hat{A}, \mathrm{clip}(r) f_i \hat{A})$: the trainer
    scales the advantages by f(λ) and hands them to TRL's own token-mean (`loss_type="dapo"`) loss, through which λ
    receives its gradient. The KL and entropy terms, if enabled, are not weighted.

    Each completion's group lengths are recorded at generation time, gathered across processes like TRL's rewards,
    because TRL shuffles the generation batch into micro-batches afterwards. λ is trained as an extra parameter group
    of the trainer's optimizer (see [`TokenPreferenceOptimizer`]).
    """

    _tag_names = ["trl", "grpo", "lambda-grpo"]
    _name = "λ-GRPO"
    _paper = {
        "title": "λ-GRPO: Unifying the GRPO Frameworks with Learnable Token Preferences",
        "id": "2510.06870",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @article{lambdagrpo2025,
                title        = {{$\\lambda$-GRPO: Unifying the GRPO Frameworks with Learnable Token Preferences}},
                year         = 2025,
                eprint       = {arXiv:2510.06870},
            }"""),
    }

    def __init__(self, model, reward_funcs, args: LambdaGRPOConfig | None = None, **kwargs):
        if args is None:
            model_name = model if isinstance(model, str) else get_config_model_id(model.config)
            args = LambdaGRPOConfig(f"{model_name.split('/')[-1]}-LambdaGRPO")
        if not isinstance(args, LambdaGRPOConfig):
            raise TypeError(f"`args` must be a LambdaGRPOConfig, got {type(args).__name__}.")
        super().__init__(model, reward_funcs, args=args, **kwargs)
        self.token_preference_lambda = torch.nn.Parameter(
            torch.tensor(args.lambda_init, dtype=torch.float32, device=self.accelerator.device),
            requires_grad=self.learns_lambda,
        )

    @property
    def learns_lambda(self) -> bool:
        return self.args.token_preference == "lambda" and self.args.learn_lambda

    def group_weights(self, group_lengths: torch.Tensor) -> torch.Tensor:
        """f for every completion of every group, from the groups' lengths (k, G); differentiable in λ."""
        group_size = group_lengths.shape[1]
        lengths = group_lengths.reshape(-1)
        if self.args.token_preference == "lambda":
            weights = token_preference_weights(lengths, group_size, self.token_preference_lambda, self.args.reducer)
        else:
            weights = FIXED_TOKEN_PREFERENCES[self.args.token_preference](lengths, group_size)
        return weights.view(-1, group_size)

    def completion_weights(self, group_lengths: torch.Tensor, group_position: torch.Tensor) -> torch.Tensor:
        """f(o_i) for each completion, from the lengths of its whole group (B, G) and its position in the group (B,)."""
        return self.group_weights(group_lengths).gather(1, group_position.unsqueeze(1)).squeeze(1)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        # |o_i| counts the tokens the loss sees, the same ones TRL's token-mean normalizer counts.
        loss_mask = output["completion_mask"] * output.get("tool_mask", 1)
        all_lengths = self.accelerator.gather(loss_mask.sum(dim=1).float())
        groups = all_lengths.view(-1, group_size)
        first = self.accelerator.process_index * len(inputs)
        global_index = torch.arange(first, first + len(inputs), device=all_lengths.device)
        output["group_lengths"] = groups[global_index // group_size]
        output["group_position"] = global_index % group_size

        metrics = self._metrics[mode]
        if self.args.token_preference != "none":
            with torch.no_grad():
                f = self.group_weights(groups)
            metrics["token_preference/f_min"].append(f.min().item())
            metrics["token_preference/f_max"].append(f.max().item())
            metrics["token_preference/f_std"].append(f.std().item() if f.numel() > 1 else 0.0)
        metrics["token_preference/group_length_mean"].append(groups.mean().item())
        spread = groups.std(dim=1).mean().item() if group_size > 1 else 0.0
        metrics["token_preference/group_length_std"].append(spread)
        if self.args.token_preference == "lambda" and (mode == "eval" or not self.learns_lambda):
            metrics["lambda/value"].append(self.token_preference_lambda.item())
        return output

    def _compute_loss(self, model, inputs):
        if self.args.token_preference != "none":
            weights = self.completion_weights(inputs["group_lengths"], inputs["group_position"])
            advantages = inputs["advantages"]
            # (B, T) per-token advantages (GRPO-λ) are scaled row-wise, like TRL's (B,) ones.
            inputs = {**inputs, "advantages": advantages * (weights if advantages.dim() == 1 else weights[:, None])}
        return self._policy_loss(model, inputs)

    def _policy_loss(self, model, inputs):
        """TRL's own loss on the prepared inputs; subclasses hook in here to see the exact dict TRL reads."""
        return super()._compute_loss(model, inputs)

    def create_model_card(self, model_name=None, dataset_name=None, tags=None):
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        if not self.is_world_process_zero():
            return
        section = token_preference_card_section(
            self.args, self.state.log_history, self.token_preference_lambda.item(), dataset_name
        )
        with open(os.path.join(self.args.output_dir, "README.md"), "a") as f:
            f.write(section)

    def _record_lambda_step(self, value: float, gradient: float):
        self._metrics["train"]["lambda/value"].append(value)
        self._metrics["train"]["lambda/grad"].append(gradient)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        model_optimizer = self.optimizer
        if isinstance(model_optimizer, TokenPreferenceOptimizer):
            model_optimizer = model_optimizer.model_optimizer
        # The model's schedule is built on the model's optimizer only, so it never moves λ's learning rate.
        scheduler = super().create_scheduler(num_training_steps, optimizer=optimizer or model_optimizer)
        if self.learns_lambda and not isinstance(self.optimizer, TokenPreferenceOptimizer):
            self.optimizer = TokenPreferenceOptimizer(
                model_optimizer,
                self.token_preference_lambda,
                lr=self.args.lambda_learning_rate,
                rule=self.args.lambda_optimizer,
                average_across_processes=lambda gradient: self.accelerator.reduce(gradient, reduction="mean"),
                follows_schedule=self.args.lambda_lr_follows_schedule,
                on_step=self._record_lambda_step,
            )
        return scheduler

    # The Trainer saves and loads the optimizer through backend-specific paths (DeepSpeed, FSDP) that only know the
    # model's parameters: hand them the model's optimizer and keep λ's state in a file of its own beside it.
    def _save_optimizer_and_scheduler(self, output_dir):
        if not isinstance(self.optimizer, TokenPreferenceOptimizer):
            return super()._save_optimizer_and_scheduler(output_dir)
        optimizer = self.optimizer
        self.optimizer = optimizer.model_optimizer
        try:
            super()._save_optimizer_and_scheduler(output_dir)
        finally:
            self.optimizer = optimizer
        if self.args.should_save:
            torch.save(optimizer.lambda_state_dict(), os.path.join(output_dir, LAMBDA_STATE_NAME))

    def _load_optimizer_and_scheduler(self, checkpoint):
        if not isinstance(self.optimizer, TokenPreferenceOptimizer):
            return super()._load_optimizer_and_scheduler(checkpoint)
        optimizer = self.optimizer
        self.optimizer = optimizer.model_optimizer
        try:
            super()._load_optimizer_and_scheduler(checkpoint)
        finally:
            self.optimizer = optimizer
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, LAMBDA_STATE_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: the checkpoint was not written by a λ-learning LambdaGRPOTrainer, so λ and its "
                "optimizer state cannot be restored."
            )
        optimizer.load_lambda_state_dict(torch.load(path, map_location="cpu", weights_only=True))
