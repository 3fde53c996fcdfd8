"""What the runner must never count as done, mix, hide or leave behind (issue 16: results that
end up wrong, and the runner; lenet_lib/runs/runner.py, worker.py, results.py, cli.py)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import nbformat
import psutil
import pytest
from conftest import ROOT, lenet

from lenet_lib import runner
from lenet_lib.runs.experiments import Run
from lenet_lib.runs.results import load_results

COMMITTED = ROOT / "results"


def test_quick_runs_never_go_where_full_runs_live(tmp_path):
    before = sorted(p.name for p in (COMMITTED / "optimizers").iterdir())
    proc = lenet("run", "optimizers", "--quick", "--seeds", "3", "--only", "sgd-e30-s3")
    assert proc.returncode != 0 and "give --results-dir DIR" in proc.stderr
    assert sorted(p.name for p in (COMMITTED / "optimizers").iterdir()) == before
    shutil.copytree(COMMITTED / "optimizers", tmp_path / "optimizers")
    proc = lenet("run", "optimizers", "--quick", "--seeds", "3", "--only", "sgd-e30-s3",
                 "--results-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode != 0 and "holds full runs" in proc.stderr, proc.stderr
    assert not (tmp_path / "optimizers" / "sgd-e30-s3").exists()


def test_tables_never_mix_quick_and_full_runs(quick, tmp_path):
    """A quick sgd-e30-s0 among the full seeds 1 and 2 would drag Table 2's mean down."""
    out, _ = quick
    mixed = tmp_path / "optimizers"
    shutil.copytree(COMMITTED / "optimizers", mixed)
    shutil.rmtree(mixed / "sgd-e30-s0")
    shutil.copytree(out / "optimizers" / "sgd-e30-s0", mixed / "sgd-e30-s0")
    with pytest.raises(ValueError, match="mixes runs of different parameters in row.*sgd-e30"):
        load_results("optimizers", tmp_path)
    load_results("optimizers", COMMITTED)  # one set of parameters a row: no error


def notebook_done(path) -> bool:
    if not path.exists():
        return False
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return nb.metadata.papermill.get("end_time") is not None and all(
        c.execution_count for c in code
    )


@pytest.mark.slow
def test_complete_is_written_after_the_executed_notebook(tmp_path, mnist):
    """The runner killed the moment summary.json appears: the run is not complete (its
    notebook is not whole), and running it again completes it."""
    code = (
        "from pathlib import Path; from lenet_lib import experiments, runner; "
        "runner.run_chain([experiments.Run('k', 'adam', 1e-3, 1, train_subset=300, "
        f"test_subset=100, run_id='r')], Path({str(tmp_path)!r}))"
    )
    run_dir = tmp_path / "k" / "r"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 600
    while not (run_dir / "summary.json").exists() and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] != "complete" or notebook_done(run_dir / "run.ipynb")
    run = Run("k", "adam", 1e-3, 1, train_subset=300, test_subset=100, run_id="r")
    assert runner.status(run_dir, run) != "complete"
    runner.run_chain([run], tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    assert notebook_done(run_dir / "run.ipynb")


def test_failed_runs_are_reported_with_their_error_and_notebook(tmp_path, mnist):
    """`lenet run` prints the failing cell's exception and the executed notebook; `lenet
    results` lists the run below the table (here there is no table: no run completed). The
    run fails inside its notebook: the checkpoint it resumes from is not a checkpoint."""
    run_dir = tmp_path / "optimizers" / "sgd-e30-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                 "--results-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode != 0
    summary = json.loads((run_dir / "summary.json").read_text())
    line = next(s for s in proc.stdout.splitlines() if "sgd-e30-s0: FAILED" in s)
    assert summary["status"] == "failed" and re.match(r"\w+Error: \S", summary["error"])
    assert summary["error"].splitlines()[0] in line and str(run_dir / "run.ipynb") in line
    assert "PapermillExecutionError" not in line
    assert summary["notebook"] == str(run_dir / "run.ipynb")
    proc = lenet("results", "optimizers", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "no complete runs" in proc.stderr
    listed = next(s for s in proc.stdout.splitlines() if s.startswith("sgd-e30-s0"))
    assert (
        "failed" in listed and summary["error"] in listed and str(run_dir / "run.ipynb") in listed
    )


def test_a_locked_run_makes_the_exit_status_non_zero(tmp_path):
    with runner.Lock(tmp_path / "optimizers" / "sgd-e30-s0") as got:
        assert got
        proc = lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                     "--results-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode != 0 and "locked by another runner: sgd-e30-s0" in proc.stderr


def start_run(tmp_path, out):
    """`lenet run` of one quick run on an embedded cluster of two workers, with its own
    temporary folder; returns it once a kernel is training, with its child processes."""
    env = os.environ | {"TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "lenet_lib.cli", "run", "optimizers", "--quick", "--only",
           "adam-e30-s0", "--jobs", "2", "--results-dir", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if any("ipykernel" in " ".join(k.cmdline()) for k in kids):
            break
        time.sleep(0.2)
    time.sleep(3)
    return proc, psutil.Process(proc.pid).children(recursive=True), env


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_runners_children_die_with_it_and_nothing_is_left_behind(tmp_path, mnist, sig):
    out = tmp_path / "results"
    proc, kids, env = start_run(tmp_path, out)
    assert kids, "the runner started no kernel"
    proc.send_signal(sig)
    proc.wait()
    _, alive = psutil.wait_procs(kids, timeout=60)
    assert not alive, [k.cmdline() for k in alive]
    again = lenet("run", "optimizers", "--quick", "--only", "adam-e30-s0", "--results-dir",
                  str(out), env=env)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    left = sorted(p.name for p in (tmp_path / "tmp").iterdir())
    assert not [n for n in left if n.startswith("lenet-run-") or n.endswith(".json")], left
