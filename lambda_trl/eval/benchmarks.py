r"""
The paper's 8 evaluation sets (§3, Table 1), as published with the Qwen2.5-Math / SimpleRL-Zoo harness.

Each benchmark knows the published file it is evaluated on — pinned by URL at a commit, SHA-256 and row count, fetched
and verified on first use (`lambda_trl.eval.download`) or read from a `--data-dir` copy — its Hub id (a
cross-check), which field holds the question, how to get the ground truth, and its metric: Pass@1 (one greedy answer) for six sets,
Average@32 (the mean over 32 sampled answers, per problem, then over problems) for AIME24 and AMC23.

College Math: the paper evaluates a 500-row subsample "selected with random.seed(42)". We fix the rule as
`random.seed(42); sorted(random.sample(range(2818), 500))` over the rows of the published 2,818-row file and ship the
chosen indices (`college_math_subsample.json`) so results are reproducible.
"""

import json
import os
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .. import qwen_math
from ..answers import last_boxed_answer
from ..data import gsm8k_answer


QUESTION_FIELDS = ("question", "problem", "Question", "input")
QWEN_MATH_DATA = (
    "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465/evaluation/data"
)
SIMPLERL_DATA = (
    "https://raw.githubusercontent.com/hkust-nlp/simpleRL-reason/cf1c7858bfc145a27aa733e75d930d34f0d318a6/"
    "examples/simplelr_math_eval/data"
)
COLLEGE_MATH_ROWS, COLLEGE_MATH_SUBSAMPLE, COLLEGE_MATH_SEED = 2818, 500, 42


def college_math_subsample_indices() -> list[int]:
    """The rule behind the shipped indices; `college_math_subsample.json` must equal it (tested)."""
    rng = random.Random(COLLEGE_MATH_SEED)
    return sorted(rng.sample(range(COLLEGE_MATH_ROWS), COLLEGE_MATH_SUBSAMPLE))


@cache
def _shipped_college_math_indices() -> tuple[int, ...]:
    # Read as a package resource: the installed package may be a zip or lack a __file__-relative layout.
    return tuple(json.loads(resources.files(__package__).joinpath("college_math_subsample.json").read_text()))


def _strip_dollars(text) -> str:
    return str(text).strip().strip("$").strip()


def _last_boxed(solution: str) -> str:
    answer = last_boxed_answer(solution)
    if answer is None:
        raise ValueError("solution has no \\boxed{} answer")
    return answer


def _number(value) -> str:
    """AMC's answers are floats (27.0): integers are written without the trailing .0."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


@dataclass(frozen=True)
class Benchmark:
    name: str
    hub_id: str | None
    hub_config: str | None
    hub_split: str
    ground_truth_of: object  # row -> str
    samples: int = 1  # 1: Pass@1 (greedy); 32: Average@32 (sampled)
    subsample: bool = False
    source_url: str | None = None  # the published test.jsonl at a pinned commit
    sha256: str | None = None
    rows: int | None = None

    @property
    def metric(self) -> str:
        return "pass@1" if self.samples == 1 else f"avg@{self.samples}"

    def load_rows(self, data_dir: str | os.PathLike | None = None, allow_unverified: bool = False) -> list[dict]:
        """
        The evaluation rows `{"idx", "question", "answer", "qwen_math_answer"}` (the gold answer as the library and as
        the paper's harness derive it); `idx` is the 0-based line of `<name>/test.jsonl`, read from `data_dir` or,
        without it, from the verified cache (downloaded on first use).
        """
        from .download import benchmark_file

        path = benchmark_file(self, data_dir, allow_unverified)
        records = []
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}).") from None
        indices = range(len(records))
        if self.subsample:
            indices = _shipped_college_math_indices()
            if len(records) != COLLEGE_MATH_ROWS:
                raise ValueError(f"{path} has {len(records)} rows; the subsample indices are for {COLLEGE_MATH_ROWS}.")
        rows = []
        for idx in indices:
            record = records[idx]
            question = next((record[k] for k in QUESTION_FIELDS if record.get(k)), None)
            if question is None:
                raise ValueError(f"Row {idx} of {path} has none of the question fields {QUESTION_FIELDS}.")
            try:
                answer = self.ground_truth_of(record)
                qwen_math_answer = qwen_math.ground_truth(record, self.name)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
                raise ValueError(f"Row {idx} of {path} has no usable ground truth: {error}") from error
            rows.append({"idx": idx, "question": question, "answer": answer, "qwen_math_answer": qwen_math_answer})
        return rows


def _published(name: str, base: str, sha256: str, rows: int) -> dict:
    return {"source_url": f"{base}/{name}/test.jsonl", "sha256": sha256, "rows": rows}


BENCHMARKS = {
    benchmark.name: benchmark
    for benchmark in [
        Benchmark(
            "gsm8k",
            "openai/gsm8k",
            "main",
            "test",
            lambda r: gsm8k_answer(r["answer"]) or _fail("####"),
            **_published(
                "gsm8k", QWEN_MATH_DATA, "9f098df7ff4522078d6ccec27a5c38a454790fdb51131bedfaa0e490070d5394", 1319
            ),
        ),
        Benchmark(
            "math500",
            "HuggingFaceH4/MATH-500",
            None,
            "test",
            lambda r: _last_boxed(r["solution"]),
            **_published(
                "math500", SIMPLERL_DATA, "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132", 500
            ),
        ),
        Benchmark(
            "minerva_math",
            "math-ai/minervamath",
            None,
            "test",
            lambda r: _last_boxed(r["solution"]),
            **_published(
                "minerva_math", QWEN_MATH_DATA, "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2", 272
            ),
        ),
        Benchmark(
            "gaokao2023en",
            "MARIO-Math-Reasoning/Gaokao2023-Math-En",
            None,
            "train",
            lambda r: _strip_dollars(r["answer"]),
            **_published(
                "gaokao2023en", QWEN_MATH_DATA, "654d8f49bdb86f578c171dbc0dd8f4d9f1bf3d7a7438f60359fda7d643df4951", 385
            ),
        ),
        Benchmark(
            "olympiadbench",
            "Hothan/OlympiadBench",
            "OE_TO_maths_en_COMP",
            "train",
            lambda r: _strip_dollars(r["final_answer"][0]),
            **_published(
                "olympiadbench",
                QWEN_MATH_DATA,
                "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
                675,
            ),
        ),
        Benchmark(
            "college_math",
            "di-zhang-fdu/College_Math_Test",
            None,
            "test",
            lambda r: _strip_dollars(r["answer"]),
            subsample=True,
            **_published(
                "college_math",
                QWEN_MATH_DATA,
                "91131bc4a355b884fc63ef7c4f048c35adb030004a4cb07b1475698f120aa4a6",
                2818,
            ),
        ),
        Benchmark(
            "aime24",
            "HuggingFaceH4/aime_2024",
            None,
            "train",
            lambda r: str(r["answer"]).strip(),
            samples=32,
            **_published(
                "aime24", QWEN_MATH_DATA, "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac", 30
            ),
        ),
        Benchmark(
            "amc23",
            "math-ai/amc23",
            None,
            "test",
            lambda r: _number(r["answer"]),
            samples=32,
            **_published(
                "amc23", QWEN_MATH_DATA, "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4", 40
            ),
        ),
    ]
}


ARITHMETIC = Benchmark("arithmetic", None, None, "test", lambda r: str(r["answer"]).strip())
"""Held-out generated arithmetic (`lambda_trl.data.arithmetic_problems`) for the CPU experiments; not in 'all'."""


def _fail(what: str):
    raise ValueError(f"missing {what}")


def resolve_benchmarks(spec: str) -> list[Benchmark]:
    """'all' or a comma-separated list of names."""
    known = {**BENCHMARKS, ARITHMETIC.name: ARITHMETIC}
    names = list(BENCHMARKS) if spec == "all" else [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(f"Unknown benchmark(s) {unknown or spec!r}; choose from {list(known)} or 'all'.")
    return [known[name] for name in names]
