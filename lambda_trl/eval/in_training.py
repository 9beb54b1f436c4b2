"""Benchmark evaluation during training: greedy accuracy on small benchmark slices every few steps."""

from accelerate.utils import gather_object
from transformers import TrainerCallback
from trl.models import unwrap_model_for_generation

from ..graders import DEFAULT_GRADER
from .benchmarks import resolve_benchmarks
from .generation import SamplingSettings, TransformersBackend, evaluation_prompt
from .scoring import score_rows, summarize


class BenchmarkEvalCallback(TrainerCallback):
    """
    Evaluates the policy on small held-out slices of the benchmarks at step 0 and every `every_steps` optimizer steps
    (the paper plots steps 0/40/80/120/160) and logs `benchmarks/<name>` accuracies under `grader` (both graders
    score, one is logged) through the trainer's metrics,
    so they reach wandb/trackio/tensorboard with the next log record. Greedy for every set, for a cheap, stable curve.

    Every process generates its share of the rows and the answers are gathered: under ZeRO-3 and FSDP the parameters
    are sharded, so every rank has to take part in generation (the shares have equal length because sharded
    generation runs in lock step across ranks).
    """

    def __init__(
        self,
        trainer,
        benchmarks: str,
        data_dir: str | None,
        every_steps: int,
        limit: int = 32,
        max_new_tokens=512,
        allow_unverified: bool = False,
        grader: str = DEFAULT_GRADER,
    ):
        if every_steps < 1:
            raise ValueError(f"every_steps must be >= 1, got {every_steps}.")
        self.trainer = trainer
        self.benchmarks = resolve_benchmarks(benchmarks)
        # Read (and fetched, verified) now, so a bad data_dir or a missing file fails before training starts.
        self.rows = {b.name: b.load_rows(data_dir, allow_unverified)[:limit] for b in self.benchmarks}
        self.limit = limit
        self.every_steps = every_steps
        self.settings = SamplingSettings(max_new_tokens=max_new_tokens)
        self.grader = grader
        self.last: tuple[int, dict[str, dict]] | None = None
        """(step, each benchmark's summary under both graders) of the latest evaluation."""

    def evaluate(self, step: int) -> dict[str, dict]:
        """Each benchmark's summary (`lambda_trl.eval.scoring.summarize`); every process must call it."""
        accelerator = self.trainer.accelerator
        summaries = {}
        with unwrap_model_for_generation(self.trainer.model_wrapped, accelerator) as model:
            backend = TransformersBackend(model, self.trainer.processing_class, batch_size=8)
            for benchmark in self.benchmarks:
                rows = self.rows[benchmark.name]
                share = rows[accelerator.process_index :: accelerator.num_processes]
                padding = -(-len(rows) // accelerator.num_processes) - len(share)  # equal calls on every rank
                prompts = [evaluation_prompt(row["question"]) for row in share + [rows[0]] * padding]
                completions = backend.generate(prompts, 1, greedy=True, settings=self.settings)[: len(share)]
                predictions = dict(gather_object([(row["idx"], texts) for row, texts in zip(share, completions)]))
                scored = score_rows(rows, predictions, benchmark.name)
                summaries[benchmark.name] = {**summarize(benchmark, scored, self.grader), "limit": self.limit}
        self.last = (step, summaries)
        return summaries

    def final_results(self, step: int) -> dict[str, dict]:
        """The evaluation at `step`, the end of training: the latest one if it was at `step`, else a new one."""
        if self.last is None or self.last[0] != step:
            self.evaluate(step)
        return self.last[1]

    def _maybe_evaluate(self, state):
        if state.global_step % self.every_steps:
            return
        for name, summary in self.evaluate(state.global_step).items():
            self.trainer._metrics["train"][f"benchmarks/{name}"].append(summary["accuracy"])

    def on_train_begin(self, args, state, control, **kwargs):
        self._maybe_evaluate(state)

    def on_step_end(self, args, state, control, **kwargs):
        self._maybe_evaluate(state)
