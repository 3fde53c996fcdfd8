"""Executing runs through papermill: chains of runs, their status, locks, and pruning what a
finished run no longer needs (`lenet run`, `lenet prune`, `make reproduce`).

Each run executes `chapters/06_training_run.ipynb` into its folder. Runs of one protocol
form a chain, shortest first, so a longer run continues the finished shorter one (Adam 60
and 100 epochs continue Adam 30). Chains run one after the other, or side by side in a pool
of processes (`_map_chains`, the one place that knows how).
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from . import data, io, train
from .experiments import EXPERIMENTS, WEIGHTS_READ, Run, run_id, validate

NOTEBOOK = io.ROOT / "chapters" / "06_training_run.ipynb"
RESULTS = io.RESULTS
KERNEL = "python3"  # the standard name: from the venv, its own kernel (ipykernel's)


def chains(runs: list[Run]) -> list[list[Run]]:
    """Group runs by protocol, shortest first: each chain runs in order in one worker."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(r.protocol(), []).append(r)
    return [sorted(g, key=lambda r: r.epochs) for g in groups.values()]


def _complete(run_dir: Path) -> bool:
    summary = run_dir / "summary.json"
    return summary.exists() and io.read_json(summary).get("status") == "complete"


def status(run_dir: Path, run: Run) -> str:
    """'complete', 'partial' (a checkpoint to resume) or 'new'.

    A folder that holds a run with other parameters is refused rather than overwritten.
    """
    if (run_dir / "params.json").exists():
        stored = io.read_json(run_dir / "params.json")["parameters"]
        wanted = run.params() | {"run_id": run_id(run)}
        if {k: stored.get(k) for k in wanted} != wanted:
            raise ValueError(
                f"{run_dir} holds a run with other parameters: delete that folder "
                "or use another --results-dir"
            )
        if _complete(run_dir):
            return "complete"
    return "partial" if (run_dir / "checkpoint.pt").exists() else "new"


class Lock:
    """An exclusive, non-blocking lock on a run's folder (filelock: freed if the process
    dies, on every platform). `with Lock(d) as got:` gives False if another runner holds it."""

    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(run_dir / ".lock")

    def __enter__(self):
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def __exit__(self, *exc):
        if self.lock.is_locked:
            self.lock.release()


def execute(run: Run, run_dir: Path, device="auto", threads=0) -> dict:
    """Execute the training notebook for `run` into `run_dir` with papermill."""
    import papermill as pm

    params = run.params() | {
        "run_id": run_id(run),
        "run_dir": str(run_dir.resolve()),
        "device": device,
        "threads": threads,
    }
    pm.execute_notebook(
        str(NOTEBOOK),
        str(run_dir / "run.ipynb"),
        parameters=params,
        kernel_name=KERNEL,
        cwd=str(io.ROOT),
        progress_bar=False,
        log_output=False,
    )
    return io.read_json(run_dir / "summary.json")


def run_chain(chain: list[Run], results_dir: Path, device="auto", threads=0) -> list[dict]:
    """Run a chain of same-protocol runs in order; a longer one continues a shorter one."""
    if threads:
        torch.set_num_threads(threads)
    reports, parent = [], None
    for run in chain:
        rid = run_id(run)
        run_dir = Path(results_dir) / run.experiment / rid
        with Lock(run_dir) as locked:
            if not locked:
                reports.append({"run_id": rid, "status": "locked"})
                print(f"{rid}: locked by another runner, skipping it and its chain", flush=True)
                break
            st = status(run_dir, run)
            if st == "complete":
                reports.append(io.read_json(run_dir / "summary.json") | {"action": "skipped"})
                print(f"{rid}: complete, skipped", flush=True)
                parent = run_dir
                continue
            action = "resumed" if st == "partial" else "fresh"
            if st != "partial" and parent is not None:
                # Continue the finished shorter run: copy its final checkpoint, atomically.
                io.write_atomic(run_dir / "checkpoint.pt", (parent / "checkpoint.pt").read_bytes())
                io.write_atomic(run_dir / "continued_from", parent.name + "\n")
                action = f"continued from {parent.name}"
            print(f"{rid}: running ({action})", flush=True)
            t0 = time.time()
            try:
                summary = execute(run, run_dir, device, threads)
            except Exception as e:
                err = f"{type(e).__name__}: {e}"
                io.write_json(
                    run_dir / "summary.json",
                    {"run_id": rid, "status": "failed", "error": err[-4000:]},
                )
                print(f"{rid}: FAILED ({err.splitlines()[0][:200]})", flush=True)
                reports.append({"run_id": rid, "status": "failed", "error": err})
                break
            reports.append(summary | {"action": action})
            print(
                f"{rid}: complete, test {summary['test_acc']:.2f}% in {time.time() - t0:.0f} s",
                flush=True,
            )
            parent = run_dir
    return reports


def _map_chains(groups, results_dir, device, jobs) -> list[dict]:
    """Every chain's reports, in order: in this process, or `jobs` processes with a share of
    the CPU threads each. The seam where another executor would go."""
    if jobs <= 1:
        return [rep for ch in groups for rep in run_chain(ch, results_dir, device)]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_chain, ch, results_dir, device, threads) for ch in groups]
        return [rep for f in futures for rep in f.result()]


def plan(name: str, seeds=(0,), quick=False, only=None) -> list[Run]:
    """The runs of experiment `name`, checked; with `only`, those run ids and the shorter runs
    of their chains that they continue."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: use one of {', '.join(EXPERIMENTS)}")
    runs = EXPERIMENTS[name](seeds=seeds, quick=quick)
    if only:
        wanted = set(only)
        unknown = wanted - {run_id(r) for r in runs}
        if unknown:
            known = ", ".join(run_id(r) for r in runs)
            raise ValueError(f"unknown run id(s) {', '.join(sorted(unknown))}: known are {known}")
        keep = []
        for ch in chains(runs):
            last = max((i for i, r in enumerate(ch) if run_id(r) in wanted), default=-1)
            keep += ch[: last + 1]
        runs = keep
    for r in runs:
        try:
            validate(r)
        except ValueError as e:
            raise ValueError(f"{run_id(r)}: {e}") from None
    return runs


def run_experiment(
    name: str, seeds=(0,), quick=False, only=None, results_dir=RESULTS, jobs=1, device="auto"
) -> list[dict]:
    """Run every run of experiment `name` (skipping finished ones) and return their reports;
    then prune the chains that are finished.

    Parameters are checked for every run before any training. With `jobs` > 1, chains run
    in separate processes, each with its share of the CPU threads.
    """
    runs = plan(name, seeds, quick, only)
    data.fetch(data.DEFAULT_ROOT)  # verifies the files; fails before any training if corrupt
    results_dir = Path(results_dir)
    reports = _map_chains(chains(runs), results_dir, device, jobs)
    prune(name, results_dir)
    return reports


# Pruning: a finished run keeps what the book and the tests read.


def _plan_chain(run: Run) -> list[Run]:
    """The chain of the experiment's plan that `run` belongs to (itself alone if none)."""
    plan_of = EXPERIMENTS.get(run.experiment)
    for quick in (False, True):
        for ch in chains(plan_of(seeds=(run.seed,), quick=quick) if plan_of else []):
            if run in ch:
                return ch
    return [run]


def _stored_run(run_dir: Path) -> Run:
    p = io.read_json(run_dir / "params.json")["parameters"]
    return Run(**{k: p[k] for k in Run.__dataclass_fields__ if k in p})


def _glue_record(out) -> bool:
    """A myst-nb glue record: data for a book built from this notebook, which no notebook
    viewer shows (a run's notebook is never built into the book; metrics.csv has the data)."""
    keys = out.get("data", {}).keys()
    return bool(keys) and all(k.startswith("application/papermill.record/") for k in keys)


def compact_notebook(path: Path) -> None:
    """Keep of an executed notebook what a reader sees: consecutive stream outputs merged,
    each line that a progress bar rewrote with carriage returns in its last state, and no
    glue records."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if _glue_record(out):
                continue
            if out.output_type == "stream" and last and last.get("name") == out.name:
                last.text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = re.sub(r"[^\n]*\r(?=[^\n])", "", out.text)
        if "outputs" in cell:
            cell.outputs = merged
    io.write_atomic(path, nbformat.writes(nb))


def prune_run(run_dir: Path, keep_weights: bool) -> str:
    """Drop what only a continuation needs from a finished run: its checkpoint keeps the
    weights (and the SDLM settings) if something reads them, else it goes; the executed
    notebook is compacted (`compact_notebook`). Returns what was done."""
    ckpt = run_dir / "checkpoint.pt"
    done = []
    if ckpt.exists():
        state = train.load_checkpoint(ckpt)
        if not keep_weights:
            ckpt.unlink()
            done.append("checkpoint removed")
        elif set(state) - {"model", "epoch", "sdlm"}:
            io.save_torch({k: state[k] for k in ("model", "epoch", "sdlm") if k in state}, ckpt)
            done.append("checkpoint reduced to the weights")
    if (run_dir / "run.ipynb").exists():
        compact_notebook(run_dir / "run.ipynb")
    return ", ".join(done) or "nothing to drop"


def prune(experiment: str, results_dir=RESULTS, log=None) -> list[tuple[str, str]]:
    """Prune every complete run of `experiment` whose whole chain in the plan is complete (so
    nothing can continue from it); runs locked by a runner are left alone."""
    folder = Path(results_dir) / experiment
    out = []
    for params in sorted(folder.glob("*/params.json")):
        run_dir = params.parent
        if not _complete(run_dir):
            continue
        chain = _plan_chain(_stored_run(run_dir))
        if not all(_complete(folder / run_id(r)) for r in chain):
            continue
        with Lock(run_dir) as locked:
            if locked:
                what = prune_run(run_dir, experiment in WEIGHTS_READ)
                out.append((run_dir.name, what))
                if log:
                    log(f"{run_dir.name}: {what}")
    return out
