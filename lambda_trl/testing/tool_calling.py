"""Scripted tool-calling conversations on a tiny model, offline: a character tokenizer with Qwen2.5's chat template
(TRL parses that template's `<tool_call>` blocks and renders tool results with it), and `script_turns`, which makes a
trainer's model "say" given text at every turn of TRL's own multi-turn tool loop.

TRL 1.16 generates every turn, the first and each one after a tool result, through
`GRPOTrainer._generate_single_turn(prompt_ids, ...)`; a `rollout_func` replaces the first turn only. So the script
stands in for that one method: everything else (rendering the tools into the prompt, parsing the tool calls, calling
the Python functions, appending their results, `tool_mask`) is TRL's.
"""

import re

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from trl.chat_template_utils import qwen2_5_chat_template


# Qwen2.5's end of turn is its EOS; `<|endoftext|>` pads.
TOOL_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Every printable ASCII character and the newline: the template's tool schema and JSON need them all.
TOOL_CHARACTERS = "".join(chr(code) for code in range(32, 127)) + "\n"
# The tools' JSON schema makes prompts ~800 characters (tokens) long; the tiny model needs positions for them.
TOOL_MODEL_POSITIONS = 2048


def tool_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character plus Qwen2.5's special tokens, with Qwen2.5's chat template, byte for byte: TRL
    recognises it, sets its tool-call parser and keeps it (it is prefix-preserving, as TRL's tool loop needs)."""
    vocab = {token: i for i, token in enumerate([*TOOL_SPECIAL_TOKENS, *TOOL_CHARACTERS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        extra_special_tokens=["<|im_start|>"],
        chat_template=qwen2_5_chat_template,
    )


def tool_call(name: str, **arguments) -> str:
    """A tool call as Qwen2.5 writes it (and its chat template renders it)."""
    rendered = ", ".join(f'"{key}": {value}' for key, value in arguments.items())
    return f'<tool_call>\n{{"name": "{name}", "arguments": {{{rendered}}}}}\n</tool_call>'


def tool_results(conversation: str) -> list[str]:
    """The tool results the conversation holds so far, in order."""
    return re.findall(r"<tool_response>\n(.*?)\n</tool_response>", conversation, flags=re.DOTALL)


def last_user_message(conversation: str) -> str:
    return conversation.rsplit("<|im_start|>user\n", 1)[-1].split("<|im_end|>", 1)[0]


def question(conversation: str) -> tuple[int, int]:
    """A and B of the conversation's question "What is A + B?"."""
    a, b = re.findall(r"What is (\d+) \+ (\d+)\?", conversation)[-1]
    return int(a), int(b)


def add(a: int, b: int) -> int:
    """
    Adds two integers.

    Args:
        a: The first integer.
        b: The second integer.
    """
    return a + b


def add_reply(conversation: str, index: int) -> str:
    """
    A model that uses `add`: on the question "What is A + B?" the i-th completion of the group (`index`) thinks for
    i sentences and calls `add(A, B)`, except the fourth, which answers A + B + 1 without a tool; after the tool's
    result it answers with it, in a sentence whose length depends on the conversation. Lengths and rewards vary within
    every group.
    """
    results = tool_results(conversation)
    if results:
        filler = " I checked it." * (len(conversation) % 3)
        return f"The tool says {results[-1]}.{filler} So the answer is {results[-1]}."
    a, b = question(conversation)
    if index % 4 == 3:
        return f"I know this one. The answer is {a + b + 1}."
    return "I should add the numbers. " * index + tool_call("add", a=a, b=b)


def final_answer_reward(completions, answer, **kwargs) -> list[float]:
    """1 when the last message ends with "the answer is ANSWER.", else 0 (conversational or text completions)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(text.rstrip().endswith(f"answer is {a}.")) for text, a in zip(texts, answer)]


def script_turns(trainer, reply):
    """
    Makes `trainer`'s model say `reply(conversation, index)` and end its turn, at every turn TRL generates:
    `conversation` is the decoded prompt of that turn (the chat so far, tool results included), `index` the
    position of this prompt among the identical prompts of the same call, modulo the group size (the i-th completion
    of a group on its first turn). Returns what the model said, as a list of (prompt ids, reply ids), in order.
    """
    tokenizer = trainer.processing_class
    said = []

    # TRL 1.14 and newer also pass `num_generations` (1.10-1.13 do not); the script needs only the prompts.
    def generate_single_turn(prompt_ids, *args, **kwargs):
        seen = {}
        completion_ids = []
        for ids in prompt_ids:
            conversation = tokenizer.decode(ids)
            index = seen.get(conversation, 0)
            seen[conversation] = index + 1
            text = reply(conversation, index % trainer.num_generations)
            reply_ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            said.append((list(ids), reply_ids))
            completion_ids.append(reply_ids)
        return completion_ids, None  # no sampling log-probs, like TRL's transformers generation

    trainer._generate_single_turn = generate_single_turn
    return said


def question_dataset(n: int = 8, system: str = "Use the tools."):
    """`n` conversational prompts "What is A + B?" with their `answer`."""
    from datasets import Dataset

    pairs = [(3 + i % 5, 4 + 2 * (i % 3)) for i in range(n)]
    return Dataset.from_dict(
        {
            "prompt": [
                [{"role": "system", "content": system}, {"role": "user", "content": f"What is {a} + {b}?"}]
                for a, b in pairs
            ],
            "answer": [str(a + b) for a, b in pairs],
        }
    )
