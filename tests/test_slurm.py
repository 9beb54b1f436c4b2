"""recipes/slurm/train_multinode.sbatch run as SLURM would run it, with stand-ins for `srun` and `scontrol`.

The fake `srun` starts the script's per-node command once per node of SLURM_NNODES, in parallel, each with its
SLURM_PROCID / SLURM_NODEID, forwards SIGTERM and SIGINT to every node's process group (as slurmstepd signals every
process of a step) and exits with the highest of their exit statuses; it records each signal it gets. With
FAKE_SRUN_COMMAND set it runs that Python snippet per node instead of the script's command (the script's signal
logic alone, in a fraction of a second; the faults test runs the whole chain with the real trainer). The fake `scontrol` answers `show hostnames` with 127.0.0.1 once per node and
records `requeue JOBID`.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, launcher_exit_code, write_recipe
from safetensors.torch import load_file
from test_distributed import free_port


SCRIPT = ROOT / "recipes" / "slurm" / "train_multinode.sbatch"

FAKE_SRUN = """\
import os, signal, subprocess, sys

command = sys.argv[1:]
while command[0].startswith("-"):  # srun's own options, --name=value
    command.pop(0)
if os.environ.get("FAKE_SRUN_COMMAND"):
    command = [sys.executable, "-c", os.environ["FAKE_SRUN_COMMAND"]]
tasks = []


def forward(signum, frame):
    with open(os.environ["FAKE_SRUN_SIGNALS"], "a") as log:
        log.write(signal.Signals(signum).name + "\\n")
    for task in tasks:
        try:
            os.killpg(task.pid, signum)
        except ProcessLookupError:
            pass


signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
for node in range(int(os.environ["SLURM_NNODES"])):
    environment = {**os.environ, "SLURM_PROCID": str(node), "SLURM_NODEID": str(node), "SLURM_LOCALID": "0"}
    tasks.append(subprocess.Popen(command, env=environment, start_new_session=True))
statuses = [task.wait() for task in tasks]
sys.exit(max(128 - status if status < 0 else status for status in statuses))
"""

FAKE_SCONTROL = """\
import os, sys

if sys.argv[1:3] == ["show", "hostnames"]:
    print("\\n".join(["127.0.0.1"] * int(os.environ["SLURM_NNODES"])))
elif sys.argv[1] == "requeue":
    with open(os.environ["FAKE_SCONTROL_REQUEUES"], "a") as log:
        log.write(" ".join(sys.argv[2:]) + "\\n")
else:
    sys.exit(f"fake scontrol: unexpected {sys.argv[1:]}")
"""

# A node that trains until SIGTERM, then "checkpoints" and exits with 75, as `lambda-trl train` does when preempted.
PREEMPTIBLE_NODE = """\
import os, signal, sys, time
from pathlib import Path

directory = Path(os.environ["FAKE_NODE_DIR"])
node = os.environ["SLURM_PROCID"]
signal.signal(signal.SIGTERM, lambda signum, frame: (directory.joinpath(f"node{node}-stopped").touch(), sys.exit(75)))
directory.joinpath(f"node{node}-started").touch()
time.sleep(120)
"""


def write_tool(directory: Path, name: str, source: str):
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)


@pytest.fixture
def slurm(tmp_path):
    """The environment of a 2-node job whose `srun` and `scontrol` are the stand-ins, and where they record."""
    tools = tmp_path / "bin"
    tools.mkdir()
    write_tool(tools, "srun", FAKE_SRUN)
    write_tool(tools, "scontrol", FAKE_SCONTROL)
    environment = {
        **os.environ,
        # The stand-ins first, then this Python's `accelerate`.
        "PATH": os.pathsep.join([str(tools), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "lambda-grpo",
        "SLURM_JOB_NODELIST": "node[1-2]",
        "SLURM_NNODES": "2",
        "GPUS_PER_NODE": "1",
        "ACCELERATE_EXTRA_ARGS": "--mixed_precision no",
        "MAIN_PORT": str(free_port()),
        "FAKE_SRUN_SIGNALS": str(tmp_path / "srun-signals"),
        "FAKE_SCONTROL_REQUEUES": str(tmp_path / "requeues"),
        "TRL_EXPERIMENTAL_SILENCE": "1",
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
    }
    return environment


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def run_script(environment, *arguments, timeout=600):
    completed = subprocess.run(
        ["bash", str(SCRIPT), *arguments], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )
    return completed.returncode, completed.stdout[-3000:] + completed.stderr[-6000:]


def lambda_history(output_dir: Path) -> list[tuple[float, float]]:
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["lambda/value"], r["lambda/grad"]) for r in records if "lambda/grad" in r]


def model_update(output_dir: Path, initial: dict) -> dict:
    final = load_file(output_dir / "model.safetensors")
    assert sorted(final) == sorted(initial)
    return {name: final[name].double() - initial[name].double() for name in final}


def wait_for_step(job, output_dir: Path, step: int, timeout: float = 300):
    """Waits until the run's metrics.jsonl has λ's record of `step`."""
    deadline = time.monotonic() + timeout
    metrics = output_dir / "metrics.jsonl"
    while not (metrics.exists() and len(lambda_history(output_dir)) >= step):
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0][-6000:]
        time.sleep(0.1)


@pytest.mark.faults
def test_two_nodes_preempted_requeued_and_resumed_train_as_one_process(tmp_path, slurm, tiny_model_dir):
    # The whole chain on 2 "nodes": train, the time-limit warning (SIGUSR1 to the batch shell), SIGTERM through
    # srun and each node's launcher to the workers, a checkpoint, the requeue; then the requeued job (the same
    # script, the same arguments) resumes by itself and must end where one process trained without a stop ends.
    # Completions from the scripted rollout (loaded with the reward), so 2 nodes and 1 process see the same ones.
    recipe_dir = tmp_path / "my recipes"
    recipe_dir.mkdir()
    steps = 6
    recipe = write_recipe(
        recipe_dir,
        tiny_model_dir,
        reward_funcs=["lambda_trl.testing.scripted_generation.short_answer_reward"],
        dataset_size=16,
        max_steps=steps,
        per_device_train_batch_size=4,  # x 2 nodes = the one process's 8 below
        lambda_optimizer="adamw",
        plot=False,
    )
    output_dir = tmp_path / """run "two" 'nodes'"""  # an override with a space and both quotes
    arguments = ["bash", str(SCRIPT), str(recipe), "--output_dir", str(output_dir)]
    started = time.monotonic()
    job = subprocess.Popen(arguments, cwd=ROOT, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_step(job, output_dir, 1)
    job.send_signal(signal.SIGUSR1)
    output = job.communicate(timeout=300)[0]
    print(f"2 nodes until the checkpoint: {time.monotonic() - started:.0f} s")
    assert "--machine_rank" not in output  # both nodes' launchers got their rank: no usage error
    assert "preempted by SIGTERM at step" in output, output[-6000:]
    assert lines(tmp_path / "srun-signals") == ["SIGTERM"] and lines(tmp_path / "requeues") == ["4242"], output
    # The script exits with the launchers' status after they forwarded SIGTERM, whatever their workers return.
    assert job.returncode == launcher_exit_code(signal.SIGTERM), output[-6000:]
    checkpoints = sorted(output_dir.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and not (output_dir / "model.safetensors").exists(), checkpoints
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 1 <= stopped_at < steps, "the signal came too late to stop the run before its end"

    started = time.monotonic()
    status, output = run_script(slurm, str(recipe), "--output_dir", str(output_dir))  # the requeued job
    print(f"requeued job, resumed at step {stopped_at}: {time.monotonic() - started:.0f} s")
    assert status == 0, output
    assert f"checkpoint-{stopped_at}" in output and lines(tmp_path / "requeues") == ["4242"], output

    single_dir = tmp_path / "one-process"
    command = [sys.executable, "-m", "lambda_trl.cli", "train", "--config", str(recipe)]
    command += ["--per_device_train_batch_size", "8", "--output_dir", str(single_dir)]
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=slurm, capture_output=True, text=True, timeout=600)
    print(f"1 process: {time.monotonic() - started:.0f} s")
    assert completed.returncode == 0, completed.stderr[-5000:]

    nodes = json.loads((output_dir / "token_preference_lambda.json").read_text())
    single = json.loads((single_dir / "token_preference_lambda.json").read_text())
    assert nodes["global_step"] == single["global_step"] == steps
    assert abs(nodes["lambda"]) > 1e-4
    assert nodes["lambda"] == pytest.approx(single["lambda"], abs=1e-6)
    assert nodes["optimizer_state"]["state"]["0"] == pytest.approx(single["optimizer_state"]["state"]["0"], abs=1e-6)
    # λ's trajectory over both jobs: one record per step, none lost or repeated across the requeue.
    history, single_history = lambda_history(output_dir), lambda_history(single_dir)
    assert len(history) == len(single_history) == steps
    for (value, gradient), (single_value, single_gradient) in zip(history, single_history):
        assert value == pytest.approx(single_value, abs=1e-6) and gradient == pytest.approx(single_gradient, abs=1e-6)

    initial = load_file(tiny_model_dir / "model.safetensors")
    update, single_update = model_update(output_dir, initial), model_update(single_dir, initial)
    # A key bias's gradient is zero in exact arithmetic (tests/test_distributed.py): nothing to compare.
    compared = [name for name in single_update if not name.endswith("k_proj.bias")]
    for name in compared:
        assert (update[name] - single_update[name]).abs().max() <= 1e-6, name
    assert max(single_update[name].abs().max() for name in compared) > 1e-4


def start_preemptible_job(tmp_path, slurm):
    environment = {**slurm, "FAKE_SRUN_COMMAND": PREEMPTIBLE_NODE, "FAKE_NODE_DIR": str(tmp_path)}
    job = subprocess.Popen(
        ["bash", str(SCRIPT), "recipe.yaml"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"node{node}-started").exists() for node in (0, 1)):
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
        time.sleep(0.1)
    return job


@pytest.mark.parametrize("signal_name", ["SIGUSR1", "SIGTERM"], ids=["time-limit-warning", "preemption"])
def test_a_signal_stops_every_node_and_requeues_once(tmp_path, slurm, signal_name):
    job = start_preemptible_job(tmp_path, slurm)
    job.send_signal(getattr(signal, signal_name))
    output = job.communicate(timeout=60)[0]
    assert job.returncode == 75, output  # srun's status: the nodes' "checkpointed, rerun me"
    assert lines(tmp_path / "srun-signals") == ["SIGTERM"], output
    assert all((tmp_path / f"node{node}-stopped").exists() for node in (0, 1))
    assert lines(tmp_path / "requeues") == ["4242"], output


def test_a_failed_run_is_not_requeued(tmp_path, slurm):
    status, output = run_script({**slurm, "FAKE_SRUN_COMMAND": "import sys; sys.exit(3)"}, "recipe.yaml")
    assert status == 3, output
    assert lines(tmp_path / "requeues") == [] and lines(tmp_path / "srun-signals") == []


FAKE_ACCELERATE = """\
import json, os, sys

with open(os.path.join(os.environ["FAKE_ACCELERATE_DIR"], "node" + os.environ["SLURM_PROCID"]), "w") as record:
    json.dump({"argv": sys.argv[1:], "shutdown_timeout": os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT")}, record)
"""


def test_each_node_gets_its_rank_and_the_arguments_intact(tmp_path, slurm):
    # `accelerate` replaced by a stand-in that records its command line: the launch line without training.
    tools = tmp_path / "accelerate-stand-in"
    tools.mkdir()
    write_tool(tools, "accelerate", FAKE_ACCELERATE)
    environment = {**slurm, "PATH": f"{tools}{os.pathsep}{slurm['PATH']}", "FAKE_ACCELERATE_DIR": str(tmp_path)}
    overrides = ["--output_dir", """runs/a "b" 'c'""", "--run_name", "*", "--learning_rate", "1e-6"]
    status, output = run_script(environment, "my recipes/r.yaml", *overrides)
    assert status == 0, output
    for node in (0, 1):
        launched = json.loads((tmp_path / f"node{node}").read_text())
        assert launched["argv"] == [
            "launch",
            "--machine_rank",
            str(node),
            "--config_file",
            "recipes/accelerate/multinode_zero3.yaml",
            "--num_machines",
            "2",
            "--num_processes",
            "2",
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            slurm["MAIN_PORT"],
            "--mixed_precision",
            "no",
            "-m",
            "lambda_trl.cli",
            "train",
            "--config",
            "my recipes/r.yaml",
            *overrides,
        ]
        assert launched["shutdown_timeout"] == "840"
    assert lines(tmp_path / "requeues") == []
