"""λ-GRPO, and GRPO-λ combined with it, on 2 CPU processes (gloo, torchrun) against one process with the same global
batch."""

import json
import os
import socket
import subprocess
import sys

import pytest


HERE = os.path.dirname(__file__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command, output_dir):
    environment = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    completed = subprocess.run(
        command + [str(output_dir)], cwd=HERE, env=environment, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.mark.parametrize("trainer", ["lambda_grpo", "grpo_lambda"])
def test_two_processes_agree_with_each_other_and_with_one_process(tmp_path, trainer):
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
    ]
    run(torchrun + ["distributed_lambda.py", trainer], tmp_path)
    run([sys.executable, "distributed_lambda.py", trainer], tmp_path)
    rank0, rank1, single = (
        json.loads((tmp_path / f"result-{trainer}-{name}.json").read_text())
        for name in ("2-rank0", "2-rank1", "1-rank0")
    )
    assert rank0["world_size"] == rank1["world_size"] == 2 and single["world_size"] == 1
    assert rank0["lambda_bits"] == rank1["lambda_bits"], "λ must be bit-identical on every rank"
    assert rank0["history"] == rank1["history"]
    assert abs(rank0["lambda"]) > 1e-4
    assert rank0["lambda"] == pytest.approx(single["lambda"], abs=1e-6)
    for (value, gradient), (single_value, single_gradient) in zip(rank0["history"], single["history"]):
        assert value == pytest.approx(single_value, abs=1e-6)
        assert gradient == pytest.approx(single_gradient, abs=1e-6)
    assert rank0["model_checksum"] == pytest.approx(single["model_checksum"], rel=1e-6)
    assert len(rank0["trace_history"]) == (3 if trainer == "grpo_lambda" else 0)
    assert rank0["trace_history"] == pytest.approx(single["trace_history"], rel=1e-6)
