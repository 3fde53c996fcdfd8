"""The generalization law E_test - E_train = k (h / P)^alpha, measured (capacity chapter, 03)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from lenet_lib.base.verdicts import standard_error, welch_df

from .models import LeNet5, layer_table


def n_params(width: float) -> int:
    """Trainable parameters of the notes' LeNet-5 at a width multiplier: our measure of h."""
    return int(layer_table(LeNet5(width=width))["params"].iloc[-1])


def errors(results: pd.DataFrame) -> pd.DataFrame:
    """Per run: P, width, optimizer (Adam's L2 or AdamW's decoupled decay), weight decay, h,
    epochs, the images seen (P x epochs), and the training and test error rates (fractions).

    E_train is the final model on its own P training images (eval mode), E_test on the
    held-out test digits.
    """
    df = pd.DataFrame(
        {
            "run_id": results["run_id"],
            "seed": results["seed"],
            "P": results["train_subset"].replace(0, 60000).astype(int),
            "width": results["width"].astype(float),
            "optimizer": results["optimizer"],
            "weight_decay": results["weight_decay"].astype(float),
            "epochs": results["epochs"].astype(int),
            "E_train": 1 - results["train_acc"] / 100,
            "E_test": 1 - results["test_acc"] / 100,
        }
    )
    df["h"] = df["width"].map(n_params)
    df["images"] = df["P"] * df["epochs"]
    df["gap"] = df["E_test"] - df["E_train"]
    return df.sort_values(["optimizer", "weight_decay", "width", "P", "seed"], ignore_index=True)


def fit_law(x: np.ndarray, gap: np.ndarray) -> dict:
    """Least-squares fit of log(gap) = log(k) + alpha * log(x), x = h / P.

    Returns alpha and k with their standard errors (from the fit's covariance) and a 95%
    interval for alpha (t distribution); points with gap <= 0 cannot be fitted and are
    counted in `dropped`.
    """
    from scipy import stats

    x, gap = np.asarray(x, float), np.asarray(gap, float)
    keep = gap > 0
    lx, ly = np.log(x[keep]), np.log(gap[keep])
    n = len(lx)
    if n < 3:
        raise ValueError(f"need at least 3 points with a positive gap to fit, got {n}")
    res = stats.linregress(lx, ly)
    t = stats.t.ppf(0.975, n - 2)
    return {
        "alpha": res.slope,
        "alpha_se": res.stderr,
        "alpha_lo": res.slope - t * res.stderr,
        "alpha_hi": res.slope + t * res.stderr,
        "k": float(np.exp(res.intercept)),
        "log_k_se": res.intercept_stderr,
        "r2": res.rvalue**2,
        "n": n,
        "dropped": int((~keep).sum()),
    }


def converged(metrics: pd.DataFrame, last: int = 3) -> bool:
    """Whether a run has converged in our sense: its running training accuracy (metrics.csv)
    was 100% in each of its `last` epochs: it fits its training set and stays there, so
    E_train has reached its floor. Chapter 03 fits the law on these runs only."""
    return bool(len(metrics) >= last and (metrics["train_acc"].tail(last) == 100).all())


def steps(df: pd.DataFrame, by: str, col: str) -> tuple[list, list, list]:
    """From each value of `by` to the next: the difference of the seeds' mean of `col`, in
    points of %, its standard error over the seeds and Welch's degrees of freedom (chapter
    03's orderings, decided by their t-intervals)."""
    groups = [100 * g[col].to_numpy() for _, g in df.groupby(by)]
    pairs = list(itertools.pairwise(groups))
    return (
        [b.mean() - a.mean() for a, b in pairs],
        [standard_error(a, b) for a, b in pairs],
        [welch_df(a, b) for a, b in pairs],
    )
