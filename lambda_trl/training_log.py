"""Logging during training: every log record to a JSONL file, and one console line per logged step."""

import json
import math
import os
import time

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback


class MetricsJSONLCallback(TrainerCallback):
    """Appends every log record (step, reward, λ, lengths, ...) as one JSON line to `path`, on the main process."""

    def __init__(self, path: str):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            if not state.global_step:  # a fresh run starts a fresh file; a resumed one appends
                open(self.path, "w").close()
            elif os.path.isfile(self.path):
                self._drop_records_after(state.global_step)

    def _drop_records_after(self, step: int):
        """A run resumed from the checkpoint of `step` recomputes the steps after it: their records from the
        interrupted run go, so that each step is in the file once (and so does a last line cut short by a kill)."""
        kept = []
        with open(self.path) as f:
            for line in f:
                try:
                    if json.loads(line)["step"] <= step:
                        kept.append(line)
                except ValueError:
                    continue
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with open(temporary, "w") as f:
            f.writelines(kept)
        os.replace(temporary, self.path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step}
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                record[key] = value
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class ProgressLineCallback(ProgressCallback):
    """
    transformers' progress bar with one compact line per logged step in place of the whole metrics dict (which goes
    to `metrics.jsonl` and the trackers): reward, accuracy, λ, mean completion length, seconds per step and the time
    left. At the end, the mean reward of the first and last few logged steps. Without a bar (`disable_tqdm`) the
    lines are printed alone.
    """

    def __init__(self, window: int = 5):
        super().__init__()
        self.window = window
        self.rewards: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if not args.disable_tqdm:
            super().on_train_begin(args, state, control, **kwargs)
        self.start_time, self.start_step = time.monotonic(), state.global_step
        self.last_time, self.last_step = self.start_time, state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)
        if state.is_world_process_zero and len(self.rewards) >= 2:
            window = min(self.window, len(self.rewards) // 2)
            first, last = self.rewards[:window], self.rewards[-window:]
            print(
                f"mean reward, first {window} logged steps: {sum(first) / window:+.3f} -> last {window}: "
                f"{sum(last) / window:+.3f}",
                flush=True,
            )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        now = time.monotonic()
        seconds_per_step = (now - self.last_time) / max(state.global_step - self.last_step, 1)
        self.last_time, self.last_step = now, state.global_step
        self.rewards.append(logs["reward"])
        parts = [f"step {state.global_step:>4}/{state.max_steps}", f"reward {logs['reward']:+.3f}"]
        if "accuracy" in logs:
            parts.append(f"accuracy {logs['accuracy']:.1%}")
        if "lambda/value" in logs:
            parts.append(f"λ {logs['lambda/value']:+.4f}")
        if "completions/mean_length" in logs:
            parts.append(f"length {logs['completions/mean_length']:.1f}")
        mean_seconds_per_step = (now - self.start_time) / max(state.global_step - self.start_step, 1)
        remaining = mean_seconds_per_step * max(state.max_steps - state.global_step, 0)
        parts.append(f"{seconds_per_step:.1f} s/step, ETA {_duration(remaining)}")
        line = " | ".join(parts)
        if self.training_bar is not None:
            self.training_bar.write(line)
        else:
            print(line, flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
