"""Figures and tables shared by the chapters. Each figure function returns a matplotlib Figure,
drawn in the book's style (`lenet.mplstyle`, applied by `page.start()`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import page


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
                ax.set_title(titles[i])
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
        ax.grid()
    axes[-1].legend(ncol=2)
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
    """Glue `fig` under `name` for a `{glue:figure}` and close it, so that in the book it shows
    only there (outside the build `page.glue` shows it in place). The background is made opaque
    white: the inline backend draws it transparent, which a dark theme turns unreadable."""
    fig.patch.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    page.glue(name, fig, display=False)
    plt.close(fig)


def table(df, caption: str, precision: int = 2, index: bool = True):
    """A DataFrame styled for the book: a caption, numbers at a fixed precision and right-aligned
    (text left-aligned), the index hidden unless `index` (chapters 01 to 05)."""
    import pandas as pd

    df = df.infer_objects()  # a transposed table keeps its numbers as objects
    numeric = [
        c
        for c in df.columns
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]
    style = df.style.format(precision=precision, thousands=",", na_rep="–").set_caption(caption)
    style = style.set_properties(subset=numeric, **{"text-align": "right"})
    style = style.set_table_styles(
        [{"selector": "caption", "props": "caption-side: top; text-align: left;"}], overwrite=False
    )
    return style if index else style.hide(axis="index")


def c3_table(connected):
    """Table I as a grid (chapter 05): a coloured cell where a C3 map (column) reads an S2 map
    (row), the colour giving how many S2 maps that C3 map reads. `connected` is (16, 6) bool."""
    from matplotlib.patches import Patch, Rectangle

    fan_in = np.asarray(connected).sum(1)
    colours = {n: f"C{i}" for i, n in enumerate(sorted(set(fan_in.tolist())))}
    fig, ax = plt.subplots(figsize=(8, 3.3))
    for k, row in enumerate(np.asarray(connected)):
        for m, on in enumerate(row):
            face = colours[fan_in[k]] if on else "white"
            ax.add_patch(Rectangle((k - 0.5, m - 0.5), 1, 1, facecolor=face, edgecolor="0.7"))
        ax.text(k, len(row) + 0.1, str(fan_in[k]), ha="center", va="center", fontsize=8)
    ax.set(xlim=(-0.5, len(fan_in) - 0.5), ylim=(len(row) + 0.5, -0.5), aspect="equal",
           xticks=range(len(fan_in)), yticks=range(len(row)), ylabel="S2 map",
           xlabel="C3 map (bottom row: number of S2 maps it reads)")  # fmt: skip
    handles = [Patch(color=c, label=f"{n} inputs") for n, c in colours.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


def receptive_centres(digit, fields):
    """A digit in the input field with the receptive-field centres of C3's units, the area they
    tile, the field of C3's first unit and C5's single centre (chapter 05). `fields` is
    `receptive.receptive_fields(model)` indexed by layer."""
    from matplotlib.patches import Rectangle

    c3, c5 = fields.loc["C3"], fields.loc["C5"]
    side = len(digit)
    centres = c3["first_centre"] + c3["jump"] * np.arange(c3["units"])
    lo, span = c3["first_centre"] - c3["jump"] / 2, c3["centre_span"]
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.imshow(digit, cmap="gray_r", extent=(0, side, side, 0))
    cy, cx = np.meshgrid(centres, centres)
    ax.plot(cx.ravel(), cy.ravel(), ".", color="C3", ms=4, label="centres of C3's units")
    ax.add_patch(Rectangle((lo, lo), span, span, fill=False, ec="C3", lw=1.5,
                           label=f"the {span}x{span} area they tile"))  # fmt: skip
    ax.add_patch(Rectangle((0, 0), c3["size"], c3["size"], fill=False, ec="C0", ls="--", lw=1.5,
                           label="field of C3's first unit"))  # fmt: skip
    ax.plot([c5["first_centre"]], [c5["first_centre"]], "*", color="C1", ms=12,
            label="centre of C5's units (field: all)")  # fmt: skip
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.01))
    ax.set(xlim=(0, side), ylim=(side, 0))
    return fig


def squashing(x):
    """The notes' figures 1 and 2 redrawn on the points `x` (chapter 05): the logistic sigmoid
    S; then S beside tanh(x) = 2S(2x) - 1, the notes' 2S(x) - 1 and the paper's scaled tanh."""
    import torch

    from lenet_lib.nets.models import scaled_tanh

    S = 1 / (1 + np.exp(-x))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].plot(x, S, color="C0", label="S(x)")
    axes[1].plot(x, S, color="C0", label="S(x)")
    axes[1].plot(x, np.tanh(x), color="C3", label="tanh(x) = 2S(2x) - 1")
    axes[1].plot(x, 2 * S - 1, color="k", ls="--", label="2S(x) - 1 (the notes)")
    paper = scaled_tanh(torch.tensor(x)).numpy()
    axes[1].plot(x, paper, color="C2", ls=":", label="1.7159 tanh(2x/3) (the paper)")
    titles = ["the sigmoid (notes' figure 1)", "tanh and the sigmoid (notes' figure 2)"]
    for ax, title in zip(axes, titles, strict=True):
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set(title=title, xlabel="x")
        ax.legend(fontsize=7)
    return fig


def kernels(weights: dict):
    """The kernels (maps, K, K) of one layer per network, a row each on its own symmetric colour
    scale (chapter 04). `weights` maps a network's name to its kernels."""
    n = max(len(w) for w in weights.values())
    fig, axes = plt.subplots(
        len(weights), n, figsize=(7 / 6 * n, 1.35 * len(weights)), squeeze=False
    )
    for row, (name, w) in zip(axes, weights.items(), strict=True):
        w = np.asarray(w)
        lim = np.abs(w).max()
        for k, ax in enumerate(row):
            ax.axis("off")
            if k < len(w):
                ax.imshow(w[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_title(f"{name} {k}", fontsize=8)
    return fig


def digit_maps(digits, maps, lim: float):
    """Each digit (N, H, W) beside its feature maps (N, C, H', W') on the scale ±`lim`
    (chapter 04)."""
    n, c = len(maps), maps.shape[1]
    fig, axes = plt.subplots(n, c + 1, figsize=(8 / 7 * (c + 1), 1.25 * n), squeeze=False)
    for i, row in enumerate(axes):
        row[0].imshow(digits[i], cmap="gray_r")
        for k in range(c):
            row[k + 1].imshow(maps[i, k], cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[0, k + 1].set_title(f"map {k}", fontsize=8)
        for ax in row:
            ax.axis("off")
    return fig


def shifted_maps(moved, maps, lim: float, columns=(16, 14)):
    """Digits moved right by 0, 1, ... pixels (N, H, W, top) and one feature map of each
    (N, H', W', bottom) on the scale ±`lim`, a fixed column dotted in each row (chapter 04)."""
    n = len(moved)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.2), squeeze=False)
    for k in range(n):
        axes[0, k].imshow(moved[k], cmap="gray_r")
        axes[0, k].set_title(f"shift {k}", fontsize=8)
        axes[1, k].imshow(maps[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
        for ax, x0 in zip(axes[:, k], columns, strict=True):
            ax.axvline(x0, color="0.5", ls=":", lw=1)
            ax.set(xticks=[], yticks=[])
    return fig


def shift_layers(by_layer):
    """Per network, each layer's change against the shift (chapter 04). `by_layer`: rows
    (network, layer), columns the shifts in pixels."""
    names = by_layer.index.unique(level=0)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), sharey=True)
    for ax, name in zip(np.ravel(axes), names, strict=True):
        by_layer.loc[name].T.plot(ax=ax, marker="o", title=f"{name} network", legend=False)
        ax.set(xlabel="shift (pixels)", xticks=list(by_layer.columns))
        ax.grid(alpha=0.3)
    np.ravel(axes)[0].set_ylabel("change / change for another digit")
    np.ravel(axes)[-1].legend(title="layer", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def gain_curves(measures, marks=()):
    """`receptive.gate_measures`' R² of the blur and share of Boolean outputs against the gain,
    one panel per gate, the gains in `marks` dotted (chapter 04)."""
    gates = list(measures["gate"].unique())
    fig, axes = plt.subplots(1, len(gates), figsize=(5 * len(gates), 3.4), sharey=True)
    for ax, gate in zip(np.ravel(axes), gates, strict=True):
        measures[measures.gate == gate].plot(x="gain", y=["R2 linear", "Boolean share"], logx=True,
                                             marker=".", ax=ax, title=f"bias set for {gate}")  # fmt: skip
        for g in marks:
            ax.axvline(g, color="k", ls=":", lw=1)
        ax.grid(alpha=0.3)
    np.ravel(axes)[0].set_ylabel("R² of the blur / share of Boolean outputs")
    return fig


def panels(images, titles, lims):
    """Images side by side, each on its own symmetric colour scale ±lim (chapter 04)."""
    fig, axes = plt.subplots(1, len(images), figsize=(2 * len(images), 2.3), squeeze=False)
    for ax, img, title, lim in zip(axes[0], images, titles, lims, strict=True):
        ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return fig
