"""λ-GRPO under the engines our recipes launch, on 2 CPU processes (gloo): `accelerate launch` with the shipped
`recipes/accelerate/*.yaml` and only CPU overrides on the command line, against one process with the same global
batch (lambda_trl.testing.distributed_worker). Each run reports the engine it actually ran under, so a launcher that silently
falls back to another engine fails the test instead of passing it.

FSDP2 is not here: accelerate 1.15 and 1.16 enable FSDP only on accelerator devices (on CPU, fsdp.yaml runs as plain
multi-CPU data parallel), so its check is part of the GPU kit.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli_launch_command, free_port, write_recipe

from lambda_trl.checkpoints import ResumeNeeds, missing_for_resume


HERE = Path(__file__).resolve().parent
ACCELERATE_CONFIGS = HERE.parent / "recipes" / "accelerate"
WORKER = "lambda_trl.testing.distributed_worker"
# `--use-cpu` is the training argument use_cpu=True, which a CPU run needs under every engine: without it DDP falls
# back to independent processes and transformers sizes DeepSpeed's batch for one process.
COMMON = ["--gradient-accumulation-steps", "2", "--max-steps", "4", "--lambda-optimizer", "adamw", "--use-cpu"]
UPDATE_TOLERANCE = 1e-6  # measured: up to 2.6e-7 between engines, on updates of up to 2.5e-3


def compared_parameters(result) -> list[str]:
    # A key bias adds q·b to every score of a query and softmax ignores shifts, so its gradient is zero in exact
    # arithmetic and AdamW turns the rounding noise into full-size steps: nothing to compare.
    return [name for name in result["trained_parameters"] if not name.endswith("k_proj.bias")]


ENVIRONMENT = {"TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def run(command, timeout=300):
    environment = {**os.environ, **ENVIRONMENT}
    completed = subprocess.run(command, cwd=HERE, env=environment, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]


def launch(config_file, output_dir, name, *options, timeout=300):
    """`accelerate launch --config_file CONFIG --num_processes 2 --mixed_precision no` (and nothing else)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file)]
    command += ["--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port())]
    run(command + ["-m", WORKER, str(output_dir), "--name", name, *options], timeout)
    return [json.loads((Path(output_dir) / f"result-{name}-rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """Results of one process with the whole global batch, by option set, computed once per module."""
    cache = {}

    def result(*options):
        if options not in cache:
            output_dir = tmp_path_factory.mktemp("one-process")
            run([sys.executable, "-m", WORKER, str(output_dir), "--name", "single", *options])
            cache[options] = json.loads((output_dir / "result-single-rank0.json").read_text())
        return cache[options]

    return result


def assert_agrees(ranks, single, engine, zero_stage=None):
    rank0, rank1 = ranks
    assert rank0["engine"] == rank1["engine"] == engine and rank0["zero_stage"] == zero_stage
    assert rank0["world_size"] == 2 and single["world_size"] == 1
    assert rank0["steps"] == single["steps"]
    assert rank0["lambda_bits"] == rank1["lambda_bits"], "λ must be bit-identical on every rank"
    assert rank0["history"] == rank1["history"]
    assert rank0["lambda_optimizer_state"] == rank1["lambda_optimizer_state"]
    assert abs(rank0["lambda"]) > 1e-4
    assert rank0["lambda"] == pytest.approx(single["lambda"], abs=1e-6)
    assert len(rank0["history"]) == len(single["history"]) == single["steps"]
    for (value, gradient), (single_value, single_gradient) in zip(rank0["history"], single["history"]):
        assert value == pytest.approx(single_value, abs=1e-6)
        assert gradient == pytest.approx(single_gradient, abs=1e-6)
    assert rank0["lambda_optimizer_state"] == pytest.approx(single["lambda_optimizer_state"], abs=1e-6)
    assert rank0["trained_parameters"] == single["trained_parameters"]
    for name in compared_parameters(single):
        assert rank0["update"][name] == pytest.approx(single["update"][name], abs=UPDATE_TOLERANCE), name
    assert max(abs(x) for update in single["update"].values() for x in update) > 100 * UPDATE_TOLERANCE
    # The trace statistics average per micro-batch, and micro-batches split differently over 1 and 2 processes.
    assert len(rank0["trace_history"]) == len(single["trace_history"])


@pytest.mark.parametrize(
    "variant",
    [["--trainer", "lambda_grpo"], ["--trainer", "grpo_lambda"], ["--normalizer", "group"]],
    ids=["lambda_grpo", "grpo_lambda", "group_normalizer"],
)
def test_ddp(tmp_path, one_process, variant):
    options = [*COMMON, *variant]
    ranks = launch(ACCELERATE_CONFIGS / "ddp.yaml", tmp_path, "ddp", *options)
    assert_agrees(ranks, one_process(*options), "MULTI_CPU")


def test_zero2_with_save_and_resume(tmp_path, one_process):
    config = ACCELERATE_CONFIGS / "zero2.yaml"
    straight = launch(config, tmp_path, "zero2", *COMMON, "--save-steps", "2")
    assert_agrees(straight, one_process(*COMMON), "DEEPSPEED", zero_stage=2)
    assert (tmp_path / "checkpoint-2" / "token_preference_lambda.json").is_file()
    resumed = launch(config, tmp_path, "zero2-resumed", *COMMON, "--resume-from", str(tmp_path / "checkpoint-2"))
    for key in ("lambda_bits", "history", "lambda_optimizer_state", "steps"):
        assert resumed[0][key] == straight[0][key], key
    for name in compared_parameters(straight[0]):
        assert resumed[0]["update"][name] == pytest.approx(straight[0]["update"][name], abs=UPDATE_TOLERANCE)
    # What a complete ZeRO-2 checkpoint of 2 processes holds (lambda_trl.checkpoints), on the real one.
    checkpoint, needs = (
        tmp_path / "checkpoint-2",
        ResumeNeeds(processes=2, deepspeed_zero_stage=2, learned_lambda=True),
    )
    assert missing_for_resume(str(checkpoint), needs) == []
    tag = (checkpoint / "latest").read_text().strip()
    (checkpoint / tag / "zero_pp_rank_1_mp_rank_00_optim_states.pt").unlink()
    assert missing_for_resume(str(checkpoint), needs) == [f"{tag}/zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    (checkpoint / "latest").unlink()
    assert missing_for_resume(str(checkpoint), needs) == ["latest (DeepSpeed's engine checkpoint)"]


def test_zero3(tmp_path, one_process):
    ranks = launch(ACCELERATE_CONFIGS / "zero3.yaml", tmp_path, "zero3", *COMMON)
    assert_agrees(ranks, one_process(*COMMON), "DEEPSPEED", zero_stage=3)


def launch_two_machines(output_dir, name, *options, timeout=300):
    """Two `accelerate launch --config_file recipes/accelerate/multinode_zero3.yaml` started together, one per
    "machine" (`--machine_rank 0` and `1`, both on 127.0.0.1), one process each: what the SLURM script runs per node."""
    port = free_port()
    environment = {**os.environ, **ENVIRONMENT}
    launchers = []
    for machine_rank in (0, 1):
        command = [sys.executable, "-m", "accelerate.commands.launch"]
        command += ["--config_file", str(ACCELERATE_CONFIGS / "multinode_zero3.yaml"), "--mixed_precision", "no"]
        command += ["--num_machines", "2", "--num_processes", "2", "--machine_rank", str(machine_rank)]
        command += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
        command += ["-m", WORKER, str(output_dir), "--name", name, *options]
        log = open(Path(output_dir) / f"launcher-{name}-machine{machine_rank}.log", "w+")
        launchers.append((subprocess.Popen(command, cwd=HERE, env=environment, stdout=log, stderr=log), log))
    try:
        for launcher, _ in launchers:
            launcher.wait(timeout=timeout)
    finally:
        for launcher, log in launchers:
            launcher.kill()
            launcher.wait()
            log.seek(0)
            output = log.read()
            log.close()
            assert launcher.returncode == 0, output[-6000:]
    return [json.loads((Path(output_dir) / f"result-{name}-rank{rank}.json").read_text()) for rank in (0, 1)]


def test_two_machines_zero3(tmp_path, one_process):
    ranks = launch_two_machines(tmp_path, "two-machines", *COMMON)
    assert_agrees(ranks, one_process(*COMMON), "DEEPSPEED", zero_stage=3)


def test_zero3_grpo_lambda_with_two_iterations(tmp_path, one_process):
    options = [*COMMON, "--trainer", "grpo_lambda"]
    ranks = launch(ACCELERATE_CONFIGS / "zero3.yaml", tmp_path, "zero3-grpo-lambda", *options)
    assert_agrees(ranks, one_process(*options), "DEEPSPEED", zero_stage=3)
    assert len(ranks[0]["trace_history"]) == 4


def test_zero2_peft(tmp_path, one_process):
    options = [*COMMON, "--peft"]
    ranks = launch(ACCELERATE_CONFIGS / "zero2.yaml", tmp_path, "zero2-peft", *options)
    single = one_process(*options)
    assert all("lora_" in name for name in single["trained_parameters"])
    assert_agrees(ranks, single, "DEEPSPEED", zero_stage=2)


DEEPSPEED_JSON = {
    "zero_optimization": {"stage": 2},
    "optimizer": {
        "type": "AdamW",
        "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto", "torch_adam": True},
    },
    "train_micro_batch_size_per_gpu": "auto",
    "train_batch_size": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "bf16": {"enabled": "auto"},
}
SCHEDULER = {
    "type": "WarmupLR",
    "params": {"warmup_min_lr": "auto", "warmup_max_lr": "auto", "warmup_num_steps": "auto"},
}


@pytest.mark.parametrize("with_scheduler", [False, True], ids=["optimizer-only", "optimizer-and-scheduler"])
def test_optimizer_from_a_deepspeed_json(tmp_path, one_process, with_scheduler):
    # The optimizer (and scheduler) defined in the DeepSpeed JSON: accelerate's DummyOptim / DummyScheduler path.
    deepspeed_config = {**DEEPSPEED_JSON, **({"scheduler": SCHEDULER} if with_scheduler else {})}
    (tmp_path / "deepspeed.json").write_text(json.dumps(deepspeed_config))
    (tmp_path / "accelerate.yaml").write_text(
        "distributed_type: DEEPSPEED\n"
        f"deepspeed_config:\n  deepspeed_config_file: {tmp_path / 'deepspeed.json'}\n  zero3_init_flag: false\n"
        "num_machines: 1\nnum_processes: 2\nmachine_rank: 0\n"
    )
    ranks = launch(tmp_path / "accelerate.yaml", tmp_path, "json", *COMMON)
    single = one_process(*COMMON)
    # The optimizer is DeepSpeed's and its schedule may be too, so after the first step the model (and then λ) may
    # differ from the one-process run: the first step's λ gradient, and agreement between ranks, must not.
    assert ranks[0]["engine"] == "DEEPSPEED" and ranks[0]["steps"] == 4
    assert ranks[0]["lambda_bits"] == ranks[1]["lambda_bits"] and ranks[0]["history"] == ranks[1]["history"]
    assert ranks[0]["history"][0] == pytest.approx(single["history"][0], abs=1e-6)
    assert abs(ranks[0]["lambda"]) > 1e-4


def test_zero3_benchmark_evaluation_during_training_does_not_hang(tmp_path, one_process, benchmarks_dir):
    options = [*COMMON, "--eval-benchmarks", "gsm8k", "--data-dir", str(benchmarks_dir), "--allow-unverified"]
    ranks = launch(ACCELERATE_CONFIGS / "zero3.yaml", tmp_path, "zero3-eval", *options, timeout=240)
    single = one_process(*options)
    assert len(ranks[0]["benchmarks"]) == 4  # one per logged step (step 0's evaluation joins step 1's record)
    assert ranks[0]["benchmarks"] == ranks[1]["benchmarks"] == single["benchmarks"]
    assert_agrees(ranks, single, "DEEPSPEED", zero_stage=3)


def test_readme_launch_line_under_zero2(tmp_path, tiny_model_dir):
    # The README's command with a tiny local model in the recipe: accelerate launch ... -m lambda_trl.cli train.
    recipe = write_recipe(
        tmp_path, tiny_model_dir, per_device_train_batch_size=4, max_steps=2, save_strategy="steps", save_steps=1
    )
    run(cli_launch_command(ACCELERATE_CONFIGS / "zero2.yaml", recipe))
    output = tmp_path / "run"
    assert (output / "model.safetensors").is_file()
    final = json.loads((output / "token_preference_lambda.json").read_text())
    assert final["global_step"] == 2 and final["optimizer_state"] is not None
    assert json.loads((output / "checkpoint-1" / "token_preference_lambda.json").read_text())["global_step"] == 1
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "lambda/grad" in r]
    assert len(steps) == 2  # one λ record per optimizer step, written once (by the main process)
    # The saved λ is the last step's λ after one SGD step (the recipe's default λ learning rate 0.1).
    assert final["lambda"] == pytest.approx(steps[-1]["lambda/value"] - 0.1 * steps[-1]["lambda/grad"], abs=1e-7)
