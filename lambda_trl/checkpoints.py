"""
Which `checkpoint-N` folder a run can resume from.

A checkpoint is complete when it holds every file the resume reads back. transformers' `Trainer._save_checkpoint`
(5.24) writes them in this order: the model (`save_model`: weights, config, tokenizer, and λ's
`token_preference_lambda.json` from `LambdaGRPOTrainer.save_model`); then, unless `save_only_model`, the optimizer
and scheduler (under DeepSpeed the engine's `global_stepN/` folder and, last, its `latest` file), the grad scaler
and each process's RNG state; and last, on the main process, `trainer_state.json`. A job killed anywhere in between
(a preemption, an out-of-memory kill, a wall-time limit) leaves a folder that transformers' `get_last_checkpoint`
still picks because it looks at names only, and the resume then fails on the missing `trainer_state.json` or,
worse, goes on silently: `Trainer` skips a missing optimizer, scheduler or RNG file and continues with a fresh
optimizer or fresh random numbers, which is not the run that was interrupted. The other processes write their own
RNG files (and ZeRO optimizer shards) without waiting for the main one, so even `trainer_state.json` does not
prove they finished: every file is checked, and the JSON and the `torch.save` / safetensors files for being
readable to their end, since a kill in the middle of a write leaves them cut short.

`missing_for_resume` says what one folder lacks; `newest_complete_checkpoint` picks the newest complete one.
"""

import json
import os
import re
import struct
import zipfile
from dataclasses import dataclass

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .lambda_state import LAMBDA_STATE_NAME


TRAINER_STATE_NAME = "trainer_state.json"
CHECKPOINT_PATTERN = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


@dataclass(frozen=True)
class ResumeNeeds:
    """What a run reads back from a checkpoint when it resumes, which decides what a complete checkpoint holds."""

    processes: int = 1  # each process restores its own RNG state (and, under ZeRO, its optimizer shard)
    deepspeed_zero_stage: int | None = None  # None: not DeepSpeed
    deepspeed_scheduler: bool = False  # the scheduler is DeepSpeed's (saved in the engine), not the Trainer's
    save_only_model: bool = False  # no optimizer, scheduler or RNG state in the checkpoints
    adapter: bool = False  # PEFT: the model weights are the adapter's
    learned_lambda: bool = False  # λ and its optimizer state come back from token_preference_lambda.json

    @classmethod
    def of_run(cls, training_args, use_peft: bool) -> "ResumeNeeds":
        """The needs of a run with `training_args` (`LambdaGRPOConfig` or `LambdaReturnGRPOConfig`)."""
        plugin = training_args.deepspeed_plugin
        deepspeed_config = plugin.deepspeed_config if plugin is not None else {}
        return cls(
            processes=training_args.world_size,
            deepspeed_zero_stage=None
            if plugin is None
            else deepspeed_config.get("zero_optimization", {}).get("stage", 0),
            deepspeed_scheduler="scheduler" in deepspeed_config,
            save_only_model=training_args.save_only_model,
            adapter=use_peft,
            learned_lambda=training_args.token_preference == "lambda" and training_args.learn_lambda,
        )


def missing_for_resume(checkpoint: str, needs: ResumeNeeds) -> list[str]:
    """What `checkpoint` lacks for a resume with `needs`: file names, 'cut short' where a file is there but
    unreadable to its end; an empty list when the checkpoint is complete."""
    missing = []
    if needs.deepspeed_zero_stage is not None:
        # DeepSpeed's resume reads the model (and optimizer) from its engine checkpoint, not model.safetensors.
        missing += _missing_deepspeed_engine(checkpoint, needs)
    else:
        missing += _missing_model_weights(checkpoint, needs.adapter)
    missing += _missing_json(checkpoint, TRAINER_STATE_NAME, "global_step")
    if not needs.save_only_model:
        if needs.deepspeed_zero_stage is None:
            optimizer = [name for name in os.listdir(checkpoint) if name.startswith("optimizer")]
            if not optimizer:
                missing.append("optimizer.pt")
            missing += [f"{name} (cut short)" for name in optimizer if not _readable(checkpoint, name)]
        if not needs.deepspeed_scheduler:
            missing += _missing_torch_files(checkpoint, ["scheduler.pt"])
        rng_files = (
            ["rng_state.pth"] if needs.processes <= 1 else [f"rng_state_{i}.pth" for i in range(needs.processes)]
        )
        missing += _missing_torch_files(checkpoint, rng_files)
    if needs.learned_lambda:
        missing += _missing_json(checkpoint, LAMBDA_STATE_NAME, "lambda")
    return missing


def newest_complete_checkpoint(output_dir: str, needs: ResumeNeeds) -> tuple[str | None, list[tuple[str, list[str]]]]:
    """
    (the newest complete `checkpoint-N` in `output_dir` or None, [(path, what it lacks)] of the newer incomplete
    ones it skipped). An output_dir that does not exist has no checkpoint.
    """
    if not os.path.isdir(output_dir):
        return None, []
    numbered = [
        (int(match.group(1)), os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
        if (match := CHECKPOINT_PATTERN.match(name)) and os.path.isdir(os.path.join(output_dir, name))
    ]
    skipped = []
    for _, path in sorted(numbered, reverse=True):
        missing = missing_for_resume(path, needs)
        if not missing:
            return path, skipped
        skipped.append((path, missing))
    return None, skipped


# ---- the rules, one kind of file each -------------------------------------------------------------------------


def _missing_model_weights(checkpoint: str, adapter: bool) -> list[str]:
    """The weights `Trainer._load_from_checkpoint` loads: one file, or an index and all of its shards."""
    names = (
        ["adapter_model.safetensors", "adapter_model.bin"] if adapter else ["model.safetensors", "pytorch_model.bin"]
    )
    present = [name for name in names if os.path.isfile(os.path.join(checkpoint, name))]
    if present:
        return [f"{name} (cut short)" for name in present if not _readable(checkpoint, name)]
    if not adapter:
        if any(name.startswith("pytorch_model_fsdp") for name in os.listdir(checkpoint)):
            return []  # FSDP's own model checkpoint (file or sharded folder), which the resume loads under FSDP
        for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            if os.path.isfile(os.path.join(checkpoint, index)):
                return _missing_shards(checkpoint, index)
    return [names[0]]


def _missing_shards(checkpoint: str, index: str) -> list[str]:
    try:
        with open(os.path.join(checkpoint, index)) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        return [f"{index} (cut short)"]
    return _missing_torch_files(checkpoint, shards)


def _missing_deepspeed_engine(checkpoint: str, needs: ResumeNeeds) -> list[str]:
    """`latest` (written last by the engine's main process) and the files of the folder it names that
    `engine.load_checkpoint` reads: the model states, and under ZeRO each data-parallel rank's optimizer shard."""
    try:
        with open(os.path.join(checkpoint, "latest")) as f:
            tag = f.read().strip()
    except FileNotFoundError:
        return ["latest (DeepSpeed's engine checkpoint)"]
    folder = os.path.join(checkpoint, tag)
    if not tag or not os.path.isdir(folder):
        return [f"{tag or 'the folder named by latest'}/ (DeepSpeed's engine checkpoint)"]
    names = os.listdir(folder)
    ranks = range(needs.processes)
    if needs.deepspeed_zero_stage == 3:
        wanted = [(f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt",) for rank in ranks]
    else:
        wanted = [("mp_rank_00_model_states.pt",)]
    if needs.deepspeed_zero_stage:
        wanted += [
            (f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt", f"bf16_zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
            for rank in ranks
        ]
    missing = []
    for choices in wanted:
        found = [name for name in choices if name in names]
        if not found:
            missing.append(f"{tag}/{choices[0]}")
        elif not _readable(folder, found[0]):
            missing.append(f"{tag}/{found[0]} (cut short)")
    return missing


def _missing_torch_files(checkpoint: str, names: list[str]) -> list[str]:
    missing = []
    for name in names:
        if not os.path.isfile(os.path.join(checkpoint, name)):
            missing.append(name)
        elif not _readable(checkpoint, name):
            missing.append(f"{name} (cut short)")
    return missing


def _missing_json(checkpoint: str, name: str, key: str) -> list[str]:
    """A JSON object with `key`: what the resume parses first; a truncated write is not valid JSON."""
    path = os.path.join(checkpoint, name)
    if not os.path.isfile(path):
        return [name]
    try:
        with open(path) as f:
            parsed = json.load(f)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return [f"{name} (cut short)"]
    return [] if isinstance(parsed, dict) and key in parsed else [f"{name} (cut short)"]


def _readable(folder: str, name: str) -> bool:
    """Whether a weights or `torch.save` file is whole, without loading it: a safetensors file is as long as its
    header says, a `torch.save` file (a zip archive) ends with its central directory. A JSON index is parsed."""
    path = os.path.join(folder, name)
    if os.path.isdir(path):
        return True  # a sharded FSDP/optimizer folder: its own format, read by its own loader
    if name.endswith(".safetensors"):
        return _safetensors_whole(path)
    if name.endswith((".pt", ".pth", ".bin")):
        return zipfile.is_zipfile(path)
    return True


def _safetensors_whole(path: str) -> bool:
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            (header_size,) = struct.unpack("<Q", f.read(8))
            if 8 + header_size > size:
                return False
            header = json.loads(f.read(header_size))
    except (struct.error, ValueError):
        return False
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    return 8 + header_size + max(ends, default=0) <= size
