"""Dask as the runner's engine: a real `dask scheduler` and two `dask worker` processes on this
machine, one of them killed mid-run, give the runs of the embedded cluster (issue 13;
lenet_lib/runs/runner.py, worker.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from lenet_lib import experiments, plans
from lenet_lib.runs.results import load_metrics

DASK = Path(sys.executable).parent / "dask"
METRICS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
SUMMARY = ["train_loss", "train_acc", "train_acc_running", "test_loss", "test_acc", "epochs"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two one-thread workers, each in a process group of its own. The
    workers keep to their scratch folders (LENET_WORKER_SCRATCH), as on machines that do not
    see the client's disk: the runs' files reach the client only through Dask."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    log = open(tmp_path / "cluster.log", "w")  # noqa: SIM115 (closed below)
    spawn = dict(start_new_session=True, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    port = address.rsplit(":", 1)[1]
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], **spawn
        )  # fmt: skip
    ]
    env = os.environ | {"LENET_WORKER_SCRATCH": "1"}
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--name", f"w{i}", "--no-dashboard"],
                env=env,
                **spawn,
            )  # fmt: skip
        )
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        log.close()


def kill_a_busy_worker(address: str, timeout=600) -> str:
    """Kill (SIGKILL, with its nanny and kernel) a worker whose run has started training (the
    run's kernel wrote params.json in the worker's scratch folder, after the worker announced
    the run); return that run's id."""
    from distributed import Client

    def executing(dask_worker):
        import tempfile

        scratch = Path(tempfile.gettempdir()).glob(f"lenet-run-{os.getpid()}-*/run/params.json")
        running = [str(ts.key) for ts in dask_worker.state.executing]
        return os.getpid(), running, any(scratch)

    with Client(address, timeout="60s") as client:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for pid, running, training in client.run(executing).values():
                if len(running) == 1 and training:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                    return running[0].rsplit("-", 1)[0]
            time.sleep(0.2)
    raise AssertionError("no run started training on the cluster")


@pytest.mark.slow
def test_cluster_runs_equal_embedded_runs_despite_a_dead_worker(quick, cluster, tmp_path):
    reference, _ = quick
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "lenet_lib.cli", "run", "optimizers", "--quick",
           "--scheduler", cluster, "--results-dir", str(out)]  # fmt: skip
    client = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        killed = kill_a_busy_worker(cluster)
        stdout, stderr = client.communicate(timeout=3000)
    finally:
        client.kill()
    assert client.returncode == 0, stderr[-3000:]
    assert "6 runs: 6 complete" in stdout
    # The killed run ran twice: on the dead worker, then again on the other.
    assert stdout.count(f"{killed}: running") == 2, stdout
    ids = sorted(experiments.run_id(r) for r in plans.optimizer_runs(quick=True))
    assert sorted(p.name for p in (out / "optimizers").iterdir()) == ids
    for rid in ids:
        folder = out / "optimizers" / rid
        summary = json.loads((folder / "summary.json").read_text())
        expected = json.loads((reference / "optimizers" / rid / "summary.json").read_text())
        assert summary["status"] == "complete"
        assert {k: summary[k] for k in SUMMARY} == {k: expected[k] for k in SUMMARY}, rid
        pd.testing.assert_frame_equal(
            load_metrics(folder)[METRICS],
            load_metrics(reference / "optimizers" / rid)[METRICS],
            check_exact=True,
        )
        assert json.loads((folder / "params.json").read_text())["threads"] == 1
    assert "adam-e100-s0: running (continued from adam-e60-s0)" in stdout
    assert not list(out.rglob(".runner"))
