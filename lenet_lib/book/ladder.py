"""Issue 27's ladders, read back: from Lush's demo to the paper's network and to the notes',
one change a rung (plans.LADDER), each rung's test error over its seeds with its interval, and
whether the change from the rung before matters by the book's rule: only when the interval of
the difference of the two means (Welch) leaves out zero. Used by chapter 09 ("From 1998 to
today") and the front page.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lenet_lib.base import verdicts
from lenet_lib.runs.results import load_results, row_id

LUSH = ("lush", "lush-e30", "Lush's demo (LeCun and Bottou's code)")
# (ladder, experiment, row of the plan, what the rung changes from the one before)
RUNGS = [
    ("to the paper's network", *LUSH),
    ("to the paper's network", "ladder", "paper1-shuffle-e30", "+ a new random order every epoch"),
    ("to the paper's network", "ladder", "paper2-coding-e30", "+ the paper's input coding"),
    ("to the paper's network", "ladder", "paper3-init-e30", "+ the paper's initial weights"),
    ("to the paper's network", "ladder", "paper4-schedule-e20",
     "+ the paper's schedule (20 passes, curvature every pass)"),
    ("to the paper's network", "paper", "sdlm-eta1e-04-e20",
     "+ F6 and the RBF outputs, MAP loss: the paper's network"),
    ("to the notes' network", *LUSH),
    ("to the notes' network", "ladder", "notes1-relu-e30", "+ ReLU"),
    ("to the notes' network", "ladder", "notes2-maxpool-e30", "+ max pooling"),
    ("to the notes' network", "ladder", "notes3-fullc3-e30", "+ the full C3"),
    ("to the notes' network", "ladder", "notes4-ce-e30", "+ softmax and cross-entropy"),
    ("to the notes' network", "ladder", "notes5-adam-e30", "+ Adam, batches of 64"),
    ("to the notes' network", "optimizers", "adam-e30",
     "the notes' network (Table 2's Adam row, 30 epochs)"),
]  # fmt: skip
# Beside the ladder: the cross-entropy rung at the demo's rate and at a third and three times it,
# each against the rung before cross-entropy (`table(rungs=RATE_CHECK, against="first")`).
RATE_CHECK = [
    ("cross-entropy at three rates", "ladder", "notes3-fullc3-e30",
     "the full C3, squared error, rate 1e-4 (the rung before)"),
    ("cross-entropy at three rates", "ladder", "notes4-ce-lr3e-05-e30", "+ cross-entropy, rate 3e-5"),
    ("cross-entropy at three rates", "ladder", "notes4-ce-e30", "+ cross-entropy, rate 1e-4 (the ladder's)"),
    ("cross-entropy at three rates", "ladder", "notes4-ce-lr3e-04-e30", "+ cross-entropy, rate 3e-4"),
]  # fmt: skip


DIVERGED = 50.0  # a seed ending above this test error (%) diverged (chance: 90%)


def table(results_dir=None, seeds=(0, 1, 2), rungs=RUNGS, against="previous") -> pd.DataFrame:
    """One row per rung: its seeds' test errors (%), their mean and 95% t-interval, and the
    difference from the rung before (`against="first"`: from its ladder's first rung) with its
    Welch interval and the verdict ('matters' when that interval leaves out zero). A rung whose
    runs are not all there has NaN numbers and the verdict 'not yet run'; one with a seed that
    diverged (`DIVERGED`) has no step and the verdict 'diverged': its mean measures no change."""
    kw = {} if results_dir is None else {"results_dir": results_dir}
    cache, rows, previous = {}, [], {}
    for ladder, experiment, row, change in rungs:
        if experiment not in cache:
            try:
                cache[experiment] = load_results(experiment, **kw)
            except FileNotFoundError:
                cache[experiment] = pd.DataFrame(columns=["run_id", "seed", "test_acc"])
        runs = cache[experiment]
        runs = runs[runs["run_id"].map(row_id) == row]
        runs = runs[runs["seed"].isin(seeds)].sort_values("seed")
        err = 100 - runs["test_acc"].to_numpy(dtype=float)
        out = {"ladder": ladder, "rung": change, "row": f"{experiment}/{row}", "seeds": len(err),
               "errors": err, "mean": np.nan, "lo": np.nan, "hi": np.nan, "diff": np.nan,
               "diff_lo": np.nan, "diff_hi": np.nan, "verdict": ""}  # fmt: skip
        complete = len(err) == len(seeds)
        if complete:
            out["mean"], out["lo"], out["hi"] = verdicts.t_interval(err)
        before = previous.get(ladder)
        if not complete:
            out["verdict"] = "not yet run"
        elif (err > DIVERGED).any():
            out["verdict"] = f"diverged ({(err > DIVERGED).sum()} of {len(err)} seeds)"
        elif before is not None and len(before) == len(seeds):
            out["diff"] = err.mean() - before.mean()
            out["diff_lo"], out["diff_hi"] = verdicts.welch_interval(err, before)
            matters = out["diff_lo"] > 0 or out["diff_hi"] < 0
            out["verdict"] = "matters" if matters else "not shown"
        if against == "previous" or ladder not in previous:
            previous[ladder] = err
        rows.append(out)
    return pd.DataFrame(rows)


def view(t: pd.DataFrame) -> pd.DataFrame:
    """The table as the chapter prints it: one row a rung, each number with its interval."""

    def with_interval(x, lo, hi, fmt):
        if pd.isna(x):
            return ""
        return f"{fmt.format(x)} ({fmt.format(lo)} to {fmt.format(hi)})"

    rows = zip(t["mean"], t["lo"], t["hi"], t["diff"], t["diff_lo"], t["diff_hi"], t["errors"],
               t["verdict"], strict=True)  # fmt: skip
    errors, changes = [], []
    for m, lo, hi, d, dlo, dhi, seeds, verdict in rows:
        if verdict.startswith("diverged"):  # each seed: a mean would hide what happened
            errors.append(", ".join(f"{e:.2f}" for e in seeds) + " (each seed)")
        else:
            errors.append(with_interval(m, lo, hi, "{:.2f}"))
        changes.append(with_interval(d, dlo, dhi, "{:+.2f}"))
    return pd.DataFrame({
        "toward": t["ladder"].str.removeprefix("to the ").str.replace(r"'s? network$", "", regex=True),
        "rung": t["rung"],
        "test error, % (95% interval)": errors,
        "change (95% interval)": changes,
        "verdict": t["verdict"],
    })  # fmt: skip


def figure(t: pd.DataFrame, paper=0.95, lush=0.82):
    """The ladder: each rung's mean test error with its 95% interval and its seeds, one panel
    a ladder, the paper's and Lush's reported errors as lines."""
    ladders = list(dict.fromkeys(t["ladder"]))
    fig, axes = plt.subplots(len(ladders), 1, figsize=(7.5, 1.2 + 0.42 * len(t)), sharex=True,
                             height_ratios=[(t["ladder"] == n).sum() for n in ladders])  # fmt: skip
    for ax, name in zip(np.atleast_1d(axes), ladders, strict=True):
        part = t[t["ladder"] == name].reset_index(drop=True)
        y = np.arange(len(part))
        for i, r in part.iterrows():
            colour = "tab:red" if r["verdict"] == "matters" else "tab:blue"
            if r["seeds"]:
                ax.plot(r["errors"], [i] * len(r["errors"]), "o", ms=3, color="0.6", zorder=2)
            if not pd.isna(r["mean"]):
                ax.errorbar(r["mean"], i, xerr=[[r["mean"] - r["lo"]], [r["hi"] - r["mean"]]],
                            fmt="D", ms=5, capsize=3, color=colour, zorder=3)  # fmt: skip
            else:  # at the axis' left edge, in axes coordinates
                ax.text(0.01, i, f"not yet run ({r['seeds']} of 3 seeds)", fontsize=7,
                        color="0.4", va="center", transform=ax.get_yaxis_transform())  # fmt: skip
        ax.axvline(paper, color="k", ls="--", lw=1, label=f"paper, as reported ({paper}%)")
        ax.axvline(lush, color="k", ls=":", lw=1, label=f"Lush's demo, as reported ({lush}%)")
        ax.set_yticks(y, part["rung"], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"From Lush's demo {name}", fontsize=9, loc="left")
        ax.grid(alpha=0.3, axis="x")
    axes = np.atleast_1d(axes)
    axes[-1].set_xlabel("test error (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def headline(t: pd.DataFrame) -> str:
    """The ladders in one phrase: for each, the changes whose step matters by its interval, with
    the step in points of test error; then how many changes do not show, and how many rungs are
    still to run (front page, chapter 09)."""
    parts, quiet, missing = [], 0, 0
    for name, part in t.groupby("ladder", sort=False):
        steps = part[part["diff"].notna()]
        matters = steps[steps["verdict"] == "matters"]
        quiet += len(steps) - len(matters)
        missing += int((part["verdict"] == "not yet run").sum())
        named = [f"{r.rung.removeprefix('+ ')} ({r.diff:+.2f})" for r in matters.itertuples()]
        if named:
            named[0] = named[0][:-1] + " points)"
        text = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else "".join(named)
        parts.append(f"{name}, {text or 'none'}")
    out = "; ".join(parts) + (
        f"; the other {quiet} changes do not show"
        if quiet != 1
        else "; the other change does not show"
    )
    return out + (f" ({missing} rung{'s' * (missing != 1)} still to run)" if missing else "")


def rate_sentence(t: pd.DataFrame) -> str:
    """What the rate check (`RATE_CHECK`, each rate against the rung before cross-entropy) says:
    the step at each rate with its verdict, and whether cross-entropy costs at every rate where
    training converged. A rate with a diverged seed (`DIVERGED`) is told seed by seed, its mean
    being no measure of the change."""
    rows = t.iloc[1:]
    if (rows["verdict"] == "not yet run").any():
        return "the runs at the other rates are still to run"
    steps, converged = [], []
    for r in rows.itertuples():
        rate = r.rung.split("rate ")[1].split(" ")[0]
        diverged = r.errors > DIVERGED
        if diverged.any():
            rest = ", ".join(f"{e:.2f}%" for e in r.errors[~diverged])
            steps.append(
                f"at {rate} training diverged in {diverged.sum()} of {len(r.errors)} seeds "
                f"({', '.join(f'{e:.2f}%' for e in r.errors[diverged])} test error)"
                + (f" and the others end at {rest}" if rest else "")
            )
        else:
            steps.append(f"{r.diff:+.2f} points at {rate} ({r.verdict})")
            converged.append(r.verdict == "matters" and r.diff > 0)
    ends = (
        ": where training converged, it costs at every rate"
        if converged and all(converged)
        else ": its cost depends on the rate"
    )
    return ", ".join(steps[:-1]) + " and " + steps[-1] + ends
