"""
The `lambda-trl` command: `lambda-trl train --config RECIPE.yaml [--any_field value ...]` and `lambda-trl eval ...`.

Runs under `accelerate launch` like TRL's own scripts:

    accelerate launch --config_file recipes/accelerate/zero2.yaml -m lambda_trl.cli train \\
        --config recipes/qwen2.5-1.5b/lambda_grpo.yaml

Each command lives in `lambda_trl.commands` (its parsers and `run(argv)`); this module dispatches to it and turns
a problem with the user's input into one line on stderr (an error during training keeps its traceback).
"""

import importlib
import os
import sys
import traceback
import warnings


USAGE = """usage: lambda-trl {train,eval} ...

  train        λ-GRPO training from a YAML recipe: lambda-trl train --config RECIPE.yaml [--field value ...]
  eval         generate and score answers on the paper's benchmarks: lambda-trl eval --model M --benchmarks all
  eval score   score a predictions file: lambda-trl eval score --benchmark NAME --predictions PRED.jsonl [--data-dir DIR]
  eval table   one Table-1 row per earlier run: lambda-trl eval table DIR [DIR ...] [--labels a,b]
"""

COMMANDS = {"train": "lambda_trl.commands.train", "eval": "lambda_trl.commands.eval"}
"""The module of each command; imported only when run, so `lambda-trl --help` stays fast."""

DEBUG_ENV = "LAMBDA_TRL_DEBUG"


def main(argv: list[str] | None = None) -> int:
    """
    Runs a command. A problem with the user's input found before training starts (a ValueError or OSError: unknown
    recipe key, bad field value, malformed dataset, unreachable model or file) prints one line and exits with 2;
    `--debug` (or LAMBDA_TRL_DEBUG=1) shows the traceback instead. An error raised once training has started prints
    its traceback, which `lambda-trl train` also writes to output_dir, and exits with 1.
    """
    # transformers 5 announces v6 renames (gradient_checkpointing -> activation_checkpointing) that TRL 1.16 still
    # calls internally: nothing a user can act on, so they stay off the console.
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [argument for argument in argv if argument != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"lambda-trl: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from .commands import TrainingFailed
    from .redaction import redact_text

    try:
        return importlib.import_module(COMMANDS[command]).run(rest)
    except TrainingFailed as failure:
        if debug:
            raise failure.__cause__ from None
        # Redacted as the log file is: the console is often captured and uploaded (wandb, a cluster's log store).
        print(redact_text("".join(traceback.format_exception(failure.__cause__))), end="", file=sys.stderr)
        where = f", also written to {failure.log_file}" if failure.log_file else ""
        print(redact_text(f"lambda-trl: training failed: {failure} (traceback above{where})"), file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        if debug:
            raise
        print(f"lambda-trl: error: {error} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
