r"""
Math RL datasets in TRL's conversational prompt format, with the ground truth in a `solution` column (the column
`lambda_trl.rewards.boxed_math_reward` reads).

Every prompt uses the *qwen-boxed* template of SimpleRL-Zoo as the λ-GRPO paper prints it (Appendix D): a system
turn "You are a helpful assistant." and a user turn "{question}\nPlease reason step by step, and put your final
answer within \boxed{{}}." — with the doubled braces that SimpleRL-Zoo's training parquet carries (the format string
was never applied; see shared/specs/math-rl-setup.md §1.2). `instruction_braces="single"` gives the evaluation form.
With a Qwen2.5 tokenizer, TRL's chat template turns these turns into exactly the qwen-boxed string.
"""

import contextlib
import json
import os
import random

import datasets
from datasets import Dataset, concatenate_datasets, load_dataset
from datasets.exceptions import DatasetGenerationError


SIMPLERL_ZOO_HUB_ID = "hkust-nlp/SimpleRL-Zoo-Data"
SIMPLERL_ZOO_HARD_FILE = "simplelr_qwen_level3to5/{split}.parquet"
SYSTEM_PROMPT = "You are a helpful assistant."
INSTRUCTIONS = {
    "double": "Please reason step by step, and put your final answer within \\boxed{{}}.",
    "single": "Please reason step by step, and put your final answer within \\boxed{}.",
}


ONE_SHOT_EXAMPLE = ("What is 2 + 3?", "2 + 3 = 5, so the final answer is \\boxed{5}.")
"""A worked example turn for very small models, which otherwise rarely put their answer in the box."""


def qwen_boxed_prompt(question: str, instruction_braces: str = "double", one_shot: bool = False) -> list[dict]:
    """The qwen-boxed conversation (system + user turns) for one question, optionally after a worked example turn."""
    if instruction_braces not in INSTRUCTIONS:
        raise ValueError(f"instruction_braces must be one of {list(INSTRUCTIONS)}, got {instruction_braces!r}.")
    instruction = INSTRUCTIONS[instruction_braces]
    example = []
    if one_shot:
        example_question, example_answer = ONE_SHOT_EXAMPLE
        example = [
            {"role": "user", "content": f"{example_question}\n{instruction}"},
            {"role": "assistant", "content": example_answer},
        ]
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *example,
        {"role": "user", "content": f"{question}\n{instruction}"},
    ]


def _is_repository_copy(directory: str, config: str | None = None, hub_files: str | None = None) -> bool:
    """
    A local copy of a Hub dataset repository rather than a flat folder of data files: its README declares `configs`,
    or it holds the requested config's folder or the `hub_files` path.
    """
    readme = os.path.join(directory, "README.md")
    if os.path.isfile(readme):
        with open(readme, encoding="utf-8", errors="replace") as f:
            if any(line.startswith("configs:") for line in f):
                return True
    if config is not None and os.path.isdir(os.path.join(directory, config)):
        return True
    return hub_files is not None and os.path.exists(os.path.join(directory, hub_files))


def _load(source: str, split: str = "train", config: str | None = None, hub_files: str | None = None) -> Dataset:
    """
    A local .parquet/.jsonl/.json/.csv file or flat directory of them; else a Hub dataset id or a local copy of its
    repository (`huggingface-cli download --repo-type dataset ID --local-dir DIR`), read by `config` or `hub_files`.
    """
    if os.path.isdir(source) and not _is_repository_copy(source, config, hub_files):
        files = sorted(f for f in os.listdir(source) if f.endswith((".parquet", ".jsonl", ".json", ".csv")))
        if not files:
            raise FileNotFoundError(f"{source} holds no .parquet, .jsonl, .json or .csv file.")
        matching = [f for f in files if f.startswith(split)] or files
        return _load(os.path.join(source, matching[0]))
    if os.path.isfile(source):
        extension = source.rsplit(".", 1)[-1]
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(extension)
        if builder is None:
            raise ValueError(f"Cannot read {source}: expected a .parquet, .jsonl, .json or .csv file.")
        _check_local_file(source, extension)
        with _quiet_datasets():
            try:
                return load_dataset(builder, data_files=source, split="train")
            except DatasetGenerationError as error:
                cause = str(error.__cause__ or error).splitlines()[0]
                raise ValueError(
                    f"Cannot read {source} as {extension}: {cause}. Fix or re-export the file."
                ) from error
    if hub_files is not None:
        return load_dataset(source, data_files={split: hub_files}, split=split)
    return load_dataset(source, config, split=split)


def _check_local_file(path: str, extension: str):
    """
    A local data file that `datasets` would fail on with a generic error (or, empty, with a StopIteration): empty,
    not parquet, not UTF-8 text, a JSON line that does not parse — named here with the file and line.
    """
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty: the training set needs rows with a question and a ground-truth answer.")
    if extension == "parquet":
        import pyarrow.parquet

        try:
            rows = pyarrow.parquet.ParquetFile(path).metadata.num_rows
        except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise ValueError(
                f"{path} is not a readable parquet file ({error}); re-download or re-export it."
            ) from error
        if rows == 0:
            raise ValueError(f"{path} has no rows: the training set needs rows with a question and an answer.")
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}, is not UTF-8 text ({error.reason}): re-save it as UTF-8."
                ) from None
            if extension == "jsonl" and text.strip():
                try:
                    json.loads(text)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}, line {number}, is not valid JSON ({error.msg}, column {error.colno})."
                    ) from None


@contextlib.contextmanager
def _quiet_datasets():
    """
    Without `datasets`' progress bars and error log while it converts local data (well under a second): the log
    repeats an error that is raised anyway, and neither may add lines around the one-line error of a bad file.
    """
    bars_were_on, verbosity = not datasets.are_progress_bars_disabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars_were_on:
            datasets.enable_progress_bars()


def to_math_rl(
    dataset: Dataset,
    question_column: str,
    answer_of,
    instruction_braces: str = "double",
    name: str = "dataset",
    one_shot: bool = False,
    answer_help: str = "",
):
    """
    Map rows to {"prompt": qwen-boxed conversation, "solution": ground truth}, failing on an empty dataset or on the
    first row that lacks a question or a ground truth (with its index and, in `answer_help`, where it is read from).
    """
    if len(dataset) == 0:
        raise ValueError(f"{name} has no rows: the training set needs rows with a question and a ground-truth answer.")
    if question_column not in dataset.column_names:
        raise ValueError(
            f"{name} has no `{question_column}` column (columns: {dataset.column_names}); it is needed for the question."
        )

    def convert(row, index):
        question = row[question_column]
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"Row {index} of {name} has no question in column `{question_column}`.")
        answer = answer_of(row)
        if answer is None or not str(answer).strip():
            raise ValueError(
                f"Row {index} of {name} has no ground-truth answer{answer_help}; fix or drop it before training."
            )
        prompt = qwen_boxed_prompt(question.strip(), instruction_braces, one_shot)
        return {"prompt": prompt, "solution": str(answer).strip()}

    with _quiet_datasets():
        return dataset.map(convert, with_indices=True, remove_columns=dataset.column_names)


def _first_present(*columns):
    def answer_of(row):
        for column in columns:
            value = row.get(column)
            if value is not None and str(value).strip():
                return value
        return None

    return answer_of


def load_simplerl_zoo_hard(
    source: str = SIMPLERL_ZOO_HUB_ID,
    split: str = "train",
    max_question_chars: int | None = None,
    instruction_braces: str = "double",
) -> Dataset:
    """
    SimpleRL-Zoo "hard" split (MATH levels 3-5, ~8.5k problems): the λ-GRPO paper's training set.

    `source` is the Hub id (default; cached by `datasets`, so `HF_DATASETS_OFFLINE=1` works after one download) or a
    local parquet/jsonl file or directory. `max_question_chars` reproduces the SimpleRL fork's character filter
    (it dropped prompts longer than 1024 characters); None keeps every row.
    """
    dataset = _load(source, split, hub_files=SIMPLERL_ZOO_HARD_FILE.format(split=split))
    if max_question_chars is not None and "question" in dataset.column_names:
        with _quiet_datasets():
            dataset = dataset.filter(lambda row: len(row["question"] or "") <= max_question_chars)
    return to_math_rl(
        dataset,
        "question",
        _first_present("gt_answer", "answer", "target"),
        instruction_braces,
        name=f"SimpleRL-Zoo ({source})",
        answer_help=" (column `gt_answer`, `answer` or `target`)",
    )


def gsm8k_answer(answer: str) -> str | None:
    """GSM8K's final answer: the number after `####`, commas removed."""
    if answer is None or "####" not in answer:
        return None
    return answer.split("####")[-1].strip().replace(",", "")


def load_gsm8k(source: str = "openai/gsm8k", split: str = "train", instruction_braces: str = "double") -> Dataset:
    dataset = _load(source, split, config="main")
    return to_math_rl(
        dataset,
        "question",
        lambda row: gsm8k_answer(row.get("answer")),
        instruction_braces,
        name=f"GSM8K ({source})",
        answer_help=" (column `answer`, ending in '#### <number>')",
    )


MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
"""The configs of `EleutherAI/hendrycks_math`, one per subject; it has no default config."""


def load_math(source: str = "EleutherAI/hendrycks_math", split: str = "train", instruction_braces="double") -> Dataset:
    """
    MATH (Hendrycks et al.): the seven subjects concatenated (7,500 train / 5,000 test problems); the question is
    `problem`, the answer the last `\\boxed{}` of `solution`. `source`: the Hub id, a local copy of its repository, or
    one file (or flat folder) of MATH rows.
    """
    from .answers import last_boxed_answer

    if os.path.isfile(source) or (os.path.isdir(source) and not _is_repository_copy(source, MATH_SUBJECTS[0])):
        dataset = _load(source, split)
    else:
        dataset = concatenate_datasets([_load(source, split, config=subject) for subject in MATH_SUBJECTS])
    return to_math_rl(
        dataset,
        "problem",
        lambda row: row.get("answer") or last_boxed_answer(row.get("solution") or ""),
        instruction_braces,
        name=f"MATH ({source})",
        answer_help=" (column `answer`, or a \\boxed{} in `solution`)",
    )


_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jon"]
_ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "shells", "cards"]


def _arithmetic_problem(rng: random.Random, max_operand: int) -> tuple[str, int]:
    kind = rng.choice(["add", "subtract", "multiply", "story_add", "story_subtract", "story_groups"])
    a, b = rng.randint(1, max_operand), rng.randint(1, max_operand)
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    if kind == "add":
        return f"What is {a} + {b}?", a + b
    if kind == "subtract":
        a, b = max(a, b), min(a, b)
        return f"What is {a} - {b}?", a - b
    if kind == "multiply":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return f"What is {a} \\times {b}?", a * b
    if kind == "story_add":
        return f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b
    if kind == "story_subtract":
        a, b = max(a, b), min(a, b)
        return f"{name} had {a} {item} and gave away {b}. How many {item} are left?", a - b
    groups, per_group = rng.randint(2, 9), rng.randint(2, 9)
    return f"{name} has {groups} bags with {per_group} {item} in each. How many {item} are there in total?", (
        groups * per_group
    )


def arithmetic_problems(
    size: int = 1000, seed: int = 0, max_operand: int = 20, instruction_braces: str = "double", one_shot: bool = False
) -> Dataset:
    """Procedurally generated arithmetic and word problems with exact integer answers; the same `seed`, the same set."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}.")
    if max_operand < 2:
        raise ValueError(f"max_operand must be >= 2, got {max_operand}.")
    rng = random.Random(seed)
    questions, answers = zip(*(_arithmetic_problem(rng, max_operand) for _ in range(size)))
    return to_math_rl(
        Dataset.from_dict({"question": list(questions), "answer": [str(a) for a in answers]}),
        "question",
        lambda row: row["answer"],
        instruction_braces,
        name="arithmetic",
        one_shot=one_shot,
    )


DATASETS = {
    "simplerl_zoo_hard": load_simplerl_zoo_hard,
    "gsm8k": load_gsm8k,
    "math": load_math,
    "arithmetic": arithmetic_problems,
}
"""Loaders by the name recipes use in `dataset_name`."""


def load_training_set(
    name: str,
    path: str | None = None,
    split: str = "train",
    instruction_braces: str = "double",
    max_question_chars: int | None = None,
    size: int = 1000,
    seed: int = 0,
    max_operand: int = 20,
    one_shot: bool = False,
) -> Dataset:
    """
    The training set `name` (a key of `DATASETS`) with the options that apply to it: 'arithmetic' is generated from
    `size`, `seed`, `max_operand` and `one_shot`; the others are read from `path` (default: their Hub id) at `split`,
    and only 'simplerl_zoo_hard' filters by `max_question_chars`. Every prompt uses `instruction_braces`.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset_name {name!r}: use one of {list(DATASETS)}.")
    if name == "arithmetic":
        return arithmetic_problems(size, seed, max_operand, instruction_braces, one_shot)
    kwargs = {"split": split, "instruction_braces": instruction_braces}
    if path:
        kwargs["source"] = path
    if name == "simplerl_zoo_hard":
        kwargs["max_question_chars"] = max_question_chars
    return DATASETS[name](**kwargs)
