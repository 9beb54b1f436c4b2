"""Time what a policy in collapse costs the graders: 1,024 degenerate completions, under both graders, through the
training reward (`boxed_math_reward`) and through `eval score`'s scoring (`score_rows`, MATH500's rows).

    python benchmarks/degenerate_completions.py --data-dir ../shared/benchmarks

Kinds (each completion ~8,000 characters): a run of one repeated digit, of `{`, of `\\boxed{` without a closing
brace, long prose with an answer phrase and no box, and the same prose ending in a box holding 8,000 digits.
Every extraction, normalisation and comparison is included, the workers' start-up is not (printed apart).
"""

import argparse
import os
import statistics
import time


LENGTH = 8_000
PROSE = "We compute the sum of 3 cm and 4 cm per day, so the answer is a number of metres and a per b. "


def degenerate(kind: str) -> str:
    if kind == "digits":
        return "7" * LENGTH
    if kind == "braces":
        return "{" * LENGTH
    if kind == "unclosed boxes":
        return "\\boxed{" * (LENGTH // 7)
    if kind == "prose":
        return (PROSE * (LENGTH // len(PROSE) + 1))[:LENGTH]
    if kind == "prose, boxed digits":
        return (PROSE * 40)[: LENGTH // 2] + "\\boxed{" + "7" * (LENGTH // 2) + "}"
    raise ValueError(kind)


KINDS = ("digits", "braces", "unclosed boxes", "prose", "prose, boxed digits")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/benchmarks")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from lambda_trl.eval.benchmarks import BENCHMARKS
    from lambda_trl.eval.scoring import score_rows
    from lambda_trl.graders import GRADERS, check_answers
    from lambda_trl.rewards import boxed_math_reward

    rows = BENCHMARKS["math500"].load_rows(args.data_dir)[: args.batch // 4]
    started = time.perf_counter()
    for grader in GRADERS:
        check_answers([("1", "1")], grader)
    print(f"worker start-up: {time.perf_counter() - started:.2f} s ({os.cpu_count()} CPUs)")
    header = " | ".join(f"reward, {grader}" for grader in GRADERS)
    print(f"| kind ({args.batch} completions) | {header} | eval score (both graders) |")
    print("|---|" + "---|" * (len(GRADERS) + 1))
    for kind in KINDS:
        # Each completion differs in its last characters, so that no two cases are decided once for all.
        completions = [degenerate(kind) + f" {i}" for i in range(args.batch)]
        solutions = [rows[i % len(rows)]["answer"] for i in range(args.batch)]
        predictions = {row["idx"]: completions[i :: len(rows)] for i, row in enumerate(rows)}
        timings = []
        for grader in GRADERS:
            timings.append(
                median_seconds(args.repeats, boxed_math_reward, completions, solution=solutions, grader=grader)
            )
        timings.append(median_seconds(args.repeats, score_rows, rows, predictions, "math500"))
        print(f"| {kind} | " + " | ".join(f"{seconds:.2f} s" for seconds in timings) + " |", flush=True)


def median_seconds(repeats: int, function, *args, **kwargs) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(*args, **kwargs)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


if __name__ == "__main__":
    main()
