"""Trains λ-GRPO for a few steps and writes λ's trajectory; run under `torchrun` (N processes) or plain python (1)
as `distributed_lambda.py lambda_grpo|grpo_lambda OUTPUT_DIR`. With `grpo_lambda` the run is GRPO-λ's traces
combined with λ-GRPO's learnable λ, with two iterations per generation so the traced log-ratios inside the clip (old
log-probs) are exercised too.

Completions come from a scripted rollout that depends only on the prompt and the completion's index in its group,
so one process with the whole global batch sees exactly the completions that N processes see between them.
"""

import json
import os
import sys
import zlib

import torch
from tiny import CHARACTERS, count_a_reward, sum_dataset, tiny_config_fields, tiny_model, tiny_tokenizer

from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer, LambdaReturnGRPOConfig, LambdaReturnGRPOTrainer


GROUP_SIZE = 4
GLOBAL_BATCH = 16


def scripted_rollout(prompts, trainer):
    tokenizer = trainer.processing_class
    seen = {}
    prompt_ids, completion_ids = [], []
    for prompt in prompts:
        index = seen.get(prompt, 0)
        seen[prompt] = index + 1
        key = zlib.crc32(f"{prompt}|{index}".encode())
        length = 2 + key % 9
        text = "".join(CHARACTERS[(key >> (3 * i)) % len(CHARACTERS)] for i in range(length))
        prompt_ids.append(tokenizer(prompt)["input_ids"])
        completion_ids.append(tokenizer(text)["input_ids"] + [tokenizer.eos_token_id])
    return {
        "prompt_ids": prompt_ids,
        "completion_ids": completion_ids,
        "logprobs": [[0.0] * len(c) for c in completion_ids],
    }


def main(output_dir: str, trainer_name: str):
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    tokenizer = tiny_tokenizer()
    fields = tiny_config_fields(
        output_dir, max_steps=3, per_device_train_batch_size=GLOBAL_BATCH // world_size, num_generations=GROUP_SIZE
    )
    if trainer_name == "grpo_lambda":
        trainer_class, args = (
            LambdaReturnGRPOTrainer,
            LambdaReturnGRPOConfig(**fields, token_preference="lambda", loss_type="dapo", num_iterations=2),
        )
    else:
        trainer_class, args = LambdaGRPOTrainer, LambdaGRPOConfig(**fields)
    trainer = trainer_class(
        model=tiny_model(tokenizer),
        reward_funcs=count_a_reward,
        args=args,
        train_dataset=sum_dataset(),
        processing_class=tokenizer,
        rollout_func=scripted_rollout,
    )
    trainer.train()
    rank = trainer.accelerator.process_index
    history = [(e["lambda/value"], e["lambda/grad"]) for e in trainer.state.log_history if "lambda/grad" in e]
    result = {
        "world_size": trainer.accelerator.num_processes,
        "lambda": trainer.token_preference_lambda.item(),
        "lambda_bits": trainer.token_preference_lambda.detach().double().item().hex(),
        "history": history,
        "trace_history": [
            e["trace/column_sum_mean"] for e in trainer.state.log_history if "trace/column_sum_mean" in e
        ],
        "model_checksum": sum(p.detach().double().sum().item() for p in trainer.model.parameters()),
    }
    with open(os.path.join(output_dir, f"result-{trainer_name}-{world_size}-rank{rank}.json"), "w") as f:
        json.dump(result, f)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(trainer_name=sys.argv[1], output_dir=sys.argv[2])
