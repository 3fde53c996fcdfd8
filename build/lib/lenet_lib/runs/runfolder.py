"""A run's folder read back: every file the library reads from `<results>/<experiment>/<run_id>/`
is checked here against what it must hold, and a bad one is refused with its folder named and
the fix (runner.py, results.py, so `lenet run`, `lenet results`, `lenet prune`, `lenet predict`,
`lenet export-web` and the chapters); and a run made in its folder (`train_run`: chapter 06,
the notebook every run executes).
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from lenet_lib.base import io
from lenet_lib.nets import data, train

from .experiments import (
    METRIC_COLUMNS,
    Run,
    check_machine,
    finish_run,
    new_model,
    run_id,
    start_run,
    stored_params,
)  # fmt: skip

# What a complete run's summary must hold, each a finite number but its id.
SUMMARY_KEYS = ("run_id", "train_acc", "train_acc_running", "test_acc", "seconds")
# The parameters every params.json has recorded since the first run; a field added later is
# filled in with its default (`stored_params`), so adding one never touches this list.
REQUIRED = ["experiment", "optimizer", "lr", "epochs", "momentum", "batch_size", "seed", "model",
            "width", "scaling", "weight_decay", "train_subset", "test_subset", "run_id"]  # fmt: skip


def _fix(run_dir) -> str:
    return f"restore it (git checkout) or delete {run_dir} and run that run again"


def check_name(name) -> str:
    """A run id or an experiment: one folder name, never a path (`../paper/...` would read
    another experiment's run) and never empty."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_+.=-]+", name) or ".." in name:
        raise ValueError(
            f"{name!r} is not a run id or an experiment's name: use a folder name such as "
            "adam-e100-s0 or optimizers (letters, digits and - _ . + =, no '/' or '..')"
        )
    return name


def read_params(run_dir, keys=()) -> dict:
    """`params.json`: an object with `keys` whose "parameters" are the valid parameters of a
    run; they come back with the defaults of the fields added since (`stored_params`)."""
    path = Path(run_dir) / "params.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no params.json: {_fix(run_dir)}")
    record = io.read_json(path, keys=("parameters", *keys))
    p = record["parameters"]
    if not isinstance(p, dict):
        raise ValueError(f"{path}: 'parameters' is a JSON {type(p).__name__}, not an object: "
                         f"{_fix(run_dir)}")  # fmt: skip
    missing = [k for k in REQUIRED if k not in p]
    if missing:
        raise ValueError(f"{path}: 'parameters' lacks {', '.join(missing)}: {_fix(run_dir)}")
    p = stored_params(p)
    try:
        Run(**{k: p[k] for k in Run.__dataclass_fields__})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} holds {e}: {_fix(run_dir)}") from None
    return record | {"parameters": p}


def stored_run(run_dir) -> Run:
    """The run that `run_dir/params.json` records."""
    p = read_params(run_dir)["parameters"]
    return Run(**{k: p[k] for k in Run.__dataclass_fields__})


def read_summary(run_dir, complete: bool = False) -> dict:
    """`summary.json`: an object with a status; `complete`: also the numbers of a complete
    run (SUMMARY_KEYS), each finite."""
    path = Path(run_dir) / "summary.json"
    s = io.read_json(path, keys=SUMMARY_KEYS + ("status",) if complete else ("status",))
    if not isinstance(s["status"], str):
        raise ValueError(f"{path}: 'status' is not a string: {_fix(run_dir)}")
    bad = [k for k in SUMMARY_KEYS[1:] if complete and not _finite(s[k])]
    if bad:
        raise ValueError(f"{path} says complete but {', '.join(bad)} is not a finite number: "
                         f"delete {run_dir} and re-run it")  # fmt: skip
    return s


def is_complete(run_dir) -> bool:
    return (Path(run_dir) / "summary.json").exists() and read_summary(run_dir)["status"] == (
        "complete"
    )


def read_metrics(run_dir) -> pd.DataFrame:
    """`metrics.csv`: one row an epoch, every column of METRIC_COLUMNS a number."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no metrics.csv: {_fix(run_dir)}")
    try:
        m = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a CSV table ({' '.join(str(e).split())[:120]}): "
                         f"{_fix(run_dir)}") from None  # fmt: skip
    missing = [c for c in METRIC_COLUMNS if c not in m.columns]
    odd = [c for c in METRIC_COLUMNS if c in m.columns and not pd.api.types.is_numeric_dtype(m[c])]
    if missing or odd or m.empty:
        what = (f"lacks {', '.join(missing)}" if missing else f"has non-numbers in {', '.join(odd)}"
                if odd else "has no rows")  # fmt: skip
        raise ValueError(f"{path} {what}: {_fix(run_dir)}")
    return m


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def prepare(run_dir, run: Run) -> Path:
    """The folder of a run about to start (chapter 06): checked writable; one that holds a run
    already resumes it only if that run has the same parameters (a longer `epochs` continues
    it). An empty `run_dir` is a new temporary folder, made by the run's first file (so a run
    that fails before leaves nothing)."""
    if not run_dir:
        return Path(tempfile.gettempdir()) / f"lenet-run-{uuid.uuid4().hex[:12]}"
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=run_dir).close()
    except OSError as e:
        raise ValueError(f"run_dir {str(run_dir)!r} cannot be written ({e.strerror}): give "
                         "-p run_dir a folder you can write") from None  # fmt: skip
    if (run_dir / "params.json").exists():
        old = stored_run(run_dir)
        diff = [f"{k} {getattr(old, k)!r} there, {getattr(run, k)!r} here"
                for k in Run.__dataclass_fields__ if k not in ("epochs", "run_id")
                and getattr(old, k) != getattr(run, k)]  # fmt: skip
        if diff:
            raise ValueError(f"{run_dir} holds a run with other parameters ({'; '.join(diff)}): "
                             "give another run_dir, or delete that folder to start again")  # fmt: skip
        if old.epochs > run.epochs:  # its params.json would say fewer epochs than it ran
            raise ValueError(f"{run_dir} holds a run of {old.epochs} epochs: give epochs >= "
                             f"{old.epochs} (a run goes on, never back), or another run_dir")  # fmt: skip
    elif (run_dir / "checkpoint.pt").exists() and not (run_dir / "continued_from").exists():
        raise ValueError(f"{run_dir} holds a checkpoint.pt but no params.json saying what made "
                         "it: give another run_dir, or delete that folder")  # fmt: skip
    return run_dir


@dataclass
class Trained:
    """What `train_run` hands back to the notebook: the run, its folder, the trained model, the
    parameters as params.json records them, one row of metrics an epoch, the summary."""

    run: Run
    run_dir: Path
    net: torch.nn.Module
    params: dict
    history: list
    summary: dict
    device: torch.device
    shapes: dict


def train_run(run: Run, run_dir="", device="auto", threads=0) -> Trained:
    """Everything the training notebook (chapter 06) does between its parameters and its
    figures: check the machine settings and the folder, load the data, build the model,
    write params.json, train (resuming from the folder's checkpoint), write metrics.csv and
    summary.json."""
    check_machine(device, threads)
    if threads:
        torch.set_num_threads(threads)
    params = run.params() | {"run_id": run_id(run)}
    run_dir = prepare(run_dir, run)
    dev = train.pick_device(device)
    X, y, X_test, y_test = data.load_run_data(
        run.scaling, run.train_subset, run.test_subset, dev, run.seed
    )
    net = new_model(run, dev)
    started = time.time()
    start_run(run_dir, params, dev)
    history = train.fit(net, X, y, X_test, y_test, run, checkpoint=run_dir / "checkpoint.pt")
    summary = finish_run(run_dir, params, history, train.evaluate(net, X, y), started)
    shapes = {"train": tuple(X.shape), "test": tuple(X_test.shape)}
    return Trained(run, run_dir, net, params, history, summary, dev, shapes)
