"""Publication figures from the tidy tables (classic seaborn on long-form DataFrames), style set once."""
from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..analysis.claims import in_registry_order
from ..analysis.stats import Estimate
from ..core.files import write_atomic
from ..core.paths import is_bundle
from ..studies.study_result import StudyResult

ARM_COLOURS = {"scratch": "#1b7837", "warm": "#c51b7d"}


def diverged_note(gaps: pd.DataFrame) -> str:
    """Seeds whose warm or scratch run diverged have no gap: say how many were left out."""
    missing = int(gaps.gap_pp.isna().sum())
    return f"; {missing} seed(s) with a diverged run left out" if missing else ""


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
    diverged = history.drop_duplicates(["seed", "arm"]).status.eq("diverged").sum()
    if diverged:
        title = f"{title}, {diverged} diverged run(s) end early"
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
    ax.set_title(f"{title}\n{estimate}{diverged_note(gaps)}".strip(), fontsize=9)
    return fig


def sweep_plot(result: StudyResult, x: str, hue: str | None = None, log_x: bool = False, title: str = "",
               labels: dict | None = None) -> plt.Figure:
    """Gap (scratch - warm) along a swept value: per-seed dots, and the mean with its paired 95% t CI.

    `hue` draws one series per value of a second condition; `labels` renames x values on the axis.
    A relabelled x is drawn at evenly spaced positions, a line and a band between them. A categorical x
    (an optimiser, a remedy) gets error bars and no line, since nothing lies between its values; so does a series
    with a single value.
    """
    set_style()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.axhline(0, color="0.3", lw=0.8)
    values = list(dict.fromkeys(result.estimates[x]))
    categorical = labels is None and not pd.api.types.is_numeric_dtype(result.estimates[x])
    evenly = labels is not None or categorical
    where = (lambda v: values.index(v)) if evenly else (lambda v: v)
    levels = list(dict.fromkeys(result.estimates[hue])) if hue else [None]
    palette = sns.color_palette("viridis" if hue else ["#c51b7d"], len(levels))
    drawn = set()  # "bars", "band": what the title names as the 95% CI
    for index, (colour, level) in enumerate(zip(palette, levels)):
        est = result.estimates if hue is None else result.estimates[result.estimates[hue] == level]
        gaps = result.gaps if hue is None else result.gaps[result.gaps[hue] == level]
        shift = 0.2 * (index - (len(levels) - 1) / 2) / max(len(levels) - 1, 1) if categorical else 0
        xs = np.array([where(v) for v in est[x]], dtype=float) + shift
        finite = lambda column: est[column].replace([np.inf, -np.inf], np.nan)  # 1 seed: no CI to draw
        label = f"{hue} = {level}" if hue else "mean gap"
        if categorical or len(xs) == 1:  # a band needs two values to span
            errors = np.vstack([est.effect_pp - finite("ci_low_pp"), finite("ci_high_pp") - est.effect_pp])
            ax.errorbar(xs, est.effect_pp, yerr=errors, fmt="o", color=colour, capsize=3, lw=1.5, label=label)
            drawn.add("bars")
        else:
            ax.plot(xs, est.effect_pp, "o-", color=colour, lw=2, label=label)
            ax.fill_between(xs, finite("ci_low_pp"), finite("ci_high_pp"), color=colour, alpha=0.2, lw=0)
            drawn.add("band")
        if categorical:
            spread = 0.06  # inside the hue's dodge
        else:
            spread = 0 if log_x else 0.03 * (np.ptp(xs) or 1)
        jitter = np.random.default_rng(0).uniform(-spread, spread, len(gaps))
        ax.scatter([where(v) + shift for v in gaps[x]] + jitter, gaps.gap_pp, color=colour, s=14, alpha=0.6,
                   zorder=3)
    if evenly:
        names = [str((labels or {}).get(v, v)) for v in values]
        slanted = categorical and max(map(len, names)) > 6  # long names would run into each other
        ax.set_xticks(range(len(values)), names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    else:
        if log_x:
            ax.set_xscale("log", base=2 if all(float(v).is_integer() for v in values) else 10)
        ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("gap: scratch - warm (pp)")
    n_seeds = result.gaps.seed.nunique()
    interval = " and ".join(sorted(drawn))  # "band and bars" where a lone value joins bands
    ax.set_title(f"{title} ({n_seeds} paired seeds; {interval}: 95% CI{diverged_note(result.gaps)})".strip(),
                 fontsize=10)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def condition_curves(history: pd.DataFrame, condition: str, last_k: int, title: str = "",
                     metric: str = "test_acc") -> sns.FacetGrid:
    """A metric (default test accuracy) per epoch of the final phase, warm vs scratch, one panel per
    condition (mean, band ±1 sd)."""
    set_style()
    tested = history.dropna(subset=[metric])
    tested = tested[tested.tune_epoch >= 1]
    grid = sns.relplot(data=tested, x="tune_epoch", y=metric, hue="arm", col=condition, kind="line",
                       errorbar="sd", palette=ARM_COLOURS, col_wrap=min(4, tested[condition].nunique()),
                       height=2.8, aspect=1.1, marker="o", markersize=3)
    end = tested.tune_epoch.max()
    for ax in grid.axes.flat:
        ax.axvspan(end - last_k + 0.5, end + 0.5, color="0.88", zorder=0)
    grid.set_axis_labels("epoch (of the final phase)", metric.replace("_acc", " accuracy (%)").replace("_", " "))
    grid.figure.suptitle(f"{title} (shaded: metric window)".strip(), y=1.03)
    return grid


def blend_schedule_plot(history: pd.DataFrame) -> plt.Figure:
    """Blending runs: the scheduled probability of drawing from the full set, and the realised share."""
    set_style()
    blended = history[(history.arm == "warm") & history.blend_p.notna()]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(data=blended, x="epoch", y="blend_p", hue="gamma", palette="viridis", ax=ax, errorbar=None)
    sns.scatterplot(data=blended.drop_duplicates(["gamma", "epoch", "seed"]), x="epoch", y="blend_from_full",
                    hue="gamma", palette="viridis", ax=ax, legend=False, s=14, alpha=0.6)
    ax.set_ylabel("P(example from the full set)")
    ax.set_title("schedule (lines) and realised share (dots)", fontsize=10)
    return fig


def probe_curves(probes: pd.DataFrame, metrics: list[str], title: str = "") -> sns.FacetGrid:
    """Curvature and noise probes over tuning: one panel per metric, warm vs scratch (mean, band ±1 sd),
    line style per tuning-lr multiplier; log scale but for weight norms (they span orders of magnitude)."""
    set_style()
    long = probes.melt(id_vars=["seed", "arm", "lr_multiplier", "tune_epoch"], value_vars=metrics,
                       var_name="metric", value_name="value")
    grid = sns.relplot(data=long, x="tune_epoch", y="value", hue="arm", style="lr_multiplier", col="metric",
                       col_wrap=min(3, len(metrics)), kind="line", errorbar="sd", palette=ARM_COLOURS, markers=True,
                       facet_kws={"sharey": False}, height=3, aspect=1.15)
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        if ax.get_title() != "weight_norm":
            ax.set_yscale("log")
    grid.set_axis_labels("tuning epoch (0: start of tuning)", "")
    grid.figure.suptitle(f"{title} ({probes.seed.nunique()} seeds)".strip(), y=1.03)
    return grid


def metric_curves(curves: pd.DataFrame, title: str = "") -> sns.FacetGrid:
    """Plasticity metrics over the run (tuning epoch <= 0: pretraining), one panel per metric, one line per
    warm-started condition (mean over seeds, band +/- 1 sd) and plain scratch dashed."""
    set_style()
    warm = curves[curves.arm == "warm"]
    scratch = curves[(curves.arm == "scratch") & (curves.remedy == "none")].assign(remedy="scratch")
    long = pd.concat([warm, scratch], ignore_index=True)
    dashes = {r: (2, 2) if r == "scratch" else "" for r in long.remedy.unique()}
    grid = sns.relplot(data=long, x="tune_epoch", y="value", hue="remedy", style="remedy", dashes=dashes,
                       col="metric", col_wrap=3, kind="line", errorbar="sd", facet_kws={"sharey": False},
                       height=2.8, aspect=1.2)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("tuning epoch (<= 0: pretraining)", "")
    grid.figure.suptitle(f"{title} ({curves.seed.nunique()} seeds)".strip(), y=1.03)
    return grid


def chunk_curves(chunks: pd.DataFrame, scratch_acc: float | None = None, title: str = "") -> plt.Figure:
    """Test accuracy after each chunk of a continual run (studies/continual.chunk_accuracies), one line per remedy
    (mean over seeds, band +/- 1 sd); `scratch_acc`, scratch's final accuracy (all chunks at once, the last chunk's
    steps), as a dashed line."""
    set_style()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    sns.lineplot(data=chunks, x="chunk", y="test_acc", hue="remedy", style="remedy", errorbar="sd", marker="o",
                 ax=ax)
    if scratch_acc is not None and np.isfinite(scratch_acc):
        ax.axhline(scratch_acc, color="0.3", lw=1, ls="--", label="scratch on all chunks")
    ax.set_xticks(sorted(chunks.chunk.unique()))
    ax.set_xlabel("chunk (trained on chunks 1..k)")
    ax.set_ylabel("test accuracy after the chunk (%)")
    ax.set_title(f"{title} ({chunks.seed.nunique()} seeds; band: ±1 sd)".strip(), fontsize=10)
    ax.legend(frameon=False, fontsize=9)
    return fig


def ranking_plot(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Every condition of a remedy table (studies/remedies.remedy_table), ranked by its gap to scratch: left, the
    gap with its 95 % CI (hollow: its premise not shown to hold, uncertain or not met); right, its cost, the warm
    run's overhead per tuning epoch against the plain warm start's."""
    set_style()
    ranked = table.sort_values("gap_pp", ascending=False).reset_index(drop=True)
    fig, (gap, cost) = plt.subplots(1, 2, figsize=(9, 0.38 * len(ranked) + 1.5), sharey=True,
                                    gridspec_kw={"width_ratios": [2, 1]})
    ys = np.arange(len(ranked))
    finite = lambda column: ranked[column].replace([np.inf, -np.inf], np.nan)  # 1 seed: no CI to draw
    errors = np.vstack([ranked.gap_pp - finite("ci_low"), finite("ci_high") - ranked.gap_pp])
    met = (ranked.premise == "met").to_numpy()
    for keep, face in ((met, "#c51b7d"), (~met, "white")):
        gap.errorbar(ranked.gap_pp[keep], ys[keep], xerr=errors[:, keep], fmt="o", color="#c51b7d",
                     markerfacecolor=face, capsize=3)
    gap.axvline(0, color="0.3", lw=0.8)
    gap.set_yticks(ys, ranked.remedy)
    gap.invert_yaxis()
    # two lines: on one, it runs into the cost panel's label
    gap.set_xlabel("gap to scratch (pp, 95 % CI)\nhollow: premise not shown to hold")
    cost.barh(ys, ranked.overhead_pct, color="0.6")
    cost.axvline(0, color="0.3", lw=0.8)
    cost.set_xlabel("overhead per tuning epoch (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(figure: plt.Figure | sns.FacetGrid, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Save as PNG (for reports) and PDF (for papers) under `<out>/figures/`; returns the paths. Nothing is saved
    into a bundle (read-only: its figures are the committed ones), so none are returned."""
    if is_bundle(out_dir):
        return []
    figure = getattr(figure, "figure", figure)
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix in (".png", ".pdf"):
        path = folder / f"{name}{suffix}"
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix[1:])
        write_atomic(path, buffer.getvalue())  # another batch on this folder may write the same figure
        paths.append(path)
    return paths


# A claim's marker colour by its verdict in words (claims.verdict_words), the same word first in every view
VERDICT_COLOURS = {"holds": "#1b7837", "equivalent": "#1b7837", "does not hold": "#c51b7d",
                   "premise not met": "0.15", "estimate only": "#2166ac", "not settled": "0.6"}


def verdict_kind(words: str) -> str:
    """The VERDICT_COLOURS key of a claim's verdict words ("equivalent within ±1 pp" -> "equivalent")."""
    return next((kind for kind in VERDICT_COLOURS if str(words).startswith(kind)), "not settled")


def forest_rows(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims a forest plot draws: those with a finite estimate (a correlation over too few conditions has
    none), in registry order."""
    return in_registry_order(claims[np.isfinite(claims.effect.astype(float))])


def claims_forest(claims: pd.DataFrame, title: str = "") -> plt.Figure:
    """Every claim's estimate (dot, coloured by its verdict in words) and interval (line), one row per claim with a
    finite estimate; zero a line, each claim's smallest effect of interest or bound a dotted tick on its row, an
    equivalence margin a band. Points (pp) claims share the top panel; each other unit gets its own small panel
    below, since a gap in points, a % change of curvature, epochs, r and a slope per doubling cannot share an axis,
    and dividing each by its SESOI would put them on one but hide the unit a reader thinks in."""
    set_style()
    rows = forest_rows(claims)
    if not len(rows):  # e.g. a correlation over too few conditions alone: say so rather than fail
        fig, ax = plt.subplots(figsize=(7, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no claim has a finite estimate yet", ha="center", va="center")
        return fig
    units = sorted(set(rows.unit), key=lambda unit: (unit != "pp", list(rows.unit).index(unit)))
    counts = [int((rows.unit == unit).sum()) for unit in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(7, 0.32 * sum(counts) + 1.1 * len(units) + 0.6),
                             gridspec_kw={"height_ratios": [n + 1.5 for n in counts]}, squeeze=False)
    for ax, unit in zip(axes[:, 0], units):
        forest_panel(ax, rows[rows.unit == unit], unit)
    kinds = [k for k in VERDICT_COLOURS if k in set(rows.verdict_words.map(verdict_kind))]
    handles = [plt.Line2D([], [], marker="o", ls="", color=VERDICT_COLOURS[k], label=k) for k in kinds]
    marked = rows[np.isfinite(rows.sesoi.astype(float))]
    if (marked.test != "equivalence").any():
        handles.append(plt.Line2D([], [], ls=":", color="0.35", label="smallest effect of interest / bound"))
    if (marked.test == "equivalence").any():
        handles.append(matplotlib.patches.Patch(color="#1b7837", alpha=0.15, label="equivalence margin"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.98), frameon=False, fontsize=8)
    fig.suptitle(title or "Every claim's estimate and interval")
    fig.tight_layout()
    return fig


def forest_panel(ax: plt.Axes, rows: pd.DataFrame, unit: str) -> None:
    """One unit's claims: a row each, the first at the top."""
    ax.axvline(0, color="0.3", lw=0.8)
    for y, row in enumerate(rows.itertuples()):
        colour = VERDICT_COLOURS[verdict_kind(row.verdict_words)]
        if np.isfinite([row.ci_low, row.ci_high]).all():  # one seed: no interval to draw
            ax.hlines(y, row.ci_low, row.ci_high, color=colour, lw=2)
        ax.plot(row.effect, y, "o", color=colour, ms=6)
        if np.isfinite(row.sesoi) and row.test == "equivalence":
            ax.fill_betweenx([y - 0.4, y + 0.4], -row.sesoi, row.sesoi, color="#1b7837", alpha=0.15, lw=0)
        elif np.isfinite(row.sesoi):
            ax.vlines(row.sesoi, y - 0.4, y + 0.4, color="0.35", ls=":", lw=1.5)
    ax.set_yticks(range(len(rows)), [f"{row.claim} (n={row.n_seeds})" for row in rows.itertuples()])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(f"estimate, {unit} (interval: 95 %, 90 % for equivalences, bounds and trends)", fontsize=9)
