"""Trains λ-GRPO for a few steps on a tiny model and writes λ's trajectory and the model's update as JSON, one file
per rank: the worker of the engine checks (tests/test_distributed.py, the GPU kit's `engines` part). Run it under any
launcher: `python -m`, `torchrun`, or `accelerate launch --config_file recipes/accelerate/<engine>.yaml -m` (DDP,
DeepSpeed ZeRO-2/3, FSDP2):

    python -m lambda_trl.testing.distributed_worker OUTPUT_DIR --name NAME [--trainer grpo_lambda]
        [--gradient-accumulation-steps 2] [--max-steps 4] [--save-steps 2] [--resume-from CHECKPOINT] [--peft]
        [--eval-benchmarks gsm8k ...] [--data-dir DIR
        [--allow-unverified]]

With `grpo_lambda` the run is GRPO-λ's traces combined with λ-GRPO's learnable λ, with two iterations per
generation so the traced log-ratios inside the clip (old log-probs) are exercised too.

Completions come from `scripted_rollout`, which depends only on the prompt and the completion's index in its group,
and the global batch (16 completions per optimizer step) is split over processes and accumulation steps, so every
launch sees exactly the same completions and the same optimizer batches as one process with the whole batch.
"""

import argparse
import json
import os

import torch

from .. import LambdaGRPOConfig, LambdaGRPOTrainer, LambdaReturnGRPOConfig, LambdaReturnGRPOTrainer
from .tiny_runs import scripted_trainer, tiny_config_fields


GROUP_SIZE = 4
GLOBAL_BATCH = 16


def full_parameters(trainer) -> dict[str, torch.Tensor]:
    """The model's full (unsharded) trainable parameters; a collective under ZeRO-3 and FSDP, so every rank calls it."""
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if state is None:  # ranks other than 0 under ZeRO-3
        return {}
    names = {name.removeprefix("module.") for name, p in trainer.model.named_parameters() if p.requires_grad}
    return {name: tensor.detach().double().cpu() for name, tensor in state.items() if name in names}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--name", required=True, help="result files are result-NAME-rank<R>.json")
    parser.add_argument("--trainer", choices=["lambda_grpo", "grpo_lambda"], default="lambda_grpo")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--save-steps", type=int, default=0, help="0: no checkpoints")
    parser.add_argument("--resume-from", default=None)
    parser.add_argument("--peft", action="store_true", help="train LoRA adapters (λ is trained either way)")
    parser.add_argument("--lambda-optimizer", choices=["sgd", "adamw"], default="sgd")
    parser.add_argument("--normalizer", choices=["batch", "group"], default="batch")
    parser.add_argument(
        "--use-cpu", action="store_true", help="the training argument use_cpu=True, which every engine needs on CPU"
    )
    parser.add_argument("--eval-benchmarks", default=None, help="in-training benchmark evaluation at every step")
    parser.add_argument("--data-dir", default=None, help="benchmark files for --eval-benchmarks")
    parser.add_argument(
        "--allow-unverified", action="store_true", help="accept a --data-dir copy whose SHA-256 differs (stand-ins)"
    )
    options = parser.parse_args()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation = options.gradient_accumulation_steps
    fields = tiny_config_fields(
        options.output_dir,
        max_steps=options.max_steps,
        per_device_train_batch_size=GLOBAL_BATCH // (world_size * accumulation),
        gradient_accumulation_steps=accumulation,
        num_generations=GROUP_SIZE,
        save_strategy="steps" if options.save_steps else "no",
        save_steps=options.save_steps or 500,
        use_cpu=options.use_cpu,
        lambda_optimizer=options.lambda_optimizer,
        token_preference_normalizer=options.normalizer,
    )
    if options.trainer == "grpo_lambda":
        trainer_class = LambdaReturnGRPOTrainer
        args = LambdaReturnGRPOConfig(**fields, token_preference="lambda", loss_type="dapo", num_iterations=2)
    else:
        trainer_class, args = LambdaGRPOTrainer, LambdaGRPOConfig(**fields)
    peft_config = None
    if options.peft:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = scripted_trainer(trainer_class, args, peft_config=peft_config)
    if options.eval_benchmarks:
        from ..eval.in_training import BenchmarkEvalCallback

        trainer.add_callback(
            BenchmarkEvalCallback(
                trainer,
                options.eval_benchmarks,
                options.data_dir,
                every_steps=1,
                limit=3,
                max_new_tokens=8,
                allow_unverified=options.allow_unverified,
            )
        )
    # After the trainer has built the model (LoRA adapters included) and before any engine wraps it.
    initial = {name: p.detach().double().clone() for name, p in trainer.model.named_parameters()}
    trainer.train(resume_from_checkpoint=options.resume_from)

    final = full_parameters(trainer)
    rank = trainer.accelerator.process_index
    history = [(e["lambda/value"], e["lambda/grad"]) for e in trainer.state.log_history if "lambda/grad" in e]
    lambda_optimizer = trainer.optimizer.lambda_optimizer.state_dict()
    result = {
        "world_size": trainer.accelerator.num_processes,
        "engine": trainer.accelerator.distributed_type.value,
        "zero_stage": getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", None),
        "lambda": trainer.token_preference_lambda.item(),
        "lambda_bits": trainer.token_preference_lambda.detach().double().item().hex(),
        "lambda_optimizer_state": {key: value.item() for key, value in lambda_optimizer["state"].get(0, {}).items()},
        "history": history,
        "steps": trainer.state.global_step,
        "trace_history": [
            e["trace/column_sum_mean"] for e in trainer.state.log_history if "trace/column_sum_mean" in e
        ],
        "benchmarks": [
            {k: v for k, v in e.items() if k.startswith("benchmarks/")}
            for e in trainer.state.log_history
            if any(k.startswith("benchmarks/") for k in e)
        ],
        # The model's update (final - initial), parameter by parameter: compared across engines.
        "update": {
            name: (final[name] - initial[name]).flatten().tolist() for name in sorted(final) if name in initial
        },
        "trained_parameters": sorted(final),
    }
    with open(os.path.join(options.output_dir, f"result-{options.name}-rank{rank}.json"), "w") as f:
        json.dump(result, f)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
