"""
Fault injection for tests/test_checkpoints.py, outside the library: the test puts this folder first on PYTHONPATH,
so every Python process of a launched job imports this module at start-up (the venv has no sitecustomize of its
own). With LAMBDA_TRL_TEST_KILL_IN_SAVE=STEP:POINT, the main training process SIGKILLs the whole job inside the
checkpoint save of global step STEP:

- `optimizer`: `Trainer._save_optimizer_and_scheduler`, entered after the model and λ's file are written;
- `trainer_state`: `TrainerState.save_to_json` into checkpoint-STEP, the save's last file.

Only the training processes (RANK is set by the launcher) patch anything; the launcher itself imports nothing.
"""

import os
import signal

import psutil


def kill_job(root_pid: int):
    """SIGKILL `root_pid` and every process under it: `accelerate launch`'s agent starts each worker in a session
    of its own, so killing the launcher's process group alone would leave the workers running."""
    root = psutil.Process(root_pid)
    processes = [root, *root.children(recursive=True)]
    me = os.getpid()
    for process in sorted(processes, key=lambda process: process.pid == me):  # this process last
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _install(step: int, point: str):
    import transformers
    from transformers.trainer_callback import TrainerState

    def kill():
        kill_job(os.getppid())  # the agent that launched this worker, and all of its workers

    if point == "optimizer":
        save = transformers.Trainer._save_optimizer_and_scheduler

        def _save_optimizer_and_scheduler(self, output_dir):
            if self.state.global_step == step and os.environ.get("RANK") == "0":
                kill()
            return save(self, output_dir)

        transformers.Trainer._save_optimizer_and_scheduler = _save_optimizer_and_scheduler
    elif point == "trainer_state":
        save_to_json = TrainerState.save_to_json

        def save_state(self, json_path):
            if os.path.basename(os.path.dirname(json_path)) == f"checkpoint-{step}":
                kill()
            return save_to_json(self, json_path)

        TrainerState.save_to_json = save_state
    else:
        raise ValueError(f"LAMBDA_TRL_TEST_KILL_IN_SAVE point must be 'optimizer' or 'trainer_state', got {point!r}")


_kill_in_save = os.environ.get("LAMBDA_TRL_TEST_KILL_IN_SAVE")
if _kill_in_save and "RANK" in os.environ:
    _step, _point = _kill_in_save.split(":")
    _install(int(_step), _point)
