"""Helpers several test modules share (fixtures live in conftest.py; what scripts share too, in lambda_trl.testing)."""

import contextlib
import functools
import os
import socket
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import torch
import yaml
from packaging.version import Version

from lambda_trl.commands.train import parse_arguments
from lambda_trl.testing import fixed_batch, sum_dataset, tiny_model, tiny_tokenizer


ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
# The eight published files as they are in the repositories the registry pins (LAMBDA_TRL_BENCHMARKS, or a
# `shared/benchmarks` folder beside the checkout in this project's development set-up).
PUBLISHED_BENCHMARKS = Path(os.environ.get("LAMBDA_TRL_BENCHMARKS", ROOT.parent / "shared" / "benchmarks"))


# ---- benchmark files over HTTP ------------------------------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory):
    """An HTTP server on 127.0.0.1 (ephemeral port) serving `directory`; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for `accelerate launch --main_process_port`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_launch_command(config_file, recipe, *overrides, port=None) -> list[str]:
    """What a user runs: `accelerate launch --config_file CONFIG` with only the CPU overrides (2 processes, no mixed
    precision) and the README's `-m lambda_trl.cli train --config RECIPE`."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file)]
    command += ["--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(port or free_port())]
    return command + ["-m", "lambda_trl.cli", "train", "--config", str(recipe), *overrides]


def launcher_exit_code(signum: int) -> int:
    """The exit code of `accelerate launch` whose torch elastic agent forwarded `signum` to its workers and shut them
    down: accelerate 1.16 exits with 128 + the signal (its `_run_torchrun` catches torch's SignalException); 1.15 and
    older let the exception end the process, which exits with 1 (docs/scaling-out.md, "Preemption and exit codes")."""
    return 128 + signum if Version(version("accelerate")) >= Version("1.16") else 1


# ---- recipes ------------------------------------------------------------------------------------------------------


def parse(recipe: str, *overrides: str):
    """A recipe under recipes/ through the real `lambda-trl train` parser: (script_args, training_args, model_args)."""
    # The GPU recipes ask for bf16, which TrainingArguments only accepts on a CPU-only machine with use_cpu.
    arguments = ["--config", str(RECIPES / recipe), "--use_cpu", "true", *overrides]
    return parse_arguments(arguments)[:3]


def write_recipe(directory, model_dir, **overrides):
    """A CPU recipe for `lambda-trl train` on `model_dir` (3 steps of arithmetic), written to directory/recipe.yaml."""
    recipe = {
        "model_name_or_path": str(model_dir),
        "dataset_name": "arithmetic",
        "dataset_size": 64,
        "max_operand": 9,
        "instruction_braces": "single",
        "output_dir": str(directory / "run"),
        "use_cpu": True,
        "bf16": False,
        "max_steps": 3,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 8,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "gradient_checkpointing": False,
        "plot": True,
        **overrides,
    }
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def write_push_recipe(directory, model_dir, **overrides):
    """`write_recipe` for one step that pushes to `someone/tiny-lambda-grpo` (the fake Hub's tests)."""
    push = {"max_steps": 1, "plot": False, "push_to_hub": True, "hub_model_id": "someone/tiny-lambda-grpo"}
    return write_recipe(directory, model_dir, **{**push, **overrides})


# ---- the loss on a fixed batch ------------------------------------------------------------------------------------


def build_trainer(trainer_class, config_class, tmp_path, **overrides):
    """A trainer on the tiny model in exact float32 on CPU, ready for `compute_loss` on a fixed batch."""
    tokenizer = tiny_tokenizer()
    args = config_class(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=16,
        report_to=[],
        use_cpu=True,
        temperature=1.0,
        bf16=False,  # exact float32 on CPU, so direct computations agree to 1e-6
        **overrides,
    )
    trainer = trainer_class(
        model=tiny_model(tokenizer),
        reward_funcs=lambda completions, **kwargs: [0.0] * len(completions),
        args=args,
        train_dataset=sum_dataset(),
        processing_class=tokenizer,
    )
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    return trainer


def loss_and_gradients(trainer, batch):
    """(loss, {parameter name: gradient}) of one `compute_loss` + backward."""
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trainer.model.named_parameters()}


def assert_same(first, second, atol=1e-6):
    """Two `loss_and_gradients` results agree to `atol`."""
    loss_a, grads_a = first
    loss_b, grads_b = second
    torch.testing.assert_close(loss_a, loss_b, atol=atol, rtol=0)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=atol, rtol=0, msg=name)


# Three groups of different total length, shuffled: the batch and group normalizers differ on it.
LENGTHS_THREE_GROUPS = [3, 9, 14, 6, 2, 16, 5, 11, 4, 4, 12, 8]
ADVANTAGES_THREE_GROUPS = [1.2, -0.4, -1.1, 0.3, 0.9, -1.3, 0.1, 0.3, -0.5, 0.6, 1.0, -1.1]
SHUFFLE_THREE = torch.tensor([5, 2, 11, 7, 0, 9, 3, 6, 10, 1, 8, 4])


def group_batch():
    """The three-group batch and each row's group index."""
    batch = fixed_batch(LENGTHS_THREE_GROUPS, ADVANTAGES_THREE_GROUPS, 4, SHUFFLE_THREE)
    group_of = (torch.arange(12) // 4)[SHUFFLE_THREE]
    return batch, group_of
