"""
Crash-safe checkpoints (lambda_trl.checkpoints): what makes a checkpoint complete, on real checkpoints of a tiny
`lambda-trl train` run damaged one file at a time; the resume the CLI picks (auto_resume, 'true', a path) and its
one-line errors, which leave output_dir untouched; the atomic λ write; and a 2-process run killed again and again,
inside checkpoint saves too, that ends where an uninterrupted run ends.
"""

import importlib.util
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import cli_launch_command, free_port, write_recipe
from safetensors.torch import load_file

from lambda_trl import lambda_state
from lambda_trl.checkpoints import ResumeNeeds, missing_for_resume, newest_complete_checkpoint
from lambda_trl.cli import main
from lambda_trl.commands.train import parse_arguments
from lambda_trl.testing import tiny_model, tiny_tokenizer


HERE = Path(__file__).resolve().parent
FAULT_INJECTION = HERE / "fault_injection"


def _fault_injection_module():
    spec = importlib.util.spec_from_file_location("fault_injection", FAULT_INJECTION / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kill_job = _fault_injection_module().kill_job
LEARNED = ResumeNeeds(learned_lambda=True)  # one process, λ learned: the tiny CLI run's needs
REQUIRED = [
    "model.safetensors",
    "trainer_state.json",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "token_preference_lambda.json",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A 2-step `lambda-trl train` run that saved checkpoint-1 and checkpoint-2: (recipe, output_dir)."""
    directory = tmp_path_factory.mktemp("trained")
    recipe = write_recipe(
        directory, tiny_model_dir, max_steps=2, save_strategy="steps", save_steps=1, lambda_optimizer="adamw"
    )
    assert main(["train", "--config", str(recipe), "--plot", "false"]) == 0
    return recipe, directory / "run"


def copy_run(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained[1], tmp_path / "run"))


def cut_short(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.rglob("*")}


def train(recipe, *arguments) -> int:
    return main(["train", "--config", str(recipe), "--plot", "false", *arguments])


# ---- what a complete checkpoint holds --------------------------------------------------------------------------


def test_the_checkpoints_of_a_run_are_complete(trained):
    run = trained[1]
    assert missing_for_resume(str(run / "checkpoint-1"), LEARNED) == []
    assert missing_for_resume(str(run / "checkpoint-2"), LEARNED) == []
    assert newest_complete_checkpoint(str(run), LEARNED) == (str(run / "checkpoint-2"), [])


@pytest.mark.parametrize("damage", ["deleted", "cut short"])
@pytest.mark.parametrize("name", REQUIRED)
def test_a_checkpoint_without_a_whole_file_is_incomplete(trained, tmp_path, name, damage):
    checkpoint = Path(shutil.copytree(trained[1] / "checkpoint-2", tmp_path / "checkpoint-2"))
    if damage == "deleted":
        (checkpoint / name).unlink()
        assert missing_for_resume(str(checkpoint), LEARNED) == [name]
    else:
        cut_short(checkpoint / name)
        assert missing_for_resume(str(checkpoint), LEARNED) == [f"{name} (cut short)"]


def test_what_a_run_needs_decides_what_is_required(trained, tmp_path):
    checkpoint = Path(shutil.copytree(trained[1] / "checkpoint-2", tmp_path / "checkpoint-2"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (checkpoint / name).unlink()
    assert missing_for_resume(str(checkpoint), ResumeNeeds(save_only_model=True, learned_lambda=True)) == []
    (checkpoint / "token_preference_lambda.json").unlink()
    assert missing_for_resume(str(checkpoint), ResumeNeeds(save_only_model=True)) == []  # λ fixed: not read back
    assert missing_for_resume(str(checkpoint), ResumeNeeds(processes=2)) == [
        "optimizer.pt",
        "scheduler.pt",
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]
    assert missing_for_resume(str(checkpoint), ResumeNeeds(save_only_model=True, adapter=True)) == [
        "adapter_model.safetensors"
    ]
    (checkpoint / "model.safetensors").rename(checkpoint / "adapter_model.safetensors")
    assert missing_for_resume(str(checkpoint), ResumeNeeds(save_only_model=True, adapter=True)) == []


def test_sharded_weights_need_their_index_and_every_shard(trained, tmp_path):
    checkpoint = Path(shutil.copytree(trained[1] / "checkpoint-2", tmp_path / "checkpoint-2"))
    (checkpoint / "model.safetensors").unlink()
    tiny_model(tiny_tokenizer()).save_pretrained(tmp_path / "sharded", max_shard_size="30KB")
    shards = sorted((tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) >= 2
    for path in [*shards, tmp_path / "sharded" / "model.safetensors.index.json"]:
        shutil.copy(path, checkpoint)
    assert missing_for_resume(str(checkpoint), LEARNED) == []
    cut_short(checkpoint / shards[-1].name)
    (checkpoint / shards[0].name).unlink()
    assert missing_for_resume(str(checkpoint), LEARNED) == [shards[0].name, f"{shards[-1].name} (cut short)"]
    cut_short(checkpoint / "model.safetensors.index.json")
    assert missing_for_resume(str(checkpoint), LEARNED) == ["model.safetensors.index.json (cut short)"]


def test_needs_of_a_run_come_from_its_config(trained):
    recipe = str(trained[0])
    _, args, model_args, _ = parse_arguments(["--config", recipe])
    assert ResumeNeeds.of_run(args, model_args.use_peft) == ResumeNeeds(learned_lambda=True)
    _, args, _, _ = parse_arguments(["--config", recipe, "--learn_lambda", "false", "--save_only_model", "true"])
    assert ResumeNeeds.of_run(args, False) == ResumeNeeds(save_only_model=True)
    _, args, _, _ = parse_arguments(["--config", recipe, "--trainer", "grpo_lambda"])
    assert ResumeNeeds.of_run(args, False) == ResumeNeeds()  # GRPO-λ's default token_preference is 'none'
    _, args, _, _ = parse_arguments(["--config", recipe, "--trainer", "grpo_lambda", "--token_preference", "lambda"])
    assert ResumeNeeds.of_run(args, True) == ResumeNeeds(adapter=True, learned_lambda=True)


# ---- the resume the CLI picks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--resume_from_checkpoint", "true"], []], ids=["resume_true", "auto_resume"])
def test_a_checkpoint_killed_before_its_trainer_state_is_skipped(trained, tmp_path, capsys, flags):
    # The reproduction: trainer_state.json is the last file Trainer._save_checkpoint writes.
    run = copy_run(trained, tmp_path)
    (run / "checkpoint-2" / "trainer_state.json").unlink()
    capsys.readouterr()
    assert train(trained[0], "--output_dir", str(run), *flags) == 0
    out, err = capsys.readouterr()
    assert f"skipping the incomplete checkpoint {run / 'checkpoint-2'}: it lacks trainer_state.json" in err
    reason = "resume_from_checkpoint=true" if flags else "auto_resume; --auto_resume false starts afresh"
    assert f"Resuming from {run / 'checkpoint-1'}, the newest complete checkpoint in {run} ({reason})." in out
    assert "step    1/2" not in out and "step    2/2" in out  # only step 2 is trained again
    assert missing_for_resume(str(run / "checkpoint-2"), LEARNED) == []  # and saved whole this time
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 2], "one record per step, and the summary of the run that finished"


def test_auto_resume_false_starts_afresh(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    capsys.readouterr()
    assert train(trained[0], "--output_dir", str(run), "--auto_resume", "false", "--max_steps", "1") == 0
    out, _ = capsys.readouterr()
    assert "Resuming" not in out and "step    1/1" in out


def test_resuming_a_finished_run_trains_no_further_step(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    capsys.readouterr()
    assert train(trained[0], "--output_dir", str(run)) == 0
    out, _ = capsys.readouterr()
    assert f"Resuming from {run / 'checkpoint-2'}" in out and "step    " not in out
    assert not (run / "checkpoint-3").exists()


@pytest.mark.parametrize("problem", ["incomplete", "nonexistent", "true_without_complete"])
def test_a_bad_checkpoint_fails_in_one_line_and_writes_nothing(trained, tmp_path, capsys, problem):
    run = copy_run(trained, tmp_path)
    (run / "checkpoint-2" / "optimizer.pt").unlink()
    cut_short(run / "checkpoint-2" / "rng_state.pth")
    if problem == "true_without_complete":
        shutil.rmtree(run / "checkpoint-1")
    resume = {
        "incomplete": str(run / "checkpoint-2"),
        "nonexistent": str(run / "checkpoint-7"),
        "true_without_complete": "true",
    }[problem]
    before = snapshot(run)
    capsys.readouterr()
    assert train(trained[0], "--output_dir", str(run), "--resume_from_checkpoint", resume) == 2
    _, err = capsys.readouterr()
    error = [line for line in err.splitlines() if line.startswith("lambda-trl: error:")]
    assert len(error) == 1
    if problem == "incomplete":
        assert f"{resume!r} is incomplete, it lacks optimizer.pt, rng_state.pth (cut short)" in error[0]
        assert "resume from an earlier checkpoint-N" in error[0]
    elif problem == "nonexistent":
        assert f"{resume!r} does not exist" in error[0]
    else:
        assert f"{run} holds no complete checkpoint (incomplete: {run / 'checkpoint-2'})" in error[0]
        assert "leave resume_from_checkpoint unset to start afresh" in error[0]
    assert snapshot(run) == before


def test_auto_resume_refuses_checkpoints_written_by_another_launch(trained, tmp_path, capsys):
    # Checkpoints that finished saving (trainer_state.json whole) under 2 processes, resumed by 1: auto_resume must
    # not start afresh over them (that would silently throw the run away) but say what to do.
    run = copy_run(trained, tmp_path)
    for checkpoint in run.glob("checkpoint-*"):
        rng = checkpoint / "rng_state.pth"
        shutil.copy(rng, checkpoint / "rng_state_0.pth")
        rng.rename(checkpoint / "rng_state_1.pth")
    before = snapshot(run)
    capsys.readouterr()
    assert train(trained[0], "--output_dir", str(run)) == 2
    _, err = capsys.readouterr()
    error = [line for line in err.splitlines() if line.startswith("lambda-trl: error:")]
    assert len(error) == 1 and f"{run / 'checkpoint-2'} finished saving but this run cannot resume it" in error[0]
    assert "lacks rng_state.pth" in error[0] and "another number of processes" in error[0]
    assert "--auto_resume false" in error[0]
    assert snapshot(run) == before


# ---- λ's file is written atomically ----------------------------------------------------------------------------


def test_a_failed_lambda_state_write_leaves_the_previous_file(tmp_path, monkeypatch):
    config = parse_arguments(["--model_name_or_path", "m", "--output_dir", str(tmp_path), "--use_cpu", "true"])[1]
    lambda_value = torch.tensor(0.25)
    lambda_state.write_lambda_state(str(tmp_path), lambda_value, 3, config, None)
    previous = (tmp_path / lambda_state.LAMBDA_STATE_NAME).read_bytes()

    def dump_then_fail(state, f, **kwargs):
        f.write('{"lambda": ')
        raise OSError("No space left on device")

    monkeypatch.setattr(lambda_state.json, "dump", dump_then_fail)
    with pytest.raises(OSError, match="No space left"):
        lambda_state.write_lambda_state(str(tmp_path), torch.tensor(0.5), 4, config, None)
    assert (tmp_path / lambda_state.LAMBDA_STATE_NAME).read_bytes() == previous
    assert os.listdir(tmp_path) == [lambda_state.LAMBDA_STATE_NAME]


# ---- fault injection: a 2-process run killed K times resumes to the uninterrupted result ------------------------

STEPS = 8
STEP_LINE = re.compile(rf"step\s+(\d+)/{STEPS} \|")


def launch_command(recipe, port) -> list[str]:
    """What a user runs: `accelerate launch` with the shipped DDP config, only CPU overrides, the README's module."""
    return cli_launch_command(HERE.parent / "recipes" / "accelerate" / "ddp.yaml", recipe, port=port)


class Job:
    """One launch of the job, its console (stdout and stderr together) in `log`, in a process group of its own."""

    def __init__(self, command, log: Path, kill_in_save: str | None = None):
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(FAULT_INJECTION), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "TRL_EXPERIMENTAL_SILENCE": "1",
            "WANDB_MODE": "disabled",
        }
        environment.pop("LAMBDA_TRL_TEST_KILL_IN_SAVE", None)
        if kill_in_save:
            environment["LAMBDA_TRL_TEST_KILL_IN_SAVE"] = kill_in_save
        self.log = log
        with open(log, "w") as console:
            self.process = subprocess.Popen(
                command, stdout=console, stderr=subprocess.STDOUT, env=environment, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def steps_logged(self) -> list[int]:
        return [int(step) for step in STEP_LINE.findall(self.text())]

    def wait_for_step(self, step: int, timeout: float = 300):
        deadline = time.monotonic() + timeout
        while not any(logged >= step for logged in self.steps_logged()):
            assert self.process.poll() is None, f"the job ended before step {step}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no step {step} in {timeout} s:\n{self.text()[-3000:]}"
            time.sleep(0.05)

    def kill(self):
        """SIGKILL the launcher's process group and every worker (each in a session of its own)."""
        kill_job(self.process.pid)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 300) -> int:
        return self.process.wait(timeout=timeout)


@pytest.fixture
def launched():
    """The jobs a test launches; any still running at its end (a failed assertion) is killed."""
    jobs = []
    yield jobs
    for job in jobs:
        if job.process.poll() is None:
            job.kill()
            job.wait()


def final_state(run: Path):
    state = json.loads((run / lambda_state.LAMBDA_STATE_NAME).read_text())
    lambdas = [
        record["lambda/value"]
        for record in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if "lambda/value" in record
    ]
    return state, load_file(run / "model.safetensors"), lambdas


@pytest.mark.faults
def test_a_run_killed_five_times_ends_as_an_uninterrupted_run(tmp_path, tiny_model_dir, launched):
    started = time.monotonic()
    recipe_fields = dict(
        max_steps=STEPS,
        save_strategy="steps",
        save_steps=1,
        per_device_train_batch_size=4,  # 2 processes: one global batch of 2 groups of 4
        reward_funcs=["lambda_trl.testing.tiny_runs.short_answer_reward"],  # varies within groups: λ moves
        lambda_optimizer="adamw",
        plot=False,
    )
    (tmp_path / "uninterrupted").mkdir()
    (tmp_path / "killed").mkdir()
    reference_recipe = write_recipe(tmp_path / "uninterrupted", tiny_model_dir, **recipe_fields)
    recipe = write_recipe(tmp_path / "killed", tiny_model_dir, **recipe_fields)
    port = free_port()

    reference = Job(launch_command(reference_recipe, port), tmp_path / "uninterrupted.log")
    launched.append(reference)
    assert reference.wait() == 0, reference.text()[-3000:]
    reference_seconds = time.monotonic() - started

    # Kills alternate between a seeded-random moment after a seeded-random step line (in the save of that step, in
    # the next generation, backward or save) and deterministically inside a save: after the model and λ, before
    # the optimizer; or before trainer_state.json, the last file. Each resumes by rerunning the same command line.
    run, needs = tmp_path / "killed" / "run", ResumeNeeds(processes=2, learned_lambda=True)
    chooser = random.Random(18)
    plan = ["trainer_state", "random", "optimizer", "random", "trainer_state"]
    jobs, after_kills, skipped_reported = [], [], 0
    for number, kind in enumerate(plan):
        newest, _ = newest_complete_checkpoint(str(run), needs)
        done = int(newest.rsplit("-", 1)[1]) if newest else 0
        # A random kill leaves the run at least one step to go, so that it cannot finish before the kill.
        target = min(done + chooser.randint(1, 2), STEPS - 2 if kind == "random" else STEPS)
        log = tmp_path / f"killed-{number}.log"
        if kind == "random":
            job = Job(launch_command(recipe, port), log)
            launched.append(job)
            job.wait_for_step(target)
            # A random moment in the next step at the latest: on a fast machine a fixed delay could outlast the
            # remaining steps and kill a finished run in its final save.
            moment = time.monotonic() + chooser.uniform(0.0, 1.0)
            while time.monotonic() < moment and max(job.steps_logged()) <= target:
                time.sleep(0.01)
            job.kill()
        else:
            job = Job(launch_command(recipe, port), log, kill_in_save=f"{target}:{kind}")
        launched.append(job)
        assert job.wait() == -signal.SIGKILL, job.text()[-3000:]
        jobs.append(job)
        newest_after, skipped = newest_complete_checkpoint(str(run), needs)
        if kind != "random":
            # What the kill inside the save of `target` left behind, and so what the next run must skip.
            lacking = dict(skipped)[str(run / f"checkpoint-{target}")]
            expected = {"trainer_state.json"}
            if kind == "optimizer":
                expected |= {"optimizer.pt", "scheduler.pt", "rng_state_0.pth"}
            assert expected <= set(lacking), lacking
        after_kills.append((newest_after, skipped))

    final = Job(launch_command(recipe, port), tmp_path / "killed-final.log")
    launched.append(final)
    assert final.wait() == 0, final.text()[-3000:]
    jobs.append(final)

    # Every incomplete checkpoint was reported by the run after the kill, and that run resumed from the newest
    # complete one (or started afresh).
    for (newest_after, skipped), resumed in zip(after_kills, jobs[1:]):
        console = resumed.text()
        for path, lacking in skipped:
            assert f"skipping the incomplete checkpoint {path}: it lacks {', '.join(lacking)}" in console, console
            skipped_reported += 1
        if newest_after:
            assert f"Resuming from {newest_after}, the newest complete checkpoint" in console, console
        else:
            assert "starting afresh" in console or not skipped, console
    assert skipped_reported >= 3  # at least the three checkpoints killed inside their save

    expected_state, expected_model, expected_lambdas = final_state(tmp_path / "uninterrupted" / "run")
    state, model, lambdas = final_state(run)
    assert abs(expected_state["lambda"]) > 1e-3, "λ must move for the comparison to mean anything"
    assert float.hex(state["lambda"]) == float.hex(expected_state["lambda"])
    assert state["optimizer_state"] == expected_state["optimizer_state"]
    assert state["global_step"] == STEPS
    # Bit-identical: each process gets back its RNG state, the data order and both optimizers' states, on the same
    # engine, so the resumed steps compute exactly what the uninterrupted ones computed.
    assert model.keys() == expected_model.keys()
    for name in model:
        assert torch.equal(model[name], expected_model[name]), name
    assert lambdas == expected_lambdas and len(lambdas) == STEPS  # metrics.jsonl: every step once, nothing lost

    logged = [step for job in jobs for step in job.steps_logged()]
    print(
        f"\nfault injection: {len(plan)} SIGKILLs survived ({plan.count('random')} at random moments, "
        f"{len(plan) - plan.count('random')} inside a checkpoint save), {skipped_reported} incomplete checkpoints "
        f"skipped and reported, {len(logged) - STEPS} of {len(logged)} steps recomputed, nothing lost (λ "
        f"{state['lambda']:.6g} bit-identical, λ's AdamW state and the model exact); uninterrupted run "
        f"{reference_seconds:.0f} s, killed-and-resumed runs {time.monotonic() - started - reference_seconds:.0f} s"
    )
