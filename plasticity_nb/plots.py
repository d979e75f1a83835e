"""Publication figures from the tidy tables (classic seaborn on long-form DataFrames), style set once."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .stats import Estimate

ARM_COLOURS = {"scratch": "#1b7837", "warm": "#c51b7d"}


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.2)
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight"})


def learning_curves(history: pd.DataFrame, last_k: int, title: str = "") -> sns.FacetGrid:
    """Train and test accuracy per epoch for warm and scratch: mean over seeds, band = ±1 sd.

    Epoch 1 is the first tuning epoch for both arms; the warm arm's pretraining is drawn at epochs <= 0.
    The metric window (last `last_k` tuning epochs) is shaded.
    """
    set_style()
    long = history.melt(id_vars=["seed", "arm", "tune_epoch"], value_vars=["train_acc", "test_acc"],
                        var_name="metric", value_name="accuracy (%)").dropna(subset=["accuracy (%)"])
    long["metric"] = long.metric.map({"train_acc": "train accuracy", "test_acc": "test accuracy"})
    grid = sns.relplot(data=long, x="tune_epoch", y="accuracy (%)", hue="arm", col="metric", kind="line",
                       errorbar="sd", palette=ARM_COLOURS, facet_kws={"sharey": False}, height=3.6, aspect=1.3)
    end = history.tune_epoch.max()
    n_seeds = history.seed.nunique()
    for ax in grid.axes.flat:
        ax.axvspan(end - last_k + 0.5, end + 0.5, color="0.85", zorder=0, label="metric window")
        ax.axvline(0.5, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel("epoch (tuning starts at 1; warm pretraining <= 0)")
    grid.set_titles("{col_name}")
    grid.figure.suptitle(f"{title} (mean ± sd over {n_seeds} seeds)".strip(), y=1.03)
    return grid


def gap_plot(gaps: pd.DataFrame, estimate: Estimate, title: str = "") -> plt.Figure:
    """Per-seed gaps (dots) and the mean gap with its paired 95% t CI (error bar)."""
    set_style()
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    ax.axhline(0, color="0.3", lw=0.8)
    sns.stripplot(y=gaps.gap_pp, ax=ax, color="0.35", size=6, jitter=0.08, label="seeds")
    low, high = estimate.mean - estimate.ci_low, estimate.ci_high - estimate.mean
    ax.errorbar([0.25], [estimate.mean], yerr=[[low], [high]], fmt="o", color=ARM_COLOURS["warm"], capsize=6, lw=2,
                label="mean, 95% CI")
    ax.set_xlim(-0.5, 0.75)
    ax.set_xticks([])
    ax.set_ylabel("gap: scratch - warm (pp)")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[-2:], names[-2:], loc="best", frameon=False)
    ax.set_title(f"{title}\n{estimate}".strip(), fontsize=9)
    return fig


def save_figure(figure: plt.Figure | sns.FacetGrid, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Save as PNG (for reports) and PDF (for papers) under `<out>/figures/`; returns the paths."""
    figure = getattr(figure, "figure", figure)
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix in (".png", ".pdf"):
        path = folder / f"{name}{suffix}"
        tmp = path.with_name(f".{path.stem}.{os.getpid()}{suffix}")
        figure.savefig(tmp)
        os.replace(tmp, path)
        paths.append(path)
    return paths
