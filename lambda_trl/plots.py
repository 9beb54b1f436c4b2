import json


PANELS = [
    ("reward", "mean reward"),
    ("accuracy", "accuracy (reward = +1)"),
    ("lambda/value", "λ"),
    ("completions/mean_length", "mean completion length"),
    ("entropy", "token entropy"),
    ("token_preference/f_std", "std of f within the batch"),
]


def read_metrics(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_training_curves(metrics_path: str, output_path: str, title: str | None = None) -> str:
    """One PNG with a panel per metric present in the metrics JSONL (reward, accuracy, λ, length, entropy, f)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in read_metrics(metrics_path) if "reward" in r or "lambda/value" in r]
    panels = [(key, label) for key, label in PANELS if any(key in r for r in records)]
    if not panels:
        raise ValueError(f"{metrics_path} has no training metrics to plot.")
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    for axis, (key, label) in zip(axes[0], panels):
        points = [(r["step"], r[key]) for r in records if key in r]
        axis.plot(*zip(*points), marker="o", markersize=3)
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(output_path, dpi=110)
    plt.close(figure)
    return output_path
