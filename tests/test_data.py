import json

import pytest
from datasets import Dataset, load_dataset

from lambda_trl.data import (
    MATH_SUBJECTS,
    arithmetic_problems,
    gsm8k_answer,
    load_gsm8k,
    load_math,
    load_simplerl_zoo_hard,
    qwen_boxed_prompt,
)
from lambda_trl.rewards import boxed_math_reward


def test_qwen_boxed_prompt_matches_appendix_d():
    prompt = qwen_boxed_prompt("What is 1+1?")
    assert prompt == [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": "What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
        },
    ]
    assert qwen_boxed_prompt("Q", "single")[1]["content"].endswith("within \\boxed{}.")
    with pytest.raises(ValueError, match="instruction_braces"):
        qwen_boxed_prompt("Q", "triple")


def test_arithmetic_problems_are_seeded_and_exact():
    first, again, other = (
        arithmetic_problems(200, seed=3),
        arithmetic_problems(200, seed=3),
        arithmetic_problems(200, 4),
    )
    assert first["prompt"] == again["prompt"] and first["solution"] == again["solution"]
    assert first["prompt"] != other["prompt"]
    # The gold answers, boxed, earn the full reward; off-by-one answers do not.
    gold = [f"\\boxed{{{s}}}" for s in first["solution"]]
    assert boxed_math_reward(gold, solution=first["solution"]) == [1.0] * 200
    wrong = [f"\\boxed{{{int(s) + 1}}}" for s in first["solution"]]
    assert boxed_math_reward(wrong, solution=first["solution"]) == [-0.5] * 200
    for row in first.select(range(50)):
        question = row["prompt"][1]["content"].split("\n")[0]
        if question.startswith("What is ") and "\\times" not in question:
            assert str(eval(question[len("What is ") : -1])) == row["solution"]


def test_simplerl_zoo_from_a_local_parquet(tmp_path):
    rows = {
        "question": ["Find x if 2x = 4.", "A long question " + "x" * 2000, "Compute 3!"],
        "gt_answer": ["2", "1", None],
        "answer": ["2", "1", "6"],
        "level": [3, 5, 4],
    }
    path = tmp_path / "train.parquet"
    Dataset.from_dict(rows).to_parquet(str(path))
    dataset = load_simplerl_zoo_hard(str(path))
    assert dataset.column_names == ["prompt", "solution"]
    assert dataset["solution"] == ["2", "1", "6"]  # gt_answer first, `answer` when it is missing
    assert len(load_simplerl_zoo_hard(str(tmp_path), max_question_chars=1024)) == 2


def test_rows_without_question_or_answer_fail_with_their_index(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in [{"question": "ok", "answer": "1"}, {"question": "q", "answer": ""}])
    )
    with pytest.raises(ValueError, match=r"Row 1 of SimpleRL-Zoo \(.*\) has no ground-truth answer"):
        load_simplerl_zoo_hard(str(path))
    path.write_text(json.dumps({"problem": "wrong column", "answer": "1"}))
    with pytest.raises(ValueError, match="no `question` column"):
        load_simplerl_zoo_hard(str(path))


def test_gsm8k_and_math_converters(tmp_path):
    assert gsm8k_answer("He has 3 + 4 = 7.\n#### 1,007") == "1007"
    assert gsm8k_answer("no marker") is None
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text(json.dumps({"question": "How many?", "answer": "steps\n#### 12"}))
    assert load_gsm8k(str(gsm8k))["solution"] == ["12"]
    math_file = tmp_path / "math.jsonl"
    math_file.write_text(json.dumps({"problem": "Simplify.", "solution": "so $\\boxed{\\frac{1}{2}}$."}))
    assert load_math(str(math_file))["solution"] == ["\\frac{1}{2}"]
    gsm8k.write_text(json.dumps({"question": "How many?", "answer": "no final answer"}))
    with pytest.raises(ValueError, match="Row 0 of GSM8K"):
        load_gsm8k(str(gsm8k))


@pytest.fixture(autouse=True)
def fresh_datasets_cache(tmp_path_factory, monkeypatch):
    # `datasets` caches a local repository's build by its name and config, not its content: each test starts empty.
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets-cache"))


# Local stand-ins with the layouts of the Hub repositories the recipes train on (file tree, README `configs`,
# splits, columns), as listed on each repository's "Files" page and in shared/specs/math-rl-setup.md.
def write_repository(root, files: dict[str, dict], configs: dict[str, dict[str, str]] | None = None):
    for relative, columns in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(columns).to_parquet(str(root / relative))
    card = "---\nconfigs:\n"
    for name, splits in (configs or {}).items():
        card += f"- config_name: {name}\n  data_files:\n"
        card += "".join(f"  - split: {split}\n    path: {path}\n" for split, path in splits.items())
    (root / "README.md").write_text(card + "---\n" if configs else "# dataset card\n")
    return root


def math_rows(subject: str, split: str, count: int) -> dict:
    problems = [f"{subject} {split} problem {i}" for i in range(count)]
    solutions = [f"Work... so $\\boxed{{{subject[:5]}{i}}}$." for i in range(count)]
    return {"problem": problems, "level": ["Level 3"] * count, "type": [subject] * count, "solution": solutions}


def hendrycks_math_copy(root):
    """EleutherAI/hendrycks_math: one config per subject, `<subject>/{train,test}-00000-of-00001.parquet`."""
    files, configs = {}, {}
    for number, subject in enumerate(MATH_SUBJECTS):
        for split in ("train", "test"):
            files[f"{subject}/{split}-00000-of-00001.parquet"] = math_rows(subject, split, 2 + number % 2)
        configs[subject] = {split: f"{subject}/{split}-*" for split in ("train", "test")}
    return write_repository(root, files, configs)


def test_math_loads_and_concatenates_the_seven_subjects(tmp_path):
    repository = hendrycks_math_copy(tmp_path / "hendrycks_math")
    # The failure recipes hit before: the repository has no default config.
    with pytest.raises(ValueError, match="Config name is missing"):
        load_dataset(str(repository), split="train")
    train = load_math(str(repository), split="train")
    assert len(train) == sum(2 + n % 2 for n in range(7))
    assert train["solution"][:2] == ["algeb0", "algeb1"] and train["solution"][-1] == "preca1"
    assert {row[1]["content"].split()[0] for row in train["prompt"]} == set(MATH_SUBJECTS)
    assert len(load_math(str(repository), split="test")) == len(train)


def test_gsm8k_loads_the_main_config(tmp_path):
    """openai/gsm8k: configs `main` and `socratic`, `<config>/{train,test}-00000-of-00001.parquet`."""
    files, configs = {}, {}
    for config in ("main", "socratic"):
        for split in ("train", "test"):
            answer = "Socratic steps\n#### 99" if config == "socratic" else "steps\n#### 1,234"
            files[f"{config}/{split}-00000-of-00001.parquet"] = {"question": [f"{split}?"], "answer": [answer]}
        configs[config] = {split: f"{config}/{split}-*" for split in ("train", "test")}
    repository = write_repository(tmp_path / "gsm8k", files, configs)
    dataset = load_gsm8k(str(repository), split="test")
    assert dataset["solution"] == ["1234"] and dataset["prompt"][0][1]["content"].startswith("test?")


def test_simplerl_zoo_loads_the_level3to5_folder_of_the_repository(tmp_path):
    """hkust-nlp/SimpleRL-Zoo-Data: one folder per variant, each with `train.parquet` and `test.parquet`."""
    files = {}
    for variant in ("simplelr_qwen_level3to5", "simplelr_abel_level3to5", "simplelr_qwen_level1to4"):
        for split in ("train", "test"):
            files[f"{variant}/{split}.parquet"] = {
                "question": [f"{variant} {split} question"],
                "gt_answer": ["7"],
                "answer": ["7"],
                "target": ["7"],
                "level": [4],
            }
    repository = write_repository(tmp_path / "SimpleRL-Zoo-Data", files)
    dataset = load_simplerl_zoo_hard(str(repository))
    assert dataset["prompt"][0][1]["content"].startswith("simplelr_qwen_level3to5 train question")


@pytest.mark.parametrize(
    "recipe",
    [
        "qwen2.5-1.5b/lambda_grpo.yaml",
        "grpo-lambda/deepseek-r1-distill-qwen-1.5b/grpo_lambda.yaml",
        "cpu/smollm2_135m_lambda_grpo.yaml",
    ],
)
def test_every_recipe_dataset_loads_through_the_cli(tmp_path, recipe):
    from helpers import parse

    from lambda_trl.commands.train import training_set

    script_args, _, _ = parse(recipe)
    if script_args.dataset_name == "math":
        script_args.dataset_path = str(hendrycks_math_copy(tmp_path / "hendrycks_math"))
    elif script_args.dataset_name == "simplerl_zoo_hard":
        path = tmp_path / "SimpleRL-Zoo-Data" / "simplelr_qwen_level3to5" / "train.parquet"
        path.parent.mkdir(parents=True)
        Dataset.from_dict({"question": ["q"], "gt_answer": ["1"]}).to_parquet(str(path))
        script_args.dataset_path = str(path.parents[1])
    dataset = training_set(script_args)
    assert set(dataset.column_names) == {"prompt", "solution"} and len(dataset) > 0


def test_a_flat_folder_with_a_readme_is_not_a_repository_copy(tmp_path):
    # A user's own folder: data files and a note. Only a README declaring `configs` (or the config's folder) makes
    # a folder a copy of a Hub repository.
    (tmp_path / "README.md").write_text("My GSM8K export.\n")
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "How many?", "answer": "so\n#### 5"}) + "\n")
    assert load_gsm8k(str(tmp_path))["solution"] == ["5"]
