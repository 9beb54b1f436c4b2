"""A character tokenizer and random Qwen2 models over it, built offline (no Hub access)."""

import string

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM


CHARACTERS = string.digits + string.ascii_letters + " +-=*/\\{}().,:?!\n"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'][0] }}:{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}a:{% endif %}"
)
# The tests' model: two layers of width 32, a training step in well under a second on CPU.
TINY_SHAPE = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=128,
    tie_word_embeddings=True,
)
# Qwen2.5-0.5B's layers over the character vocabulary: the GPU kit's model when no checkpoint is at hand.
QWEN2_5_0_5B_SHAPE = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    tie_word_embeddings=True,
)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character of `CHARACTERS` plus `<pad>` and `<eos>`, with a one-letter-role chat template."""
    vocab = {token: i for i, token in enumerate(["<pad>", "<eos>", *CHARACTERS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", chat_template=CHAT_TEMPLATE
    )


def tiny_model(tokenizer, seed: int = 0, eos_logit_scale: float = 8.0, **shape) -> Qwen2ForCausalLM:
    """A random Qwen2 over `tokenizer`'s vocabulary, initialised from `seed`.

    `shape` overrides the Qwen2Config layer fields of `TINY_SHAPE` (e.g. `**QWEN2_5_0_5B_SHAPE`). A random model emits
    EOS with probability ~1/vocab per token; scaling EOS's output row by `eos_logit_scale` gives varied lengths.
    """
    torch.manual_seed(seed)
    config = Qwen2Config(
        **{**TINY_SHAPE, **shape},
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= eos_logit_scale
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
