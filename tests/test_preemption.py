"""
Preemption-safe training (lambda_trl.preemption): a signal finishes the current step, writes a complete checkpoint
of it and stops; `lambda-trl train` then exits with 75 without the final model. Under 2-process DeepSpeed ZeRO-2
(`make test-faults`), a run signalled mid-way and launched again with the same command ends exactly where the
uninterrupted run does: λ's bits, its optimizer state and trajectory, and the model.
"""

import json
import multiprocessing
import os
import signal
import subprocess
import threading
import time

import pytest
from helpers import cli_launch_command, launcher_exit_code, write_recipe
from safetensors.torch import load_file
from test_distributed import ACCELERATE_CONFIGS
from transformers import TrainerCallback

from lambda_trl.cli import main
from lambda_trl.commands.train import add_callbacks, parse_arguments
from lambda_trl.preemption import PREEMPTED_EXIT_CODE, PreemptionCallback, trainer_preemption
from lambda_trl.testing import tiny_trainer


CHECKPOINT_FILES = ["model.safetensors", "token_preference_lambda.json", "trainer_state.json", "scheduler.pt"]


@pytest.fixture
def guarded_signals():
    """Handlers for SIGTERM and SIGUSR1 that record what reaches them instead of ending pytest (a forked child
    exits with 128 + the signal); restored after."""
    reached, test_pid = [], os.getpid()

    def guard(signum, frame):
        if os.getpid() != test_pid:
            os._exit(128 + signum)
        reached.append(signum)

    previous = {signum: signal.signal(signum, guard) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    yield reached, guard
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def lambda_steps(metrics_file) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    return [(record["step"], record["lambda/value"]) for record in records if "lambda/value" in record]


def started_then_sleep(started):
    started.set()
    time.sleep(60)


class SignalDuringStep(TrainerCallback):
    """Sends `signum` to this process at the start of optimizer step `step`, after sending SIGTERM to a child it
    forks there: the child must get the handler it had before (the answer-checking pool's `terminate()` needs it)."""

    def __init__(self, signum, step):
        self.signum, self.step, self.child_exit_code = signum, step, None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            context = multiprocessing.get_context("fork")
            started = context.Event()
            child = context.Process(target=started_then_sleep, args=(started,))
            child.start()
            # Once it runs: a signal in the microseconds between fork() and the child's interpreter reset is lost
            # to any Python-level handler (CPython clears the pending flags there).
            assert started.wait(30)
            child.terminate()
            child.join(10)
            self.child_exit_code = child.exitcode
            os.kill(os.getpid(), self.signum)


def test_signal_finishes_the_step_and_checkpoints_it(tmp_path, guarded_signals):
    reached, guard = guarded_signals
    # save_strategy "epoch": the epoch end that follows the stop must not save the same step again ("no": below).
    trainer = tiny_trainer(tmp_path, max_steps=5, lambda_optimizer="adamw", save_strategy="epoch")
    preemption = PreemptionCallback()
    sender = SignalDuringStep(signal.SIGUSR1, step=2)
    trainer.add_callback(preemption)
    trainer.add_callback(sender)
    save_checkpoint = trainer._save_checkpoint

    saves = []

    def save_with_a_second_signal(*args, **kwargs):  # SLURM signals every process and the launcher forwards again
        saves.append(trainer.state.global_step)
        os.kill(os.getpid(), signal.SIGTERM)
        return save_checkpoint(*args, **kwargs)

    trainer._save_checkpoint = save_with_a_second_signal
    trainer.train()

    assert trainer_preemption(trainer) is preemption and preemption.stopped_by == "SIGUSR1"
    assert trainer.state.global_step == 2 and saves == [2]
    checkpoint = tmp_path / "checkpoint-2"
    assert preemption.checkpoint == str(checkpoint)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    assert all((checkpoint / name).is_file() for name in [*CHECKPOINT_FILES, "optimizer.pt", "rng_state.pth"])
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 2
    assert json.loads((checkpoint / "token_preference_lambda.json").read_text())["global_step"] == 2
    assert sender.child_exit_code == 128 + signal.SIGTERM
    assert reached == [], "both signals must reach the callback, not the handlers it replaced"
    assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGUSR1) is guard, "handlers restored"


def test_lambda_trl_train_exits_75_at_a_checkpoint_without_the_final_model(
    tmp_path, tiny_model_dir, guarded_signals, capsys
):
    reached, _ = guarded_signals
    recipe = write_recipe(tmp_path, tiny_model_dir, max_steps=50, plot=False)
    run = tmp_path / "run"

    def signal_after_the_first_step():
        while not ((run / "metrics.jsonl").is_file() and lambda_steps(run / "metrics.jsonl")):
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=signal_after_the_first_step, daemon=True).start()
    assert main(["train", "--config", str(recipe)]) == PREEMPTED_EXIT_CODE == 75

    step = lambda_steps(run / "metrics.jsonl")[-1][0]
    assert 1 < step < 50
    expected = f"preempted by SIGTERM at step {step}: checkpoint written to {run / f'checkpoint-{step}'}; run the same"
    assert expected in capsys.readouterr().out
    assert all((run / f"checkpoint-{step}" / name).is_file() for name in CHECKPOINT_FILES)
    assert not (run / "model.safetensors").exists() and not (run / "token_preference_lambda.json").exists()
    assert reached == []


def test_preemption_signals_names_and_disabling(tmp_path, tiny_model_dir, capsys):
    recipe = write_recipe(tmp_path, tiny_model_dir)
    for value, name in [("SIGTERM,SIGFOO", "'SIGFOO'"), ("SIGKILL", "'SIGKILL'"), ("TERM", "'TERM'")]:
        assert main(["train", "--config", str(recipe), "--preemption_signals", value]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "preemption_signals" in error and name in error, error
    trainer = tiny_trainer(tmp_path)
    for value, expected in [("", 0), ("SIGUSR1", 1)]:
        add_callbacks(trainer, parse_arguments(["--config", str(recipe), "--preemption_signals", value])[0])
        assert sum(isinstance(c, PreemptionCallback) for c in trainer.callback_handler.callbacks) == expected


# ---- 2-process DeepSpeed ZeRO-2: preempted, resumed == uninterrupted ------------------------------------------------

MAX_STEPS, SIGNAL_AFTER_STEP = 6, 2


def launch_command(recipe, *overrides):
    return cli_launch_command(ACCELERATE_CONFIGS / "zero2.yaml", recipe, *overrides)


def launch(directory, *overrides, signal_to=None, timeout=600):
    """(exit code, output) of the launch; with `signal_to` ('launcher' or 'every_process'), SIGTERM once the
    metrics show step SIGNAL_AFTER_STEP."""
    environment = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    log_path = directory / f"launch-{len(list(directory.glob('launch-*')))}.log"
    metrics = directory / "run" / "metrics.jsonl"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            launch_command(directory / "recipe.yaml", *overrides),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the launcher and its workers, as a SLURM job step
        )
        deadline = time.monotonic() + timeout
        while signal_to and process.poll() is None and time.monotonic() < deadline:
            if metrics.is_file() and lambda_steps(metrics)[-1:] and lambda_steps(metrics)[-1][0] >= SIGNAL_AFTER_STEP:
                if signal_to == "launcher":  # what srun forwards
                    os.kill(process.pid, signal.SIGTERM)
                else:  # what SLURM does at the time limit or on preemption
                    os.killpg(process.pid, signal.SIGTERM)
                break
            time.sleep(0.05)
        try:
            code = process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return code, log_path.read_text()


def tiny_zero2_recipe(directory, tiny_model_dir):
    # A reward with signal for the tiny model and λ's AdamW, so λ moves once the lengths in a group differ.
    return write_recipe(
        directory,
        tiny_model_dir,
        max_steps=MAX_STEPS,
        per_device_train_batch_size=4,
        reward_funcs=["lambda_trl.testing.tiny_runs.short_answer_reward"],
        lambda_optimizer="adamw",
        plot=False,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_dir):
    directory = tmp_path_factory.mktemp("uninterrupted")
    tiny_zero2_recipe(directory, tiny_model_dir)
    code, output = launch(directory)
    assert code == 0, output[-5000:]
    return directory / "run"


@pytest.mark.faults
@pytest.mark.parametrize("signal_to", ["launcher", "every_process"])
def test_zero2_preempted_and_resumed_run_equals_the_uninterrupted_one(
    tmp_path, tiny_model_dir, uninterrupted, signal_to
):
    tiny_zero2_recipe(tmp_path, tiny_model_dir)
    run = tmp_path / "run"
    code, output = launch(tmp_path, signal_to=signal_to)
    assert code == launcher_exit_code(signal.SIGTERM), output[-5000:]
    step = lambda_steps(run / "metrics.jsonl")[-1][0]
    assert SIGNAL_AFTER_STEP < step < MAX_STEPS
    assert f"preempted by SIGTERM at step {step}: checkpoint written to {run / f'checkpoint-{step}'}" in output
    assert [p.name for p in run.glob("checkpoint-*")] == [f"checkpoint-{step}"]
    assert (run / f"checkpoint-{step}" / f"global_step{step}").is_dir()  # DeepSpeed's model and optimizer shards
    assert not (run / "model.safetensors").exists()

    code, output = launch(tmp_path, "--resume_from_checkpoint", "true")
    assert code == 0, output[-5000:]
    final, expected = (json.loads((d / "token_preference_lambda.json").read_text()) for d in (run, uninterrupted))
    assert float.hex(final["lambda"]) == float.hex(expected["lambda"]) and abs(expected["lambda"]) > 1e-2
    assert final["optimizer_state"] == expected["optimizer_state"] and final["global_step"] == MAX_STEPS
    trajectory = lambda_steps(run / "metrics.jsonl")
    assert [s for s, _ in trajectory] == list(range(1, MAX_STEPS + 1))  # the two launches' records, each step once
    assert [float.hex(v) for _, v in trajectory] == [
        float.hex(v) for _, v in lambda_steps(uninterrupted / "metrics.jsonl")
    ]
    model, expected_model = (load_file(d / "model.safetensors") for d in (run, uninterrupted))
    assert model.keys() == expected_model.keys()
    assert all(model[name].equal(expected_model[name]) for name in model)
