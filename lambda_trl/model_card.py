"""The λ-GRPO section added to TRL's model card: the method, λ's trajectory, the dataset and the recipe."""

from .redaction import redact_recipe


RECIPE_FILE = "recipe.yaml"


def lambda_trajectory(log_history: list[dict]) -> list[tuple[int, float]]:
    """(step, λ) for every logged optimizer step."""
    return [(entry["step"], entry["lambda/value"]) for entry in log_history if "lambda/value" in entry]


def token_preference_card_section(
    args,
    method_lines: list[str],
    log_history: list[dict],
    final_lambda: float,
    dataset_name: str | None = None,
    recipe_text: str | None = None,
) -> str:
    """
    The section for a run with config `args`: `method_lines` (the trainer's `model_card_lines()`), the token
    preference's settings and λ's trajectory, the training data and the recipe YAML (`recipe_text`, its secrets
    redacted) when given.
    """
    lines = ["", "## λ-GRPO", "", *method_lines, ""]
    if args.token_preference == "lambda":
        rule = f"{args.lambda_optimizer.upper()}, lr {args.lambda_learning_rate:g}" if args.learn_lambda else "fixed"
        lines += [
            "| | |",
            "|---|---|",
            f"| weights | f_i = G · softmax_i((1 + r·z_i)^λ), reducer r = {args.reducer:.6g} |",
            f"| λ | initial {args.lambda_init:g}, {rule} |",
            f"| final λ | {final_lambda:.6g} |",
        ]
        trajectory = lambda_trajectory(log_history)
        if trajectory:
            values = [value for _, value in trajectory]
            lines.append(
                f"| λ trajectory | {len(values)} logged steps, min {min(values):.6g}, max {max(values):.6g}, "
                f"first {values[0]:.6g} (step {trajectory[0][0]}), last {values[-1]:.6g} (step {trajectory[-1][0]}) |"
            )
            stride = max(1, len(trajectory) // 10)
            sampled = trajectory[::stride] + ([trajectory[-1]] if (len(trajectory) - 1) % stride else [])
            lines += ["", "λ by step: " + ", ".join(f"{step}: {value:.4g}" for step, value in sampled)]
    if dataset_name:
        lines += ["", f"Training data: `{dataset_name}`."]
    if recipe_text is not None:
        recipe_text, redacted = redact_recipe(recipe_text)
        lines += ["", f"Recipe (`{RECIPE_FILE}` in this repository):", "", "```yaml", recipe_text.strip(), "```"]
        if redacted:
            lines += ["", f"Secrets in the recipe were redacted before publishing: {', '.join(redacted)}."]
    return "\n".join(lines) + "\n"
