"""
The two graders on real completions: the embedded model answers the first N rows of each of the 8 benchmarks
(greedy, like every Pass@1 set), and every completion is scored by the library's grader (math-verify) and by the
paper's (qwen-math, the Qwen2.5-Math harness's rules). Writes docs/graders.md: per benchmark the accuracy under each
grader and the disagreements by category with one example each; then the same on every row's own gold answer, and
how many golds each rule that tells the graders apart touches.

    python scripts/compare_graders.py --data-dir ../shared/benchmarks --rows 50 --max-new-tokens 400 --batch-size 25

Generation is resumable (each benchmark's predictions file is appended as it goes); `--report-only` re-scores the
predictions already in --output-dir.
"""

import argparse
import dataclasses
import json
import os
import re
import time
from collections import Counter, defaultdict


MODEL = "embedded:SmolLM2-135M-Instruct"


def generate(benchmarks, data_dir: str | None, output_dir: str, rows: int, max_new_tokens: int, batch_size: int):
    from lambda_trl.eval.generation import SamplingSettings, TransformersBackend, generate_predictions
    from lambda_trl.models import resolve_model_name

    backend = TransformersBackend(resolve_model_name(MODEL), batch_size=batch_size)
    settings = SamplingSettings(max_new_tokens=max_new_tokens)
    for benchmark in benchmarks:
        started = time.perf_counter()
        selected = benchmark.load_rows(data_dir)[:rows]
        path = os.path.join(output_dir, f"{benchmark.name}.predictions.jsonl")
        # Greedy on every set, Average@32 ones included: one deterministic completion per problem.
        generate_predictions(dataclasses.replace(benchmark, samples=1), selected, backend, path, settings, batch_size)
        print(f"{benchmark.name}: {len(selected)} rows in {time.perf_counter() - started:.0f} s", flush=True)


PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
UNIT_LETTER = re.compile(r"(?<![A-Za-z\\])[acdghlmost](?![A-Za-z])")


def as_number(text: str | None) -> float | None:
    text = (text or "").replace(",", "").strip()
    return float(text) if PLAIN_NUMBER.fullmatch(text) else None


def disagreement_category(text: str, gold: str, extracted: dict, verdicts: dict) -> str:
    """Why the graders disagree on one completion: the first rule, in this order, that tells them apart."""
    from lambda_trl.answers import last_boxed_answer

    mv, qm = extracted["math-verify"], extracted["qwen-math"]
    if last_boxed_answer(text) is None:
        if mv is None:
            return "no box, no stated answer: qwen-math takes the last number of the text"
        return "no braced box: an answer the text states"
    if re.fullmatch(r"\(?[A-E]\)?", gold.strip()):
        return "multiple choice"
    if re.search(r"\d[eE][-+]?\d|\\times\s*10\^", gold + " " + (mv or "")):
        return "scientific notation"
    if UNIT_LETTER.search(gold) or UNIT_LETTER.search(mv or ""):
        return "qwen-math deletes unit letters (a c d g h l m o s t) from the answer"
    pred, ref = as_number(qm), as_number(gold)
    if pred is not None and ref is not None:
        if ref and any(abs(pred - ref * k) <= 1e-4 * max(abs(pred), abs(ref * k)) for k in (0.01, 100)):
            return "qwen-math accepts gold x100 and gold /100"
        return "numbers within qwen-math's 1e-4 relative tolerance"
    if re.search(r"[\[(].*,.*[\])]", gold) and re.search(r"[\[(].*,.*[\])]", mv or ""):
        return "intervals and tuples (bracket types, spacing)"
    if "," in gold and "," in (mv or ""):
        return "lists of answers (order, separators)"
    if "=" in gold or "=" in (mv or ""):
        return "equations"
    if verdicts["math-verify"] and not verdicts["qwen-math"]:
        return "other: math-verify finds them equal, qwen-math not"
    return "other: qwen-math finds them equal, math-verify not"


def report(benchmarks, data_dir: str | None, output_dir: str, rows: int) -> str:
    """Scores every predictions file under both graders; the markdown of docs/graders.md."""
    from lambda_trl.eval.scoring import read_predictions, score_rows
    from lambda_trl.graders import GRADERS

    lines = [
        "| benchmark | rows | math-verify | qwen-math | completions where they disagree |",
        "|---|---|---|---|---|",
    ]
    categories, examples, totals = Counter(), {}, defaultdict(float)
    per_benchmark = {}
    scoring_seconds = 0.0
    for benchmark in benchmarks:
        path = os.path.join(output_dir, f"{benchmark.name}.predictions.jsonl")
        if not os.path.isfile(path):
            continue
        predictions = read_predictions(path)
        selected = [row for row in benchmark.load_rows(data_dir)[:rows] if row["idx"] in predictions]
        started = time.perf_counter()
        scored = score_rows(selected, predictions, benchmark.name)
        scoring_seconds += time.perf_counter() - started
        accuracy = {g: 100.0 * sum(r["score"][g] for r in scored) / len(scored) for g in GRADERS}
        counted = Counter()
        for row in scored:
            for sample, text in enumerate(predictions[row["idx"]]):
                verdicts = {g: row["verdicts"][g][sample] for g in GRADERS}
                if verdicts["math-verify"] == verdicts["qwen-math"]:
                    continue
                extracted = {g: row["extracted"][g][sample] for g in GRADERS}
                category = disagreement_category(text, row["gold"]["math-verify"], extracted, verdicts)
                counted[category] += 1
                examples.setdefault(category, (benchmark.name, row, extracted, verdicts, text))
        categories.update(counted)
        per_benchmark[benchmark.name] = counted
        for g in GRADERS:
            totals[g] += accuracy[g]
        lines.append(
            f"| {benchmark.name} | {len(scored)} | {accuracy['math-verify']:.1f} | {accuracy['qwen-math']:.1f} | "
            f"{sum(counted.values())} |"
        )
    count = len(per_benchmark)
    lines.append(
        f"| **Avg.** | | **{totals['math-verify'] / count:.1f}** | **{totals['qwen-math'] / count:.1f}** | "
        f"{sum(categories.values())} |"
    )
    lines += [
        "",
        f"Scoring all {sum(len(read_predictions(os.path.join(output_dir, f'{b}.predictions.jsonl'))) for b in per_benchmark)} "
        f"completions under both graders took {scoring_seconds:.1f} s.",
        "",
    ]
    lines += [
        "### Disagreements by category",
        "",
        "| category | " + " | ".join(per_benchmark) + " | total |",
        "|---|" + "---|" * (count + 1),
    ]
    for category, total in categories.most_common():
        cells = " | ".join(str(per_benchmark[name][category] or "") for name in per_benchmark)
        lines.append(f"| {category} | {cells} | {total} |")
    lines += ["", "### One example of each", ""]
    for category, _ in categories.most_common():
        name, row, extracted, verdicts, text = examples[category]
        tail = text.strip()[-160:].replace("\n", " ").replace("`", "'")
        lines += [
            f"- **{category}** — {name} row {row['idx']}, gold `{row['gold']['math-verify']}` "
            f'(qwen-math: `{row["gold"]["qwen-math"]}`): the completion ends "…{tail}"; '
            f"math-verify reads `{extracted['math-verify']}` ({'right' if verdicts['math-verify'] else 'wrong'}), "
            f"qwen-math reads `{extracted['qwen-math']}` ({'right' if verdicts['qwen-math'] else 'wrong'}).",
        ]
    return "\n".join(lines) + "\n"


def gold_report(benchmarks, data_dir: str | None) -> str:
    """Every row's own gold answer, boxed as the library reads it, scored under both graders: where their rules,
    not the model, disagree (a grader that is right on the gold scores 100)."""
    from lambda_trl.eval.scoring import score_rows
    from lambda_trl.graders import GRADERS

    lines = [
        "| benchmark | rows | math-verify | qwen-math | golds where they disagree |",
        "|---|---|---|---|---|",
    ]
    for benchmark in benchmarks:
        rows = benchmark.load_rows(data_dir)
        scored = score_rows(rows, {row["idx"]: [f"\\boxed{{{row['answer']}}}"] for row in rows}, benchmark.name)
        right = {g: sum(row["verdicts"][g][0] for row in scored) for g in GRADERS}
        disagree = sum(row["verdicts"]["math-verify"] != row["verdicts"]["qwen-math"] for row in scored)
        lines.append(
            f"| {benchmark.name} | {len(rows)} | {100.0 * right['math-verify'] / len(rows):.1f} | "
            f"{100.0 * right['qwen-math'] / len(rows):.1f} | {disagree} |"
        )
    return "\n".join(lines) + "\n"


def exposure_report(benchmarks, data_dir: str | None) -> str:
    """Per benchmark, how many gold answers each rule that separates the graders can touch."""
    from lambda_trl.qwen_math import strip_string

    lines = [
        "| benchmark | rows | e-notation golds | multiple-choice golds | golds with a comma (lists, tuples, "
        "intervals) | golds qwen-math's unit deletion changes |",
        "|---|---|---|---|---|---|",
    ]
    for benchmark in benchmarks:
        golds = [row["answer"] for row in benchmark.load_rows(data_dir)]
        units = 0
        if benchmark.name not in ("minerva_math", "carp_en"):  # the harness keeps units on these
            units = sum(strip_string(gold) != strip_string(gold, skip_unit=True) for gold in golds)
        counts = (
            sum(bool(re.search(r"\d[eE][-+]?\d", gold)) for gold in golds),
            sum(bool(re.fullmatch(r"\s*\(?[A-E]\)?\s*", gold)) for gold in golds),
            sum("," in gold for gold in golds),
            units,
        )
        lines.append(f"| {benchmark.name} | {len(golds)} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines) + "\n"


HEADER = """# The two graders: math-verify and qwen-math

Generated by `scripts/compare_graders.py` ({settings}). Every completion is scored under both graders; `lambda-trl
eval` does the same and writes both verdicts (README, "Evaluation").

- **qwen-math** reproduces the paper's numbers: the Qwen2.5-Math evaluation harness's rules, which the λ-GRPO paper
  (§3, "the Qwen Math codebase") scored Table 1 with — its extraction chain down to the last number of the text,
  `strip_string`, per-benchmark ground truth, `math_equal` (gold×100 and gold/100, a 1e-4 relative tolerance,
  bracket types ignored, multiple-choice letters), 3 s a case (`lambda_trl/qwen_math.py`). Where the harness's
  verdict comes from its pinned sympy misreading the input (`1.24e-8` read as 1.24·e − 8; `parse_latex` stopping at
  a top-level comma), qwen-math gives the correct verdict instead (the module's docstring lists every difference).
- **math-verify** (the default) is lambda-trl's own: the last complete `\\boxed{{}}` (in evaluation, else an answer the
  text states: an unbraced `\\boxed 5`, "the answer is 5", GSM8K's `#### 5`; never the last number of the text),
  checked by Hugging Face math-verify. It fixes what the harness gets wrong: gold×100 is not the gold, `6 a^{{2}}-44
  a-32` keeps its `a`s, `1.24 \\times 10^{{-8}}` equals Minerva's `1.24e-8`, `1{{,}}200` is 1200.

The rules, one case each with both verdicts, are the table `CATEGORIES` in `tests/test_graders.py`.

## Real completions: {model}, the first {rows} rows of each set, greedy

"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="outputs/grader-comparison")
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--docs", default="docs/graders.md", help="Where the page is written.")
    args = parser.parse_args()
    from lambda_trl.eval.benchmarks import BENCHMARKS

    os.makedirs(args.output_dir, exist_ok=True)
    benchmarks = list(BENCHMARKS.values())
    if not args.report_only:
        with open(os.path.join(args.output_dir, "settings.json"), "w") as f:
            json.dump(vars(args), f, indent=2)  # how the predictions were made; a re-scoring keeps it
        generate(benchmarks, args.data_dir, args.output_dir, args.rows, args.max_new_tokens, args.batch_size)
    with open(os.path.join(args.output_dir, "settings.json")) as f:
        made = json.load(f)
    settings = f"max_new_tokens {made['max_new_tokens']}, batch size {made['batch_size']}, on CPU"
    page = HEADER.format(settings=settings, model=MODEL, rows=args.rows)
    page += report(benchmarks, args.data_dir, args.output_dir, args.rows)
    page += "\n## Every row's own gold answer, boxed\n\n" + gold_report(benchmarks, args.data_dir)
    page += "\n## How many golds each separating rule touches\n\n" + exposure_report(benchmarks, args.data_dir)
    with open(args.docs, "w") as f:
        f.write(page)
    print(page)


if __name__ == "__main__":
    main()
