"""Evaluation on the λ-GRPO paper's 8 benchmarks (Table 1): registry, scoring, generation, harness."""

from .benchmarks import BENCHMARKS, Benchmark, resolve_benchmarks
from .scoring import score_predictions


__all__ = ["BENCHMARKS", "Benchmark", "resolve_benchmarks", "score_predictions"]
