"""Reading runs back: the one door through which the chapters and `lenet results` read
`results/` (chapters 03, 07, 08 and 09). Nothing here trains or runs anything.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pandas as pd
import torch

from lenet_lib.base import io
from lenet_lib.base.inputs import record_read

from . import runfolder
from .experiments import Run, new_model
from .runfolder import SUMMARY_KEYS  # noqa: F401 (what a complete run's summary holds)

RESULTS = io.RESULTS
# What a complete run's params.json must hold for a table, besides its parameters.
PARAMS_KEYS = ("device_name", "torch", "git_commit", "started")
RESULT_COLUMNS = [
    "run_id", "optimizer", "epochs", "seed", "lr", "batch_size", "momentum",
    "train_acc", "train_acc_running", "test_acc", "seconds", "status",
]  # fmt: skip
# The parameters the runs of one row of a table (one run id but the seed) must share: every
# parameter but the experiment, the seed and the id.
ROW_PARAMETERS = [f.name for f in fields(Run) if f.name not in ("experiment", "seed", "run_id")]


def row_id(run_id: str) -> str:
    """The row of a plan a run belongs to: its id without the seed (adam-e60-s2: adam-e60)."""
    return re.sub(r"-s\d+$", "", run_id)


def load_results(experiment: str, results_dir=RESULTS) -> pd.DataFrame:
    """One row per complete run of `experiment`: its summary and parameters.

    Failed or unfinished runs never appear. A missing folder is an error that says how to
    produce it.
    """
    folder = Path(results_dir) / experiment
    record_read(folder)  # the book re-executes this chapter when the folder changes
    if not folder.is_dir():
        raise FileNotFoundError(f"no results in {folder}: {_make_it(experiment, results_dir)}")
    rows = []
    for summary in sorted(folder.glob("*/summary.json")):
        if runfolder.read_summary(summary.parent)["status"] != "complete":
            continue
        s = runfolder.read_summary(summary.parent, complete=True)
        p = runfolder.read_params(summary.parent, keys=PARAMS_KEYS)
        rows.append(
            {**s, **{k: v for k, v in p["parameters"].items() if k not in s}}
            | {k: p[k] for k in ("device_name", "torch", "git_commit", "started")}
            | {"threads": p.get("threads")}
            | {"run_dir": str(summary.parent), "row": row_id(s["run_id"])}
        )
    if not rows:
        raise FileNotFoundError(
            f"no complete runs in {folder}: {_make_it(experiment, results_dir)}"
        )
    out = pd.DataFrame(rows).sort_values("run_id", ignore_index=True)
    if out["experiment"].nunique() > 1:  # a run copied in from another experiment's folder
        kinds = ", ".join(f"{e} ({n})" for e, n in out["experiment"].value_counts().items())
        raise ValueError(f"{folder} mixes runs of experiments {kinds}: keep one a folder")
    shared = [c for c in ROW_PARAMETERS if c in out.columns]
    mixed = out.groupby("row")[shared].nunique(dropna=False).max(axis=1) > 1
    if mixed.any():
        raise ValueError(
            f"{folder} mixes runs of different parameters in row(s) "
            f"{', '.join(mixed[mixed].index)} (quick and full runs?): keep each kind in its own "
            "results folder"
        )
    # Runs made before device_name wrote "1 thread" say "(1 threads)".
    out["device_name"] = out["device_name"].str.replace("(1 threads)", "(1 thread)", regex=False)
    return out


def _make_it(experiment: str, results_dir) -> str:
    """The fix for an experiment without runs: the command that makes them, if it is one."""
    from .plans import EXPERIMENTS

    if experiment not in EXPERIMENTS:
        return f"{experiment!r} is no experiment of lenet: use one of {', '.join(EXPERIMENTS)}"
    where = Path(results_dir).resolve()
    if RESULTS.resolve() in where.parents:
        return f"give --results-dir the folder that holds {experiment}/, such as {RESULTS}"
    if where == RESULTS.resolve():
        return f"run `lenet run {experiment}` (or `make reproduce`) first"
    return f"run `lenet run {experiment} --results-dir {shlex.quote(str(results_dir))}` first"


def unfinished_runs(experiment: str, results_dir=RESULTS) -> pd.DataFrame:
    """The runs of `experiment` that are not complete, so in no table: run id, status ('failed',
    'pending', or 'unfinished' for a run without a summary), error and executed notebook
    (`lenet results`)."""
    rows = []
    for run_dir in sorted((Path(results_dir) / experiment).glob("*/")):
        summary = run_dir / "summary.json"
        s = io.read_json(summary) if summary.exists() else {}
        if s.get("status") == "complete" or not (s or (run_dir / "params.json").exists()):
            continue
        notebook = run_dir / "run.ipynb"
        rows.append({"run_id": run_dir.name, "status": s.get("status", "unfinished"),
                     "error": s.get("error", ""),
                     "notebook": str(notebook) if notebook.exists() else ""})  # fmt: skip
    return pd.DataFrame(rows, columns=["run_id", "status", "error", "notebook"])


def load_model(run_id: str, experiment: str = "optimizers", results_dir=RESULTS):
    """The trained model of a complete run, from its final checkpoint, in eval mode, with the
    run's input scaling (the handwriting and paper chapters, `lenet predict`)."""
    runfolder.check_name(experiment)
    runfolder.check_name(run_id)
    run_dir = Path(results_dir) / experiment / run_id
    record_read(run_dir)
    summary = run_dir / "summary.json"
    if not runfolder.is_complete(run_dir):
        where = "" if Path(results_dir).resolve() == RESULTS.resolve() else (
            f" --results-dir {shlex.quote(str(results_dir))}")  # fmt: skip
        make = f"choose one that is (`lenet results {experiment}{where}` lists them)"
        if _planned(experiment, run_id):
            make = f"run `{make_command(experiment, [run_id], results_dir)}` first"
        raise FileNotFoundError(f"no complete run {run_id} in {run_dir.parent}: {make}")
    if not (run_dir / "checkpoint.pt").exists():
        raise FileNotFoundError(
            f"{run_dir} keeps no weights (experiment {experiment!r} keeps only its metrics): "
            f"re-run it into another folder with `{make_command(experiment, [run_id], 'DIR')}`"
        )
    with torch.random.fork_rng():  # the model as the run built it; the caller's RNG untouched
        model = new_model(runfolder.stored_run(run_dir))
    state = io.load_torch(run_dir / "checkpoint.pt")
    expected = runfolder.read_summary(run_dir).get("weights_sha256")
    if expected is None:
        raise io.CheckpointError(
            f"{summary} records no weights_sha256, so the weights cannot be checked: if you "
            f"trust them, record it with lenet_lib.base.io.record_weights_sha256('{run_dir}')"
        )
    if "model" not in state or io.weights_sha256(state["model"]) != expected:
        raise io.CheckpointError(
            f"{run_dir / 'checkpoint.pt'} does not hold the weights its run recorded (sha256 "
            "differs): restore it (git checkout) or re-run the run"
        )
    model.load_state_dict(state["model"])
    return model.eval()


def _planned(experiment: str, run_id: str) -> bool:
    """Whether `lenet run` can make run `run_id` of `experiment` (its seed read from its id)."""
    from .experiments import run_id as id_of
    from .plans import EXPERIMENTS

    seed = re.search(r"-s(\d+)$", run_id)
    if experiment not in EXPERIMENTS or not seed or int(seed.group(1)) > 2**32 - 1:
        return False
    return run_id in {id_of(r) for r in EXPERIMENTS[experiment](seeds=(int(seed.group(1)),))}


def missing_runs(experiment: str, run_ids, results_dir=RESULTS) -> list[str]:
    """The run ids among `run_ids` without a complete run in `results_dir/experiment`."""
    folder = Path(results_dir) / experiment
    record_read(folder)
    out = []
    for rid in run_ids:
        if not runfolder.is_complete(folder / rid):
            out.append(rid)
    return out


def make_command(experiment: str, run_ids, results_dir=RESULTS) -> str:
    """The `lenet run` command that makes these runs of `experiment` (their seeds are read
    from their ids, `-s<seed>`)."""
    seeds = sorted({int(m.group(1)) for r in run_ids if (m := re.search(r"-s(\d+)$", r))})
    cmd = f"lenet run {experiment} --seeds {','.join(map(str, seeds or [0]))}"
    cmd += f" --only {','.join(run_ids)}"
    if Path(results_dir).resolve() != RESULTS.resolve():
        cmd += f" --results-dir {shlex.quote(str(results_dir))}"
    return cmd


def require(experiment: str, run_ids, results_dir=RESULTS) -> pd.DataFrame:
    """The complete runs `run_ids` of `experiment` (as `load_results`), or an error that
    names the missing ones and the command that makes them (chapter 07)."""
    run_ids = list(run_ids)
    missing = missing_runs(experiment, run_ids, results_dir)
    if missing:
        raise FileNotFoundError(
            f"{Path(results_dir) / experiment} lacks the complete run(s) {', '.join(missing)}: "
            f"make them with `{make_command(experiment, missing, results_dir)}`"
        )
    df = load_results(experiment, results_dir)
    return df[df["run_id"].isin(run_ids)].reset_index(drop=True)


def plan_ids(experiment: str, seeds=(0,)) -> list[str]:
    """The run ids of `experiment`'s plan for `seeds` (plans.EXPERIMENTS)."""
    from .experiments import run_id
    from .plans import EXPERIMENTS

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}: use one of {', '.join(EXPERIMENTS)}")
    return [run_id(r) for r in EXPERIMENTS[experiment](seeds=tuple(seeds))]


def load_benchmark(name: str, results_dir=RESULTS) -> pd.DataFrame:
    """The table a benchmark script recorded in `results/benchmarks/<name>.csv` (its `--out`):
    chapter 09 reads `benchmarks/paper_frozen_rates.py`'s. The book never re-runs it."""
    path = Path(results_dir) / "benchmarks" / f"{name}.csv"
    record_read(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: run benchmarks/{name}.py with --out {path}")
    return pd.read_csv(path)


def load_metrics(run_dir) -> pd.DataFrame:
    """The per-epoch metrics of one run (`runfolder.read_metrics`: checked)."""
    record_read(run_dir)
    return runfolder.read_metrics(run_dir)


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


def load_bench(results_dir=RESULTS) -> dict | None:
    """The last `lenet bench --output results/bench.json`: its numbers under "bench" and what
    produced them (optimizer chapter), or None where there is none."""
    path = Path(results_dir) / "bench.json"
    record_read(path)
    return io.read_json(path, keys=("bench", "device_name", "started")) if path.exists() else None
