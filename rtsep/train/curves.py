"""Training curves from a run's ``log.jsonl`` to a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def plot_curves(log_path: Path, png_path: Path, smoothing_steps: int = 50) -> None:
    """Plot the smoothed training losses and the validation scores against steps: the split's
    (solid) and, when validated, the user scenes' (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line]
    train = [r for r in records if "total" in r]
    valid = [r for r in records if "validation_eda_si_snri" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("separation", "extraction", "existence", "alignment"):
        points = [(r["step"], r[key]) for r in train if key in r]
        if len(points) > smoothing_steps:
            steps, values = np.array(points).T
            kernel = np.ones(smoothing_steps) / smoothing_steps
            left.plot(steps[smoothing_steps - 1 :], np.convolve(values, kernel, "valid"), label=key)
    left.set_xlabel("step")
    left.set_title("training losses (moving average)")
    if left.lines:  # a run shorter than the smoothing window has no curve yet
        left.legend()
    for key, name in (
        ("eda_si_snri", "EDA separation SI-SNRi (dB)"),
        ("label_si_snri", "label extraction SI-SNRi (dB)"),
        ("count_accuracy", "count accuracy"),
    ):
        for prefix, style in (("validation", "-"), ("scenes", "--")):
            points = [
                (r["step"], r[f"{prefix}_{key}"])
                for r in valid
                if r.get(f"{prefix}_{key}") is not None
            ]
            if points:
                steps, values = np.array(points).T
                right.plot(steps, values, style, marker="o", label=f"{prefix}: {name}")
    right.set_xlabel("step")
    right.set_title("quick validation")
    if right.lines:
        right.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
