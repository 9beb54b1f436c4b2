"""
Command line: `lambda-trl train --config RECIPE.yaml [--any_field value ...]`.

Runs under `accelerate launch` like TRL's own scripts:

    accelerate launch --config_file recipes/accelerate/zero2.yaml -m lambda_trl.cli train \\
        --config recipes/qwen2.5-1.5b/lambda_grpo.yaml

Every field of the script arguments below, of `LambdaGRPOConfig` and of TRL's `ModelConfig` can be set in the YAML
or overridden on the command line (TRL's `TrlParser`); `lambda-trl train --help` lists them all.
"""

import importlib
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field


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


def load_reward_function(name: str):
    from . import rewards

    if hasattr(rewards, name):
        return getattr(rewards, name)
    if "." in name:
        module, attribute = name.rsplit(".", 1)
        sys.path.insert(0, os.getcwd())
        return getattr(importlib.import_module(module), attribute)
    raise ValueError(f"Unknown reward function {name!r}: use a name from lambda_trl.rewards or a dotted import path.")


def load_training_set(script_args):
    from . import data

    if script_args.dataset_name == "arithmetic":
        return data.arithmetic_problems(
            script_args.dataset_size,
            script_args.dataset_seed,
            script_args.max_operand,
            script_args.instruction_braces,
            script_args.one_shot,
        )
    kwargs = {"split": script_args.dataset_split, "instruction_braces": script_args.instruction_braces}
    if script_args.dataset_path:
        kwargs["source"] = script_args.dataset_path
    if script_args.dataset_name == "simplerl_zoo_hard":
        kwargs["max_question_chars"] = script_args.max_question_chars
    return data.DATASETS[script_args.dataset_name](**kwargs)


def make_train_parser(trainer: str = "lambda_grpo"):
    from trl import ModelConfig, TrlParser

    if trainer == "grpo_lambda":
        from .lambda_return_config import LambdaReturnGRPOConfig as config_class
    else:
        from .config import LambdaGRPOConfig as config_class
    return TrlParser((TrainScriptArguments, config_class, ModelConfig), prog="lambda-trl train")


def requested_trainer(argv: list[str]) -> str:
    """The `trainer` named on the command line or in the --config YAML (it decides the config class to parse)."""
    for index, argument in enumerate(argv):
        if argument == "--trainer" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--trainer="):
            return argument.split("=", 1)[1]
    config_path = _config_path(argv)
    if config_path:
        import yaml

        with open(config_path) as f:
            return (yaml.safe_load(f) or {}).get("trainer", "lambda_grpo")
    return "lambda_grpo"


def train(script_args, training_args, model_args, config_path: str | None = None):
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import get_peft_config, get_quantization_config

    from .callbacks import MetricsJSONLCallback, ProgressLineCallback
    from .lambda_return_trainer import LambdaReturnGRPOTrainer
    from .model_card import RECIPE_FILE
    from .models import resolve_model_name
    from .trainer import LambdaGRPOTrainer

    if model_args.model_name_or_path is None:
        raise ValueError("Set `model_name_or_path` (a Hub id, a local path or 'embedded:SmolLM2-135M-Instruct').")
    model_name = resolve_model_name(model_args.model_name_or_path)
    model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    training_args.model_init_kwargs = model_init_kwargs

    try:
        dataset = load_training_set(script_args)
    except OSError as error:
        source = script_args.dataset_path or script_args.dataset_name
        raise OSError(
            f"Could not load the training set {source!r} (dataset_name / dataset_path): {error}. Offline? Point "
            "dataset_path at a local copy."
        ) from error
    callbacks = []
    if script_args.metrics_file:
        callbacks.append(MetricsJSONLCallback(os.path.join(training_args.output_dir, script_args.metrics_file)))
    trainer_class = LambdaReturnGRPOTrainer if script_args.trainer == "grpo_lambda" else LambdaGRPOTrainer
    try:
        trainer = trainer_class(
            model=model_name,
            reward_funcs=[load_reward_function(name) for name in script_args.reward_funcs],
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
    # Our one line per step replaces transformers' printing of the whole metrics dict (bar or no bar).
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(ProgressLineCallback())
    if script_args.eval_benchmarks:
        from .eval.callback import BenchmarkEvalCallback

        trainer.add_callback(
            BenchmarkEvalCallback(
                trainer,
                script_args.eval_benchmarks,
                script_args.eval_data_dir,
                script_args.eval_every_steps,
                script_args.eval_limit,
                script_args.eval_max_new_tokens,
                script_args.eval_allow_unverified,
            )
        )
    if config_path and trainer.accelerator.is_main_process:
        os.makedirs(training_args.output_dir, exist_ok=True)
        shutil.copyfile(config_path, os.path.join(training_args.output_dir, RECIPE_FILE))

    resume = training_args.resume_from_checkpoint
    if resume in ("true", "True", "last"):
        resume = get_last_checkpoint(training_args.output_dir)
        if resume is None:
            raise FileNotFoundError(f"resume_from_checkpoint=true, but {training_args.output_dir} has no checkpoint.")
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)
    trainer.create_model_card(dataset_name=script_args.dataset_path or script_args.dataset_name)
    trainer.accelerator.print(f"Model, tokenizer and model card saved to {training_args.output_dir}")
    if script_args.metrics_file:
        trainer.accelerator.print(f"Metrics: {os.path.join(training_args.output_dir, script_args.metrics_file)}")
    if script_args.plot and script_args.metrics_file and trainer.accelerator.is_main_process:
        from .plots import plot_training_curves

        png = plot_training_curves(
            os.path.join(training_args.output_dir, script_args.metrics_file),
            os.path.join(training_args.output_dir, "training_curves.png"),
            title=f"{TRAINERS[script_args.trainer].split(' ')[0]} on {script_args.dataset_name}",
        )
        trainer.accelerator.print(f"Training curves: {png}")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_path or script_args.dataset_name)
        trainer.accelerator.print(f"Pushed to the Hub: {trainer.hub_model_id}")
    trainer.end()
    if "wandb" in (training_args.report_to or []):
        import wandb

        if wandb.run is not None:  # transformers' callback leaves the run open; flush and close it here
            wandb.finish()
    return trainer


def _config_path(argv: list[str]) -> str | None:
    for index, argument in enumerate(argv):
        if argument == "--config" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--config="):
            return argument.split("=", 1)[1]
    return None


USAGE = """usage: lambda-trl {train,eval} ...

  train        λ-GRPO training from a YAML recipe: lambda-trl train --config RECIPE.yaml [--field value ...]
  eval         generate and score answers on the paper's benchmarks: lambda-trl eval --model M --benchmarks all
  eval score   score a predictions file: lambda-trl eval score --benchmark NAME --predictions PRED.jsonl [--data-dir DIR]
  eval table   one Table-1 row per earlier run: lambda-trl eval table DIR [DIR ...] [--labels a,b]
"""


def evaluation_main(argv: list[str]) -> int:
    import argparse
    import json

    if argv[:1] == ["score"]:
        from .eval.benchmarks import BENCHMARKS
        from .eval.scoring import score_predictions

        parser = argparse.ArgumentParser(prog="lambda-trl eval score", description="Score PRED.jsonl on a benchmark.")
        parser.add_argument("--benchmark", required=True, choices=list(BENCHMARKS))
        parser.add_argument("--predictions", required=True, help='JSONL lines {"idx": row, "completions": [...]}.')
        parser.add_argument(
            "--data-dir",
            default=None,
            help="Offline copy: a directory of <benchmark>/test.jsonl files, checked against the published SHA-256. Default: download each file once into the cache (see lambda_trl.eval.download).",
        )
        parser.add_argument("--allow-unverified", action="store_true", help="Accept a --data-dir copy that differs.")
        parser.add_argument("--output", default=None, help="Also write the result JSON here.")
        arguments = parser.parse_args(argv[1:])
        result = score_predictions(
            BENCHMARKS[arguments.benchmark], arguments.predictions, arguments.data_dir, arguments.allow_unverified
        )
        text = json.dumps(result, indent=2)
        print(text)
        if arguments.output:
            with open(arguments.output, "w") as f:
                f.write(text + "\n")
        return 0

    if argv[:1] == ["table"]:
        from .eval.harness import results_table

        parser = argparse.ArgumentParser(prog="lambda-trl eval table", description="Table-1 rows of several runs.")
        parser.add_argument("output_dirs", nargs="+", help="--output-dir folders of earlier `lambda-trl eval` runs.")
        parser.add_argument("--labels", default=None, help="Comma-separated row labels (default: the models).")
        arguments = parser.parse_args(argv[1:])
        runs = [json.load(open(os.path.join(d, "results.json"))) for d in arguments.output_dirs]
        labels = arguments.labels.split(",") if arguments.labels else [run["model"] for run in runs]
        names = list(dict.fromkeys(name for run in runs for name in run["results"]))
        print(results_table({label: run["results"] for label, run in zip(labels, runs)}, names))
        return 0

    from .eval import harness

    parser = argparse.ArgumentParser(prog="lambda-trl eval", description="Evaluate a model on the paper's benchmarks.")
    harness.add_arguments(parser)
    harness.run(parser.parse_args(argv))
    return 0


DEBUG_ENV = "LAMBDA_TRL_DEBUG"


def main(argv: list[str] | None = None):
    """
    Runs a command. A problem with the user's input (a ValueError or OSError: unknown recipe key, bad field value,
    malformed dataset, unreachable model or file) prints one line and exits with 2; `--debug` (or LAMBDA_TRL_DEBUG=1)
    shows the traceback instead.
    """
    # transformers 5 announces v6 renames (gradient_checkpointing -> activation_checkpointing) that TRL 1.16 still
    # calls internally: nothing a user can act on, so they stay off the console.
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [argument for argument in argv if argument != "--debug"]
    try:
        return _run_command(argv)
    except (ValueError, OSError) as error:
        if debug:
            raise
        print(f"lambda-trl: error: {error} (--debug shows the traceback)", file=sys.stderr)
        return 2


def _run_command(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        parser = make_train_parser(requested_trainer(rest))
        try:
            script_args, training_args, model_args = parser.parse_args_and_config(args=rest)
        except ValueError as error:
            unknown = re.search(r"Unknown arguments from config file: \[(.*)\]", str(error))
            if unknown is None:
                raise
            keys = [key.strip("'-") for key in unknown.group(1).split(", ") if key.startswith("'--")]
            raise ValueError(
                f"Unknown recipe key(s) {keys} in {_config_path(rest)}: check the spelling or remove them "
                "(`lambda-trl train --help` lists every field)."
            ) from None
        train(script_args, training_args, model_args, config_path=_config_path(rest))
        return 0
    if command == "eval":
        return evaluation_main(rest)
    print(f"lambda-trl: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
