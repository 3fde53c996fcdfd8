"""The adversarial pass of issue 28, to re-run: the items of the issue's table and twenty
inputs of our own, each tried against the real `lenet`, the real training notebook (papermill)
and a real Dask scheduler, and counted as the issue counts them.

Each input is expected either to be refused (one `error:` line that holds the fix) or to get a
correct answer. An outcome is: `clear error`, `correct`, `unclear error` (refused, but the
line lacks the fix we look for), `silently accepted` (exit 0 where it should refuse), `wrong
result`, `data lost` (a file of a finished run or of results/ changed), `unhandled` (a
traceback, or main()'s "unexpected ... bug in lenet").

    PYTHONPATH=$PWD .venv/bin/python benchmarks/hostile_pass.py [--only NAME,...] [--out CSV]

About 10 minutes on two cores (one quick experiment is run first, as the issue's `Q`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LENET = [sys.executable, "-m", "lenet_lib.cli"]
COMMITTED = ROOT / "results"
ITEMS: list = []  # (name, source, function)


def item(name, source="own"):
    def register(f):
        ITEMS.append((name, source, f))
        return f

    return register


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name != ".lock"}  # fmt: skip


def lenet(*args, env=None, timeout=300):
    return subprocess.run([*LENET, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=os.environ | (env or {}))  # fmt: skip


def last_line(stderr: str) -> str:
    lines = [x for x in stderr.strip().splitlines() if not x.startswith("[IPKernelApp]")]
    return lines[-1] if lines else ""


def judge(proc, needles=(), refuse=True, check=None) -> tuple[str, str]:
    """The outcome of one `lenet` call that should be refused (with `needles` in its error
    line) or, with refuse False, succeed (and pass `check(proc)`)."""
    last = last_line(proc.stderr)
    if "Traceback" in proc.stderr or "unexpected" in last:
        return "unhandled", last or proc.stderr[-300:]
    if not refuse:
        ok = proc.returncode == 0 and (check is None or check(proc))
        return ("correct" if ok else "wrong result"), last or proc.stdout[-200:]
    if proc.returncode == 0:
        return "silently accepted", proc.stdout[-200:]
    is_error = last.startswith("error: ") or (last.startswith("lenet") and ": error: " in last)
    if is_error and all(n in last for n in needles):
        return "clear error", last
    return "unclear error", last


def notebook(tmp: Path, needles=(), env=None, **params) -> tuple[str, str]:
    """Execute the training notebook (small and short) expecting a clear refusal."""
    out = tmp / f"nb-{time.time_ns()}.ipynb"
    params = dict(epochs=1, train_subset=300, test_subset=100) | params
    cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "--kernel", "python3",
           str(ROOT / "chapters" / "06_training_run.ipynb"), str(out)]  # fmt: skip
    for k, v in params.items():
        cmd += ["-p" if not isinstance(v, str) else "-r", k, str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=os.environ | (env or {}))  # fmt: skip
    if proc.returncode == 0:
        return "silently accepted", ""
    err = [x for x in proc.stderr.splitlines() if x.startswith(("ValueError", "DataError"))]
    if err and all(n in err[-1] for n in needles):
        return "clear error", err[-1]
    return ("unclear error" if err else "unhandled"), (err or proc.stderr.splitlines()[-1:])[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digit_png(tmp: Path) -> Path:
    from PIL import Image

    from lenet_lib import data

    X, _ = data.load_mnist("test")
    Image.fromarray(255 - X[0].numpy()).resize((112, 112)).save(tmp / "digit.png")
    return tmp / "digit.png"


def copy(tmp: Path, *experiments, src=COMMITTED, name=None) -> Path:
    dest = tmp / f"c{time.time_ns()}"
    for e in experiments:
        shutil.copytree(src / e, dest / (name or e), ignore=shutil.ignore_patterns(".lock"))
    return dest


def edit_json(path: Path, change) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


# --- The table ----------------------------------------------------------------------


@item("prune a copy named backup", "issue")
def _(tmp, Q):
    S = copy(tmp, "optimizers", name="backup")
    before = snapshot(S)
    out = judge(lenet("prune", "backup", "--results-dir", S), ["unknown experiment"])
    return ("data lost", "checkpoints deleted") if snapshot(S) != before else out


@item("run --only a complete run whose params.json is gone", "issue")
def _(tmp, Q):
    q = copy(tmp, "optimizers", src=Q)
    run_dir = q / "optimizers" / "sgd-e30-s0"
    (run_dir / "params.json").unlink()
    before = snapshot(run_dir)
    proc = lenet("run", "optimizers", "--quick", "--results-dir", q, "--only", "sgd-e30-s0")
    return ("data lost", "") if snapshot(run_dir) != before else judge(proc, ["no params.json"])


def _reused_run_dir(tmp, Q, **change):
    run_dir = tmp / f"R{time.time_ns()}"
    base = dict(run_dir=str(run_dir), optimizer="sgd", lr=0.01, train_subset=1000, test_subset=500)
    assert notebook(tmp, **base)[0] == "silently accepted"  # the first run: it completes
    before = snapshot(run_dir)
    out = notebook(tmp, ["other parameters"], **(base | change))
    return ("data lost", "params.json rewritten") if snapshot(run_dir) != before else out


item("papermill run_dir again with lr 0.5 and epochs 2", "issue")(
    lambda tmp, Q: _reused_run_dir(tmp, Q, lr=0.5, epochs=2)
)
item("papermill run_dir again with width 2.0", "issue")(
    lambda tmp, Q: _reused_run_dir(tmp, Q, width=2.0)
)
item("papermill run_dir again with optimizer momentum", "issue")(
    lambda tmp, Q: _reused_run_dir(tmp, Q, optimizer="momentum")
)


def _bad_params(change, command):
    def run(tmp, Q):
        C = copy(tmp, "optimizers", "paper")
        run_dir = C / "optimizers" / "adam-e100-s0"
        edit_json(run_dir / "params.json", change)
        before = snapshot(C)
        if command == "export-web":  # the command reads results/ only: the book build's path
            code = ("import sys; from lenet_lib import web; web.export(sys.argv[1], "
                    "results_dir=sys.argv[2])")  # fmt: skip
            proc = subprocess.run([sys.executable, "-c", code, str(tmp / "web"), str(C)],
                                  capture_output=True, text=True, cwd=ROOT)  # fmt: skip
            bad = proc.stderr.strip().splitlines()[-1]
            ok = bad.startswith("ValueError") and "params.json" in bad
            return ("clear error" if ok else "unhandled"), bad
        args = {"predict": ["predict", digit_png(tmp), "--run", "adam-e100-s0"],
                "prune": ["prune", "optimizers"], "results": ["results", "optimizers"],
                "run": ["run", "optimizers", "--only", "adam-e100-s0"]}[command]  # fmt: skip
        out = judge(lenet(*args, "--results-dir", C), [f"{run_dir}/params.json"])
        return ("data lost", "") if snapshot(C) != before else out

    return run


def _no_model(p):
    del p["parameters"]["model"]


def _a_list(p):
    p["parameters"] = [1, 2]


for _cmd in ("predict", "export-web", "prune", "run"):
    item(f"params.json without parameters.model: {_cmd}", "issue")(_bad_params(_no_model, _cmd))
    item(f"params.json with parameters a list: {_cmd}", "issue")(_bad_params(_a_list, _cmd))

item("--seeds 18446744073709551616", "issue")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--seeds", 2**64, "--results-dir",
                               tmp / "s"), ["--seeds"]))  # fmt: skip
item("notebook -p threads -1", "issue")(
    lambda tmp, Q: notebook(tmp, ["threads must be"], threads=-1)
)
item("notebook -p threads abc", "issue")(
    lambda tmp, Q: notebook(tmp, ["threads must be"], threads="abc")
)
item("notebook -p run_dir /proc/nope", "issue")(
    lambda tmp, Q: notebook(tmp, ["cannot be written"], run_dir="/proc/nope")
)


@item("garbage metrics.csv through results.load_metrics", "issue")
def _(tmp, Q):
    run_dir = copy(tmp, "optimizers") / "optimizers" / "sgd-e30-s0"
    (run_dir / "metrics.csv").write_bytes(b'a,b\n1,2,3,4\n"\x00\xff')
    code = "import sys; from lenet_lib import results; results.load_metrics(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip
    bad = proc.stderr.strip().splitlines()[-1]
    return ("clear error" if bad.startswith("ValueError") and str(run_dir) in bad
            else "unhandled"), bad  # fmt: skip


def _committed_unchanged(f):
    def run(tmp, Q):
        before = snapshot(COMMITTED)
        out = f(tmp, Q)
        return ("data lost", "results/ changed") if snapshot(COMMITTED) != before else out

    return run


item("--results-dir results/optimizers with --quick", "issue")(_committed_unchanged(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                               "--results-dir", COMMITTED / "optimizers"), ["inside"])))  # fmt: skip
item("--results-dir ''", "issue")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--results-dir", ""), ["path"])
)
item("data fetch --root ''", "issue")(
    lambda tmp, Q: judge(lenet("data", "fetch", "--root", ""), ["path"])
)


@item("a scheduler with no workers", "issue")
def _(tmp, Q):
    port = free_port()
    dask = Path(sys.executable).parent / "dask"
    sched = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        time.sleep(3)
        return judge(lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                           "--results-dir", tmp / "w", "--scheduler", f"tcp://127.0.0.1:{port}",
                           "--wait-workers", "2"), ["no Dask worker joined"])  # fmt: skip
    finally:
        os.killpg(sched.pid, signal.SIGKILL)
        sched.wait()


item("predict --run ../paper/sdlm-e20-s0", "issue")(
    lambda tmp, Q: judge(lenet("predict", digit_png(tmp), "--run", "../paper/sdlm-e20-s0"),
                         ["'..'"]))  # fmt: skip
item("export-web --notes-run ../paper/sdlm-e20-s0", "issue")(
    lambda tmp, Q: judge(lenet("export-web", tmp / "w", "--notes-run", "../paper/sdlm-e20-s0"),
                         ["'..'"]))  # fmt: skip


def _image(tmp, pixels=None, size=(112, 112), name="x.png", fill=255):
    from PIL import Image

    im = Image.new("L", size, fill)
    for xy in pixels or []:
        im.putpixel(xy, 0)
    im.save(tmp / name)
    return tmp / name


item("predict an image with one dark pixel", "issue")(
    lambda tmp, Q: judge(lenet("predict", _image(tmp, [(50, 50)])), ["too little ink"])
)
item("bench --images 1", "issue")(lambda tmp, Q: judge(lenet("bench", "--images", 1), ["few"]))
item("a dead scheduler address", "issue")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                               "--results-dir", tmp / "d", "--scheduler",
                               f"tcp://127.0.0.1:{free_port()}"), ["--scheduler"]))  # fmt: skip
item("a malformed scheduler address", "issue")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                               "--results-dir", tmp / "d", "--scheduler", "tcp://127.0.0.1"),
                         ["--scheduler", "DASK_SCHEDULER_ADDRESS"]))  # fmt: skip


def _a_file(tmp):
    (tmp / "f").write_text("x")
    return tmp / "f"


item("data verify --root naming a file", "issue")(
    lambda tmp, Q: judge(lenet("data", "verify", "--root", _a_file(tmp)), ["is a file"])
)
item("LENET_DATA naming a file", "issue")(
    lambda tmp, Q: judge(lenet("data", "fetch", env={"LENET_DATA": str(_a_file(tmp))}),
                         ["is a file"]))  # fmt: skip
item("data fetch --force into a folder that cannot be written", "issue")(
    lambda tmp, Q: judge(lenet("data", "fetch", "--root", "/proc/lenet", "--force"),
                         ["cannot write"]))  # fmt: skip
item("data verify of an empty folder", "issue")(
    lambda tmp, Q: judge(lenet("data", "verify", "--root", tmp), ["lenet data fetch --root"])
)
item("results nosuchexp", "issue")(
    lambda tmp, Q: judge(lenet("results", "nosuchexp"), ["unknown experiment"])
)
item("predict --run ''", "issue")(
    lambda tmp, Q: judge(lenet("predict", digit_png(tmp), "--run", ""), ["run id"])
)
item("predict --run ../capacity/p500-w1-wd0-s0", "issue")(
    lambda tmp, Q: judge(lenet("predict", digit_png(tmp), "--run", "../capacity/p500-w1-wd0-s0"),
                         ["'..'"]))  # fmt: skip
item("predict --results-dir /nonexistent", "issue")(
    lambda tmp, Q: judge(lenet("predict", digit_png(tmp), "--results-dir", "/nonexistent"),
                         ["--results-dir /nonexistent"]))  # fmt: skip
item("export-web into a file", "issue")(
    lambda tmp, Q: judge(lenet("export-web", _a_file(tmp)), ["check that path"])
)
item("bench --output where nothing can be written", "issue")(
    lambda tmp, Q: judge(lenet("bench", "--images", 640, "--output", "/proc/b.json"),
                         ["--output"]))  # fmt: skip
item("prune nosuchexp", "issue")(lambda tmp, Q: judge(lenet("prune", "nosuchexp"), ["use one of"]))


@item("results with a missing params.json", "issue")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    (C / "optimizers" / "sgd-e30-s0" / "params.json").unlink()
    return judge(lenet("results", "optimizers", "--results-dir", C), ["has no params.json"])


@item("predict a GIF whose first frame is blank", "issue")
def _(tmp, Q):
    from PIL import Image

    blank = Image.new("L", (112, 112), 255)
    blank.save(tmp / "a.gif", save_all=True, append_images=[Image.open(digit_png(tmp))])
    return judge(lenet("predict", tmp / "a.gif"), ["frames"])


@item("SIGTERM to lenet run", "issue")
def _(tmp, Q):
    log = tmp / "sigterm.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen([*LENET, "run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                                 "--results-dir", str(tmp / "t")], cwd=ROOT, stdout=out,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        while "running" not in log.read_text() and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    last = last_line(stderr)
    return ("clear error" if "terminated" in last else "unclear error"), last


@item("failed direct papermill runs leave no temporary folder", "issue")
def _(tmp, Q):
    scratch = tmp / "scratch"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}
    outs = [notebook(tmp, env=env, threads=-1), notebook(tmp, env=env, device="cuda:7"),
            notebook(tmp, env=env | {"LENET_DATA": str(tmp / "nodata")})]  # fmt: skip
    left = [p.name for p in scratch.iterdir() if p.name.startswith("lenet-run-")]
    if left:
        return "wrong result", f"left {left}"
    return min(outs, key=lambda o: o[0] != "clear error")


@item("what lenet run listens on", "issue")
def _(tmp, Q):
    import psutil

    proc = subprocess.Popen([*LENET, "run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                             "--jobs", "2", "--results-dir", str(tmp / "l")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    seen = set()
    while proc.poll() is None:
        for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
            try:
                seen |= {c.laddr.ip for c in p.net_connections("inet") if c.status == "LISTEN"}
            except psutil.Error:
                pass
        time.sleep(0.1)
    wide = seen - {"127.0.0.1", "::1"}
    return ("wrong result", f"listens on {wide}") if wide else ("correct", f"{seen}")


# --- Twenty of our own ----------------------------------------------------------------------


@item("--results-dir a symlink into results/")
def _(tmp, Q):
    (tmp / "link").symlink_to(COMMITTED / "optimizers")
    return _committed_unchanged(lambda t, q: judge(lenet(
        "run", "optimizers", "--quick", "--only", "sgd-e30-s0", "--results-dir", tmp / "link"),
        ["inside"]))(tmp, Q)  # fmt: skip


item("predict a 1x1 image")(
    lambda tmp, Q: judge(lenet("predict", _image(tmp, [(0, 0)], size=(1, 1))), ["ink"])
)
item("predict an empty .png")(
    lambda tmp, Q: judge(lenet("predict", (tmp / "e.png").write_bytes(b"") or tmp / "e.png"),
                         ["not an image"]))  # fmt: skip
item("predict a text file named .png")(
    lambda tmp, Q: judge(lenet("predict", (tmp / "t.png").write_text("hi") and tmp / "t.png"),
                         ["not an image"]))  # fmt: skip
item("predict an all-black image")(
    lambda tmp, Q: judge(lenet("predict", _image(tmp, fill=0)), ["no ink"])
)
item("results --format yaml")(
    lambda tmp, Q: judge(lenet("results", "optimizers", "--format", "yaml"), ["--format"])
)
item("run --threads 0")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--threads", 0), ["--threads"])
)
item("run ../optimizers")(
    lambda tmp, Q: judge(lenet("run", "../optimizers", "--quick", "--results-dir", tmp), ["'..'"])
)


@item("results with a summary whose test_acc is a string")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    edit_json(C / "optimizers" / "sgd-e30-s0" / "summary.json", lambda s: s.update(test_acc="99"))
    return judge(lenet("results", "optimizers", "--results-dir", C), ["test_acc"])


@item("predict with checkpoint.pt a folder")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    ckpt = C / "optimizers" / "adam-e100-s0" / "checkpoint.pt"
    ckpt.unlink()
    ckpt.mkdir()
    return judge(lenet("predict", digit_png(tmp), "--results-dir", C), ["checkpoint.pt"])


@item("results with parameters.lr a string")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    edit_json(C / "optimizers" / "sgd-e30-s0" / "params.json",
              lambda p: p["parameters"].update(lr="abc"))  # fmt: skip
    return judge(lenet("results", "optimizers", "--results-dir", C), ["lr must be"])


@item("prune twice keeps every weight file")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    procs = [lenet("prune", "optimizers", "--results-dir", C) for _ in range(2)]
    kept = len(list(C.glob("optimizers/*/checkpoint.pt")))
    return judge(procs[1], refuse=False, check=lambda p: kept == 18 and procs[0].returncode == 0)


@item("papermill run_dir again with fewer epochs than it ran")
def _(tmp, Q):
    run_dir = tmp / f"E{time.time_ns()}"
    base = dict(run_dir=str(run_dir), optimizer="sgd", lr=0.01, epochs=2)
    assert notebook(tmp, **base)[0] == "silently accepted"
    before = snapshot(run_dir)
    out = notebook(tmp, ["run of 2 epochs"], **(base | {"epochs": 1}))
    return ("data lost", "") if snapshot(run_dir) != before else out


item("run --wait-workers -5")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--wait-workers", -5), ["--wait-workers"])
)
item("run --wait-workers nan")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--wait-workers", "nan"), ["--wait-workers"])
)
item("export-web --paper-run nosuch-e20-s0")(
    lambda tmp, Q: judge(lenet("export-web", tmp / "w", "--paper-run", "nosuch-e20-s0"),
                         ["no complete run nosuch-e20-s0"]))  # fmt: skip
item("bench --batch-size 0")(
    lambda tmp, Q: judge(lenet("bench", "--batch-size", 0), ["--batch-size"])
)
item("run --device cuda:abc")(
    lambda tmp, Q: judge(lenet("run", "optimizers", "--quick", "--device", "cuda:abc"),
                         ["cuda:abc"]))  # fmt: skip


@item("results of a folder with a capacity run copied in")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    shutil.copytree(COMMITTED / "capacity" / "p500-w1-wd0-s0", C / "optimizers" / "p500-w1-wd0-s0")
    return judge(lenet("results", "optimizers", "--results-dir", C), ["mixes runs of experiments"])


@item("predict with weights_sha256 gone from the summary")
def _(tmp, Q):
    C = copy(tmp, "optimizers")
    edit_json(C / "optimizers" / "adam-e100-s0" / "summary.json", lambda s: s.pop("weights_sha256"))
    return judge(lenet("predict", digit_png(tmp), "--results-dir", C), ["weights_sha256"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="item names, comma-separated (default: all)")
    p.add_argument("--out", type=Path, help="also write the outcomes to this CSV file")
    args = p.parse_args(argv)
    todo = [i for i in ITEMS if not args.only or i[0] in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        tmp = Path(tmp)
        Q = tmp / "Q"
        proc = lenet("run", "optimizers", "--quick", "--results-dir", Q, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
        for name, source, f in todo:
            work = tmp / f"item{len(rows)}"
            work.mkdir()
            t0 = time.time()
            try:
                outcome, detail = f(work, Q)
            except Exception as e:  # the pass itself failed: counted, never hidden
                outcome, detail = "unhandled", f"pass error {type(e).__name__}: {e}"
            rows.append((source, name, outcome, " ".join(str(detail).split())[:200]))
            print(f"[{source:5}] {outcome:17} {name} ({time.time() - t0:.0f} s)\n        {rows[-1][3]}",
                  flush=True)  # fmt: skip
    kinds = ["clear error", "correct", "unclear error", "silently accepted", "wrong result",
             "data lost", "unhandled"]  # fmt: skip
    print(f"\n{len(rows)} inputs tried ({sum(r[0] == 'issue' for r in rows)} from the issue, "
          f"{sum(r[0] == 'own' for r in rows)} of our own)")  # fmt: skip
    for k in kinds:
        print(f"  {k}: {sum(r[2] == k for r in rows)}")
    if args.out:
        import csv

        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerows([("source", "input", "outcome", "detail"), *rows])
    return 0 if all(r[2] in ("clear error", "correct") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
