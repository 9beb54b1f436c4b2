"""`lambda-trl train` end to end on a tiny model: recipe parsing, training, outputs, model card, wandb offline."""

import json
import os

import pytest
from helpers import write_push_recipe, write_recipe

from lambda_trl.cli import main


def train_in_subprocess(recipe, **environment):
    """`lambda-trl train` in a fresh process, as a user runs it (wandb and the Hub client keep process-wide state)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "lambda_trl.cli", "train", "--config", str(recipe)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_in_subprocess(recipe, **environment):
    completed = train_in_subprocess(recipe, **environment)
    assert completed.returncode == 0, completed.stderr[-4000:]


def test_train_writes_model_metrics_plot_card_and_recipe(tmp_path, tiny_model_dir, capsys):
    recipe = write_recipe(tmp_path, tiny_model_dir)
    assert main(["train", "--config", str(recipe), "--lambda_learning_rate", "0.5"]) == 0
    run = tmp_path / "run"
    assert (run / "model.safetensors").is_file() and (run / "tokenizer.json").is_file()
    assert (run / "recipe.yaml").read_text() == recipe.read_text()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "lambda/value" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert all("reward" in r and "accuracy" in r and "boxed_fraction" in r for r in steps)
    assert (run / "training_curves.png").stat().st_size > 10_000
    card = (run / "README.md").read_text()
    assert "## λ-GRPO" in card and "2510.06870" in card and "arithmetic" in card
    assert "final λ" in card and "reducer r = 0.111111" in card and "SGD, lr 0.5" in card
    assert "```yaml" in card and "dataset_size: 64" in card
    printed = capsys.readouterr().out
    assert "step    3/3 | reward" in printed and "| λ " in printed
    assert "'loss'" not in printed, "the metrics dicts go to metrics.jsonl, not the console"


def test_console_shows_the_bar_and_one_line_per_step(tmp_path, tiny_model_dir):
    # As a user sees `make demo`: the progress bar on, stdout and stderr together.
    import re
    import subprocess
    import sys

    recipe = write_recipe(tmp_path, tiny_model_dir, disable_tqdm=False, plot=False)
    completed = subprocess.run(
        [sys.executable, "-m", "lambda_trl.cli", "train", "--config", str(recipe)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    console = completed.stdout + completed.stderr
    assert "'loss'" not in console and "'reward'" not in console
    assert "FutureWarning" not in console  # transformers' v6 renames, triggered inside TRL, stay off the console
    line = r"step +(\d)/3 \| reward [+-]\d\.\d{3} \| accuracy [\d.]+% \| λ [+-]\d\.\d{4} \| length [\d.]+ \| "
    line += r"[\d.]+ s/step, ETA \d+:\d\d"
    steps = [int(match) for match in re.findall(line, console)]
    assert steps == [1, 2, 3]
    assert all(len(text) <= 100 for text in console.splitlines() if text.startswith("step "))
    assert "3/3 [" in console  # tqdm's bar


def test_baseline_method_runs_trl_loss_unchanged(tmp_path, tiny_model_dir):
    recipe = write_recipe(tmp_path, tiny_model_dir, token_preference="none", loss_type="grpo", max_steps=1, plot=False)
    assert main(["train", "--config", str(recipe)]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in r for r in records) and not any("lambda/value" in r for r in records)


def test_unknown_command_and_help(capsys):
    assert main(["fly"]) == 2
    assert main(["--help"]) == 0
    assert "lambda-trl train --config" in capsys.readouterr().out


def assert_one_line_error(capsys, *expected):
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.startswith("lambda-trl: error:")]
    assert len(lines) == 1 and "Traceback" not in error, error
    for text in expected:
        assert text in lines[0], lines[0]


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    recipe = write_recipe(tmp_path, "unused")
    text = recipe.read_text().replace("model_name_or_path: unused\n", "")
    recipe.write_text(text)
    assert main(["train", "--config", str(recipe)]) == 2
    assert_one_line_error(capsys, "model_name_or_path")
    with pytest.raises(ValueError, match="model_name_or_path"):
        main(["train", "--config", str(recipe), "--debug"])


def test_unknown_recipe_key(tmp_path, tiny_model_dir, capsys):
    recipe = write_recipe(tmp_path, tiny_model_dir, lambda_learning_rat=0.1)
    assert main(["train", "--config", str(recipe)]) == 2
    assert_one_line_error(capsys, "Unknown recipe key(s) ['lambda_learning_rat']", str(recipe), "--help")


def test_bad_field_value(tmp_path, tiny_model_dir, capsys):
    recipe = write_recipe(tmp_path, tiny_model_dir, reducer=-0.1)
    assert main(["train", "--config", str(recipe)]) == 2
    assert_one_line_error(capsys, "reducer must be a finite number > 0")


def test_missing_dataset_column(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text('{"problem": "1+1?", "answer": "2"}\n')
    recipe = write_recipe(tmp_path, tiny_model_dir, dataset_name="simplerl_zoo_hard", dataset_path=str(data))
    assert main(["train", "--config", str(recipe)]) == 2
    assert_one_line_error(capsys, "no `question` column", "problem")


def test_unreachable_hub_model_offline(tmp_path):
    import subprocess
    import sys

    recipe = write_recipe(tmp_path, "nobody-here/no-such-model")
    completed = subprocess.run(
        [sys.executable, "-m", "lambda_trl.cli", "train", "--config", str(recipe)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert "model_name_or_path='nobody-here/no-such-model'" in completed.stderr and "Offline?" in completed.stderr


def test_wandb_offline_receives_lambda_metrics(tmp_path, tiny_model_dir):
    recipe = write_recipe(tmp_path, tiny_model_dir, report_to="wandb", max_steps=2, plot=False)
    run_in_subprocess(recipe, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true")
    run_dirs = [d for d in (tmp_path / "wandb").iterdir() if d.name.startswith("offline-run-")]
    assert len(run_dirs) == 1
    # The offline run's transaction log holds the history records as protobuf; every step repeats the metric names,
    # so they appear verbatim in the file (wandb's own reader of this format is not part of its Python package).
    log = next(run_dirs[0].glob("*.wandb")).read_bytes()
    for key in (b"lambda/value", b"lambda/grad", b"token_preference/f_std", b"reward", b"accuracy"):
        assert key in log, key


def train_failing(recipe, **environment) -> list[str]:
    """`lambda-trl train` in a fresh process that must exit with 2 and one error line; returns that line's words."""
    completed = train_in_subprocess(recipe, **environment)
    lines = [line for line in completed.stderr.splitlines() if line.startswith("lambda-trl: error:")]
    assert completed.returncode == 2 and len(lines) == 1, completed.stderr[-4000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]
    return lines[0]


def closed_port() -> int:
    """A loopback port with nothing listening: bound, then released."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("hub", ["offline", "unreachable"])
def test_push_to_an_unreachable_hub_fails_before_training_in_one_line(tmp_path, tiny_model_dir, hub):
    recipe = write_recipe(tmp_path, tiny_model_dir, push_to_hub=True, hub_model_id="someone/tiny-lambda-grpo")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    environment = {"HF_ENDPOINT": endpoint, "HF_TOKEN": "hf_fake"}
    if hub == "offline":
        environment["HF_HUB_OFFLINE"] = "1"
    line = train_failing(recipe, **environment)
    assert f"push_to_hub: cannot push to 'someone/tiny-lambda-grpo' at {endpoint}" in line or (
        f"push_to_hub: cannot create 'someone/tiny-lambda-grpo' at {endpoint}" in line
    ), line
    offline = "HF_HUB_OFFLINE=1 is set" if hub == "offline" else "HF_HUB_OFFLINE unset"
    assert offline in line and "model_name_or_path" not in line, line
    assert "--push_to_hub false" in line and f"hf upload someone/tiny-lambda-grpo {tmp_path / 'run'}" in line, line
    if hub == "unreachable":
        assert "ConnectError" in line and "HF_ENDPOINT" in line, line
    assert not (tmp_path / "run").exists(), "it failed before training"


def test_push_that_fails_after_training_keeps_the_model_and_says_how_to_upload_it(tmp_path, tiny_model_dir):
    from fake_hub import FakeHub

    recipe = write_recipe(
        tmp_path, tiny_model_dir, max_steps=1, plot=False, push_to_hub=True, hub_model_id="someone/tiny-lambda-grpo"
    )
    with FakeHub(refuse_commits=True) as hub:
        line = train_failing(recipe, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_fake", HF_HUB_DISABLE_XET="1")
    run = tmp_path / "run"
    assert "someone/tiny-lambda-grpo" in hub.repos and hub.repos["someone/tiny-lambda-grpo"] == {}, "created, empty"
    assert (run / "model.safetensors").is_file() and (run / "README.md").is_file()
    assert f"training finished and the model is saved in {run}" in line and hub.endpoint in line, line
    upload = f"hf upload someone/tiny-lambda-grpo {run} --exclude '_*' --exclude 'checkpoint-*'"
    assert "403" in line and f"Upload it later with `{upload}`" in line, line


def test_push_to_hub_uploads_model_card_and_recipe_to_a_local_endpoint(tmp_path, tiny_model_dir):
    from fake_hub import FakeHub

    recipe = write_recipe(
        tmp_path, tiny_model_dir, max_steps=2, plot=False, push_to_hub=True, hub_model_id="someone/tiny-lambda-grpo"
    )
    with FakeHub() as hub:
        run_in_subprocess(recipe, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_fake", HF_HUB_DISABLE_XET="1")
    files = hub.repos["someone/tiny-lambda-grpo"]
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "recipe.yaml"} <= set(files)
    card = files["README.md"].decode()
    assert "## λ-GRPO" in card and "final λ" in card and "lambda-grpo" in card and "arxiv.org/abs/2510.06870" in card
    assert files["recipe.yaml"].decode() == recipe.read_text()
    assert not any(name.startswith("checkpoint-") for name in files)


SECRETS = {
    "hub_token": "hf_" + "T0k3n" * 7,
    "HF_TOKEN": "hf_" + "EnvT0ken" * 4,
    "WANDB_API_KEY": "0a1b2c3d4e5f" * 3 + "9876",
    "DB_PASSWORD": "correct horse battery staple",
    "url password": "s3cret-in-a-url",
    "comment token": "hf_" + "InAC0mment" * 3,
}


def test_a_pushed_model_carries_none_of_the_recipes_secrets(tmp_path, tiny_model_dir):
    from fake_hub import FakeHub

    recipe = write_push_recipe(
        tmp_path,
        tiny_model_dir,
        hub_token=SECRETS["hub_token"],
        vllm_server_base_url=f"http://alice:{SECRETS['url password']}@127.0.0.1:9",  # unused: use_vllm is off
        env={
            "HF_TOKEN": SECRETS["HF_TOKEN"],
            "WANDB_API_KEY": SECRETS["WANDB_API_KEY"],
            "DB_PASSWORD": SECRETS["DB_PASSWORD"],
            "HF_HUB_DISABLE_XET": "1",
        },
    )
    recipe.write_text(recipe.read_text() + f"# the old token was {SECRETS['comment token']}\n")
    with FakeHub() as hub:
        completed = train_in_subprocess(recipe, HF_ENDPOINT=hub.endpoint)
    assert completed.returncode == 0, completed.stderr[-4000:]
    files = hub.repos["someone/tiny-lambda-grpo"]
    assert {"README.md", "recipe.yaml", "training_args.bin", "model.safetensors"} <= set(files)
    published = {name: content for name, content in files.items()}
    published["(the run's console)"] = (completed.stdout + completed.stderr).encode()
    for name, content in published.items():
        for what, secret in SECRETS.items():
            assert secret.encode() not in content, f"{what} is in {name}"
    card, pushed_recipe = files["README.md"].decode(), files["recipe.yaml"].decode()
    named = "env.DB_PASSWORD, env.HF_HUB_DISABLE_XET, env.HF_TOKEN, env.WANDB_API_KEY, hub_token, vllm_server_base_url"
    assert f"Secrets in the recipe were redacted before publishing: {named}." in card  # the recipe's key order
    assert pushed_recipe.startswith(f"# Secrets redacted by lambda-trl before saving: {named}")
    assert "vllm_server_base_url: http://<redacted>@127.0.0.1:9" in pushed_recipe
    assert "HF_HUB_DISABLE_XET: <redacted>" in pushed_recipe  # every env value: lambda-trl cannot tell which matter
    import torch

    saved = torch.load(tmp_path / "run" / "training_args.bin", weights_only=False)  # our own file, from this test
    assert saved.hub_token == "<redacted>" and saved.hub_model_id == "someone/tiny-lambda-grpo"


def test_an_error_during_training_keeps_its_traceback(tmp_path, tiny_model_dir, monkeypatch, capsys):
    # A user's reward that fails at the first step, hours into a real run: where it failed must not need a rerun.
    (tmp_path / "my_rewards.py").write_text(
        "def fragile_reward(completions, **kwargs):\n    raise ValueError('reward server said no (api_key=sk-live-123)')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [str(tmp_path), *__import__("sys").path])
    recipe = write_recipe(tmp_path, tiny_model_dir, reward_funcs=["my_rewards.fragile_reward"], max_steps=1)
    assert main(["train", "--config", str(recipe)]) == 1
    err = capsys.readouterr().err
    log = tmp_path / "run" / "_error-rank0.log"
    assert err.rstrip().splitlines()[-1] == (
        "lambda-trl: training failed: ValueError: reward server said no (api_key=<redacted>) (traceback above, also "
        f"written to {log})"
    )
    assert "sk-live-123" not in err and "sk-live-123" not in log.read_text()
    assert 'my_rewards.py", line 2, in fragile_reward' in err
    assert 'my_rewards.py", line 2, in fragile_reward' in log.read_text()
    assert "Traceback (most recent call last)" in log.read_text()
