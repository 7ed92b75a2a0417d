"""Figures, drawn with matplotlib's Agg backend (no display needed).

Each function takes plain numbers (as written to results/) and a path, so a figure can be
redrawn from the JSON without rerunning anything.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGURE3_METRICS = ("accuracy", "precision", "recall", "f1")


def figure3_metrics(bars: dict[str, dict[str, dict]], path: str, title: str = "") -> None:
    """Figure 3: grouped bars of the four metrics per model, with 95 % CI error bars.

    Args:
      bars: model label -> metric -> {"mean", and optionally "ci95_low", "ci95_high"}
        (a claim without an interval is drawn hatched, without error bars).
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(bars)
    x = np.arange(len(FIGURE3_METRICS))
    for i, (label, metrics) in enumerate(bars.items()):
        means = np.array([100 * metrics[m]["mean"] for m in FIGURE3_METRICS])
        has_ci = all("ci95_low" in metrics[m] for m in FIGURE3_METRICS)
        err = None
        if has_ci:
            lo = np.array([100 * metrics[m]["ci95_low"] for m in FIGURE3_METRICS])
            hi = np.array([100 * metrics[m]["ci95_high"] for m in FIGURE3_METRICS])
            err = np.stack([means - np.maximum(lo, 0), np.minimum(hi, 100) - means])
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, means, width, yerr=err, capsize=3,
               label=label, hatch=None if has_ci else "//", alpha=0.9)  # fmt: skip
    ax.set_xticks(x, [m.capitalize() if m != "f1" else "F1" for m in FIGURE3_METRICS])
    ax.set_ylabel("%")
    ax.set_ylim(85, 100.5)
    ax.set_title(title or "Figure 3: classification metrics (error bars: 95 % CI over CV runs)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def confusion_matrix_plot(counts: dict[str, int], path: str, title: str) -> None:
    """2×2 confusion matrix (rows: true benign/malignant; columns: predicted), summed over runs."""
    m = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v}\n({100 * v / m[i].sum():.1f} %)", ha="center", va="center",
                color="white" if v > m.max() / 2 else "black")  # fmt: skip
    ax.set_xticks([0, 1], ["benign", "malignant"])
    ax.set_yticks([0, 1], ["benign", "malignant"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
