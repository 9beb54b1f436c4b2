"""A generation batch built by hand, as TRL hands it to `compute_loss`: the loss on it needs no generation."""

import torch


PROMPT_LENGTH = 3


def fixed_batch(lengths, advantages, group_size, permutation=None, vocab_size=18, seed=0):
    """A generation batch as TRL hands it to the loss, groups contiguous then shuffled by `permutation`.

    Completion i has `lengths[i]` tokens and advantage `advantages[i]`; prompts are `PROMPT_LENGTH` tokens; token ids
    are drawn from [2, vocab_size) with `seed`. λ-GRPO's `group_lengths` and `group_position` are included.
    """
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    batch_size, max_length = len(lengths), int(lengths.max())
    index = torch.arange(batch_size)
    batch = {
        "prompt_ids": torch.randint(2, vocab_size, (batch_size, PROMPT_LENGTH), generator=generator),
        "prompt_mask": torch.ones(batch_size, PROMPT_LENGTH, dtype=torch.long),
        "completion_ids": torch.randint(2, vocab_size, (batch_size, max_length), generator=generator),
        "completion_mask": (torch.arange(max_length)[None, :] < lengths[:, None]).long(),
        "advantages": torch.tensor(advantages, dtype=torch.float32),
        "group_lengths": lengths.float().view(-1, group_size)[index // group_size],
        "group_position": index % group_size,
    }
    batch["num_items_in_batch"] = batch["completion_mask"].sum()
    batch["group_count"] = torch.tensor(batch_size / group_size)
    if permutation is not None:
        batch = {k: v if v.dim() == 0 else v[permutation] for k, v in batch.items()}
    return batch
