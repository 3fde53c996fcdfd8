"""Nothing a user types loses a run (issue 28): the second table of hostile inputs, an item a
test. Each ends in one `error:` line that names the problem and a fix that works (every
`lenet ...` command it suggests parses as one), leaves every file as it was, and listens on
nothing but the loopback. Real runs throughout: the quick optimizer runs (conftest's `quick`),
the training notebook through papermill, a real `dask scheduler`, the real `lenet`."""

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import papermill as pm
import psutil
import pytest
import torch
from conftest import ROOT, training_notebook
from PIL import Image

from lenet_lib import cli, cluster, results, runner, web
from lenet_lib.runs.plans import EXPERIMENTS

LENET = Path(sys.executable).parent / "lenet"
DASK = Path(sys.executable).parent / "dask"
COMMITTED = ROOT / "results"


def lenet(*args, env=None, timeout=600):
    return subprocess.run(
        [str(LENET), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env=os.environ | (env or {}),
    )  # fmt: skip


def suggestions_parse(line: str) -> list[str]:
    """Every `lenet ...` command in backticks in `line` parses as a real `lenet` command line
    (the CLI's own parser), and a suggested `lenet run` names runs of the experiment's plan."""
    found = []
    for part in line.split("`")[1::2]:
        if not part.startswith("lenet "):
            continue
        argv = shlex.split(part)[1:]
        try:
            args = cli.parser().parse_args(argv)
        except SystemExit:
            raise AssertionError(
                f"suggested command does not parse: {part!r} in {line!r}"
            ) from None
        if args.command == "run":
            only = args.only.split(",") if args.only else None
            seeds, only, _ = runner.committed(args.experiment, args.seeds, only, None, args.quick)
            runner.plan(args.experiment, seeds, args.quick, only)
        found.append(part)
    return found


def refused(proc, *needles) -> str:
    """Non-zero exit, no traceback, stderr ending in one `error:` line (argparse's `lenet
    CMD: error:` for a bad argument) holding `needles`, whose suggested commands parse."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.strip().splitlines() if not x.startswith("[IPKernelApp]")]
    last = lines[-1]
    argparse = last.startswith("lenet") and ": error: argument " in last
    assert last.startswith("error: ") or argparse, proc.stderr[-2000:]
    assert "unexpected" not in last, last
    for needle in needles:
        assert needle in last, last
    suggestions_parse(last)
    return last


def snapshot(folder: Path) -> dict:
    """Every file under `folder` and its bytes' hash: what must stay as it was."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}  # fmt: skip


@pytest.fixture
def Q(quick, tmp_path):
    """A private copy of a finished `lenet run optimizers --quick --results-dir Q`."""
    out, _ = quick
    shutil.copytree(out, tmp_path / "Q", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "Q"


def copy_committed(tmp_path, *experiments, name=None) -> Path:
    for e in experiments:
        shutil.copytree(
            COMMITTED / e, tmp_path / (name or e), ignore=shutil.ignore_patterns(".lock")
        )
    return tmp_path


def edit_params(run_dir: Path, change) -> None:
    p = json.loads((run_dir / "params.json").read_text())
    change(p)
    (run_dir / "params.json").write_text(json.dumps(p))


# --- Data lost or wrong results -----------------------------------------------------------


def test_prune_never_decides_from_a_folders_name(tmp_path):
    """`cp -r results/optimizers S/backup; lenet prune backup` deleted all 18 checkpoints."""
    S = copy_committed(tmp_path, "optimizers", name="backup")
    before = snapshot(S)
    refused(lenet("prune", "backup", "--results-dir", S), "unknown experiment 'backup'")
    assert snapshot(S) == before
    # Optimizer runs in a folder named after an experiment that keeps no weights: each run
    # is pruned as what its params.json records (here: left alone, not its experiment's).
    shutil.move(S / "backup", S / "capacity")
    assert lenet("prune", "capacity", "--results-dir", S).returncode == 0
    assert len(list(S.glob("capacity/*/checkpoint.pt"))) == 18
    done = runner.prune("optimizers", copy_committed(tmp_path / "T", "optimizers"))
    assert len(done) == 18 and len(list((tmp_path / "T").glob("optimizers/*/checkpoint.pt"))) == 18


@pytest.mark.parametrize(
    "rid,removed,message",
    [
        # a complete run without its params.json is left alone
        ("sgd-e30-s0", "params.json", "says complete but has no params.json"),
        # a finished run's pruned checkpoint is never resumed
        ("adam-e30-s0", "summary.json", "pruned checkpoint of a finished run"),
    ],
)
def test_a_run_folder_that_disagrees_with_itself_is_left_alone(Q, rid, removed, message):
    run_dir = Q / "optimizers" / rid
    (run_dir / removed).unlink()
    before = snapshot(run_dir)
    proc = lenet("run", "optimizers", "--quick", "--results-dir", Q, "--only", rid)
    refused(proc, str(run_dir), message)
    assert snapshot(run_dir) == before


@pytest.fixture(scope="module")
def sgd_run(tmp_path_factory, mnist):
    """One small finished run of the training notebook (two epochs) in its own run_dir."""
    tmp = tmp_path_factory.mktemp("sgd")
    training_notebook(tmp, optimizer="sgd", lr=0.01, epochs=2, train_subset=1000, test_subset=500)
    return tmp / "run"


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"lr": 0.5, "epochs": 3}, "lr 0.01 there, 0.5 here"),
        ({"width": 2.0}, "width 1.0 there, 2.0 here"),
        ({"optimizer": "momentum"}, "optimizer 'sgd' there, 'momentum' here"),
        ({"epochs": 1}, "holds a run of 2 epochs: give epochs >= 2"),
    ],
)
def test_a_run_dir_resumes_only_with_its_own_parameters(sgd_run, tmp_path, change, needle):
    shutil.copytree(sgd_run, tmp_path / "run")
    before = snapshot(tmp_path / "run")
    params = dict(optimizer="sgd", lr=0.01, epochs=2, train_subset=1000, test_subset=500) | change
    with pytest.raises(pm.PapermillExecutionError) as e:
        training_notebook(tmp_path, **params)
    assert needle in str(e.value)
    assert snapshot(tmp_path / "run") == before


# --- Listening where it should not --------------------------------------------------------


def listening(pid: int) -> set:
    out = set()
    for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            conns = p.net_connections("inet")
        except psutil.Error:
            continue
        out |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return out


def test_lenet_run_listens_on_nothing_beyond_the_loopback(tmp_path, mnist):
    """Dask gave the embedded cluster's scheduler and workers HTTP servers on 0.0.0.0 and
    [::] (and its dashboard on 8787 where bokeh is installed)."""
    options = cluster.Dask(jobs=2).local_options()
    assert options["scheduler_kwargs"] == {"dashboard": False}
    cmd = [str(LENET), "run", "optimizers", "--quick", "--only", "sgd-e30-s0", "--jobs", "2",
           "--results-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    seen = set()
    try:
        while proc.poll() is None:
            seen |= listening(proc.pid)
            time.sleep(0.1)
    finally:
        proc.kill()
    out = proc.stdout.read()
    assert proc.returncode == 0, out[-2000:]
    assert len(seen) >= 3, seen  # the scheduler's and two workers' servers, a kernel's ports
    assert {ip for ip, _ in seen} <= {"127.0.0.1", "::1"}, seen
    assert "dashboard" not in out


# --- Unhandled exceptions -----------------------------------------------------------------


def _no_model(p):
    del p["parameters"]["model"]


def _list_params(p):
    p["parameters"] = [1, 2]


@pytest.mark.parametrize("change", [_no_model, _list_params], ids=["no-model", "list"])
@pytest.mark.parametrize("command", ["predict", "prune", "run", "results", "export-web"])
def test_a_params_json_that_is_not_a_runs_is_refused_naming_its_folder(
    tmp_path, digit_png, change, command
):
    C = copy_committed(tmp_path, "optimizers")
    run_dir = C / "optimizers" / "adam-e100-s0"
    edit_params(run_dir, change)
    before = snapshot(C)
    if command == "export-web":  # the book build's path (the command reads results/ only)
        with pytest.raises(ValueError, match=f"{run_dir}/params.json"):
            web.load_networks("adam-e100-s0", "sdlm-e20-s0", C)
        return
    args = {
        "predict": ["predict", digit_png, "--run", "adam-e100-s0"],
        "prune": ["prune", "optimizers"],
        "run": ["run", "optimizers", "--only", "adam-e100-s0"],
        "results": ["results", "optimizers"],
    }[command]
    refused(lenet(*args, "--results-dir", C), f"{run_dir}/params.json")
    assert snapshot(C) == before


@pytest.mark.parametrize(
    "payload,needle",
    [
        (b"\x00\xff\xfe garbage \x00", "metrics.csv"),
        (b'a,b\n1,2,3,4\n"', "is not a CSV table"),
        (b"epoch,train_loss\n1,0.5\n", "lacks train_acc"),
        (b"epoch,train_loss,train_acc,test_loss,test_acc,seconds\n1,x,1,1,1,1\n", "non-numbers"),
        (b"", "metrics.csv"),
    ],
)
def test_a_garbage_metrics_csv_is_refused(tmp_path, payload, needle):
    run_dir = copy_committed(tmp_path, "optimizers") / "optimizers" / "sgd-e30-s0"
    (run_dir / "metrics.csv").write_bytes(payload)
    with pytest.raises(ValueError) as e:
        results.load_metrics(run_dir)
    assert needle in str(e.value) and str(run_dir) in str(e.value)


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"threads": -1}, "threads must be an integer >= 0"),
        ({"threads": "abc"}, "threads must be an integer >= 0"),
        ({"seed": 2**64}, "seed must be an integer >= 0 and <= 4294967295"),
        ({"run_dir": "/proc/nope"}, "run_dir '/proc/nope' cannot be written"),
    ],
)
def test_the_notebook_checks_threads_seed_and_run_dir_first(tmp_path, params, needle):
    with pytest.raises(pm.PapermillExecutionError) as e:
        training_notebook(tmp_path, **params)
    assert needle in str(e.value)
    assert e.value.ename == "ValueError"


# --- Silently accepted, and errors whose fix was missing or wrong -------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def a_file(tmp_path, digit_png=None) -> Path:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file"


def animated_gif(tmp_path, digit_png) -> Path:
    blank = Image.new("L", (112, 112), 255)
    blank.save(tmp_path / "a.gif", save_all=True, append_images=[Image.open(digit_png)])
    return tmp_path / "a.gif"


def one_dark_pixel(tmp_path, digit_png) -> Path:
    im = Image.new("L", (112, 112), 255)
    im.putpixel((50, 50), 0)
    im.save(tmp_path / "dot.png")
    return tmp_path / "dot.png"


def missing_params_json(tmp_path, digit_png) -> Path:
    C = copy_committed(tmp_path, "optimizers")
    (C / "optimizers" / "sgd-e30-s0" / "params.json").unlink()
    return C


# Each row: a name, the arguments (callables of (tmp_path, digit_png) make files), environment,
# the needles of the error line, and needles it must not hold.
T, D = "TMP", "DIGIT"  # placeholders
CASES = [
    ("seeds-overflow", ["run", "optimizers", "--quick", "--seeds", str(2**64), "--results-dir", T],
     {}, ["--seeds takes integers >= 0 (at most 4294967295)"], []),
    ("results-dir-inside-results", ["run", "optimizers", "--quick", "--only", "sgd-e30-s0",
     "--results-dir", COMMITTED / "optimizers"], {}, ["is inside", "--results-dir DIR"], []),
    ("empty-results-dir", ["run", "optimizers", "--quick", "--results-dir", ""], {},
     ["--results-dir", "takes a path, not an empty string"], []),
    ("empty-root", ["data", "fetch", "--root", ""], {}, ["--root", "takes a path"], []),
    ("run-id-dotdot", ["predict", D, "--run", "../paper/sdlm-e20-s0"], {},
     ["--run", "no '/' or '..'"], []),
    ("export-web-dotdot", ["export-web", T, "--notes-run", "../paper/sdlm-e20-s0"], {},
     ["--notes-run", "no '/' or '..'"], []),
    ("empty-run-id", ["predict", D, "--run", ""], {}, ["--run", "is not a run id"], []),
    ("one-dark-pixel", ["predict", one_dark_pixel], {}, ["too little ink for a digit"], []),
    ("animated-gif", ["predict", animated_gif], {}, ["frames", "PNG or JPEG"], []),
    ("bench-images-1", ["bench", "--images", "1"], {}, ["too few to time", "--images"], []),
    ("bench-output-unwritable", ["bench", "--images", "640", "--output", "/proc/x/b.json"], {},
     ["--output", "cannot write"], ["--results-dir"]),
    ("dead-scheduler", ["run", "optimizers", "--quick", "--only", "sgd-e30-s0",
     "--results-dir", T, "--scheduler", "tcp://127.0.0.1:PORT"], {},
     ["cannot reach the Dask scheduler", "--scheduler", "DASK_SCHEDULER_ADDRESS"], []),
    ("malformed-scheduler", ["run", "optimizers", "--quick", "--only", "sgd-e30-s0",
     "--results-dir", T], {"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1"},
     ["cannot reach the Dask scheduler", "--scheduler", "DASK_SCHEDULER_ADDRESS"], []),
    ("root-is-a-file", ["data", "verify", "--root", a_file], {},
     ["is a file, not a folder", "--root"], []),
    ("lenet-data-is-a-file", ["data", "verify"], {"LENET_DATA": a_file},
     ["is a file, not a folder", "LENET_DATA"], []),
    ("unwritable-root-force", ["data", "fetch", "--root", "/proc/lenet-data", "--force"], {},
     ["cannot write the MNIST files", "/proc/lenet-data"], ["by hand"]),
    ("verify-missing", ["data", "verify", "--root", T], {},
     ["4 of 4 MNIST files in", "lenet data fetch --root"], []),
    ("results-unknown", ["results", "nosuchexp"], {}, ["unknown experiment 'nosuchexp'"],
     ["lenet run nosuchexp"]),
    ("prune-unknown", ["prune", "nosuchexp"], {}, ["unknown experiment", "use one of"], []),
    ("predict-results-dir", ["predict", D, "--results-dir", "/nonexistent"], {},
     ["--results-dir /nonexistent", "lenet run optimizers --seeds 0 --only adam-e100-s0"], []),
    ("predict-seed-1", ["predict", D, "--run", "adam-e100-s1", "--results-dir", T], {},
     ["--seeds 1 --only adam-e100-s1"], []),
    ("export-web-outdir-a-file", ["export-web", a_file], {}, ["check that path"],
     ["--results-dir"]),
    ("results-missing-params", ["results", "optimizers", "--results-dir", missing_params_json],
     {}, ["sgd-e30-s0 has no params.json"], ["choose a folder you can write"]),
]  # fmt: skip


@pytest.mark.parametrize("name,args,env,needles,absent", CASES, ids=[c[0] for c in CASES])
def test_hostile_inputs_end_in_one_clear_error(tmp_path, digit_png, name, args, env, needles,
                                               absent):  # fmt: skip
    def real(a):
        if callable(a):
            return a(tmp_path, digit_png)
        return {T: tmp_path, D: digit_png}.get(a, str(a).replace("PORT", str(free_port())))

    args = [real(a) for a in args]
    env = {k: str(real(v)) for k, v in env.items()}
    before = snapshot(COMMITTED)
    last = refused(lenet(*args, env=env), *needles)
    for text in absent:
        assert text not in last, last
    assert snapshot(COMMITTED) == before


def test_a_scheduler_without_workers_says_so(tmp_path):
    port = free_port()
    cmd = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    sched = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # fmt: skip
    try:
        address = f"tcp://127.0.0.1:{port}"
        time.sleep(3)
        t0 = time.time()
        proc = lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0", "--results-dir",
                     tmp_path, "--scheduler", address, "--wait-workers", "2")  # fmt: skip
        assert time.time() - t0 < 60
    finally:
        os.killpg(sched.pid, signal.SIGKILL)
        sched.wait()
    assert f"no Dask worker has joined {address} yet: waiting for 2 s" in proc.stdout
    refused(proc, "no Dask worker joined", "--wait-workers 0")


def test_sigterm_says_the_state_is_safe(tmp_path, mnist):
    cmd = [str(LENET), "run", "optimizers", "--quick", "--only", "adam-e30-s0",
           "--results-dir", str(tmp_path)]  # fmt: skip
    log = tmp_path / "out.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while "running" not in log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM
    # the kernel, a child process, may log its own shutdown after our line: ours is the last but
    # those of the kernel (seen in CI: "[IPKernelApp] WARNING | Parent appears to have exited")
    ours = [line for line in stderr.strip().splitlines() if not line.startswith("[IPKernelApp]")]
    assert ours[-1].startswith("error: terminated (SIGTERM)"), stderr
    assert "run the same command again" in stderr


@pytest.mark.parametrize(
    "params,env",
    [
        ({"threads": -1}, {}),
        ({"device": "cuda:7"}, {}),
        ({}, {"LENET_DATA": "EMPTY"}),
    ],
)
def test_failed_direct_notebook_runs_leave_no_temporary_folder(tmp_path, monkeypatch, params, env):
    if params.get("device") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    for k, v in env.items():
        monkeypatch.setenv(k, str(tmp_path / "empty") if v == "EMPTY" else v)
    with pytest.raises(pm.PapermillExecutionError):
        pm.execute_notebook(
            str(ROOT / "chapters" / "06_training_run.ipynb"), str(tmp_path / "out.ipynb"),
            parameters=dict(epochs=1, train_subset=300, test_subset=100) | params,
            kernel_name="python3", cwd=str(ROOT), progress_bar=False,
        )  # fmt: skip
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("lenet-run-")]


# --- The suggested commands -----------------------------------------------------------------


def test_the_suggestion_check_can_fail():
    with pytest.raises(AssertionError, match="does not parse"):
        suggestions_parse("error: x: run `lenet run optimizers --results-dir` first")
    with pytest.raises(ValueError, match="unknown run id"):
        suggestions_parse("error: x: run `lenet run optimizers --only adam-e100-s7` first")
    assert suggestions_parse("run `lenet run gap --seeds 1 --only sgd-lr1-b64-s1`") != []


def test_the_messages_that_suggest_commands_suggest_working_ones(tmp_path):
    """The library's own suggestions, built for odd folders and seeds."""
    lines = [
        f"`{results.make_command('optimizers', ['adam-e100-s2'], tmp_path / 'a b')}`",
        f"`{results.make_command('gap', ['sgd-lr1-b64-s0'], 'DIR')}`",
    ]
    for e in EXPERIMENTS:
        try:
            results.load_results(e, tmp_path)
        except FileNotFoundError as err:
            lines.append(str(err))
    for line in lines:
        assert suggestions_parse(line), line
