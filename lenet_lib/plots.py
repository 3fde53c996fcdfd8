"""Figures shared by the chapters. Each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def digit_grid(images, titles=None, ncols=10, size=1.0, cmap="gray_r"):
    """A grid of digit images (N, H, W) with optional titles (chapters 01, 08, 09)."""
    images = np.asarray(images)
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def curves(metrics: dict, columns=("loss", "acc"), title=None):
    """Training and test curves per epoch for several runs: {label: metrics DataFrame}
    (chapters 06 and 07)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 3.8))
    axes = np.atleast_1d(axes)
    for ax, col in zip(axes, columns, strict=True):
        for i, (label, m) in enumerate(metrics.items()):
            color = f"C{i}"
            ax.plot(m["epoch"], m[f"train_{col}"], color=color, ls="--", label=f"{label} train")
            ax.plot(m["epoch"], m[f"test_{col}"], color=color, label=f"{label} test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy" if col == "loss" else "accuracy (%)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def misread(images, y, y_hat, ncols=15, size=0.75):
    """Digits with "true→answer" under each (chapters 08 and 09)."""
    fig = digit_grid(images, ncols=ncols, size=size)
    for ax, t, p in zip(fig.axes, y, y_hat, strict=False):
        ax.text(0.5, -0.08, f"{int(t)}\u2192{int(p)}", transform=ax.transAxes, ha="center",
                va="top", fontsize=7)  # fmt: skip
    return fig


def dots(labels, notes, seeds, xlabel="test accuracy (%)"):
    """Per row: the notes' value (a cross) beside each of our seeds (small dots) and their
    mean with one standard deviation (a bar): the Table 2 figure of chapter 07."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(labels) + 1.2))
    for i, (n, s) in enumerate(zip(notes, seeds, strict=True)):
        s = np.asarray(s, dtype=float)
        ax.plot(s, np.full(len(s), i + 0.12), ".", color="C0", alpha=0.6, ms=5)
        sd = s.std(ddof=1) if len(s) > 1 else 0.0
        ax.errorbar(s.mean(), i + 0.12, xerr=sd, fmt="o", color="C0", capsize=3,
                    label="ours: mean ± sd, seeds" if i == 0 else None)  # fmt: skip
        ax.plot(n, i - 0.12, "x", color="C3", ms=8, mew=2, label="notes" if i == 0 else None)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def error_lines(frame, reference=None, ref_label=None, styles=None, ylabel="error (%)"):
    """Columns of `frame` (indexed by pass) as lines on a log scale, with an optional
    horizontal reference (chapter 09)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for i, col in enumerate(frame.columns):
        style = styles[i] if styles else "-"
        ax.plot(frame.index, frame[col], style, marker=".", label=col)
    if reference is not None:
        ax.axhline(reference, color="k", ls=":", label=ref_label)
    ax.set(xlabel="pass (epoch)", ylabel=ylabel, yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def ranges(table, xlabel):
    """One row per label, one series per column group: median with its 5-95% range, on a
    log scale; `table` has columns (series, 'p5'|'median'|'p95') (chapter 09's rates)."""
    series = list(dict.fromkeys(table.columns.get_level_values(0)))
    fig, ax = plt.subplots(figsize=(6.5, 0.42 * len(table) * len(series) / 2 + 1.5))
    step = 0.8 / len(series)
    for j, name in enumerate(series):
        y = np.arange(len(table)) + (j - (len(series) - 1) / 2) * step
        t = table[name]
        ax.errorbar(t["median"], y, xerr=[t["median"] - t["p5"], t["p95"] - t["median"]],
                    fmt="o", ms=4, capsize=2, label=name)  # fmt: skip
    ax.set_yticks(range(len(table)), table.index)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel=xlabel)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def feature_maps(maps, ncols=None, size=1.2, cmap="RdBu_r", titles=None):
    """The maps (C, H, W) of one layer side by side (chapter 04)."""
    maps = np.asarray(maps)
    ncols = ncols or len(maps)
    return digit_grid(maps, titles=titles, ncols=ncols, size=size, cmap=cmap)


def glue_figure(name: str, fig) -> None:
    """Glue `fig` under `name` for a `{glue:figure}` and close it, so it shows only there.
    The background is made opaque white (the notebook backend draws it transparent, which a
    dark theme turns unreadable)."""
    from myst_nb import glue

    fig.patch.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    glue(name, fig, display=False)
    plt.close(fig)
