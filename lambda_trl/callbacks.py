import json
import math
import os

from transformers import TrainerCallback


class MetricsJSONLCallback(TrainerCallback):
    """Appends every log record (step, reward, λ, lengths, ...) as one JSON line to `path`, on the main process."""

    def __init__(self, path: str):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            if not state.global_step:  # a fresh run starts a fresh file; a resumed one appends
                open(self.path, "w").close()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step}
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                record[key] = value
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class ProgressLineCallback(TrainerCallback):
    """
    Prints one compact line per logged step (reward, accuracy, λ, mean completion length) and, at the end, the mean
    reward of the first and last few logged steps.
    """

    def __init__(self, window: int = 5):
        self.window = window
        self.rewards: list[float] = []

    def on_train_end(self, args, state, control, **kwargs):
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
        self.rewards.append(logs["reward"])
        parts = [f"step {state.global_step:>4}/{state.max_steps}", f"reward {logs['reward']:+.3f}"]
        if "accuracy" in logs:
            parts.append(f"accuracy {logs['accuracy']:.1%}")
        if "lambda/value" in logs:
            parts.append(f"λ {logs['lambda/value']:+.4f}")
        if "completions/mean_length" in logs:
            parts.append(f"length {logs['completions/mean_length']:.1f}")
        print(" | ".join(parts), flush=True)
