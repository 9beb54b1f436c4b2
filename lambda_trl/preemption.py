"""
Preemption-safe training: on a preemption signal (SLURM sends SIGTERM, or the `--signal` of the job, before it
kills a job), finish the current optimizer step on every rank, write a complete checkpoint and stop, so that the
same command run again resumes from that step instead of from the last periodic checkpoint.

    trainer.add_callback(PreemptionCallback("SIGTERM,SIGUSR1"))
    trainer.train()
    if trainer_preemption(trainer):  # stopped by a signal: a checkpoint, not a finished run
        ...

Why each choice:

- The handler only records the signal. Stopping in the middle of a step would leave the model, its optimizer and
  λ out of step with each other and with the other ranks; finishing the step costs at most one step's time.
- The ranks agree at every step end through one all-reduce (MAX) of the signal number on the training device: the
  signal may reach the ranks during different steps (or reach only some: the launcher forwards it to its node's
  workers only), and a checkpoint needs every rank in the same save. One 1-element collective per step costs
  under a millisecond (docs/scaling-out.md, "Preemption and exit codes"), next to steps of seconds.
- The checkpoint is transformers' own (`control.should_save` then `should_training_stop`): the same files, the same
  code path and the same resume as a periodic one, whatever `save_strategy` is (also "no"). At an epoch end the
  callback stops a second save of the same step.
- A second signal (SLURM signals every process of the job and the launcher forwards the signal again) is only
  recorded, so it cannot interrupt the save.
- Processes forked during training (the answer-checking pool) inherit the handler; there it restores the handler
  the process had before and re-sends the signal, so `Pool.terminate()` (SIGTERM) still ends them. (A signal
  in the microseconds between fork() and the child's interpreter reset is lost, as to any Python handler.)
- The handlers are installed in `on_train_begin` and the previous ones restored in `on_train_end`: outside
  `train()` (a notebook, the final `save_model`) the signals keep their usual meaning. Python only allows handlers
  in the main thread; elsewhere the callback warns and the signals keep their default action.

`lambda-trl train` adds this callback for `preemption_signals` (default "SIGTERM,SIGUSR1"), skips the final model,
model card and Hub push of a preempted run, prints where the checkpoint is and exits with `PREEMPTED_EXIT_CODE`.
"""

import os
import signal
import threading
import warnings

import torch
import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


PREEMPTED_EXIT_CODE = 75
"""`lambda-trl train`'s exit code after a preemption signal: EX_TEMPFAIL of sysexits.h ("temporary failure, try
again"), so a job script can tell "requeue me" from success (0), bad input (2) and a crash (1)."""

DEFAULT_PREEMPTION_SIGNALS = "SIGTERM,SIGUSR1"
UNCATCHABLE = {"SIGKILL", "SIGSTOP"}


def parse_signals(names: str, field: str = "preemption_signals") -> list[signal.Signals]:
    """The signals of a comma-separated list of names ('SIGTERM,SIGUSR1'); an empty string gives none."""
    signals = []
    for name in (part.strip() for part in names.split(",")):
        if not name:
            continue
        if name in UNCATCHABLE or name not in signal.Signals.__members__:
            raise ValueError(
                f"{field}: {name!r} is not a signal a process can handle; use names such as "
                f"{DEFAULT_PREEMPTION_SIGNALS!r} (comma-separated), or an empty string to disable."
            )
        signals.append(signal.Signals[name])
    return list(dict.fromkeys(signals))


class PreemptionCallback(TrainerCallback):
    """
    On one of `signals` (names, comma-separated, or `signal.Signals`), finishes the current optimizer step, writes a
    checkpoint and stops training; afterwards `stopped_by` is the signal's name and `checkpoint` the checkpoint's
    directory (both None when the run was not preempted).
    """

    def __init__(self, signals: str | list[signal.Signals] = DEFAULT_PREEMPTION_SIGNALS):
        self.signals = parse_signals(signals) if isinstance(signals, str) else list(signals)
        self.received: signal.Signals | None = None
        self.stopped_by: str | None = None
        self.checkpoint: str | None = None
        self._previous_handlers: dict[signal.Signals, object] = {}
        self._pid: int | None = None

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:  # a child forked during training: behave as it would have without us
            signal.signal(signum, self._previous_handlers.get(signum) or signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.received is None:
            self.received = signal.Signals(signum)

    def on_train_begin(self, args, state, control, **kwargs):
        self.received = self.stopped_by = self.checkpoint = None
        if self._previous_handlers or not self.signals:
            return
        if threading.current_thread() is not threading.main_thread():
            warnings.warn(
                "PreemptionCallback: training runs outside the main thread, where Python cannot handle signals; "
                f"{', '.join(s.name for s in self.signals)} keep their default action.",
                stacklevel=2,
            )
            return
        self._pid = os.getpid()
        for signum in self.signals:
            self._previous_handlers[signum] = signal.signal(signum, self._handle)

    def on_step_end(self, args, state, control, **kwargs):
        signum = int(self.received or 0)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            agreed = torch.tensor([signum], dtype=torch.int32, device=args.device)
            dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
            signum = int(agreed.item())
        if signum:
            self.stopped_by = signal.Signals(signum).name
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        if self.stopped_by:
            self.checkpoint = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.checkpoint:  # save_strategy "epoch" would write the same checkpoint again
            control.should_save = False

    def on_train_end(self, args, state, control, **kwargs):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers = {}


def trainer_preemption(trainer) -> PreemptionCallback | None:
    """The trainer's `PreemptionCallback` when a signal stopped its last `train()`, else None."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, PreemptionCallback) and callback.stopped_by:
            return callback
    return None
