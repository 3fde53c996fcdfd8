"""Figures and tables shared by the chapters. Each figure function returns a matplotlib Figure."""

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


def feature_maps(maps, ncols=None, size=1.2, cmap="RdBu_r", titles=None):
    """The maps (C, H, W) of one layer side by side (chapter 04)."""
    maps = np.asarray(maps)
    ncols = ncols or len(maps)
    return digit_grid(maps, titles=titles, ncols=ncols, size=size, cmap=cmap)


def glue_figure(name: str, fig) -> None:
    """Glue `fig` under `name` for a `{glue:figure}` and close it, so it shows only there.

    The figure gets an opaque white background: Jupyter's inline backend makes it
    transparent, which leaves black text on a dark page in a dark theme.
    """
    from myst_nb import glue

    fig.patch.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    glue(name, fig, display=False)
    plt.close(fig)


def table(df, caption: str, precision: int = 2, index: bool = True):
    """A DataFrame styled for the book: a caption, numbers at a fixed precision and right-aligned
    (text left-aligned), the index hidden unless `index` (chapters 01 to 05)."""
    import pandas as pd

    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    style = df.style.format(precision=precision, thousands=",", na_rep="–").set_caption(caption)
    style = style.set_properties(subset=numeric, **{"text-align": "right"})
    style = style.set_table_styles(
        [{"selector": "caption", "props": "caption-side: top; text-align: left;"}], overwrite=False
    )
    return style if index else style.hide(axis="index")
