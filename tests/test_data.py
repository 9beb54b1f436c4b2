import json

import pytest
from datasets import Dataset

from lambda_trl.data import (
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
    with pytest.raises(ValueError, match="Row 1 of SimpleRL-Zoo has no ground-truth answer"):
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
