"""Tiny random models and a character tokenizer, built offline for the tests (no Hub access)."""

import string
import zlib

import torch
from datasets import Dataset
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, TrainerCallback


CHARACTERS = string.digits + string.ascii_letters + " +-=*/\\{}().,:?!\n"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'][0] }}:{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}a:{% endif %}"
)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(["<pad>", "<eos>", *CHARACTERS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", chat_template=CHAT_TEMPLATE
    )


def tiny_model(tokenizer, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    # A random model emits EOS with probability ~1/vocab per token; a larger EOS logit gives varied lengths.
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= 8
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def sum_dataset(n: int = 16) -> Dataset:
    return Dataset.from_dict({"prompt": [f"{i % 7}+{i % 5}=" for i in range(n)]})


def count_a_reward(completions, **kwargs) -> list[float]:
    """Rewards completions for containing 'a': a signal that varies within a group."""
    return [float(completion.count("a")) for completion in completions]


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


def short_answer_reward(completions, **kwargs) -> list[float]:
    """Rewards shorter answers, standard or conversational: varies within any group of varied lengths."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [-float(len(text)) for text in texts]


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
    from lambda_trl import LambdaGRPOConfig

    return LambdaGRPOConfig(**tiny_config_fields(output_dir, **overrides))


def tiny_trainer(output_dir, trainer_class=None, model=None, config_class=None, **overrides):
    from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer

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
