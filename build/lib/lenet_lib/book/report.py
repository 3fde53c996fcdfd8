"""Tables that set our measured results beside the notes' and the paper's (chapters 07 and
09). Differences against seed noise are decided by verdicts.py, never here."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from lenet_lib.base.notes import CHOICES, NOTES_TABLE2, PAPER
from lenet_lib.base.verdicts import FAILS, HOLDS, decide, standard_error, within_se
from lenet_lib.nets.sdlm import INIT
from lenet_lib.runs.results import load_metrics, row_id, summarise


def styled(df: pd.DataFrame, caption: str, precision: int = 2, formats: dict | None = None):
    """A table as the chapters show it: a caption, no index, numbers right-aligned at a fixed
    precision (`formats` for columns that need another), text left-aligned, '-' for missing."""
    numeric = df.select_dtypes("number").columns
    text = [c for c in df.columns if c not in numeric]
    default = {c: "{:,}" if pd.api.types.is_integer_dtype(df[c]) else f"{{:,.{precision}f}}"
               for c in numeric}  # fmt: skip
    # one call: a second `format` would reset the columns it does not name
    style = df.style.format(default | (formats or {}), na_rep="-")
    pad = [("padding", "0.15em 0.6em")]  # columns of numbers apart on a narrow page
    return (
        style.set_caption(caption)
        .set_table_styles([{"selector": "th", "props": pad}, {"selector": "td", "props": pad}])
        .hide(axis="index")
        .set_properties(subset=list(numeric), **{"text-align": "right"})
        .set_properties(subset=text, **{"text-align": "left"})
    )


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


NOISE_WORDS = {HOLDS: "within the noise", FAILS: "larger than the noise"}


def compare(results: pd.DataFrame, a: tuple, b: tuple) -> dict:
    """Difference in mean test accuracy between two (optimizer, epochs) rows, decided by
    `verdicts.decide` on the difference's 95% t-interval (one seed: unknown)."""
    xa = results.query("optimizer == @a[0] and epochs == @a[1]")["test_acc"].to_numpy()
    xb = results.query("optimizer == @b[0] and epochs == @b[1]")["test_acc"].to_numpy()
    if not len(xa) or not len(xb):
        raise ValueError(f"no complete runs of {a} or {b}: run `lenet run optimizers`")
    d = _two_samples(xa, xb)
    diff, se = d["difference"], d["standard error"]
    return {"a": f"{a[0]}-e{a[1]}", "b": f"{b[0]}-e{b[1]}", "difference": diff,
            "standard error": se, "difference / se": abs(diff) / se if se > 0 else np.nan,
            "verdict": d["verdict"]}  # fmt: skip


def _two_samples(x, y) -> dict:
    """y's mean minus x's, one standard error of that difference, and whether its 95%
    t-interval holds zero (`verdicts.decide`; one seed: unknown): `compare`'s and
    `paired_rows`' rule."""
    v = decide(within_se(2), y, x)
    return {"difference": y.mean() - x.mean(), "standard error": standard_error(x, y),
            "verdict": NOISE_WORDS.get(v.verdict, "unknown (one seed)")}  # fmt: skip


def comparisons(results: pd.DataFrame) -> pd.DataFrame:
    """Neighbouring rows of Table 2 compared (each optimizer with the next, Adam by length)."""
    order = list(zip(NOTES_TABLE2["optimizer"], NOTES_TABLE2["epochs"], strict=True))
    return pd.DataFrame([compare(results, a, b) for a, b in itertools.pairwise(order)])


def paired_rows(
    a: pd.DataFrame, b: pd.DataFrame, names=("CPU", "GPU"), column: str = "test_acc"
) -> pd.DataFrame:
    """Each row of Table 2 made two ways: `column`'s mean over the seeds of each (the runs of
    a results table, or of a benchmark's with run ids), their difference (b minus a) and
    whether its t-interval holds zero (`compare`'s rule). The optimizer chapter sets a
    GPU's runs beside the CPU's; the paper chapter the paper's network beside the notes'."""

    def with_row(t):
        return t if "row" in t else t.assign(row=t["run_id"].map(row_id))

    a, b = with_row(a), with_row(b)
    rows = []
    for row in NOTES_TABLE2["row"]:
        x = a.loc[a["row"] == row, column].to_numpy()
        y = b.loc[b["row"] == row, column].to_numpy()
        if not len(x) or not len(y):
            continue
        rows.append({"row": row, "seeds": f"{len(x)}, {len(y)}", names[0]: x.mean(),
                     names[1]: y.mean(), **_two_samples(x, y)})  # fmt: skip
    return pd.DataFrame(rows)


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


def paper_groups(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper experiment's runs (chapter 09) grouped by row: the curvature, the initial
    weights (`models.LeNet5Paper`'s init: a run's init "default" is `sdlm.INIT`), the first
    passes' global rate as a fraction of the paper's, and over the seeds the mean, spread and
    extremes of the test error and of the training error of the last pass, in %. Best row
    first."""
    r = runs.assign(
        init=runs["init"].fillna("default").replace({"default": INIT}) if "init" in runs else INIT,
        test_error=100 - runs["test_acc"],
        train_error=100 - runs["train_acc"],
    )
    g = r.groupby("row", sort=False)
    out = g.agg(
        curvature=("optimizer", lambda s: "exact" if s.iloc[0] == "sdlm-exact" else "paper's"),
        init=("init", "first"),
        eta0=("lr", "first"),
        passes=("epochs", "first"),
        seeds=("seed", "count"),
        test_error=("test_error", "mean"),
        test_error_sd=("test_error", "std"),
        test_error_min=("test_error", "min"),
        test_error_max=("test_error", "max"),
        train_error=("train_error", "mean"),
    )
    out.insert(3, "rate_fraction", out["eta0"] / PAPER["eta_schedule"][0][1])
    return out.sort_values("test_error").reset_index()


def error_per_pass(run_dirs: dict, column: str = "test_acc") -> pd.DataFrame:
    """100 minus `column` after each pass (epoch) of each run, {label: run folder}: the
    error curves of chapter 09, in %."""
    return pd.DataFrame(
        {k: 100 - load_metrics(d).set_index("epoch")[column] for k, d in run_dirs.items()}
    ).rename_axis("pass")


def training_rate(run_dir, images_per_pass: int) -> tuple[float, float]:
    """Seconds per pass and training images per second of a run: total images over total
    seconds of its metrics (not a mean of the per-epoch rates)."""
    m = load_metrics(run_dir)
    return m["seconds"].mean(), images_per_pass * len(m) / m["seconds"].sum()


def seed_wall(results: pd.DataFrame, gap_minutes: float = 5.0) -> pd.DataFrame:
    """Per seed of Table 2 (optimizer chapter, 07): the commits of the engine that made its
    runs; when the first started; its training minutes, each epoch counted once; the Adam
    chain's wall minutes (30, 60 and 100 epochs one after another: the critical path); and,
    where the seed was made alone (no other seed's run between its first start and its last
    end) and in one go (no run starts more than `gap_minutes` after every earlier run has
    ended), the wall minutes from its first start to its last end."""
    r = results.assign(start=pd.to_datetime(results["started"]))
    r["end"] = r["start"] + pd.to_timedelta(r["wall_seconds"], unit="s")
    by_seed = r.groupby("seed")
    commits = by_seed["git_commit"].agg(lambda s: ", ".join(sorted({c[:7] for c in s})))
    out = pd.DataFrame({"engine": commits, "first start": by_seed["start"].min()})
    out["training"] = r.groupby(["seed", "optimizer"])["seconds"].max().groupby("seed").sum() / 60
    out["Adam chain"] = r[r["optimizer"] == "adam"].groupby("seed")["wall_seconds"].sum() / 60
    wall = (by_seed["end"].max() - by_seed["start"].min()).dt.total_seconds() / 60

    def one_go(runs):
        runs = runs.sort_values("start")
        idle = runs["start"] - runs["end"].cummax().shift()
        return bool((idle.dropna() <= pd.Timedelta(minutes=gap_minutes)).all())

    first, last = by_seed["start"].min(), by_seed["end"].max()

    def alone(seed):
        others = r[r["seed"] != seed]
        return not ((others["start"] < last[seed]) & (others["end"] > first[seed])).any()

    made_so = by_seed[["start", "end"]].apply(one_go) & out.index.to_series().map(alone)
    out["wall"] = wall.where(made_so)
    return out


HEADERS = {  # the tables' column names as a reader reads them
    "optimizer": "optimizer", "lr": "rate", "batch_size": "batch", "epochs": "epochs",
    "train_acc_running": "train, running (%)", "train_acc": "train, final model (%)",
    "test_acc": "test (%)", "test_acc_sd": "test sd", "test_loss": "test loss",
    "train_loss": "train loss", "notes_train_acc": "train, notes (%)",
    "notes_test_acc": "test, notes (%)", "test_diff": "test, ours - notes",
    "train_diff": "train, ours - notes", "seconds": "training (s)",
}  # fmt: skip


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the library's column names replaced by the words a table shows (chapter 07)."""
    return df.rename(columns=HEADERS)


def table2_view(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as the optimizer chapter shows it, narrow enough for the page: a row name, the
    notes' training and test accuracy beside our running training accuracy and our mean test
    accuracy with its spread over seeds, and the difference in test accuracy."""
    return pd.DataFrame({
        "row": [f"{o}, {e} epochs" for o, e in zip(table["optimizer"], table["epochs"], strict=True)],
        "train, notes": table["notes_train_acc"],
        "train, ours": table["train_acc_running"],
        "test, notes": table["notes_test_acc"],
        "test, ours": table["test_acc"],
        "sd": table["test_acc_sd"],
        "ours - notes": table["test_diff"],
    })  # fmt: skip


def direction(ours: float, notes: float, unit: str = "points") -> str:
    """'ours 10.73 points higher' (or lower): which way a row of ours differs (chapter 07)."""
    d = ours - notes
    return f"ours {abs(d):.2f} {unit} {'higher' if d > 0 else 'lower'}"
