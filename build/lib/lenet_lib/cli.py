"""The `lenet` command: data, params, run, results, prune, bench, predict, lab, export-web.
All printing."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from lenet_lib.base import io

RESULTS = io.RESULTS  # <repo>/results, wherever LENET_DATA puts the data


def _fail(message: str, code: int = 1):
    """The one line a failed command ends with: the problem and the fix."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def cmd_data(args):
    from lenet_lib.nets import data

    dest = data.fetch(args.root, force=args.force) if args.action == "fetch" else None
    status = data.verify(args.root)
    for name, s in status.items():
        print(f"{data.raw_dir(args.root) / name}: {s}")
    bad = [n for n, s in status.items() if s != "ok"]
    if bad and dest is None:
        force = " --force" if any(s != "missing" for s in status.values()) else ""
        return _fail(f"{len(bad)} of {len(status)} MNIST files in {data.raw_dir(args.root)} are "
                     f"not right: run `lenet data fetch --root {shlex.quote(args.root)}{force}`")  # fmt: skip
    return 0


def _print_table(df, fmt: str) -> None:
    """A DataFrame as 'table', 'csv' or 'json' (a list of records) on stdout."""
    if fmt == "json":
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=2))
    elif fmt == "csv":
        print(df.to_csv(index=False), end="")
    else:
        print(df.to_string(index=False))


def cmd_params(args):
    from lenet_lib.nets.models import build_model, layer_table

    table = layer_table(build_model(args.model))
    _print_table(table[["layer", "params", "connections"]] if args.format == "json" else table,
                 args.format)  # fmt: skip
    return 0


def _seeds(text: str):
    from lenet_lib.runs.experiments import SEED_MAX

    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or max(seeds) > SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"--seeds takes integers >= 0 (at most {SEED_MAX}) separated by commas, e.g. 0,1,2, "
            f"not {text!r}"
        )
    if len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds names a seed twice: {text!r}")
    return seeds


def _run_ids(text: str) -> str:
    """`--only`: run ids separated by commas, none empty (an empty one would select all)."""
    if not all(s.strip() for s in text.split(",")):
        raise argparse.ArgumentTypeError(
            f"--only takes run ids separated by commas, e.g. adam-e30-s0, not {text!r}"
        )
    return text


def _folder(text: str) -> str:
    """A path that names something: an empty one would silently mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("takes a path, not an empty string")
    return text


def _name(text: str) -> str:
    """A run id or an experiment: a folder's name, never a path (`../paper/...`)."""
    from lenet_lib.runs.runfolder import check_name

    try:
        return check_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seconds(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        t = -1.0
    if not 0 <= t < float("inf"):
        raise argparse.ArgumentTypeError(f"takes seconds >= 0 (0: no limit), not {text!r}")
    return t


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"takes an integer >= 1, not {text!r}")
    return n


def _device(text: str) -> str:
    from lenet_lib.nets import train

    problem = train.device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def cmd_run(args):
    from lenet_lib.runs import runner

    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs must be at least 1, got {args.jobs}")
    reports = runner.run_experiment(
        args.experiment,
        seeds=args.seeds,
        quick=args.quick,
        only=args.only.split(",") if args.only else None,
        results_dir=args.results_dir,
        jobs=args.jobs,
        device=args.device,
        scheduler=args.scheduler,
        threads=args.threads,
        dashboard=args.dashboard,
        wait_workers=args.wait_workers,
    )
    print(f"{len(reports)} runs: {sum(r.get('status') == 'complete' for r in reports)} complete")
    failed = [r["run_id"] for r in reports if r.get("status") in ("failed", "not run")]
    locked = [r["run_id"] for r in reports if r.get("status") == "locked"]
    if failed:
        return _fail(f"failed: {', '.join(failed)} (see summary.json in each run's folder)")
    if locked:
        return _fail(
            f"locked by another runner: {', '.join(locked)} and the rest of their chains; "
            "run again once it has finished"
        )
    return 0


def cmd_results(args):
    from lenet_lib.runs import results
    from lenet_lib.runs.plans import EXPERIMENTS

    if (
        args.experiment not in EXPERIMENTS
        and not (Path(args.results_dir) / args.experiment).is_dir()
    ):
        return _fail(f"unknown experiment {args.experiment!r}: use one of {', '.join(EXPERIMENTS)}")

    unfinished = results.unfinished_runs(args.experiment, args.results_dir)
    try:
        df = results.load_results(args.experiment, args.results_dir)
        _print_table(df[[c for c in results.RESULT_COLUMNS if c in df.columns]], args.format)
    finally:
        if len(unfinished):  # below the table, or on stderr where stdout is csv or json
            out = sys.stdout if args.format == "table" else sys.stderr
            print(f"\nNot in the table, {len(unfinished)} runs not complete:", file=out)
            print(unfinished.to_string(index=False), file=out)
    return 0


def cmd_prune(args):
    from lenet_lib.runs import runner
    from lenet_lib.runs.plans import EXPERIMENTS

    for experiment in args.experiments:
        if experiment not in EXPERIMENTS:  # never a folder's name: it decides what is kept
            return _fail(f"unknown experiment {experiment!r}: use one of {', '.join(EXPERIMENTS)}")
        if not (Path(args.results_dir) / experiment).is_dir():
            return _fail(f"no results in {Path(args.results_dir) / experiment}: give "
                         f"--results-dir the folder that holds {experiment}/")  # fmt: skip
        done = runner.prune(experiment, args.results_dir)
        print(f"{experiment}: {len(done)} finished runs pruned")
    return 0


def cmd_bench(args):
    from lenet_lib.runs import bench

    bench.check(args.images, args.batch_size, args.output)  # before minutes of timing
    bench.main(args.images, args.batch_size, fmt=args.format, output=args.output)
    return 0


def cmd_predict(args):
    from lenet_lib.book import handwriting

    run = args.run or handwriting.NOTES_RUN
    return handwriting.predict_cli(args.images, run=run, results_dir=args.results_dir)


def cmd_lab(args):
    from lenet_lib.nets import data

    data.fetch()  # the chapters read MNIST
    kernels = Path(sys.prefix, "share", "jupyter", "kernels")
    # kernel_dirs: `python3` is this environment's own python, whatever other kernels are
    # registered for the user; exec, so that stopping this process stops the server.
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={RESULTS.parent}"]
    argv += [
        "--LabApp.default_url=/lab/tree/chapters",
        f"--KernelSpecManager.kernel_dirs={kernels}",
    ]
    os.execv(sys.executable, argv)


def cmd_export_web(args):
    from lenet_lib.book import web

    for path in web.export(args.outdir, args.notes_run or web.NOTES_RUN, args.paper_run or None):
        print(path)
    return 0


def parser() -> argparse.ArgumentParser:
    from lenet_lib.nets import (
        data,  # here, not at the top: a bad LENET_DATA is then an error of main()
    )

    p = argparse.ArgumentParser(prog="lenet", description="The LeNet-5 companion's tools.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="fetch or verify MNIST")
    d.add_argument("action", choices=["fetch", "verify"])
    d.add_argument(
        "--root", type=_folder, default=str(data.DEFAULT_ROOT),
        help="data folder (default: the project's data/)",
    )  # fmt: skip
    d.add_argument("--force", action="store_true", help="replace corrupt files")
    d.set_defaults(func=cmd_data)

    m = sub.add_parser("params", help="the per-layer parameter and connection counts")
    m.add_argument("--model", choices=["paper", "notes"], default="paper")
    m.add_argument("--format", choices=["table", "csv", "json"], default="table")
    m.set_defaults(func=cmd_params)

    r = sub.add_parser("run", help="run an experiment's training runs through papermill")
    r.add_argument(
        "experiment", type=_name, help="an experiment of lenet_lib/runs/plans.py, e.g. lush"
    )
    r.add_argument(
        "--jobs", type=_positive, help="workers of the embedded cluster (default: one per CPU core)"
    )
    r.add_argument(
        "--threads", type=_positive,
        help="torch threads of each run (default: each committed run's count, else 1)",
    )  # fmt: skip
    r.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
        help="a Dask scheduler, e.g. tcp://HOST:8786 (default: $DASK_SCHEDULER_ADDRESS, or "
        "a cluster on this machine)",
    )
    r.add_argument("--wait-workers", type=_seconds, default=60.0, metavar="SECONDS",
                   help="with --scheduler: how long to wait for a first worker (default 60; "
                   "0: no limit)")  # fmt: skip
    r.add_argument("--dashboard", action="store_true",
                   help="open the embedded cluster's Dask dashboard, on 127.0.0.1 only")  # fmt: skip
    r.add_argument("--quick", action="store_true", help="small subsets, a few epochs (tests)")
    r.add_argument("--seeds", type=_seeds,
                   help="e.g. 0,1,2 (default: the committed runs' seeds; with --quick, 0)")  # fmt: skip
    r.add_argument("--only", type=_run_ids, help="run ids, comma-separated, e.g. adam-e30-s0 "
                   "(default: the committed runs)")  # fmt: skip
    r.add_argument("--results-dir", default=str(RESULTS), type=_folder, help="default results/")
    r.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or cuda:N")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("results", help="the results of an experiment's complete runs")
    s.add_argument("experiment", type=_name)
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument("--results-dir", default=str(RESULTS), type=_folder, help="default results/")
    s.set_defaults(func=cmd_results)

    pr = sub.add_parser(
        "prune", help="drop what finished runs no longer need (optimizer state, unread checkpoints)"
    )
    pr.add_argument("experiments", nargs="+", type=_name, help="e.g. optimizers capacity")
    pr.add_argument("--results-dir", default=str(RESULTS), type=_folder, help="default results/")
    pr.set_defaults(func=cmd_prune)

    b = sub.add_parser("bench", help="training speed against the textbook DataLoader pipeline")
    b.add_argument("--images", type=_positive, default=20000, help="images timed per pipeline")
    b.add_argument("--batch-size", type=_positive, default=64)
    b.add_argument("--format", choices=("text", "json"), default="text")
    b.add_argument("--output", type=_folder, help="also write the numbers to this JSON file "
                   "(results/bench.json is the one the optimizer chapter reads)")  # fmt: skip
    b.set_defaults(func=cmd_bench)

    q = sub.add_parser("predict", help="classify your own images of digits")
    q.add_argument("images", nargs="+", type=Path)
    q.add_argument("--run", type=_name,
                   help="a run of results/optimizers (default: plans.NOTES_RUN)")  # fmt: skip
    q.add_argument("--results-dir", default=str(RESULTS), type=_folder, help="default results/")
    q.set_defaults(func=cmd_predict)

    lab = sub.add_parser("lab", help="JupyterLab on chapters/, in this environment (make lab)")
    lab.set_defaults(func=cmd_lab)
    w = sub.add_parser("export-web", help="the draw page's weights and scripts (chapter 10)")
    w.add_argument("outdir", type=_folder, help="e.g. _build/html/_static/draw")
    w.add_argument("--notes-run", type=_name,
                   help="a run of results/optimizers (default: plans.NOTES_RUN)")  # fmt: skip
    w.add_argument("--paper-run", type=_name, help="a run of results/paper (default: the best)")
    w.set_defaults(func=cmd_export_web)
    return p


def main(argv=None) -> int:
    """Run a `lenet` command; whatever goes wrong ends in one line on stderr that names the
    problem and the fix, and a non-zero exit status (LENET_DEBUG=1 shows the traceback)."""
    if __name__ == "__main__" or argv is None:  # a process of its own: say why it ends
        signal.signal(signal.SIGTERM, _terminated)
    args = None
    try:
        args = parser().parse_args(argv)
        return args.func(args)
    except KeyboardInterrupt:
        return _fail(
            "interrupted: finished runs are kept and a run in progress resumes from its last "
            "finished epoch: run the same command again to go on",
            130,
        )
    except Exception as e:
        if os.environ.get("LENET_DEBUG"):
            raise
        return _fail(_explain(e, args))


def _terminated(signum, frame):
    """SIGTERM: say that the state is safe, as Ctrl-C does, then die of the signal (exit 143)
    as before, which ends the runs' kernels with this process."""
    _fail("terminated (SIGTERM): finished runs are kept and a run in progress resumes from its "
          "last finished epoch: run the same command again to go on")  # fmt: skip
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _explain(e: Exception, args=None) -> str:
    """One line for an exception: the library's own (ValueError, FileNotFoundError and its
    exception classes) carry the fix; the system's get one here, naming the command's own
    option for the folder it writes, if it has one."""
    if isinstance(e, OSError) and e.errno is not None:
        what = f"{e.strerror}: {e.filename}" if e.filename else str(e)
        option = next((f"--{o.replace('_', '-')}" for o in ("results_dir", "root", "output")
                       if getattr(args, o, None) is not None), None)  # fmt: skip
        where = f" (or give {option} another folder)" if option else ""
        return f"{what}: check that path, and that you may read or write there{where}"
    if isinstance(e, ValueError | OSError) or type(e).__module__.startswith("lenet_lib"):
        return str(e)
    return (
        f"unexpected {type(e).__name__}: {e}; this is a bug in lenet: please report it with "
        "the command you ran (LENET_DEBUG=1 shows the traceback)"
    )


if __name__ == "__main__":
    sys.exit(main())
