"""Time `boxed_math_reward` on a batch of 1,024 realistic completions (MATH500's gold answers, boxed at the end of
~1,500 characters of reasoning; about half right, half wrong, 5 % unboxed, 5 % pathological unless
--no-pathological).

    python benchmarks/reward_throughput.py --data-dir ../shared/benchmarks --batch 1024 --repeats 3 --grader qwen-math

`--grader` is the reward's `reward_grader` (the recipe field): math-verify (the default) or qwen-math.
"""

import argparse
import os
import random
import statistics
import time


def completions_and_solutions(data_dir: str, batch: int, pathological: bool, seed: int = 0):
    from lambda_trl.eval.benchmarks import BENCHMARKS

    rows = BENCHMARKS["math500"].load_rows(data_dir)
    rng = random.Random(seed)
    filler = "Let us reason step by step. " * 55
    completions, solutions = [], []
    for i in range(batch):
        row, other = rng.choice(rows), rng.choice(rows)
        kind = i % 20
        if kind == 0:
            answer_text = "so the answer is 42"  # unboxed
        elif kind == 1 and pathological:
            answer_text = "\\boxed{10^{10^{10^{10}}}}"  # pathological
        else:
            answer_text = f"\\boxed{{{row['answer'] if kind % 2 else other['answer']}}}"
        completions.append(f"{filler}Therefore, {answer_text}.")
        solutions.append(row["answer"])
    return completions, solutions


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/benchmarks")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-pathological",
        action="store_true",
        help="Replace the 5 %% pathological answers (each hits the grader's time cap).",
    )
    from lambda_trl.graders import DEFAULT_GRADER, GRADERS, check_answers
    from lambda_trl.rewards import boxed_math_reward

    parser.add_argument("--grader", choices=GRADERS, default=DEFAULT_GRADER)
    args = parser.parse_args()

    completions, solutions = completions_and_solutions(args.data_dir, args.batch, not args.no_pathological)
    started = time.perf_counter()
    check_answers([("1", "1")], args.grader)  # start the worker pool
    print(f"worker start-up: {time.perf_counter() - started:.2f} s ({os.cpu_count()} CPUs)")
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        rewards = boxed_math_reward(completions, solution=solutions, grader=args.grader)
        timings.append(time.perf_counter() - started)
    print(
        f"{args.grader}: {args.batch} completions: median {statistics.median(timings):.2f} s per batch "
        f"({args.batch / statistics.median(timings):.0f} completions/s); rewards "
        f"+1: {rewards.count(1.0)}, -0.5: {rewards.count(-0.5)}, -1: {rewards.count(-1.0)}"
    )


if __name__ == "__main__":
    main()
