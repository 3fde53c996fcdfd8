"""The papermill runner, end to end on small subsets of the real data (lenet_lib/runs/runner.py,
experiments.py, results.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from conftest import ROOT, training_notebook

from lenet_lib import experiments, io, plans, runner, worker
from lenet_lib.runs.experiments import Run
from lenet_lib.runs.results import load_benchmark, load_metrics, load_results


def lenet(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def test_quick_runs_execute_six_notebooks(quick):
    out, proc = quick
    folders = sorted(p.name for p in (out / "optimizers").iterdir())
    assert folders == sorted(experiments.run_id(r) for r in plans.optimizer_runs(quick=True))
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
        assert list(pd.read_csv(folder / "metrics.csv").columns[:6]) == experiments.METRIC_COLUMNS


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
    m30 = load_metrics(out / "optimizers" / "adam-e30-s0")
    m100 = load_metrics(out / "optimizers" / "adam-e100-s0")
    assert list(m100["epoch"]) == [1, 2, 3]
    assert m100.iloc[0]["test_acc"] == m30.iloc[0]["test_acc"]


def test_continued_run_equals_fresh_run_of_same_length(quick, tmp_path):
    out, _ = quick
    # adam-e60 continued adam-e30's checkpoint; a fresh 2-epoch run must match it exactly.
    fresh = Run("optimizers", "adam", 1e-3, 2, train_subset=1000, test_subset=500, run_id="fresh")
    runner.run_chain([fresh], tmp_path)
    cols = ["train_loss", "train_acc", "test_loss", "test_acc"]
    continued = load_metrics(out / "optimizers" / "adam-e60-s0")[cols]
    direct = load_metrics(tmp_path / "optimizers" / "fresh")[cols]
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
    rows = load_results("paper", tmp_path).set_index("run_id")
    row = rows.loc[rid]
    assert (row.optimizer, row.model, row.scaling, row.batch_size) == ("sdlm", "paper", "paper", 1)
    assert row.test_acc > 50  # one pass over 1,000 digits already reads most test digits
    for r, init in ((rid, "sqrt"), (pooled, "pooled")):
        state = torch.load(tmp_path / "paper" / r / "checkpoint.pt")
        assert (state["sdlm"]["eta0"], state["sdlm"]["init"]) == (0.0005, init)
    assert rows.loc[pooled, "init"] == "pooled" and row.init == "default"


def test_runs_from_before_a_parameter_existed_stay_complete(tmp_path):
    """A field added later (such as `init`) is absent from older params.json files: such a
    run has the field's default and stays complete; with another value it is refused."""
    run = Run("t", "adam", 1e-3, 1, run_id="old")
    folder = tmp_path / "t" / "old"
    older = {k: v for k, v in run.params().items() if k != "init"}
    experiments.start_run(folder, older, torch.device("cpu"))
    epoch = dict(epoch=1, train_loss=1.0, train_acc=50.0, test_loss=1.0, test_acc=50.0)
    history = [epoch | dict(seconds=1.0, images_per_s=1.0)]
    summary = experiments.finish_run(folder, older, history, (1.0, 50.0), time.time())
    io.write_json(folder / "summary.json", summary | {"status": "complete"})
    assert runner.status(folder, run) == "complete"
    assert runner._stored_run(folder) == run
    assert load_results("t", tmp_path).loc[0, "init"] == "default"
    pooled = Run("t", "sdlm", 1e-3, 1, batch_size=1, model="paper", init="pooled", run_id="old")
    with pytest.raises(ValueError, match="other parameters"):
        runner.status(folder, pooled)


def test_bad_parameters_refused_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="lr must be > 0"):
        Run("optimizers", "adam", -1.0, 1, run_id="bad")
    plans.register("badplan", lambda seeds, quick: [Run("optimizers", "adam", -1.0, 1)])
    try:
        with pytest.raises(ValueError, match="experiment badplan: bad parameters: lr must be > 0"):
            runner.run_experiment("badplan", results_dir=tmp_path)
    finally:
        del plans.EXPERIMENTS["badplan"]
        plans.WEIGHTS_READ.discard("badplan")
    assert not (tmp_path / "badplan").exists()
    proc = lenet("run", "nonsense", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "unknown experiment 'nonsense'" in proc.stderr
    proc = lenet("run", "optimizers", "--only", "adam-e7-s0", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "unknown run id" in proc.stderr


def test_failed_run_is_marked_and_never_enters_results(tmp_path, mnist):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make the run fail")
    ok = Run("t", "adam", 1e-3, 1, train_subset=500, test_subset=200, run_id="ok")
    runner.run_chain([ok], tmp_path)
    bad = Run("t", "sgd", 0.01, 1, train_subset=500, test_subset=200, run_id="nocuda")
    reports = runner.run_chain([bad], tmp_path, device="cuda")
    assert reports[0]["status"] == "failed"
    summary = json.loads((tmp_path / "t" / "nocuda" / "summary.json").read_text())
    assert summary["status"] == "failed" and "error" in summary
    assert list(load_results("t", tmp_path)["run_id"]) == ["ok"]


def test_a_run_whose_shorter_run_failed_is_not_run(tmp_path, mnist):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make the run fail")
    chain = [Run("t", "sgd", 0.01, e, train_subset=500, test_subset=200) for e in (1, 2)]
    reports = runner.run_chain(chain, tmp_path, device="cuda")
    assert [r["status"] for r in reports] == ["failed", "not run"]
    assert (
        reports[1]["error"]
        == f"{experiments.run_id(chain[0])}, which it continues, did not complete"
    )
    assert not (tmp_path / "t" / experiments.run_id(chain[1]) / "summary.json").exists()


def test_a_chains_next_run_takes_the_slot_its_shorter_run_frees(quick):
    """Two runs at a time (the quick plan: the Adam chain and three single runs): adam-e60 starts
    before the last single run. Handed every run at once, Dask let momentum and nesterov take
    both workers when adam-e30 and sgd ended together, and the chain waited a whole run."""
    _, proc = quick
    started = [line.split(":")[0] for line in proc.stdout.splitlines() if ": running" in line]
    assert started.index("adam-e60-s0") < started.index("nesterov-e30-s0"), started


def test_failed_cli_run_exits_non_zero(tmp_path):
    run_dir = tmp_path / "optimizers" / "sgd-e30-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")  # the resume fails
    proc = lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0",
                 "--results-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode != 0 and "failed: sgd-e30-s0" in proc.stderr


def test_missing_results_folder_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="lenet run optimizers"):
        load_results("optimizers", tmp_path)
    proc = lenet("results", "optimizers", "--results-dir", str(tmp_path))
    assert proc.returncode != 0 and "lenet run optimizers" in proc.stderr


def test_a_benchmark_table_is_read_back_or_its_script_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run benchmarks/paper_frozen_rates.py with --out"):
        load_benchmark("paper_frozen_rates", tmp_path)
    (tmp_path / "benchmarks").mkdir()
    table = pd.DataFrame({"run": ["pooled-s1"], "pass2_test_error_frozen": [1.5]})
    table.to_csv(tmp_path / "benchmarks" / "paper_frozen_rates.csv", index=False)
    pd.testing.assert_frame_equal(load_benchmark("paper_frozen_rates", tmp_path), table)


def test_a_locked_run_is_left_alone(tmp_path):
    r = Run("t", "adam", 1e-3, 1, train_subset=300, test_subset=100, run_id="busy")
    with runner.Lock(tmp_path / "t" / "busy") as got:
        assert got
        reports = runner.run_chain([r], tmp_path)
    assert reports == [{"run_id": "busy", "status": "locked"}]
    assert not (tmp_path / "t" / "busy" / "summary.json").exists()


def test_folder_with_other_parameters_is_refused(quick):
    out, _ = quick
    other = Run(
        "optimizers", "adam", 0.5, 1, train_subset=1000, test_subset=500, run_id="adam-e30-s0"
    )
    with pytest.raises(ValueError, match="other parameters"):
        runner.run_chain([other], out)


def test_killed_run_resumes_to_the_same_metrics(tmp_path, mnist):
    def chain(folder):
        return (
            "from pathlib import Path; from lenet_lib import experiments, runner; "
            "runner.run_chain([experiments.Run('k', 'adam', 1e-3, 4, train_subset=6000, "
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
    resumed = load_metrics(tmp_path / "a" / "k" / "r")[cols]
    uninterrupted = load_metrics(tmp_path / "b" / "k" / "r")[cols]
    pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True)


def test_tables_are_built_from_the_summaries(quick, tmp_path):
    import shutil

    from lenet_lib import report

    out, _ = quick
    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    before = report.table2(load_results("optimizers", copy)).set_index("optimizer")
    path = copy / "optimizers" / "sgd-e30-s0" / "summary.json"
    summary = json.loads(path.read_text())
    summary["test_acc"] = 12.34
    path.write_text(json.dumps(summary))
    after = report.table2(load_results("optimizers", copy)).set_index("optimizer")
    assert after.loc["sgd", "test_acc"] == 12.34 != before.loc["sgd", "test_acc"]
    assert after.loc["sgd", "test_diff"] == pytest.approx(12.34 - 88.23)


def test_finished_chains_keep_only_the_weights(quick):
    """The runner prunes every finished chain: a weights-only checkpoint, which still gives
    the summary's test accuracy, and an executed notebook with one stream per cell."""
    import nbformat

    from lenet_lib import data, results, train

    out, _ = quick
    for folder in (out / "optimizers").iterdir():
        state = torch.load(folder / "checkpoint.pt", weights_only=True)
        assert set(state) == {"model", "epoch"}, folder.name
        nb = nbformat.read(folder / "run.ipynb", as_version=4)
        for cell in nb.cells:
            kinds = [o.get("name") for o in cell.get("outputs", []) if o.output_type == "stream"]
            assert len(kinds) == len(set(kinds))
            assert not any("\r" in o.get("text", "") for o in cell.get("outputs", []))
            assert not any(worker._glue_record(o) for o in cell.get("outputs", []))
    model = results.load_model("adam-e100-s0", results_dir=out)
    *_, X_test, y_test = data.load_run_data(test_subset=500, seed=0)
    summary = json.loads((out / "optimizers" / "adam-e100-s0" / "summary.json").read_text())
    assert train.evaluate(model, X_test, y_test)[1] == pytest.approx(summary["test_acc"], abs=0.2)


def test_a_run_something_continues_from_keeps_its_state(tmp_path, mnist):
    """Run alone, adam-e30 keeps its optimizer state (adam-e60 continues from it); once its
    chain is done, the whole chain is pruned; a pruned checkpoint never resumes."""
    only = ["adam-e30-s0"]
    runner.run_experiment("optimizers", quick=True, only=only, results_dir=tmp_path)
    ckpt = tmp_path / "optimizers" / "adam-e30-s0" / "checkpoint.pt"
    assert "optimizer" in torch.load(ckpt, weights_only=True)
    reports = runner.run_experiment(
        "optimizers", quick=True, only=["adam-e60-s0"], results_dir=tmp_path
    )
    assert reports[-1]["action"] == "continued from adam-e30-s0"
    assert "optimizer" in torch.load(ckpt, weights_only=True)  # adam-e100 still to come
    runner.run_experiment("optimizers", quick=True, only=["adam-e100-s0"], results_dir=tmp_path)
    for rid in ("adam-e30-s0", "adam-e60-s0", "adam-e100-s0"):
        state = torch.load(tmp_path / "optimizers" / rid / "checkpoint.pt", weights_only=True)
        assert set(state) == {"model", "epoch"}
    from lenet_lib import data, train

    X, y, X_test, y_test = data.load_run_data(train_subset=1000, test_subset=500)
    with pytest.raises(ValueError, match="only the weights of a finished run"):
        run = experiments.Run("optimizers", "adam", 1e-3, 5)
        train.fit(train.new_model(), X, y, X_test, y_test, run, checkpoint=ckpt)


def test_experiments_whose_weights_nobody_reads_keep_no_checkpoint(quick, tmp_path):
    import shutil

    out, _ = quick
    run_dir = tmp_path / "adam-e30-s0"
    shutil.copytree(out / "optimizers" / "adam-e30-s0", run_dir)
    assert runner.prune_run(run_dir, keep_weights=False) == "checkpoint removed"
    assert not (run_dir / "checkpoint.pt").exists()
    assert {"params.json", "metrics.csv", "summary.json", "run.ipynb"} <= set(
        p.name for p in run_dir.iterdir()
    )
    assert "capacity" not in plans.WEIGHTS_READ and "gap" not in plans.WEIGHTS_READ


def test_prune_command(quick, tmp_path):
    import shutil

    out, _ = quick
    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    proc = lenet("prune", "optimizers", "--results-dir", str(copy))
    assert proc.returncode == 0 and "optimizers: 6 finished runs pruned" in proc.stdout
    proc = lenet("prune", "nothing", "--results-dir", str(copy))
    assert proc.returncode != 0 and "unknown experiment 'nothing'" in proc.stderr
    proc = lenet("prune", "gap", "--results-dir", str(copy))
    assert proc.returncode != 0 and "no results in" in proc.stderr


@pytest.mark.parametrize("optimizer,nesterov", [("momentum", False), ("nesterov", True)])
def test_momentum_optimizers_train_with_momentum_09(tmp_path, mnist, optimizer, nesterov):
    """`papermill chapters/06_training_run.ipynb ... -p optimizer momentum`: 0.9, recorded."""
    run_dir = training_notebook(tmp_path, optimizer=optimizer, lr=0.01)
    assert io.read_json(run_dir / "params.json")["parameters"]["momentum"] == 0.9
    group = torch.load(run_dir / "checkpoint.pt")["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["nesterov"]) == (0.9, nesterov)


def test_momentum_without_effect_is_refused_before_training(tmp_path, mnist):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="has no effect with optimizer 'sgd'"):
        training_notebook(tmp_path, optimizer="sgd", lr=0.01, momentum=0.9)
    assert not (tmp_path / "run" / "params.json").exists()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_results_default_to_the_project_folder_wherever_the_data_is(tmp_path):
    env = os.environ | {"LENET_DATA": str(tmp_path)}
    code = "from lenet_lib import cli, results; print(cli.RESULTS, results.RESULTS)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(ROOT / "results")] * 2
    parser = __import__("lenet_lib.cli").cli.parser()
    for command in (["run", "optimizers"], ["results", "optimizers"], ["predict", "x.png"]):
        assert parser.parse_args(command).results_dir == str(ROOT / "results")


def test_a_finished_run_leaves_no_kernel_behind(tmp_path, mnist):
    # nbclient keeps alive a kernel whose manager it is handed; the worker must shut it down,
    # or every finished run's kernel stays in memory until the cluster closes.
    import psutil

    run = Run("optimizers", "adam", 1e-3, 1, train_subset=300, test_subset=100, run_id="k-s0")
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    out = worker.execute(run, str(tmp_path / "run"), "no-token", device="cpu")
    assert out["status"] == "complete", out["error"]
    time.sleep(1)
    left = [p for p in me.children(recursive=True) if p.pid not in before and p.is_running()]
    assert not [p for p in left if p.status() != psutil.STATUS_ZOMBIE], left


def test_a_parameter_walks_from_the_cli_to_the_optimizer(quick, tmp_path):
    """momentum-e30-s0's lr and momentum go from `lenet run` (the plan) through the worker,
    papermill and the notebook's Run to train.fit and torch's optimizer: the notebook's Run is
    the plan's, the step rule built from it is SGD with them, and training with it here gives
    the run's weights bit for bit."""
    from lenet_lib import runfolder, train

    out, _ = quick
    folder = out / "optimizers" / "momentum-e30-s0"
    run = runfolder.stored_run(folder)
    planned = {experiments.run_id(r): r for r in plans.optimizer_runs(quick=True)}
    assert run == planned["momentum-e30-s0"] and (run.lr, run.momentum) == (0.01, 0.9)
    rule = train.step_rule(train.new_model(), run)
    group = rule.opt.param_groups[0]
    assert type(rule.opt) is torch.optim.SGD
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.01, 0.9, False)
    threads = torch.get_num_threads()
    try:
        again = runfolder.train_run(run, tmp_path / "again", "cpu", threads=1)
    finally:
        torch.set_num_threads(threads)
    weights = torch.load(folder / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(v, weights[k]) for k, v in again.net.state_dict().items())
