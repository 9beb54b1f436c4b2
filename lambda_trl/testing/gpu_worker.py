"""The GPU kit's worker processes (`scripts/gpu_check.py` starts one per run, so GPU memory and accelerate's state
start clean each time). Each prints one JSON line last:

    python -m lambda_trl.testing.gpu_worker train RECIPE MODEL OUTPUT_DIR --steps 12 --generations 8 --prompts 4 \\
        --completion 128 [--method lambda|dapo] [--reward short_answer_reward] [--cpu]
    python -m lambda_trl.testing.gpu_worker traces MODEL --lengths 2048,8192 --batch 8 [--cpu]

`train` is `lambda-trl train` on RECIPE (the kit passes the CPU demo recipe: generated arithmetic) with the kit's
sizes, in bf16 with transformers generation unless `--cpu`; its steps land in OUTPUT_DIR/metrics.jsonl as they
happen (the kit reads its curves there, also from a run it stopped early). `traces` times GRPO-λ's trace column sums beside the
forward + backward of the same micro-batch.
"""

import argparse
import functools
import json
import statistics
import time

import torch


def train(options) -> dict:
    from ..commands.train import main as train_command
    from ..commands.train import parse_arguments

    overrides = [
        "--model_name_or_path", options.model,
        "--output_dir", options.output_dir,
        "--max_steps", str(options.steps),
        "--num_generations", str(options.generations),
        "--per_device_train_batch_size", str(options.generations * options.prompts),
        "--max_completion_length", str(options.completion),
        "--use_cpu", str(options.cpu).lower(),
        "--bf16", str(not options.cpu).lower(),
        "--disable_tqdm", "true",
        "--plot", "false",
    ]  # fmt: skip
    if options.method == "dapo":
        overrides += ["--token_preference", "none", "--loss_type", "dapo"]
    if options.reward:
        overrides += ["--reward_funcs", options.reward]
    script_args, training_args, model_args, _ = parse_arguments(["--config", options.recipe, *overrides])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    trainer = train_command(script_args, training_args, model_args)
    return {
        "training_seconds": time.time() - started,
        "lambda_dtype": str(trainer.token_preference_lambda.dtype),
        "peak_cuda_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
    }


def traces(options) -> dict:
    from transformers import AutoModelForCausalLM

    from ..traces import column_sums

    device = "cpu" if options.cpu else "cuda"
    model = AutoModelForCausalLM.from_pretrained(options.model, dtype=None if options.cpu else torch.bfloat16)
    model.to(device).train()

    def timed(function, repeats=5):
        function()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
        return {"seconds": statistics.median(times), "peak_cuda_bytes": peak}

    rows = []
    for length in options.lengths:
        batch = options.batch
        # Rows of different lengths (from T down to T/2), as in a padded micro-batch.
        row_lengths = torch.linspace(length, length // 2, batch, device=device).long()
        mask = (torch.arange(length, device=device)[None, :] < row_lengths[:, None]).float()
        row = {"length": length, "batch": batch}
        for style in ("recent", "both", "early"):
            row[style] = timed(functools.partial(column_sums, mask, 0.99, style))
        ids = torch.randint(0, model.config.vocab_size, (batch, length), device=device)

        def forward_backward(ids=ids):
            model.zero_grad(set_to_none=True)
            model(input_ids=ids, labels=ids).loss.backward()

        try:
            row["forward_backward"] = timed(forward_backward, repeats=3)
        except torch.OutOfMemoryError:
            row["forward_backward"] = {"seconds": None, "peak_cuda_bytes": None, "error": "out of memory"}
            torch.cuda.empty_cache()
        rows.append(row)
    return {"rows": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    training = commands.add_parser(
        "train", help="λ-GRPO (or DAPO) on the recipe; prints λ's dtype and the peak memory"
    )
    training.add_argument("recipe", help="the recipe the overrides apply to (the kit's: the CPU demo recipe)")
    training.add_argument("model")
    training.add_argument("output_dir")
    training.add_argument("--steps", type=int, required=True)
    training.add_argument("--generations", type=int, required=True, help="completions per prompt")
    training.add_argument("--prompts", type=int, required=True, help="prompts per step")
    training.add_argument("--completion", type=int, required=True, help="max completion tokens")
    training.add_argument("--method", choices=["lambda", "dapo"], default="lambda")
    training.add_argument("--reward", default=None, help="reward function in place of the recipe's")
    timing = commands.add_parser("traces", help="trace column sums beside forward + backward")
    timing.add_argument("model")
    timing.add_argument("--lengths", type=lambda text: [int(n) for n in text.split(",")], required=True)
    timing.add_argument("--batch", type=int, required=True)
    for command in (training, timing):
        command.add_argument("--cpu", action="store_true", help="on CPU in float32 (the kit's dry run)")
    options = parser.parse_args()
    print(json.dumps(train(options) if options.command == "train" else traces(options)))


if __name__ == "__main__":
    main()
