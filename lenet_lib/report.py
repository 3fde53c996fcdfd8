"""Tables that set our measured results beside the notes' (optimizer chapter, 07)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .notes import CHOICES, NOTES_TABLE2
from .results import load_metrics, summarise


def protocol_table() -> pd.DataFrame:
    """Every hyperparameter of Table 2's runs, its value and whether the notes give it."""
    return pd.DataFrame(CHOICES, columns=["parameter", "value", "source", "why"])


def table2(results: pd.DataFrame) -> pd.DataFrame:
    """The notes' Table 2 beside ours: mean and standard deviation over the seeds that ran.

    `train_acc` is the final model in eval mode on the whole training set; `train_running`
    the running accuracy of the last epoch (what a training loop prints).
    """
    ours = summarise(results).drop(columns=["optimizer", "epochs"])
    t = NOTES_TABLE2.merge(ours, on="row", how="left")
    t["test_diff"] = t["test_acc"] - t["notes_test_acc"]
    t["train_diff"] = t["train_acc"] - t["notes_train_acc"]
    cols = [
        "optimizer", "epochs", "seeds", "notes_train_acc", "train_acc", "train_acc_sd",
        "train_acc_running", "train_diff", "notes_test_acc", "test_acc", "test_acc_sd",
        "test_diff", "seconds",
    ]  # fmt: skip
    return t[cols]


def compare(results: pd.DataFrame, a: tuple, b: tuple) -> dict:
    """Difference in test accuracy between two (optimizer, epochs) rows, against seed noise.

    The noise is the standard error of the difference of the two means; with one seed it is
    unknown (NaN) and the comparison says so.
    """
    xa = results.query("optimizer == @a[0] and epochs == @a[1]")["test_acc"].to_numpy()
    xb = results.query("optimizer == @b[0] and epochs == @b[1]")["test_acc"].to_numpy()
    if not len(xa) or not len(xb):
        raise ValueError(f"no complete runs of {a} or {b}: run `lenet run optimizers`")
    diff = xb.mean() - xa.mean()
    if min(len(xa), len(xb)) < 2:
        se = float("nan")
    else:
        se = float(np.sqrt(xa.var(ddof=1) / len(xa) + xb.var(ddof=1) / len(xb)))
    if np.isnan(se):
        verdict = "unknown (one seed)"
    elif se == 0:
        verdict = "larger than the noise" if diff != 0 else "no difference"
    else:
        verdict = "larger than the noise" if abs(diff) > 2 * se else "within the noise"
    return {
        "a": f"{a[0]}-e{a[1]}",
        "b": f"{b[0]}-e{b[1]}",
        "diff": diff,
        "se": se,
        "verdict": verdict,
    }


def comparisons(results: pd.DataFrame) -> pd.DataFrame:
    """Neighbouring rows of Table 2 compared (each optimizer with the next, Adam by length)."""
    order = list(zip(NOTES_TABLE2["optimizer"], NOTES_TABLE2["epochs"], strict=True))
    return pd.DataFrame([compare(results, a, b) for a, b in itertools.pairwise(order)])


def reached_at(results: pd.DataFrame) -> pd.DataFrame:
    """For each row of the notes' Table 2, the first epoch at which our run (each seed) first
    reaches the notes' test accuracy, and the number of updates that took."""
    rows = []
    for opt, epochs, notes_test in NOTES_TABLE2[
        ["optimizer", "epochs", "notes_test_acc"]
    ].itertuples(index=False):
        sel = results.query("optimizer == @opt and epochs == @epochs")
        for _, r in sel.iterrows():
            m = load_metrics(r["run_dir"])
            hit = m.index[m["test_acc"] >= notes_test]
            epoch = int(m.loc[hit[0], "epoch"]) if len(hit) else None
            updates = epoch * int(np.ceil(60000 / r["batch_size"])) if epoch else None
            rows.append(
                {"optimizer": opt, "epochs": epochs, "seed": r["seed"], "notes_test_acc": notes_test,
                 "reached_at_epoch": epoch, "updates": updates}
            )  # fmt: skip
    return pd.DataFrame(rows)


def mean_curves(results: pd.DataFrame) -> dict:
    """Per-epoch metrics averaged over seeds, one DataFrame per (optimizer, epochs)."""
    out = {}
    for (opt, epochs), g in results.groupby(["optimizer", "epochs"], sort=False):
        frames = [load_metrics(d) for d in g["run_dir"]]
        out[f"{opt}-e{epochs}"] = pd.concat(frames).groupby("epoch", as_index=False).mean()
    return out
