"""Reading runs back: the one door through which the chapters and `lenet results` read
`results/` (chapters 03, 07, 08 and 09). Nothing here trains or runs anything.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from . import io
from .inputs import record_read
from .models import build_model

RESULTS = io.RESULTS
RESULT_COLUMNS = [
    "run_id", "optimizer", "epochs", "seed", "lr", "batch_size", "momentum",
    "train_acc", "train_acc_running", "test_acc", "seconds", "status",
]  # fmt: skip


def load_results(experiment: str, results_dir=RESULTS) -> pd.DataFrame:
    """One row per complete run of `experiment`: its summary and parameters.

    Failed or unfinished runs never appear. A missing folder is an error that says how to
    produce it.
    """
    folder = Path(results_dir) / experiment
    record_read(folder)  # the book re-executes this chapter when the folder changes
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no results in {folder}: run `lenet run {experiment}` (or `make reproduce`) first"
        )
    rows = []
    for summary in sorted(folder.glob("*/summary.json")):
        s = io.read_json(summary)
        if s.get("status") != "complete":
            continue
        p = io.read_json(summary.parent / "params.json")
        rows.append(
            {**s, **{k: v for k, v in p["parameters"].items() if k not in s}}
            | {k: p[k] for k in ("device_name", "torch", "git_commit", "started")}
            | {"threads": p.get("threads")}
            | {"run_dir": str(summary.parent), "row": re.sub(r"-s\d+$", "", s["run_id"])}
        )
    if not rows:
        raise FileNotFoundError(f"no complete runs in {folder}: run `lenet run {experiment}`")
    out = pd.DataFrame(rows).sort_values("run_id", ignore_index=True)
    # Runs made before device_name wrote "1 thread" say "(1 threads)".
    out["device_name"] = out["device_name"].str.replace("(1 threads)", "(1 thread)", regex=False)
    return out


def load_model(run_id: str, experiment: str = "optimizers", results_dir=RESULTS):
    """The trained model of a complete run, from its final checkpoint, in eval mode, with the
    run's input scaling (the handwriting and paper chapters, `lenet predict`)."""
    run_dir = Path(results_dir) / experiment / run_id
    record_read(run_dir)
    summary = run_dir / "summary.json"
    if not summary.exists() or io.read_json(summary).get("status") != "complete":
        raise FileNotFoundError(
            f"no complete run {run_id} in {run_dir.parent}: run "
            f"`lenet run {experiment} --only {run_id}` (or `make reproduce`) first"
        )
    if not (run_dir / "checkpoint.pt").exists():
        raise FileNotFoundError(
            f"{run_dir} keeps no weights (experiment {experiment!r} keeps only its metrics): "
            f"re-run it into another folder with `lenet run {experiment} --only {run_id} "
            "--results-dir DIR`"
        )
    p = io.read_json(run_dir / "params.json")["parameters"]
    kwargs = {"width": p["width"]} if p["model"] == "notes" else {}
    model = build_model(p["model"], scaling=p["scaling"], **kwargs)
    model.load_state_dict(io.load_torch(run_dir / "checkpoint.pt")["model"])
    return model.eval()


def load_metrics(run_dir) -> pd.DataFrame:
    """The per-epoch metrics of one run."""
    record_read(run_dir)
    return pd.read_csv(Path(run_dir) / "metrics.csv")


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over the seeds of each row of a plan (a run id without its
    seed, such as `adam-e60`)."""
    g = results.groupby("row", sort=False)
    return g.agg(
        optimizer=("optimizer", "first"),
        epochs=("epochs", "first"),
        seeds=("seed", "count"),
        train_acc=("train_acc", "mean"),
        train_acc_sd=("train_acc", "std"),
        train_acc_running=("train_acc_running", "mean"),
        test_acc=("test_acc", "mean"),
        test_acc_sd=("test_acc", "std"),
        seconds=("seconds", "mean"),
    ).reset_index()
