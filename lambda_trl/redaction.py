"""
Secrets kept out of everything a Hub push uploads: the model card's recipe section, `recipe.yaml`, and the pickled
`training_args.bin` (`LambdaGRPOConfig.__getstate__`).

What counts as a secret:
- every value under a recipe's `env:` (TRL's way to set environment variables: `HF_TOKEN`, `WANDB_API_KEY`, ...);
- the value of any field whose name ends in `token` or contains `key`, `secret`, `password`/`passwd` or `credential`
  (`hub_token`, `api_key`, ...), at any depth;
- credentials inside URLs (`https://user:password@host/...` keeps `https://<redacted>@host/...`);
- text shaped like a Hugging Face access token (`hf_` and 30 or more letters and digits), and the value after such a
  name in free text (`WANDB_API_KEY=...`, `# hub_token: ...`), wherever it is, comments included.
"""

import re
import shlex

import yaml


REDACTED = "<redacted>"
SECRET_NAME = re.compile(r"token$|key|secret|passw(?:or)?d|credential", re.IGNORECASE)
# Up to the authority's last `@`: a password may hold an unescaped `@` itself.
URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s]*@")
HUB_TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
NAMED_SECRET = re.compile(
    r"(?P<name>\b[\w-]*(?:token\b|key|secret|passw(?:or)?d|credential)[\w-]*)(?P<separator>['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<value>[^\s'\",;)}\]]+)",
    re.IGNORECASE,
)
"""`NAME: value` or `NAME=value` with a secret's name, anywhere in free text: a commented-out recipe line, an
environment dump in an error message."""


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """`text` without URL credentials, Hub-token-shaped strings, or the value after a secret's name."""
    text = URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}{REDACTED}@", text)
    text = HUB_TOKEN_SHAPE.sub(REDACTED, text)
    return NAMED_SECRET.sub(lambda match: f"{match['name']}{match['separator']}{REDACTED}", text)


def redact_command(argv: list[str]) -> str:
    """A command line as one shell string, the value of every secret flag (`--hub_token X`, `--api-key=X`) redacted."""
    words, secret_follows = [], False
    for word in argv:
        name, equals, _ = word.partition("=")
        if secret_follows:
            word, secret_follows = REDACTED, False
        elif name.startswith("-") and is_secret_name(name.lstrip("-").replace("-", "_")):
            word, secret_follows = (f"{name}={REDACTED}", False) if equals else (word, True)
        words.append(redact_text(word))
    return shlex.join(words)


def redact_values(values, path: str = "") -> tuple[object, list[str]]:
    """(`values` with every secret replaced by `REDACTED`, the dotted paths of what was replaced)."""
    if isinstance(values, dict):
        redacted, paths = {}, []
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if value is not None and (path == "env" or is_secret_name(str(key))):
                redacted[key], found = REDACTED, [where]
            else:
                redacted[key], found = redact_values(value, where)
            paths += found
        return redacted, paths
    if type(values) in (list, tuple):
        items = [redact_values(item, f"{path}[{i}]") for i, item in enumerate(values)]
        return type(values)(item for item, _ in items), [p for _, found in items for p in found]
    if isinstance(values, str) and redact_text(values) != values:
        return redact_text(values), [path]
    return values, []


def redact_recipe(text: str) -> tuple[str, list[str]]:
    """
    (the recipe YAML safe to publish, what was redacted). A recipe with no secret field keeps its text (comments and
    layout included); one with secrets is written back from its values with each secret replaced, under a comment
    naming them (its comments are dropped, since one could repeat a secret).
    """
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError:
        values = None
    if not isinstance(values, dict):
        return redact_text(text), []
    redacted, paths = redact_values(values)
    if not paths:
        return redact_text(text), []
    header = f"# Secrets redacted by lambda-trl before saving: {', '.join(paths)} (comments dropped).\n"
    return header + redact_text(yaml.safe_dump(redacted, sort_keys=False, allow_unicode=True)), paths
