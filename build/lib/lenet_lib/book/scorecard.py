"""The front page: the scorecard figure, one row per numeric claim, and the glued numbers of the
abstract and the findings, all read from the verdicts the chapters decided (`claims.decided`).

Every number the front page shows comes from a claim: `front_values` glues, for the claims the
front page names (`FRONT`), their verdict, our value with its interval and the notes' number
under `front_<id>_<what>`, and nothing else.
"""

from __future__ import annotations

import math

from lenet_lib.base.verdicts import APPROX, FAILS, HOLDS, UNCHECKABLE, Verdict, _fmt

from .claims import CLAIMS, CLAIMS_BY_ID, VERDICT_MARK, Claim

# Colour-blind-safe (Okabe and Ito) and doubled by a marker and a word, so that no verdict
# rests on colour alone.
STYLE = {
    HOLDS: ("#009E73", "o"),
    APPROX: ("#0072B2", "D"),
    FAILS: ("#D55E00", "X"),
    UNCHECKABLE: ("#7F7F7F", "s"),
}
SHORT = {  # the scorecard's row labels where the claim's own words are too long
    "dataset_sizes": "MNIST: 60,000 + 10,000 digits",
    "test_halves": "test set: two blocks of 5,000",
    "shared_weights": "a map's units share weights",
    "shift_equivariance": "shifted input, shifted maps",
    "tanh_identity": "tanh(x) = 2S(x) − 1",
    "size_formula_general": "size formula (1) in general",
    "box_20": "digits fit a 20x20 box",
    "grey_levels": "grey levels from interpolation",
    "centre_of_mass": "centre of mass at the centre",
    "scaled_mean": "scaled input: mean about 0",
    "scaled_variance": "scaled input: variance about 1",
    "gap_law_P": "gap law over P: alpha",
    "gap_law_h": "gap law over h: alpha",
    "robust_shift": "shifts of 1-2 px cost < 5 points",
    "subsampling_blur": "small subsampling gain blurs",
    "noisy_or_and": "large gain: noisy OR / AND",
    "c3_params": "C3: 1,516 parameters",
    "c3_full": "full C3: 2,416 parameters",
    "s4_max_pooling": "S4 max pooling: 32 parameters",
    "table1_input": "Table 1: C1 is 28x28",
    "scaled_tanh_unit": "f(1) = 1 (scaled tanh)",
    "scaled_tanh_curvature": "|f''| peaks at a = 1",
    "paper_test_error": "paper's network: test error %",
    "paper_train_error": "paper's network: train error %",
    "table2_sgd30": "Table 2: SGD, 30 epochs",
    "table2_momentum30": "Table 2: momentum, 30 epochs",
    "table2_nesterov30": "Table 2: Nesterov, 30 epochs",
    "table2_adam30": "Table 2: Adam, 30 epochs",
    "table2_adam60": "Table 2: Adam, 60 epochs",
    "table2_adam100": "Table 2: Adam, 100 epochs",
}
TABLE2_TEST = tuple(f"table2_{r}" for r in ("sgd30", "momentum30", "nesterov30", "adam30", "adam60",
                                            "adam100"))  # fmt: skip
FRONT = (  # the claims whose numbers the abstract and the findings quote
    "dataset_sizes", "c3_params", "table1_input", "scaled_mean", "scaled_variance",
    "table2_sgd30", "table2_adam100", "paper_test_error", "lush_test_error", "gap_law_P",
    "regularization",
    "centre_of_mass", "test_halves", "error_3as5", "paper_is_alexnet", "sigmoid_output",
    "param_formulas", "first_deep_cnn", "relu_unavailable", "optimal_capacity",
    "subsampling_shift", "scale_distortion_invariance",
)  # fmt: skip


def _number(x) -> float | None:
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return None
    if isinstance(x, int | float) and math.isfinite(x):
        return float(x)
    return None


def reference(c: Claim) -> tuple[float, float, float | None] | None:
    """What ours is set against, as (lo, hi, point): a claimed range, a claimed number with the
    tolerance named in the row, or a number; None for a claim without one."""
    crit = c.criterion
    if crit.kind in ("sign", "reference", "not_checkable"):  # an ordering or a statement
        return None
    if crit.kind == "interval":
        return crit.lo, crit.hi, None
    point = _number(c.notes_value)
    if point is None:
        return None
    if crit.kind == "within_tol" and crit.scale == "abs":
        wide = crit.approx if crit.approx is not None else crit.tol
        return point - wide, point + wide, point
    return point, point, point


def rows(verdicts: dict, claims=CLAIMS) -> list[tuple[Claim, Verdict, tuple]]:
    """The numeric claims: decided, with a single value of ours and a number or range to set it
    against (the scorecard's rows, in the notes' order)."""
    out = []
    for c in claims:
        v = verdicts.get(c.id)
        ref = reference(c)
        if v is None or ref is None or _number(v.value) is None:
            continue
        out.append((c, v, ref))
    return out


def _row_text(c: Claim, v: Verdict, ref) -> str:
    lo, hi, point = ref
    claimed = c.notes_display if point is not None else f"{lo:g} to {hi:g}"
    if len(claimed) > 12:
        claimed = _fmt(point, c.fmt) if point is not None else "claimed"
    ours = _fmt(v.value, c.fmt)
    if v.n:
        ours += f" ({v.n} seeds)"
    return f"{claimed} → {ours}"


def figure(verdicts: dict, claims=CLAIMS):
    """The scorecard: for each numeric claim, its own horizontal scale with the claimed value
    (a black bar; a grey band for a claimed range or a named tolerance) and ours (a marker with
    its interval), coloured and shaped by verdict, the verdict and the numbers named at the
    right. White background, readable in the theme's light and dark modes (the front page)."""
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    table = rows(verdicts, claims)
    n = max(len(table), 1)
    height = 0.36 * n + 0.7
    fig, axes = plt.subplots(n, 1, figsize=(8.5, height), squeeze=False)
    fig.subplots_adjust(left=0.285, right=0.545, top=1 - 0.45 / height, bottom=0.25 / height,
                        hspace=1.1)  # fmt: skip
    for ax, (c, v, (lo, hi, point)) in zip(axes[:, 0], table, strict=False):
        colour, marker = STYLE[v.verdict]
        xs = [lo, hi, v.value] + [x for x in (v.lo, v.hi) if _number(x) is not None]
        left, right = min(xs), max(xs)
        pad = (right - left) * 0.15 or max(abs(right), 1.0) * 0.05
        ax.set_xlim(left - pad, right + pad)
        if hi > lo:
            ax.axvspan(lo, hi, color="#DDDDDD", zorder=0)
        if point is not None:
            ax.axvline(point, color="black", lw=2.5, zorder=1)
        if _number(v.lo) is not None and _number(v.hi) is not None:
            ax.plot([v.lo, v.hi], [0, 0], color=colour, lw=2.5, solid_capstyle="butt", zorder=2)
        ax.plot([v.value], [0], marker=marker, color=colour, ms=8, mec="black", mew=0.6,
                zorder=3)  # fmt: skip
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7, length=2, pad=1)
        ax.xaxis.set_major_locator(plt.MaxNLocator(3))
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        label = SHORT.get(c.id) or (c.claim if len(c.claim) <= 34 else c.claim[:33] + "…")
        row = blended_transform_factory(fig.transFigure, ax.transAxes)
        ax.text(0.275, 0.1, label, transform=row, ha="right", va="center", fontsize=9)
        ax.text(0.56, 0.1, f"{VERDICT_MARK[v.verdict]} {v.verdict}", transform=row, ha="left",
                va="center", fontsize=9, color=colour, weight="bold")  # fmt: skip
        ax.text(0.805, 0.1, _row_text(c, v, (lo, hi, point)), transform=row, ha="left",
                va="center", fontsize=8, color="#222222")  # fmt: skip
    top = 1 - 0.15 / height
    for x, text, ha in (
        (0.275, "claim", "right"),
        (0.415, "claimed | ours", "center"),
        (0.56, "verdict", "left"),
        (0.805, "claimed → ours", "left"),
    ):
        fig.text(x, top, text, ha=ha, va="center", fontsize=9, weight="bold")
    fig.patch.set_facecolor("white")
    return fig


def front_values(verdicts: dict, glue=None, ladder: str = "not measured") -> dict:
    """The front page's numbers and words, each from one claim of `FRONT`: `front_<id>_verdict`,
    `_ours` (our value as the chapter gave it), `_notes` (the notes' or paper's number),
    `_interval` (the range of our interval: over seeds, or a fit's). Glued when `glue` is given;
    a claim not decided yet reads "not decided yet". `ladder` is the ladder's headline
    (ladder.headline), glued as `front_ladder`."""
    out = {}
    for cid in FRONT:
        c, v = CLAIMS_BY_ID[cid], verdicts.get(cid)
        out[f"front_{cid}_verdict"] = v.verdict if v else "not decided yet"
        ours = v.ours if v else "–"
        if v and " (" in ours and _number(v.value) is not None:
            ours = _fmt(v.value, c.fmt)  # the number alone, not a row's note on its direction
        if ours.count(", ") == 1 and all(ch in "0123456789.,-+ " for ch in ours):
            ours = ours.replace(", ", " and ")  # two numbers: 60,000 and 10,000
        out[f"front_{cid}_ours"] = ours
        out[f"front_{cid}_notes"] = c.notes_display
        if v and _number(v.lo) is not None and _number(v.hi) is not None:
            span = f"{_fmt(v.lo, c.fmt)} to {_fmt(v.hi, c.fmt)}"
            out[f"front_{cid}_interval"] = span + (f" over {v.n} seeds" if v.n else "")
        else:
            out[f"front_{cid}_interval"] = "no interval"
    t2 = [(CLAIMS_BY_ID[cid], verdicts.get(cid)) for cid in TABLE2_TEST]
    higher = [c for c, v in t2 if v and v.verdict == FAILS and v.value > c.notes_value]
    out["front_table2_higher"] = f"{len(higher)} of the {len(t2)}"
    out["front_ladder"] = ladder
    if glue is not None:
        for k, x in out.items():
            glue(k, x, display=False)
    return out


def front_keys() -> set:
    """Every key `front_values` glues: the only glue keys the front page may use."""
    keys = {f"front_{cid}_{w}" for cid in FRONT for w in ("verdict", "ours", "notes", "interval")}
    return keys | {"front_table2_higher", "front_ladder"}
