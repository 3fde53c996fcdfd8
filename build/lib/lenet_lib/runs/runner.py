"""Running plans on Dask: chains of runs, their status, locks, and pruning what a finished
run no longer needs (`lenet run`, `lenet prune`, `make reproduce`).

Each run is a task that executes `chapters/06_training_run.ipynb` on a worker (worker.py) and
returns the run's files; the client writes them into its results folder, "complete" last
(`_write`). Runs that differ only in their length form a chain, shortest first: a longer run
starts from the checkpoint of the shorter one, and the client submits it once that one is written (Adam 60 and
100 epochs continue Adam 30). Without a scheduler's address, a `LocalCluster` in this process
runs them.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import ExitStack
from pathlib import Path

from lenet_lib.base import io
from lenet_lib.base.io import Lock
from lenet_lib.nets import data, train

from . import runfolder
from .cluster import Dask, Here
from .experiments import Run, run_id
from .plans import COMMITTED, EXPERIMENTS, WEIGHTS_READ, Committed
from .runfolder import is_complete as _complete
from .runfolder import stored_run as _stored_run
from .worker import KERNEL, NOTEBOOK, TOKEN, compact_notebook, execute  # noqa: F401 (tests)

RESULTS = io.RESULTS


def chains(runs: list[Run]) -> list[list[Run]]:
    """Group runs that differ only in their length (`Run.continuation_key`), shortest first: each chain
    runs in order in one worker."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(r.continuation_key(), []).append(r)
    return [sorted(g, key=lambda r: r.epochs) for g in groups.values()]


def status(run_dir: Path, run: Run) -> str:
    """'complete', 'partial' (a checkpoint to resume) or 'new'.

    A folder that holds a run with other parameters, or that disagrees with itself (complete
    without its params.json, a finished run's pruned checkpoint without a complete summary),
    is refused rather than overwritten.
    """
    leave = "left alone: restore what it lacks (git checkout), delete it to run it again, or use another --results-dir"
    if (run_dir / "params.json").exists():
        stored = runfolder.read_params(run_dir)["parameters"]
        wanted = run.params() | {"run_id": run_id(run)}
        if {k: stored.get(k) for k in wanted} != wanted:
            raise ValueError(f"{run_dir} holds a run with other parameters: {leave}")
        if _complete(run_dir):
            return "complete"
    elif _complete(run_dir):
        raise ValueError(f"{run_dir} says complete but has no params.json: {leave}")
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.exists():
        return "new"
    try:  # a checkpoint pruned to its weights: a finished run, not one to resume
        pruned = not set(train.load_checkpoint(ckpt)) - {"model", "epoch", "sdlm"}
    except ValueError:
        pruned = False  # corrupt: the run fails in its notebook, which says why
    if pruned:
        raise ValueError(f"{run_dir} holds the pruned checkpoint of a finished run but no "
                         f"complete summary.json: {leave}")  # fmt: skip
    return "partial"


def _write(run_dir: Path, result) -> dict:
    """Write a run's returned files into its folder atomically, `summary.json` last: a run is
    complete only once every other file, the executed notebook included, is in place. A task
    that raised (its worker or kernel died too often) is a failed run. Returns the report."""
    if isinstance(result, BaseException):
        error = f"{type(result).__name__}: {result}"
        result = {"run_id": run_dir.name, "status": "failed", "error": error, "files": {}}
    files = dict(result["files"])
    summary = files.pop("summary.json", None)
    for name, payload in files.items():
        io.write_atomic(run_dir / name, payload)
    (run_dir / TOKEN).unlink(missing_ok=True)
    if result["status"] == "complete":
        report = json.loads(summary) | {"status": "complete"}
    else:
        report = {k: result[k] for k in ("run_id", "status", "error")}
        report["notebook"] = str(run_dir / "run.ipynb") if "run.ipynb" in files else None
    io.write_json(run_dir / "summary.json", report)
    return report


def _bar(done: int, total: int, width: int = 20) -> str:
    k = round(width * done / max(total, 1))
    return f"[{'#' * k}{'.' * (width - k)}] {done}/{total}"


def _line(report: dict) -> str:
    rid, st = report["run_id"], report["status"]
    if st == "complete":
        return f"{rid}: complete, test {report['test_acc']:.2f}% in {report['seconds']:.0f} s"
    if st == "failed":
        where = f"; see {report['notebook']}" if report.get("notebook") else ""
        return f"{rid}: FAILED ({report['error'][:300]}){where}"
    return f"{rid}: {st} ({report['error']})"


def _run_chains(
    groups: list[list[Run]], results_dir: Path, device: str, engine, threads=1
) -> list[dict]:
    """Run every chain's runs on `engine`, holding each run's lock until its files are written;
    return the reports in the plan's order. `threads`: torch threads of every run, or a
    function of a run id that gives each run's. At most the engine's slots at once: a chain's next
    run goes once the run it continues is written (it starts from that checkpoint), and a freed
    slot goes to the longest chain with a run ready: it bounds the wall time (Table 2's Adam
    30-60-100). Given every run at once, Dask let another chain's run take a chain's worker
    between two of its runs when two runs ended together."""
    reports, chains_left = {}, []
    with ExitStack() as held:
        for chain in sorted(groups, key=lambda ch: -max(r.epochs for r in ch)):
            todo = []
            for run in chain:
                rid, run_dir = run_id(run), Path(results_dir) / run.experiment / run_id(run)
                if not held.enter_context(Lock(run_dir)):
                    reports[rid] = {"run_id": rid, "status": "locked"}
                    print(f"{rid}: locked by another runner, skipping it and its chain", flush=True)
                    break
                todo.append((run, rid, run_dir, status(run_dir, run)))
                if todo[-1][-1] == "complete":
                    reports[rid] = io.read_json(run_dir / "summary.json") | {"action": "skipped"}
                    print(f"{rid}: complete, skipped", flush=True)
            chains_left.append(todo)
        total = sum(st != "complete" for todo in chains_left for *_, st in todo)
        parents, in_flight, ended = {}, [], []  # chain -> (folder, id) of its last run; ...

        def say(rid):
            ended.append(rid)
            print(f"{_bar(len(ended), total)} {_line(reports[rid])}", flush=True)

        def submit_next(i):
            while chains_left[i]:
                run, rid, run_dir, st = chains_left[i].pop(0)
                parent, parents[i] = parents.get(i), (run_dir, rid)
                if st == "complete":
                    continue
                if parent and reports[parent[1]].get("status") != "complete":
                    error = f"{parent[1]}, which it continues, did not complete"
                    reports[rid] = {"run_id": rid, "status": "not run", "error": error}
                    say(rid)
                    continue
                kw = dict(start={}, action="fresh")  # or resumed, or continued
                if st == "partial":
                    own = [run_dir / n for n in ("checkpoint.pt", "continued_from", "params.json")]
                    kw = dict(start={p.name: p.read_bytes() for p in own if p.exists()},
                              action="resumed")  # fmt: skip
                elif parent:
                    kw = dict(start={"checkpoint.pt": (parent[0] / "checkpoint.pt").read_bytes(),
                                     "continued_from": f"{parent[1]}\n"},
                              action=f"continued from {parent[1]}")  # fmt: skip
                token = uuid.uuid4().hex
                io.write_atomic(run_dir / TOKEN, token)
                n = threads(rid) if callable(threads) else threads
                task = engine.submit(run, str(run_dir.resolve()), token, device=device,
                                     threads=n, **kw)  # fmt: skip
                reports[rid] = {"action": kw["action"]}
                in_flight.append((task, i, rid, run_dir))
                return

        def fill():
            busy, slots = {i for _, i, *_ in in_flight}, engine.slots()
            for i in range(len(chains_left)):  # the longest chain first
                if i not in busy and chains_left[i] and len(in_flight) < slots:
                    submit_next(i)

        fill()
        while in_flight:
            task, result = engine.first_done([t for t, *_ in in_flight])
            _, i, rid, run_dir = in_flight.pop([t for t, *_ in in_flight].index(task))
            reports[rid] = _write(run_dir, result) | reports[rid]
            say(rid)
            fill()
    return [reports[run_id(r)] for ch in groups for r in ch if run_id(r) in reports]


def run_chain(chain: list[Run], results_dir: Path, device="auto", threads=1) -> list[dict]:
    """Run a chain (`chains`) here, in order; a longer run continues a shorter one.
    One torch thread a run by default, as on the cluster's workers (the same metrics)."""
    return _run_chains([chain], results_dir, device, Here(threads))


def plan(name: str, seeds=(0,), quick=False, only=None) -> list[Run]:
    """The runs of experiment `name`, checked; with `only`, those run ids and the shorter runs
    of their chains that they continue."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: use one of {', '.join(EXPERIMENTS)}")
    try:  # a Run checks itself when it is made
        runs = EXPERIMENTS[name](seeds=seeds, quick=quick)
    except ValueError as e:
        raise ValueError(f"experiment {name}: {e}") from None
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
    return runs


def _check_quick_or_full(name: str, runs: list[Run], results_dir: Path, quick: bool) -> None:
    """Refuse to put quick runs where full runs live, and the other way round: a table of the
    folder would mix the two."""
    where = Path(results_dir).resolve()
    if RESULTS.resolve() in where.parents:  # results/optimizers/optimizers/...
        raise ValueError(
            f"--results-dir {results_dir} is inside {RESULTS}, which holds the runs the book "
            f"reads: give --results-dir DIR outside it (or leave it out for {RESULTS} itself)"
        )
    if quick and where == RESULTS.resolve():
        raise ValueError(
            f"--quick runs never go into {RESULTS}, which holds the runs the book reads: "
            "give --results-dir DIR"
        )
    planned = set(runs)
    for params in sorted((Path(results_dir) / name).glob("*/params.json")):
        try:
            stored = _stored_run(params.parent)
        except (KeyError, TypeError, ValueError):
            continue  # `status` says what is wrong with it, if it is a run of this plan
        if stored in planned:
            continue
        seed = (stored.seed,)
        if stored in EXPERIMENTS[name](seeds=seed, quick=not quick):
            kind, other = ("full", "quick") if quick else ("quick", "full")
            raise ValueError(
                f"{params.parent.parent} holds {kind} runs ({params.parent.name}): put the "
                f"{other} runs in another --results-dir"
            )


def committed(name: str, seeds=None, only=None, threads=None, quick=False):
    """`(seeds, only, threads)` for `run_experiment`: those given, the others as the runs
    results/ holds (plans.COMMITTED); `only` from there only where no seeds are given.
    `threads` is a function of a run id. A quick run: seed 0, one thread."""
    c = Committed() if quick else COMMITTED.get(name, Committed())
    if seeds is None and only is None:
        only = list(c.only) or None
    seeds = c.seeds if seeds is None else seeds
    return seeds, only, (lambda rid: threads) if threads else (lambda rid: c.threads.get(rid, 1))


def run_experiment(
    name: str, seeds=None, quick=False, only=None, results_dir=RESULTS, jobs=None,
    device="auto", scheduler=None, threads=None, dashboard=False, wait_workers=60.0,
) -> list[dict]:  # fmt: skip
    """Run every run of experiment `name` on Dask (skipping finished ones) and return their
    reports; then prune the chains that are finished.

    Without `seeds`, `only` and `threads`, the runs results/ holds (`committed`); given, they
    override it. Parameters are checked for every run before any training. `scheduler` is the address of a
    running Dask scheduler (default: $DASK_SCHEDULER_ADDRESS); without one, a LocalCluster of
    `jobs` workers (default: one per CPU core, at most one per chain) runs here. Each run
    uses `threads` torch threads (metrics are bit for bit only at the same count).
    `dashboard`, `wait_workers`: see `cluster.Dask`.
    """
    seeds, only, threads = committed(name, seeds, only, threads, quick)
    runs = plan(name, seeds, quick, only)
    results_dir = Path(results_dir)
    _check_quick_or_full(name, runs, results_dir, quick)
    data.fetch(data.DEFAULT_ROOT)  # verifies the files; fails before any training if corrupt
    groups = chains(runs)
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    jobs = min(jobs or os.cpu_count() or 1, len(groups))
    engine = Dask(scheduler, jobs, dashboard=dashboard, wait_workers=wait_workers)
    try:
        reports = _run_chains(groups, results_dir, device, engine, threads)
    finally:
        engine.close()
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
    nothing can continue from it); runs locked by a runner are left alone. What a run keeps
    follows the experiment its params.json records, never the folder's name (a copy of
    results/optimizers named `backup` keeps its weights); a run recorded as another
    experiment's is left alone."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}: use one of {', '.join(EXPERIMENTS)}")
    folder = Path(results_dir) / experiment
    out = []
    for params in sorted(folder.glob("*/params.json")):
        run_dir = params.parent
        if not _complete(run_dir):
            continue
        run = _stored_run(run_dir)
        chain = _plan_chain(run)
        if run.experiment != experiment or not all(_complete(folder / run_id(r)) for r in chain):
            continue
        with Lock(run_dir) as locked:
            if locked:
                what = prune_run(run_dir, run.experiment in WEIGHTS_READ)
                out.append((run_dir.name, what))
                if log:
                    log(f"{run_dir.name}: {what}")
    return out
