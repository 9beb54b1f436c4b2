"""Step time and peak memory of LambdaGRPOTrainer vs TRL's GRPOTrainer (loss_type="dapo"), side by side.

Each run is a fresh process training the same model (same seed, same scripted completions, same batch geometry);
the two trainers alternate so drift in the machine's speed hits both. Generation is a cheap scripted rollout, so the
measured step is dominated by the loss, backward and optimizer step — where λ-GRPO's extra work happens.

    python benchmarks/overhead.py --pairs 5 --steps 12
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def benchmark_model(tokenizer, hidden: int, layers: int, completion_length: int):
    from lambda_trl.testing import tiny_model

    return tiny_model(
        tokenizer,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=2 * completion_length + 16,
        tie_word_embeddings=False,
    )


def run_once(trainer_name: str, steps: int, hidden: int, layers: int, completion_length: int):
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer
    from lambda_trl.testing import count_a_reward, scripted_rollout, sum_dataset, tiny_config_fields, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    model = benchmark_model(tokenizer, hidden, layers, completion_length)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    common = dict(
        max_steps=steps,
        max_completion_length=completion_length,
        per_device_train_batch_size=16,
        num_generations=8,
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        logging_steps=1,
    )
    fields = tiny_config_fields(os.path.join("/tmp", f"bench-{trainer_name}"), **common)
    if trainer_name == "trl-dapo":
        config, trainer_class = GRPOConfig(**fields, loss_type="dapo"), GRPOTrainer
    else:
        config, trainer_class = LambdaGRPOConfig(**fields), LambdaGRPOTrainer

    def rollout(prompts, trainer):  # the tests' scripted completions repeated (or cut) to the length limit
        output = scripted_rollout(prompts, trainer)
        output["completion_ids"] = [
            (ids * (completion_length // len(ids) + 1))[:completion_length] for ids in output["completion_ids"]
        ]
        output["logprobs"] = [[0.0] * len(ids) for ids in output["completion_ids"]]
        return output

    trainer = trainer_class(
        model=model,
        reward_funcs=count_a_reward,
        args=config,
        train_dataset=sum_dataset(64),
        processing_class=tokenizer,
        rollout_func=rollout,
    )
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    step_times = [e["step_time"] for e in trainer.state.log_history if "step_time" in e][2:]  # skip warm-up
    peak = (
        torch.cuda.max_memory_allocated()
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {"step_time": statistics.median(step_times), "peak_bytes": peak, "device": device}


def loss_microbenchmark(repeats: int, hidden: int, layers: int, completion_length: int) -> dict:
    """
    compute_loss + backward of both trainers on one fixed batch, alternating in one process: the overhead alone. On
    the GPU when there is one (float32 for both, CUDA-synchronized around each repetition).
    """
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from lambda_trl import LambdaGRPOConfig, LambdaGRPOTrainer
    from lambda_trl.testing import count_a_reward, fixed_batch, sum_dataset, tiny_config_fields, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    on_gpu = torch.cuda.is_available()
    fields = tiny_config_fields("/tmp/bench-loss", use_cpu=not on_gpu)
    trainers = {}
    for name, (trainer_class, config) in {
        "trl-dapo": (GRPOTrainer, GRPOConfig(**fields, loss_type="dapo")),
        "lambda-grpo": (LambdaGRPOTrainer, LambdaGRPOConfig(**fields)),
    }.items():
        model = benchmark_model(tokenizer, hidden, layers, completion_length)
        trainer = trainer_class(
            model=model,
            reward_funcs=count_a_reward,
            args=config,
            train_dataset=sum_dataset(),
            processing_class=tokenizer,
        )
        trainer.current_gradient_accumulation_steps = 1
        trainer.model.train()
        trainers[name] = trainer
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(completion_length // 4, completion_length + 1, (16,), generator=generator).tolist()
    batch = fixed_batch(
        lengths, torch.randn(16, generator=generator).tolist(), 8, torch.randperm(16, generator=generator)
    )
    device = trainers["trl-dapo"].accelerator.device
    batch = {key: value.to(device) for key, value in batch.items()}
    synchronize = torch.cuda.synchronize if on_gpu else lambda: None  # CUDA kernels run asynchronously
    times = {name: [] for name in trainers}
    for repeat in range(repeats + 3):
        for name in list(trainers) if repeat % 2 == 0 else list(trainers)[::-1]:
            trainer = trainers[name]
            trainer.model.zero_grad()
            synchronize()
            started = time.perf_counter()
            trainer.compute_loss(trainer.model, batch).backward()
            synchronize()
            if repeat >= 3:  # warm-up
                times[name].append(time.perf_counter() - started)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--completion-length", type=int, default=128)
    parser.add_argument("--loss-repeats", type=int, default=60, help="Repetitions of the loss microbenchmark.")
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    parser.add_argument("--worker", choices=["lambda-grpo", "trl-dapo"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(run_once(args.worker, args.steps, args.hidden, args.layers, args.completion_length)))
        return

    results = {"lambda-grpo": [], "trl-dapo": []}
    started = time.time()
    for pair in range(args.pairs):
        order = ["trl-dapo", "lambda-grpo"] if pair % 2 == 0 else ["lambda-grpo", "trl-dapo"]
        for name in order:
            command = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--steps",
                str(args.steps),
                "--hidden",
                str(args.hidden),
                "--layers",
                str(args.layers),
                "--completion-length",
                str(args.completion_length),
            ]
            environment = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "WANDB_MODE": "disabled"}
            output = subprocess.run(command, capture_output=True, text=True, env=environment, check=True).stdout
            results[name].append(json.loads(output.strip().splitlines()[-1]))
    ratios = [
        ours["step_time"] / theirs["step_time"] for ours, theirs in zip(results["lambda-grpo"], results["trl-dapo"])
    ]
    memory = [
        ours["peak_bytes"] / theirs["peak_bytes"] for ours, theirs in zip(results["lambda-grpo"], results["trl-dapo"])
    ]

    def summary(values):
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"

    device = results["trl-dapo"][0]["device"]
    print(
        f"device: {device}, model: hidden {args.hidden} × {args.layers} layers, batch 16 × {args.completion_length} "
        f"tokens, {args.pairs} alternating pairs, {time.time() - started:.0f} s"
    )
    print("| trainer | step time (s, median per run) | peak memory (MiB) |")
    print("|---|---|---|")
    for name in ("trl-dapo", "lambda-grpo"):
        times = [r["step_time"] for r in results[name]]
        peaks = [r["peak_bytes"] / 2**20 for r in results[name]]
        print(f"| {name} | {summary(times)} | {summary(peaks)} |")
    print(
        f"| ratio λ-GRPO / TRL DAPO | median {statistics.median(ratios):.4f} (mean {summary(ratios)}) "
        f"| median {statistics.median(memory):.4f} (mean {summary(memory)}) |"
    )

    loss_times = loss_microbenchmark(args.loss_repeats, args.hidden, args.layers, args.completion_length)
    loss_ratios = [ours / theirs for ours, theirs in zip(loss_times["lambda-grpo"], loss_times["trl-dapo"])]
    print(
        f"\nloss + backward on one fixed batch ({device}), {args.loss_repeats} alternating repetitions in one process:"
    )
    print("| trainer | median time (ms) |")
    print("|---|---|")
    for name, values in loss_times.items():
        print(f"| {name} | {1000 * statistics.median(values):.2f} |")
    print(f"| ratio λ-GRPO / TRL DAPO | median {statistics.median(loss_ratios):.4f} (mean {summary(loss_ratios)}) |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"results": results, "time_ratio": ratios, "memory_ratio": memory, "loss_times": loss_times}, f)


if __name__ == "__main__":
    main()
