"""Secrets found and redacted in recipes, configs and text (lambda_trl.redaction)."""

import pickle

import yaml

from lambda_trl import LambdaGRPOConfig
from lambda_trl.redaction import REDACTED, redact_recipe, redact_text, redact_values


def test_every_kind_of_secret_is_found_at_any_depth():
    values = {
        "hub_token": "hf_abc",
        "wandb_api_key": "k",
        "client_secret": "s",
        "db_password": "p",
        "aws_credentials": "c",
        "max_tokens": 5,  # a count, not a token
        "learning_rate": 0.1,
        "env": {"ANYTHING": "1", "HF_TOKEN": "t"},
        "model_init_kwargs": {"token": "nested", "revision": "main"},
        "urls": ["https://user:pw@example.org/data", "https://example.org/public"],
        "empty_token": None,
    }
    redacted, paths = redact_values(values)
    assert paths == [
        "hub_token",
        "wandb_api_key",
        "client_secret",
        "db_password",
        "aws_credentials",
        "env.ANYTHING",
        "env.HF_TOKEN",
        "model_init_kwargs.token",
        "urls[0]",
    ]
    assert redacted["urls"] == [f"https://{REDACTED}@example.org/data", "https://example.org/public"]
    assert redacted["max_tokens"] == 5 and redacted["model_init_kwargs"]["revision"] == "main"
    assert redacted["empty_token"] is None


def test_a_recipe_without_secrets_keeps_its_text_and_one_with_secrets_names_them():
    plain = "# my recipe\nlearning_rate: 0.1  # tuned\n"
    assert redact_recipe(plain) == (plain, [])
    token = "hf_" + "a1" * 20
    text, paths = redact_recipe(f"hub_token: {token}\nenv:\n  WANDB_API_KEY: abc\n# old: {token}\nlr: 1\n")
    assert paths == ["hub_token", "env.WANDB_API_KEY"] and token not in text and "abc" not in text
    assert text.startswith("# Secrets redacted by lambda-trl before saving: hub_token, env.WANDB_API_KEY")
    assert yaml.safe_load(text) == {"hub_token": REDACTED, "env": {"WANDB_API_KEY": REDACTED}, "lr": 1}
    text, paths = redact_recipe(f"note: see {token}\n")  # a token-shaped value in any field
    assert paths == ["note"] and text.endswith(f"note: see {REDACTED}\n")
    assert redact_recipe(f"[unbalanced {token}")[0] == f"[unbalanced {REDACTED}"  # not YAML: still scrubbed


def test_secrets_named_in_free_text_and_comments():
    assert redact_text("# WANDB_API_KEY=abc123, old hub_token: 'zzz'") == (
        f"# WANDB_API_KEY={REDACTED}, old hub_token: '{REDACTED}'"
    )
    assert redact_text("max_tokens: 5 tokenizer: gpt2") == "max_tokens: 5 tokenizer: gpt2"  # counts and names
    text, paths = redact_recipe("lr: 1\n# WANDB_API_KEY: 0123abcd\n")
    assert paths == [] and text == f"lr: 1\n# WANDB_API_KEY: {REDACTED}\n"  # comments kept, their secrets not
    assert redact_text("https://u:p@ss@host/x") == f"https://{REDACTED}@host/x"  # an unescaped @ in the password
    assert redact_text("https://host/p?mail=a@b.org") == "https://host/p?mail=a@b.org"


def test_url_credentials_and_hub_tokens_in_free_text():
    assert (
        redact_text("git+https://me:tok@host/x and hf_" + "Z" * 34) == f"git+https://{REDACTED}@host/x and {REDACTED}"
    )
    assert redact_text("mail me@example.org at https://example.org") == "mail me@example.org at https://example.org"


def test_a_pickled_config_keeps_no_token_and_the_live_one_keeps_it(tmp_path):
    config = LambdaGRPOConfig(
        output_dir=str(tmp_path), hub_token="hf_" + "s" * 34, report_to="none", use_cpu=True, bf16=False
    )
    restored = pickle.loads(pickle.dumps(config))
    assert restored.hub_token == REDACTED and config.hub_token == "hf_" + "s" * 34
    assert restored.lambda_learning_rate == config.lambda_learning_rate and restored.output_dir == config.output_dir
