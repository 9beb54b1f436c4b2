"""
λ-GRPO with TRL's `tools`, `environment_factory` and `rollout_func`, trained end to end on a tiny model whose scripted
turns call tools through TRL's own multi-turn loop (`lambda_trl.testing.tool_calling`).

What each run checks on its first generation batch: |o_i| counts only the model's own tokens, found independently of
TRL's `tool_mask` from what the script said; f is the paper's f on those lengths (`reference_weights`); the λ gradient
the first optimizer step applied equals Appendix C's Eq. 20 on that batch; and the same model tokens without the tool
output in between give the same lengths, weights and λ gradient.
"""

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from reference import closed_form_lambda_gradient, reference_weights

import lambda_trl
from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer
from lambda_trl.testing import tiny_config, tiny_model
from lambda_trl.testing.tool_calling import (
    TOOL_MODEL_POSITIONS,
    add,
    add_reply,
    final_answer_reward,
    last_user_message,
    question,
    question_dataset,
    script_turns,
    tool_call,
    tool_results,
    tool_tokenizer,
)
from lambda_trl.weighting import token_preference_weights


LAMBDA_INIT = 0.7
TRAINING_PAGE = Path(__file__).resolve().parent.parent / "docs" / "training.md"


def tool_trainer(output_dir, reward_funcs=final_answer_reward, max_steps=2, **kwargs):
    """λ-GRPO on the tiny model over the tool tokenizer, 2 prompts × 4 completions per step, λ starting at 0.7."""
    tokenizer = tool_tokenizer()
    return LambdaGRPOTrainer(
        model=tiny_model(tokenizer, max_position_embeddings=TOOL_MODEL_POSITIONS),
        reward_funcs=reward_funcs,
        args=tiny_config(output_dir, max_steps=max_steps, max_completion_length=512, lambda_init=LAMBDA_INIT),
        train_dataset=question_dataset(),
        processing_class=tokenizer,
        **kwargs,
    )


def record_batches(trainer) -> list[dict]:
    """The generation batches TRL hands to the loss, as they come (groups contiguous, before TRL shuffles them)."""
    batches = []
    generate_and_score = trainer._generate_and_score_completions

    def recording(inputs):
        batches.append(generate_and_score(inputs))
        return batches[-1]

    trainer._generate_and_score_completions = recording
    return batches


def rows(batch):
    """Each completion's prompt and completion ids, unpadded."""
    for prompt, prompt_mask, completion, completion_mask in zip(
        batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"]
    ):
        yield prompt[prompt_mask.bool()].tolist(), completion[completion_mask.bool()].tolist()


def model_turns(said, batch) -> list[list[list[int]]]:
    """For each completion of `batch`, the turns the scripted model said in it: the replies whose prompt and reply are
    a prefix of the completion's whole sequence (found without TRL's `tool_mask`)."""
    turns = []
    for prompt, completion in rows(batch):
        sequence = prompt + completion
        matched = {
            (len(p), tuple(r)) for p, r in said if len(p) >= len(prompt) and sequence[: len(p) + len(r)] == p + r
        }
        turns.append([list(reply) for _, reply in sorted(matched)])
    return turns


def first_step(trainer) -> dict:
    return next(entry for entry in trainer.state.log_history if "lambda/grad" in entry)


def initial_weights(trainer, batch) -> torch.Tensor:
    """f(o_i) of each completion of `batch` at the λ it was generated with (the run has moved λ since)."""
    with torch.no_grad():
        lam = trainer.token_preference_lambda.item()
        trainer.token_preference_lambda.fill_(LAMBDA_INIT)
        weights = trainer.completion_weights(batch["group_lengths"], batch["group_position"])
        trainer.token_preference_lambda.fill_(lam)
    return weights


def check_lambda_grpo_batch(trainer, batch, lengths: list[int]):
    """
    On one generation batch: λ-GRPO's |o_i| are `lengths`, f is the paper's f on them, and the λ gradient of the
    optimizer step that trained on it (the run's first) is Eq. 20 on it: on-policy the ratio is 1, so
    L_i = Σ_t Â_i = |o_i| Â_i, and TRL's token-mean over the batch's S model tokens weighs group g's Eq. 20 by S_g / S.
    """
    group_size = trainer.num_generations
    loss_mask = batch["completion_mask"] * batch.get("tool_mask", 1)
    assert loss_mask.sum(dim=1).tolist() == lengths
    groups = torch.tensor(lengths, dtype=torch.float32).view(-1, group_size)
    torch.testing.assert_close(batch["group_lengths"], groups.repeat_interleave(group_size, dim=0), rtol=0, atol=0)
    weights = initial_weights(trainer, batch)
    torch.testing.assert_close(weights, token_preference_weights(torch.tensor(lengths), group_size, LAMBDA_INIT))
    groups = [lengths[start : start + group_size] for start in range(0, len(lengths), group_size)]
    expected = [w for group in groups for w in reference_weights(group, LAMBDA_INIT)]
    assert weights.tolist() == pytest.approx(expected, rel=1e-6)

    advantages = batch["advantages"].tolist()
    total = sum(lengths)
    gradient = 0.0
    for start, group in zip(range(0, len(lengths), group_size), groups):
        terms = [length * advantage for length, advantage in zip(group, advantages[start : start + group_size])]
        gradient -= closed_form_lambda_gradient(group, terms, LAMBDA_INIT, 1 / 9) * sum(group) / total
    entry = first_step(trainer)
    assert entry["lambda/value"] == pytest.approx(LAMBDA_INIT)
    assert entry["lambda/grad"] == pytest.approx(gradient, rel=1e-5)
    assert abs(gradient) > 1e-4, "the batch should give λ a gradient"


def replay_rollout(completions: dict):
    """A `rollout_func` that answers the prompt's user message, for the i-th completion of its group, with
    `completions[(user message, i)]`: the same completions, without anything in between."""

    def rollout(prompts, trainer):
        tokenizer = trainer.processing_class
        seen = {}
        prompt_ids, completion_ids = [], []
        for prompt in prompts:
            text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            key = last_user_message(text)
            index = seen.get(key, 0)
            seen[key] = index + 1
            prompt_ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
            completion_ids.append(completions[(key, index % trainer.num_generations)])
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


def check_same_without_tool_output(tmp_path, batch, turns, trainer):
    """The model's tokens alone (its turns back to back, no tool output), trained without tools: the same |o_i|, f
    and λ gradient as the run with tools (its rewards see the same final answer)."""
    tokenizer = trainer.processing_class
    completions = {}
    for position, ((prompt, _), said_turns) in enumerate(zip(rows(batch), turns)):
        key = (last_user_message(tokenizer.decode(prompt)), position % trainer.num_generations)
        completions[key] = [token for turn in said_turns for token in turn]
    plain = tool_trainer(tmp_path / "without-tools", max_steps=1, rollout_func=replay_rollout(completions))
    plain_batches = record_batches(plain)
    plain.train()
    assert "tool_mask" not in plain_batches[0]
    assert plain_batches[0]["completion_mask"].sum(dim=1).tolist() == batch_lengths(batch)
    torch.testing.assert_close(plain_batches[0]["group_lengths"], batch["group_lengths"], rtol=0, atol=0)
    torch.testing.assert_close(plain_batches[0]["advantages"], batch["advantages"], rtol=0, atol=0)
    torch.testing.assert_close(
        initial_weights(plain, plain_batches[0]), initial_weights(trainer, batch), rtol=0, atol=0
    )
    assert first_step(plain)["lambda/grad"] == pytest.approx(first_step(trainer)["lambda/grad"], rel=1e-6)


def batch_lengths(batch) -> list[int]:
    return (batch["completion_mask"] * batch.get("tool_mask", 1)).sum(dim=1).tolist()


def check_run(tmp_path, trainer, batches, said):
    batch = batches[0]
    turns = model_turns(said, batch)
    lengths = [sum(len(turn) for turn in row) for row in turns]
    check_lambda_grpo_batch(trainer, batch, lengths)
    completion_lengths = batch["completion_mask"].sum(dim=1).tolist()
    assert any(full > own for full, own in zip(completion_lengths, lengths)), (
        "some completions should hold tool output"
    )
    assert all(math.isfinite(e["loss"]) for e in trainer.state.log_history if "loss" in e)
    assert trainer.token_preference_lambda.item() != LAMBDA_INIT
    check_same_without_tool_output(tmp_path, batch, turns, trainer)


def test_tool_calls_count_only_the_models_tokens(tmp_path):
    trainer = tool_trainer(tmp_path / "tools", tools=[add])
    said = script_turns(trainer, add_reply)
    batches = record_batches(trainer)
    trainer.train()
    assert first_step(trainer)["tools/call_frequency"] == 0.75  # three of each group's four completions call `add`
    assert first_step(trainer)["tools/failure_frequency"] == 0.0
    check_run(tmp_path, trainer, batches, said)


class Counter:
    """An environment: a counter the model moves with `increment`; rewarded when it lands on the answer."""

    def reset(self, answer, **kwargs):
        self.target = int(answer)
        self.value = 0

    def increment(self, by: int) -> int:
        """
        Adds to the counter and returns its new value.

        Args:
            by: How much to add.
        """
        self.value += by
        return self.value

    def get_reward(self) -> float:
        return float(self.value == self.target)


def counter_reply(conversation: str, index: int) -> str:
    """
    Two tool turns, then the answer: the i-th completion of a group thinks i + 1 sentences and increments by A, then
    by B (the third by B + 1: a wrong total); the fourth answers A + B + 1 at once, without the tool. The environment's
    reward and `final_answer_reward` agree on every completion.
    """
    results = tool_results(conversation)
    a, b = question(conversation)
    if not results:
        if index % 4 == 3:
            return f"I know this one. The answer is {a + b + 1}."
        return "Let me count. " * (index + 1) + tool_call("increment", by=a)
    if len(results) == 1:
        # Later turns have a conversation of their own (index 0); the first turn's thinking tells which completion.
        third = conversation.count("Let me count. ") == 3
        return "Now the second number. " * (len(conversation) % 3) + tool_call("increment", by=b + third)
    return f"The counter says {results[-1]}. So the answer is {results[-1]}."


def test_environment_multi_turn_counts_only_the_models_tokens(tmp_path):
    # The environment owns the reward (`get_reward`); its tool results come back over two turns.
    trainer = tool_trainer(tmp_path / "environment", reward_funcs=None, environment_factory=Counter)
    said = script_turns(trainer, counter_reply)
    batches = record_batches(trainer)
    trainer.train()
    assert first_step(trainer)["tools/call_frequency"] == 1.5  # two calls in three of every four completions
    assert max(len(turns) for turns in model_turns(said, batches[0])) == 3
    check_run(tmp_path, trainer, batches, said)


FEEDBACK = "\n<|im_start|>user\nWrong, try again.<|im_end|>\n<|im_start|>assistant\n"


def feedback_rollout(said: list):
    """
    A custom multi-turn `rollout_func`: the first completion of each group answers right away; the others guess
    wrong, get the environment's feedback (`FEEDBACK`, marked 0 in `env_mask`) and answer again (the fourth wrongly
    again), after i sentences of apology. What the model said goes to `said`, as (prompt ids, reply ids) pairs.
    """

    def rollout(prompts, trainer):
        tokenizer = trainer.processing_class

        def ids(text):
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        seen = {}
        prompt_ids, completion_ids, env_masks = [], [], []
        for prompt in prompts:
            text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            a, b = question(text)
            index = seen.get((a, b), 0) % trainer.num_generations
            seen[(a, b)] = seen.get((a, b), 0) + 1
            first = ids(f"The answer is {a + b}." if index == 0 else f"My guess: {a + b + index}.")
            turns = [first + [tokenizer.eos_token_id]]
            if index > 0:
                turns.append(
                    ids("Sorry. " * index + f"So the answer is {a + b + (index == 3)}.") + [tokenizer.eos_token_id]
                )
            completion, env_mask = [], []
            for turn in turns:
                if completion:
                    completion += ids(FEEDBACK)
                    env_mask += [0] * len(ids(FEEDBACK))
                said.append((ids(text) + completion, turn))
                completion += turn
                env_mask += [1] * len(turn)
            prompt_ids.append(ids(text))
            completion_ids.append(completion)
            env_masks.append(env_mask)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None, "env_mask": env_masks}

    return rollout


def test_rollout_func_env_mask_counts_only_the_models_tokens(tmp_path):
    said = []
    trainer = tool_trainer(tmp_path / "rollout", rollout_func=feedback_rollout(said))
    batches = record_batches(trainer)
    trainer.train()
    assert batches[0]["tool_mask"].min() == 0  # TRL hands the rollout's env_mask to the loss as tool_mask
    check_run(tmp_path, trainer, batches, said)


def test_rollout_env_mask_beside_tools_is_refused(tmp_path):
    # TRL's tool loop would drop the rollout's env_mask: its environment tokens would count as the model's.
    trainer = tool_trainer(tmp_path, max_steps=1, rollout_func=feedback_rollout([]), tools=[add])
    with pytest.raises(ValueError, match="rollout_func returned `env_mask` while `tools` or `environment_factory`"):
        trainer.train()


@dataclasses.dataclass
class CPULambdaGRPOConfig(LambdaGRPOConfig):
    # TRL's defaults ask for bf16, which a CPU refuses; one step is enough.
    use_cpu: bool = True
    bf16: bool = False
    max_steps: int = 1
    report_to: str = "none"


def documented_tools_example() -> str:
    section = TRAINING_PAGE.read_text().split("## Tools and multi-turn rollouts", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_documented_tools_example_trains(tmp_path, monkeypatch):
    # The code of docs/training.md's tools section as written, with the tiny model scripted to use `add` in place of Qwen2.5 from the Hub.
    class TinyScripted(LambdaGRPOTrainer):
        def __init__(self, model, *args, **kwargs):
            assert model == "Qwen/Qwen2.5-0.5B-Instruct"
            tokenizer = tool_tokenizer()
            model = tiny_model(tokenizer, max_position_embeddings=TOOL_MODEL_POSITIONS)
            super().__init__(model, *args, processing_class=tokenizer, **kwargs)
            script_turns(self, add_reply)

    monkeypatch.setattr(lambda_trl, "LambdaGRPOTrainer", TinyScripted)
    monkeypatch.setattr(lambda_trl, "LambdaGRPOConfig", CPULambdaGRPOConfig)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(documented_tools_example(), namespace)
    entry = first_step(namespace["trainer"])
    assert entry["tools/call_frequency"] == 0.75 and entry["reward"] == 0.75
    assert math.isfinite(entry["lambda/grad"]) and entry["lambda/grad"] != 0.0
