"""The report's figures, drawn with matplotlib (Agg backend: no display needed).

Each function takes plain numbers and returns a `Figure`; `save` writes it as SVG and
PNG. Nothing here computes a metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: the report runs on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]


def save(fig: Figure, folder: Path, name: str) -> tuple[Path, Path]:
    """Write ``name.svg`` and ``name.png`` (120 dpi) into ``folder``; close the figure."""
    folder.mkdir(parents=True, exist_ok=True)
    svg, png = folder / f"{name}.svg", folder / f"{name}.png"
    fig.savefig(svg, bbox_inches="tight")
    fig.savefig(png, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return svg, png


def group_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    bounds: Mapping[str, Sequence[float | None]] | None = None,
    xlim: tuple[float, float] | None = None,
) -> Figure:
    """Horizontal bars, one row per label and one bar per series; ``bounds`` draws a
    marker per row for each named bound (e.g. uniform and human WD)."""
    n, k = len(labels), max(1, len(series))
    # a row per label, tall enough for k bars; legend under the axes (constrained layout
    # keeps it clear of the bars and the tick labels)
    fig, ax = plt.subplots(figsize=(8.0, 1.8 + n * (0.12 + 0.09 * k)), layout="constrained")
    y = np.arange(n)
    height = 0.8 / k
    for i, (name, values) in enumerate(series.items()):
        offset = (i - (k - 1) / 2) * height
        ax.barh(y + offset, np.asarray(values, dtype=float), height=height, label=name, color=PALETTE[i % len(PALETTE)])
    markers = ["|", "x", "d"]
    for j, (name, values) in enumerate((bounds or {}).items()):
        vals = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        ax.scatter(vals, y, marker=markers[j % len(markers)], s=90, color="black" if j == 0 else "#C44E52",
                   zorder=3, label=name, linewidths=2)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(axis="x", alpha=0.3)
    if len(series) > 1 or bounds:
        fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str,
    colorbar: str,
    marks: Sequence[tuple[int, int]] = (),
    annotate: bool = True,
    cmap: str = "viridis_r",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """A matrix with labelled rows and columns, values written in the cells (if few enough),
    and a red frame around each ``(row, column)`` of ``marks``."""
    values = np.asarray(values, dtype=float)
    # room for the rotated column labels below, however few the rows
    fig, ax = plt.subplots(figsize=(max(5.0, 2.5 + 0.42 * len(col_labels)), 3.0 + 0.36 * max(len(row_labels), 3)))
    masked = np.ma.masked_invalid(values)
    im = ax.imshow(masked, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    if annotate and values.size <= 600:
        low, high = im.get_clim()
        mid = (low + high) / 2
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v > mid else "black")
    for i, j in marks:
        ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    fig.colorbar(im, ax=ax, label=colorbar, fraction=0.04, pad=0.02)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def calibration(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    labels: Sequence[str] = (),
) -> Figure:
    """One point per item (x: the reference, y: the model) for each named series, with the diagonal
    y = x where the two agree; ``labels`` names the points of the first series (if few enough)."""
    fig, ax = plt.subplots(figsize=(6.0, 6.0), layout="constrained")
    values = [v for xs, ys in series.values() for v in (*xs, *ys) if np.isfinite(v)]
    top = max([*values, 0.01]) * 1.08
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="calibrated (y = x)")
    for i, (name, (xs, ys)) in enumerate(series.items()):
        ax.scatter(xs, ys, s=28, color=PALETTE[i % len(PALETTE)], label=name, alpha=0.85, zorder=3)
    if labels and len(labels) <= 30:
        xs, ys = next(iter(series.values()))
        for x, y, text in zip(xs, ys, labels):
            ax.annotate(text, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return fig
