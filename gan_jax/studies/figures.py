"""Figures, drawn with matplotlib's Agg backend (no display needed).

Each function takes plain numbers (as written to results/) and a path or binary file, so a figure can be
redrawn from the JSON without rerunning anything.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGURE3_METRICS = ("accuracy", "precision", "recall", "f1")


def figure3_metrics(bars: dict[str, dict[str, dict]], path, title: str = "") -> None:
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
        ax.bar(
            x + (i - (len(bars) - 1) / 2) * width,
            means,
            width,
            yerr=err,
            capsize=3,
            label=label,
            hatch=None if has_ci else "//",
            alpha=0.9,
        )
    ax.set_xticks(x, [m.capitalize() if m != "f1" else "F1" for m in FIGURE3_METRICS])
    ax.set_ylabel("%")
    ax.set_ylim(0, 100.5)  # from 0: a cut axis made small differences look large
    ax.set_title(title or "Figure 3: classification metrics (error bars: 95 % CI over CV runs)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130, format="png")
    plt.close(fig)


def confusion_matrix_plot(counts: dict[str, int], path, title: str) -> None:
    """2×2 confusion matrix (rows: true benign/malignant; columns: predicted), summed over runs."""
    m = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(
            j,
            i,
            f"{v}\n({100 * v / m[i].sum():.1f} %)",
            ha="center",
            va="center",
            color="white" if v > m.max() / 2 else "black",
        )
    ax.set_xticks([0, 1], ["benign", "malignant"])
    ax.set_yticks([0, 1], ["benign", "malignant"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(textwrap.fill(title, 40), fontsize=9)  # long titles wrap instead of being cut
    fig.tight_layout()
    fig.savefig(path, dpi=130, format="png")
    plt.close(fig)


def figure5_energy(tasks: dict[str, dict], source_label: str, path, title: str = "") -> None:
    """Figure 5: energy against the number of tasks, one panel per kind of task, each with its
    measured points, the least-squares line and its slope (joules per task).

    Args:
      tasks: kind -> {"unit": "prediction", "points": [{"n_tasks", "joules"}, ...],
        "fit": {"joules_per_task", "intercept_joules"}} (the "tasks" part of energy.json).
      source_label: how the energy was obtained, e.g. "measured (rapl)" or "ESTIMATE (...)";
        it goes into every legend, so an estimate is never shown as a measurement.
    """
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.2), squeeze=False)
    for ax, (kind, t) in zip(axes[0], tasks.items(), strict=True):
        n = np.array([p["n_tasks"] for p in t["points"]], float)
        joules = np.array([p["joules"] for p in t["points"]], float)
        ax.plot(n, joules, "o", alpha=0.6, label=f"windows ({source_label})")
        fit = t["fit"]
        grid = np.linspace(0, n.max() * 1.05, 50)
        ax.plot(
            grid,
            fit["intercept_joules"] + fit["joules_per_task"] * grid,
            "-",
            label=f"fit: {fit['joules_per_task']:.4g} J per {t['unit']} {fit['intercept_joules']:+.3g} J",
        )
        ax.set_xlabel(f"number of tasks ({t['unit']}s)")
        ax.set_ylabel("energy (J)")
        ax.set_title(kind, fontsize=10)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title or f"Figure 5: energy vs number of tasks ({source_label})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130, format="png")
    plt.close(fig)


def label_scarcity_plot(study: dict, path) -> None:
    """Accuracy and ROC-AUC (mean, 95 % CI band) of every model against the number of labelled
    training rows per fold (log scale), from `label_study.json`."""
    entries = study["per_fraction"]
    n_labels = [e["labeled_per_run_mean"] for e in entries]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    for ax, metric in zip(axes, ("accuracy", "roc_auc")):
        for name in entries[0]["models"]:
            s = [e["models"][name]["summary"][metric] for e in entries]
            mean = np.array([100 * v["mean"] for v in s])
            ax.plot(n_labels, mean, marker="o", label=name, lw=2.2 if "paper" in name else 1.2)
            ax.fill_between(
                n_labels, [100 * v["ci95_low"] for v in s], [100 * v["ci95_high"] for v in s], alpha=0.12
            )
        ax.set_xscale("log")
        ax.set_xlabel("labelled training rows per fold (log scale)")
        ax.set_ylabel(f"{'ROC-AUC' if metric == 'roc_auc' else 'accuracy'} (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Label scarcity: held-out metrics vs number of labels (bands: 95 % CI over CV runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=130, format="png")
    plt.close(fig)


def image_grid(images: np.ndarray, columns: int = 8, pad: int = 2) -> np.ndarray:
    """uint8 images [N, H, W, C] → one uint8 picture [rows·(H+pad)+pad, columns·(W+pad)+pad, C],
    tiled row by row on a white background (empty cells stay white)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"expected uint8 images [N, H, W, C] with N ≥ 1, got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    for i, image in enumerate(images):
        top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_image_grid(images: np.ndarray, path, columns: int = 8) -> None:
    """Writes `image_grid(images, columns)` as a PNG to `path` (a path or binary file)."""
    from PIL import Image

    grid = image_grid(images, columns)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path, format="PNG")


def feature_histograms(real: np.ndarray, synthetic: np.ndarray, names, path, title: str = "") -> None:
    """Per-feature histogram overlay (density) of held-out real vs synthetic rows, 6 × 5 panels
    (one per name of the 30 WDBC features)."""
    fig, axes = plt.subplots(6, 5, figsize=(15, 16))
    for j, ax in enumerate(axes.flat):
        bins = np.histogram_bin_edges(np.r_[real[:, j], synthetic[:, j]], bins=30)
        ax.hist(real[:, j], bins=bins, density=True, alpha=0.5, label="real (held out)")
        ax.hist(synthetic[:, j], bins=bins, density=True, alpha=0.5, label="synthetic")
        ax.set_title(names[j], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or "Per-feature distributions: held-out real rows vs synthetic rows")
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


def correlation_matrices(real: np.ndarray, synthetic: np.ndarray, path) -> None:
    """Pearson correlation matrices of real and synthetic rows, and their absolute difference."""
    r, s = np.corrcoef(real, rowvar=False), np.corrcoef(synthetic, rowvar=False)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, m, t in zip(axes, (r, s, np.abs(r - s)), ("real (held out)", "synthetic", "|difference|")):
        im = ax.imshow(m, vmin=-1 if t != "|difference|" else 0, vmax=1, cmap="coolwarm")
        ax.set_title(f"Pearson correlation: {t}")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
