"""The papermill runner, end to end on small subsets of the real data (lenet_lib/runs.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from conftest import ROOT

from lenet_lib import runs


def lenet(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def quick(tmp_path_factory, mnist):
    """`lenet run optimizers --quick`: six notebooks through papermill."""
    out = tmp_path_factory.mktemp("results")
    proc = lenet("run", "optimizers", "--quick", "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_quick_runs_execute_six_notebooks(quick):
    out, proc = quick
    folders = sorted(p.name for p in (out / "optimizers").iterdir())
    assert folders == sorted(runs.run_id(r) for r in runs.optimizer_runs(quick=True))
    for folder in (out / "optimizers").iterdir():
        names = {p.name for p in folder.iterdir()}
        assert {"run.ipynb", "params.json", "metrics.csv", "summary.json", "checkpoint.pt"} <= names
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "complete"
        for key in ("run_id", "optimizer", "epochs", "seed", "train_acc", "test_acc", "seconds"):
            assert key in summary
        params = json.loads((folder / "params.json").read_text())
        for key in (
            "torch",
            "torchvision",
            "lenet_lib",
            "data_md5",
            "device",
            "git_commit",
            "started",
        ):
            assert key in params
        assert list(pd.read_csv(folder / "metrics.csv").columns[:6]) == runs.METRIC_COLUMNS


def test_injected_parameters_reach_the_notebook(quick):
    import nbformat

    out, _ = quick
    nb = nbformat.read(out / "optimizers" / "momentum-e30-s0" / "run.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert 'optimizer = "momentum"' in injected[0].source and "momentum = 0.9" in injected[0].source
    assert nb.metadata.papermill.parameters["run_id"] == "momentum-e30-s0"


def test_longer_adam_runs_continue_shorter_ones(quick):
    out, proc = quick
    assert "adam-e60-s0: running (continued from adam-e30-s0)" in proc.stdout
    assert "adam-e100-s0: running (continued from adam-e60-s0)" in proc.stdout
    m30 = runs.load_metrics(out / "optimizers" / "adam-e30-s0")
    m100 = runs.load_metrics(out / "optimizers" / "adam-e100-s0")
    assert list(m100["epoch"]) == [1, 2, 3]
    assert m100.iloc[0]["test_acc"] == m30.iloc[0]["test_acc"]


def test_continued_run_equals_fresh_run_of_same_length(quick, tmp_path):
    out, _ = quick
    # adam-e60 continued adam-e30's checkpoint; a fresh 2-epoch run must match it exactly.
    fresh = runs.Run(
        "optimizers", "adam", 1e-3, 2, train_subset=1000, test_subset=500, run_id="fresh"
    )
    runs.run_chain([fresh], tmp_path)
    cols = ["train_loss", "train_acc", "test_loss", "test_acc"]
    continued = runs.load_metrics(out / "optimizers" / "adam-e60-s0")[cols]
    direct = runs.load_metrics(tmp_path / "optimizers" / "fresh")[cols]
    pd.testing.assert_frame_equal(continued, direct, check_exact=True)


def test_results_command_shows_all_six(quick):
    out, _ = quick
    proc = lenet("results", "optimizers", "--results-dir", str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"complete"}


def test_finished_runs_are_skipped(quick):
    out, _ = quick
    proc = lenet("run", "optimizers", "--quick", "--results-dir", str(out))
    assert proc.returncode == 0
    assert proc.stdout.count("complete, skipped") == 6


def test_paper_experiment_runs_through_papermill(tmp_path):
    """`lenet run paper --quick`: the paper's network and SDLM in the training notebook, with
    its default initialisation and with `init` 'pooled'."""
    rid, pooled = "sdlm-e20-s0", "sdlm-pooled-e20-s0"
    proc = lenet(
        "run", "paper", "--quick", "--only", f"{rid},{pooled}", "--results-dir", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = runs.load_results("paper", tmp_path).set_index("run_id")
    row = rows.loc[rid]
    assert (row.optimizer, row.model, row.scaling, row.batch_size) == ("sdlm", "paper", "paper", 1)
    assert row.test_acc > 50  # one pass over 1,000 digits already reads most test digits
    for r, init in ((rid, "sqrt"), (pooled, "pooled")):
        state = torch.load(tmp_path / "paper" / r / "checkpoint.pt")
        assert (state["sdlm"]["eta0"], state["sdlm"]["init"]) == (0.0005, init)
    assert rows.loc[pooled, "init"] == "pooled" and row.init == "default"


def test_runs_from_before_a_parameter_existed_stay_complete(tmp_path):
    """A parameter added later (such as `init`) is absent from older params.json files: such
    a run has the parameter's default and stays complete; with another value it is refused."""
    run = runs.Run("t", "adam", 1e-3, 1, run_id="old")
    folder = tmp_path / "t" / "old"
    older = {k: v for k, v in run.params().items() if k != "init"}
    runs.start_run(folder, older, torch.device("cpu"))
    epoch = dict(epoch=1, train_loss=1.0, train_acc=50.0, test_loss=1.0, test_acc=50.0)
    runs.finish_run(folder, older, [epoch | dict(seconds=1.0, images_per_s=1.0)], (1, 50), 0)
    assert runs.status(folder, run) == "complete"
    assert runs.load_results("t", tmp_path).loc[0, "init"] == "default"
    with pytest.raises(ValueError, match="other parameters"):
        runs.status(folder, runs.Run("t", "sdlm", 1e-3, 1, init="pooled", run_id="old"))


def test_bad_parameters_refused_before_any_training(tmp_path):
    bad = runs.Run("optimizers", "adam", -1.0, 1, run_id="bad")
    with pytest.raises(ValueError, match="lr must be > 0"):
        runs.validate(bad)
    runs.register("badplan", lambda seeds, quick: [bad])
    with pytest.raises(ValueError, match="bad: bad parameters"):
        runs.run_experiment("badplan", results_dir=tmp_path)
    assert not (tmp_path / "badplan").exists()
    proc = lenet("run", "nonsense", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "unknown experiment 'nonsense'" in proc.stderr
    proc = lenet("run", "optimizers", "--only", "adam-e7-s0", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "unknown run id" in proc.stderr


def test_failed_run_is_marked_and_never_enters_results(tmp_path, mnist):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make the run fail")
    ok = runs.Run("t", "adam", 1e-3, 1, train_subset=500, test_subset=200, run_id="ok")
    runs.run_chain([ok], tmp_path)
    bad = runs.Run("t", "sgd", 0.01, 1, train_subset=500, test_subset=200, run_id="nocuda")
    reports = runs.run_chain([bad], tmp_path, device="cuda")
    assert reports[0]["status"] == "failed"
    summary = json.loads((tmp_path / "t" / "nocuda" / "summary.json").read_text())
    assert summary["status"] == "failed" and "error" in summary
    assert list(runs.load_results("t", tmp_path)["run_id"]) == ["ok"]


def test_failed_cli_run_exits_non_zero(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make the run fail")
    proc = lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0", "--device", "cuda",
                 "--results-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode != 0 and "failed: sgd-e30-s0" in proc.stderr


def test_missing_results_folder_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="lenet run optimizers"):
        runs.load_results("optimizers", tmp_path)
    proc = lenet("results", "optimizers", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "lenet run optimizers" in proc.stderr


def test_a_locked_run_is_left_alone(tmp_path):
    r = runs.Run("t", "adam", 1e-3, 1, train_subset=300, test_subset=100, run_id="busy")
    with runs.Lock(tmp_path / "t" / "busy") as got:
        assert got
        reports = runs.run_chain([r], tmp_path)
    assert reports == [{"run_id": "busy", "status": "locked"}]
    assert not (tmp_path / "t" / "busy" / "summary.json").exists()


def test_folder_with_other_parameters_is_refused(quick):
    out, _ = quick
    other = runs.Run(
        "optimizers", "adam", 0.5, 1, train_subset=1000, test_subset=500, run_id="adam-e30-s0"
    )
    with pytest.raises(ValueError, match="other parameters"):
        runs.run_chain([other], out)


def test_killed_run_resumes_to_the_same_metrics(tmp_path, mnist):
    def chain(folder):
        return (
            "from pathlib import Path; from lenet_lib import runs; "
            "runs.run_chain([runs.Run('k', 'adam', 1e-3, 4, train_subset=6000, "
            f"test_subset=500, run_id='r')], Path({str(folder)!r}))"
        )

    ckpt = tmp_path / "a" / "k" / "r" / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-c", chain(tmp_path / "a")], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, mid-run
    proc.wait()
    assert ckpt.exists() and not (tmp_path / "a" / "k" / "r" / "metrics.csv").exists()
    subprocess.run(
        [sys.executable, "-c", chain(tmp_path / "a")], cwd=ROOT, check=True, capture_output=True
    )
    subprocess.run(
        [sys.executable, "-c", chain(tmp_path / "b")], cwd=ROOT, check=True, capture_output=True
    )
    cols = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
    resumed = runs.load_metrics(tmp_path / "a" / "k" / "r")[cols]
    uninterrupted = runs.load_metrics(tmp_path / "b" / "k" / "r")[cols]
    pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True)


def test_tables_are_built_from_the_summaries(quick, tmp_path):
    import shutil

    from lenet_lib import report

    out, _ = quick
    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    before = report.table2(runs.load_results("optimizers", copy)).set_index("optimizer")
    path = copy / "optimizers" / "sgd-e30-s0" / "summary.json"
    summary = json.loads(path.read_text())
    summary["test_acc"] = 12.34
    path.write_text(json.dumps(summary))
    after = report.table2(runs.load_results("optimizers", copy)).set_index("optimizer")
    assert after.loc["sgd", "test_acc"] == 12.34 != before.loc["sgd", "test_acc"]
    assert after.loc["sgd", "test_diff"] == pytest.approx(12.34 - 88.23)
