"""The pieces of a tiny GRPO run on CPU: prompts, rewards that vary within a group, scripted completions, configs."""

import zlib

from datasets import Dataset
from transformers import TrainerCallback

from .tiny_model import CHARACTERS, tiny_model, tiny_tokenizer


def sum_dataset(n: int = 16) -> Dataset:
    """`n` prompts of one-digit sums ("3+4="), repeating every 35 rows."""
    return Dataset.from_dict({"prompt": [f"{i % 7}+{i % 5}=" for i in range(n)]})


def count_a_reward(completions, **kwargs) -> list[float]:
    """Rewards completions for containing 'a': a signal that varies within a group."""
    return [float(completion.count("a")) for completion in completions]


def short_answer_reward(completions, **kwargs) -> list[float]:
    """Rewards shorter answers, standard or conversational: varies within any group of varied lengths."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [-float(len(text)) for text in texts]


def scripted_rollout(prompts, trainer):
    """A `rollout_func` in place of generation: 2 to 10 characters and EOS, a function of the prompt and the
    completion's index in its group only (a prompt's repeats in the call, modulo the group size), so every launch
    sees the same completions. Text prompts and conversational ones (through the chat template) alike."""
    tokenizer = trainer.processing_class
    seen = {}
    prompt_ids, completion_ids = [], []
    for prompt in prompts:
        text_prompt = (
            prompt
            if isinstance(prompt, str)
            else tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        )
        index = seen.get(text_prompt, 0)
        seen[text_prompt] = index + 1
        key = zlib.crc32(f"{text_prompt}|{index % trainer.num_generations}".encode())
        length = 2 + key % 9
        text = "".join(CHARACTERS[(key >> (3 * i)) % len(CHARACTERS)] for i in range(length))
        prompt_ids.append(tokenizer(text_prompt)["input_ids"])
        completion_ids.append(tokenizer(text)["input_ids"] + [tokenizer.eos_token_id])
    return {
        "prompt_ids": prompt_ids,
        "completion_ids": completion_ids,
        "logprobs": [[0.0] * len(c) for c in completion_ids],
    }


def scripted_trainer(trainer_class, args, **kwargs):
    """A trainer on the tiny model whose completions come from `scripted_rollout`, rewarded by `count_a_reward`."""
    tokenizer = tiny_tokenizer()
    return trainer_class(
        model=tiny_model(tokenizer),
        reward_funcs=count_a_reward,
        args=args,
        train_dataset=sum_dataset(),
        processing_class=tokenizer,
        rollout_func=scripted_rollout,
        **kwargs,
    )


def tiny_config_fields(output_dir, **overrides) -> dict:
    """GRPOConfig fields of a CPU run small enough for a training step in well under a second."""
    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=12,
        max_steps=3,
        logging_steps=1,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=0,
        temperature=1.0,
        bf16=False,
        disable_tqdm=True,
    )
    return {**defaults, **overrides}


def tiny_config(output_dir, **overrides):
    """`LambdaGRPOConfig` of `tiny_config_fields`."""
    from .. import LambdaGRPOConfig

    return LambdaGRPOConfig(**tiny_config_fields(output_dir, **overrides))


def tiny_trainer(output_dir, trainer_class=None, model=None, config_class=None, **overrides):
    """A trainer (`LambdaGRPOTrainer` by default) generating from the tiny model on `sum_dataset`, rewarded by
    `count_a_reward`, with the config (`LambdaGRPOConfig` by default) of `tiny_config_fields`."""
    from .. import LambdaGRPOConfig, LambdaGRPOTrainer

    tokenizer = tiny_tokenizer()
    return (trainer_class or LambdaGRPOTrainer)(
        model=model if model is not None else tiny_model(tokenizer),
        reward_funcs=count_a_reward,
        args=(config_class or LambdaGRPOConfig)(**tiny_config_fields(output_dir, **overrides)),
        train_dataset=sum_dataset(),
        processing_class=tokenizer,
    )


class StepCounter(TrainerCallback):
    """Counts the optimizer steps a run takes: a resumed run must take only the remaining ones."""

    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1
