import contextlib
import functools
import os
import textwrap

import torch
from transformers.utils import logging
from trl import GRPOTrainer
from trl.trainer.utils import get_config_model_id

from .config import LambdaGRPOConfig
from .lambda_state import restore_lambda_state, write_lambda_state
from .model_card import token_preference_card_section
from .optimizer import TokenPreferenceOptimizer
from .weighting import FIXED_TOKEN_PREFERENCES, token_preference_weights


logger = logging.get_logger(__name__)


def _refusing_env_mask(rollout_func):
    """
    `rollout_func` that fails on an `env_mask`. With tools TRL 1.16 runs its tool loop on the rollout's completions and
    takes their `tool_mask` from that loop alone, dropping `env_mask`: the tokens it marks as the environment's would
    be trained on and counted in |o_i| as the model's. Whether a rollout returns one is only known when it runs.
    """

    @functools.wraps(rollout_func)
    def rollout(prompts, trainer):
        output = rollout_func(prompts, trainer)
        if "env_mask" in output:
            raise ValueError(
                "rollout_func returned `env_mask` while `tools` or `environment_factory` are set: TRL's tool loop "
                "replaces it with its own `tool_mask`, so the tokens it marks as the environment's would be trained on "
                "and counted in |o_i| as the model's; run that environment in a rollout_func without tools."
            )
        return output

    return rollout


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
    of the trainer's optimizer (see [`TokenPreferenceOptimizer`][lambda_trl.optimizer.TokenPreferenceOptimizer]).

    Subclasses hook in through `_loss_inputs` (the batch TRL's loss reads), TRL's `_get_per_token_logps_and_entropies`
    and `model_card_lines`.
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

    config_class = LambdaGRPOConfig

    recipe_text: str | None = None
    """The recipe YAML `lambda-trl train` ran with, set by the train command so that the model card embeds it."""
    evaluation: tuple[dict, str] | None = None
    """(results, command) of the run's final benchmark evaluation, set by the train command: the card's scores."""

    # The same parameters as `GRPOTrainer.__init__`, in its order (tests/test_trainer.py checks them against TRL's).
    def __init__(
        self,
        model,
        reward_funcs=None,
        args: LambdaGRPOConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_processing_classes=None,
        callbacks=None,
        optimizers=(None, None),
        quantization_config=None,
        peft_config=None,
        tools=None,
        rollout_func=None,
        environment_factory=None,
    ):
        if args is None:
            model_name = model if isinstance(model, str) else get_config_model_id(model.config)
            args = self.config_class(f"{model_name.split('/')[-1]}-{type(self).__name__.removesuffix('Trainer')}")
        if not isinstance(args, self.config_class):
            raise TypeError(f"`args` must be a {self.config_class.__name__}, got {type(args).__name__}.")
        if rollout_func is not None and (tools or environment_factory):
            rollout_func = _refusing_env_mask(rollout_func)
        super().__init__(
            model,
            reward_funcs,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            reward_processing_classes=reward_processing_classes,
            callbacks=callbacks,
            optimizers=optimizers,
            quantization_config=quantization_config,
            peft_config=peft_config,
            tools=tools,
            rollout_func=rollout_func,
            environment_factory=environment_factory,
        )
        self.token_preference_lambda = torch.nn.Parameter(
            torch.tensor(args.lambda_init, dtype=torch.float32, device=self.accelerator.device),
            requires_grad=self.learns_lambda,
        )
        self._reject_fp16()

    def _reject_fp16(self):
        # `fp16=True` is rejected by the config; fp16 can also come from the accelerate config,
        # ACCELERATE_MIXED_PRECISION or a DeepSpeed JSON, and only the accelerator sees those.
        if not self.learns_lambda:
            return
        deepspeed_plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        deepspeed_fp16 = deepspeed_plugin is not None and (
            deepspeed_plugin.deepspeed_config.get("fp16", {}).get("enabled") is True
        )
        if self.accelerator.mixed_precision == "fp16" or deepspeed_fp16:
            source = "the DeepSpeed config's fp16.enabled" if deepspeed_fp16 else "mixed_precision='fp16'"
            raise ValueError(
                f"fp16 mixed precision ({source}, from the accelerate config or ACCELERATE_MIXED_PRECISION) is not "
                "supported while λ is learned: the fp16 loss scale would multiply λ's gradient. Use bf16 "
                "(`--mixed_precision bf16`) or full precision (`--mixed_precision no`), or learn_lambda=False."
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
        # K, the groups of the generation batch the loss sees (a 0-d tensor, so TRL's batch split passes it whole).
        output["group_count"] = (groups.sum(dim=1) > 0).sum().float()

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

    def weighted_advantages(self, inputs) -> torch.Tensor:
        """
        The batch's advantages, (B,) or per-token (B, T), times each completion's f(o_i) (and the group normalizer's
        factor); unchanged for `token_preference="none"`.
        """
        advantages = inputs["advantages"]
        if self.args.token_preference == "none":
            return advantages
        weights = self.completion_weights(inputs["group_lengths"], inputs["group_position"])
        if self.args.token_preference_normalizer == "group":
            weights = weights * self.group_normalizer_scale(inputs)
        return advantages * (weights if advantages.dim() == 1 else weights[:, None])

    def _loss_inputs(self, inputs: dict) -> dict:
        """
        The batch as TRL's `_compute_loss` reads it: a copy with the weighted advantages. Subclasses override it to
        prepare the advantages before they are weighted; `_compute_loss` hands its result to TRL's loss right away.
        """
        return {**inputs, "advantages": self.weighted_advantages(inputs)}

    def _compute_loss(self, model, inputs):
        return super()._compute_loss(model, self._loss_inputs(inputs))

    @staticmethod
    def group_normalizer_scale(inputs) -> torch.Tensor:
        r"""
        Per-completion factor $N / (K \cdot S_g)$ that turns TRL's token-mean into the mean over groups of per-group
        token means (Eq. 7 as written): $S_g = \sum_{i \in g} |o_i|$ is the completion's group's token count, $N$ the
        `num_items_in_batch` TRL's `dapo` loss divides by and $K$ the number of groups it spans (both over the whole
        generation batch). TRL's effective factor per completion is `steps_per_generation / (N ·
        gradient_accumulation_steps)` after averaging over processes, so this gives
        $1/(K_{step} S_g)$ with $K_{step}$ the groups per optimizer step, under any accumulation and process count.
        """
        group_tokens = inputs["group_lengths"].sum(dim=1)
        scale = inputs["num_items_in_batch"] / (inputs["group_count"] * group_tokens.clamp(min=1))
        return torch.where(group_tokens > 0, scale, 0.0)

    def model_card_lines(self) -> list[str]:
        """The model card's description of how this run trained, one line each; subclasses add their own."""
        return [
            f"Trained with lambda-trl ([λ-GRPO](https://arxiv.org/abs/2510.06870)), token preference "
            f"`{self.args.token_preference}`, loss `{self.args.loss_type}`."
        ]

    def create_model_card(self, model_name=None, dataset_name=None, tags=None):
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        if not self.is_world_process_zero():
            return
        section = token_preference_card_section(
            self.args,
            self.model_card_lines(),
            self.state.log_history,
            self.token_preference_lambda.item(),
            dataset_name,
            self.recipe_text,
        )
        path = os.path.join(self.args.output_dir, "README.md")
        with open(path, "a") as f:
            f.write(section)
        if self.evaluation is not None:
            from huggingface_hub import ModelCard

            from .eval.hub_card import with_evaluation

            run, command = self.evaluation
            with_evaluation(ModelCard.load(path), run, command, during_training=True).save(path)

    def _record_lambda_step(self, value: float, gradient: float):
        self._metrics["train"]["lambda/value"].append(value)
        self._metrics["train"]["lambda/grad"].append(gradient)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if optimizer is not None:
            # DeepSpeed builds the model's schedule on its own optimizer, from a copy of the trainer before `prepare`.
            return super().create_scheduler(num_training_steps, optimizer=optimizer)
        # The Trainer's own call, after `prepare`: the model's optimizer is final, so λ's group is added around it.
        model_optimizer = self.optimizer
        if isinstance(model_optimizer, TokenPreferenceOptimizer):
            model_optimizer = model_optimizer.model_optimizer
        # The model's schedule is built on the model's optimizer only, so it never moves λ's learning rate.
        scheduler = super().create_scheduler(num_training_steps, optimizer=model_optimizer)
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

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Saves the model as TRL does, plus λ's state (`lambda_trl.lambda_state`) beside it."""
        super().save_model(output_dir, _internal_call)
        if self.args.token_preference != "lambda" or not self.args.should_save:
            return
        learned = isinstance(self.optimizer, TokenPreferenceOptimizer)
        write_lambda_state(
            output_dir or self.args.output_dir,
            self.token_preference_lambda,
            self.state.global_step,
            self.args,
            self.optimizer.lambda_optimizer if learned else None,
        )

    @contextlib.contextmanager
    def _model_optimizer_only(self):
        """
        `self.optimizer` is the model's optimizer inside: the Trainer saves and loads the optimizer through
        backend-specific paths (DeepSpeed, FSDP) that only know the model's parameters. λ's state is saved with the
        model (`save_model`).
        """
        optimizer = self.optimizer
        if isinstance(optimizer, TokenPreferenceOptimizer):
            self.optimizer = optimizer.model_optimizer
        try:
            yield
        finally:
            self.optimizer = optimizer

    def _run_epoch(self, *args, **kwargs):
        # transformers 5.24 checks max_steps only after a step, so resuming a finished run (a requeued job whose
        # newest checkpoint is the last step) would train one step past it and save a checkpoint-(max_steps + 1).
        if 0 < self.state.max_steps <= self.state.global_step:
            self.control.should_training_stop = True
            return
        super()._run_epoch(*args, **kwargs)

    def _save_optimizer_and_scheduler(self, output_dir):
        with self._model_optimizer_only():
            super()._save_optimizer_and_scheduler(output_dir)

    def _load_optimizer_and_scheduler(self, checkpoint):
        with self._model_optimizer_only():
            super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or not isinstance(self.optimizer, TokenPreferenceOptimizer):
            return
        state = restore_lambda_state(
            checkpoint, self.args, self.token_preference_lambda, self.optimizer.lambda_optimizer
        )
        source = f"{checkpoint} (step {state['global_step']})"
        if state["optimizer_state"] is not None:
            logger.info(f"Restored λ = {state['lambda']:.6g} and λ's {state['lambda_optimizer']} state from {source}.")
        else:
            logger.warning(
                f"Restored λ = {state['lambda']:.6g} from {source}; that run did not learn λ, so λ's optimizer starts "
                "fresh."
            )
