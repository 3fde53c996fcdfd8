"""Bad and hostile inputs (issue 16): each ends in one clear line naming the problem and the fix,
never a traceback, never a silent acceptance, and nothing half-written counts as done. The CLI
items go through the venv's real `lenet`; training items use tiny subsets and one epoch."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import papermill as pm
import pytest
import torch
from conftest import ROOT, training_notebook
from test_hostile import suggestions_parse

from lenet_lib import data, experiments, io, plans, results, runner, train
from lenet_lib.runs.experiments import Run

LENET = Path(sys.executable).parent / "lenet"


def lenet(*args, env=None, cwd=ROOT, timeout=600):
    return subprocess.run(
        [str(LENET), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env=os.environ | (env or {}),
    )  # fmt: skip


def refused(proc, *needles):
    """Non-zero exit, no traceback, and stderr ending in one `error:` line with `needles`."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # The kernel's own log lines (ipykernel's, on the stderr it shares) are not lenet's.
    lines = [x for x in proc.stderr.strip().splitlines() if not x.startswith("[IPKernelApp]")]
    last = lines[-1]
    assert last.startswith(("error:", "lenet")), proc.stderr[-2000:]
    assert "unexpected" not in last, last  # the catch-all of main(): a bug, not an answer
    for needle in needles:
        assert needle in last, last
    suggestions_parse(last)  # every `lenet ...` it suggests is a real command line
    return last


# --- The command line: silent acceptances -------------------------------------------------


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "optimizers", "--quick", "--only", ""], "--only takes run ids"),
        (["run", "optimizers", "--quick", "--only", "adam-e30-s0,"], "--only takes run ids"),
        (["run", "optimizers", "--quick", "--seeds", "0,0"], "names a seed twice"),
        (["run", "optimizers", "--quick", "--seeds", "-1"], "integers >= 0"),
        (["run", "optimizers", "--quick", "--device", "tpu"], "device 'tpu' is unknown"),
        (["run", "optimizers", "--quick", "--jobs", "0"], "integer >= 1"),
        (["bench", "--images", "0"], "integer >= 1"),
        (["bench", "--images", "10000000"], "use at most"),
        (["bench", "--batch-size", "60000"], "use at most"),
    ],
)
def test_bad_arguments_are_refused(args, needle):
    refused(lenet(*args), needle)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused():
    refused(lenet("run", "optimizers", "--quick", "--device", "cuda"), "sees no CUDA GPU")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        train.pick_device("cuda:0")


def test_empty_lenet_data_is_refused():
    refused(lenet("data", "verify", env={"LENET_DATA": ""}), "LENET_DATA is set but empty")


def test_relative_lenet_data_is_taken_from_the_project_root(tmp_path):
    """The runner (any folder) and the kernel (the project root) read the same data."""
    code = "from lenet_lib import data; print(data.DEFAULT_ROOT)"
    env = os.environ | {"LENET_DATA": "data"}
    roots = {
        subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
        for cwd in (ROOT, tmp_path)
    }  # fmt: skip
    assert roots == {str(ROOT / "data")}
    data.fetch()
    proc = lenet("data", "verify", env={"LENET_DATA": "data"}, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.count(": ok") == 4, proc.stdout + proc.stderr


def test_results_stay_in_the_project_wherever_the_data_is(tmp_path):
    proc = lenet("results", "optimizers", env={"LENET_DATA": str(tmp_path)})
    assert proc.returncode == 0 and "adam-e100-s0" in proc.stdout, proc.stderr


# --- Parameters: one check, before any training, for the CLI and the notebook --------------


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"width": 0.0}, "width must be above 1/12"),
        ({"width": -1.0}, "width must be above 1/12"),
        ({"width": float("nan")}, "width must be a finite number"),
        ({"model": "paper", "scaling": "paper", "width": 2.0}, "has one width"),
        ({"lr": "0.01"}, "lr must be > 0 and finite, got '0.01'"),
        ({"lr": math.inf}, "lr must be > 0 and finite, got inf"),
        ({"train_subset": -5}, "train_subset must be an integer from 0 (all) to 60000"),
        ({"train_subset": 70000}, "train_subset must be an integer from 0 (all) to 60000"),
        ({"test_subset": 2.5}, "test_subset must be an integer"),
        ({"epochs": 2.0}, "epochs must be an integer >= 1"),
        ({"batch_size": True}, "batch_size must be between 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
        ({"momentum": "0.9", "optimizer": "momentum"}, "momentum must be in [0, 1), got '0.9'"),
        ({"scaling": 3}, "scaling must be a string"),
        ({"init": "sqrt"}, "init 'sqrt' is unknown: use one of default, pooled"),
        ({"init": "pooled"}, "init 'pooled' is for the sdlm optimizers only: use init 'default'"),
    ],
)
def test_a_run_refuses_bad_parameters(change, needle):
    with pytest.raises(ValueError) as e:
        Run(**{"experiment": "optimizers", "optimizer": "adam", "lr": 1e-3, "epochs": 1} | change)
    message = str(e.value)
    assert needle in message and "\n" not in message, message


def test_train_subset_minus_5_is_not_blamed_on_batch_size():
    with pytest.raises(ValueError) as e:
        Run("optimizers", "adam", 1e-3, 1, train_subset=-5)
    assert "batch_size" not in str(e.value)


def test_the_machine_settings_are_checked():
    with pytest.raises(ValueError, match="device 'tpu' is unknown"):
        experiments.check_machine(device="tpu")
    with pytest.raises(ValueError, match="threads must be an integer >= 0"):
        experiments.check_machine(threads=-1)
    experiments.check_machine(device="cpu", threads=1)


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"lr": "abc"}, "lr must be > 0 and finite, got 'abc'"),
        ({"train_subset": -5}, "train_subset must be an integer from 0 (all) to 60000"),
        ({"width": 0}, "width must be above 1/12"),
        ({"device": "tpu"}, "device 'tpu' is unknown"),
        ({"init": "pooled"}, "init 'pooled' is for the sdlm optimizers only"),
    ],
)
def test_the_notebook_refuses_bad_parameters_before_training(tmp_path, params, needle):
    with pytest.raises(pm.PapermillExecutionError) as e:
        training_notebook(tmp_path, **params)
    assert needle in str(e.value)
    assert not (tmp_path / "run" / "params.json").exists()


# --- A run whose loss becomes NaN or infinite ---------------------------------------------


def test_fit_stops_at_the_epoch_whose_loss_is_not_finite(mnist, tmp_path):
    X, y = data.subset(*mnist["train"], 500)
    X = data.prepare(X)
    model = train.new_model("notes", seed=0)
    with pytest.raises(train.Diverged, match=r"loss became (nan|inf) in epoch 1 of 2") as e:
        run = Run("test", "sgd", 1e10, 2)
        train.fit(model, X, y, X[:100], y[:100], run, checkpoint=tmp_path / "c.pt", progress=False)
    assert e.value.epoch == 1
    assert not (tmp_path / "c.pt").exists()  # nothing of the diverged epoch is kept


def test_a_run_that_diverges_is_failed_and_in_no_table(tmp_path, mnist, monkeypatch):
    """Through the runner and the notebook."""
    name = "diverge-test"

    def plan(seeds=(0,), quick=False):
        runs = [Run(name, "sgd", 1e10, 1, train_subset=300, test_subset=100, seed=s) for s in seeds]
        runs += [
            Run(name, "sgd", 0.01, 1, train_subset=300, test_subset=100, seed=s) for s in seeds
        ]
        return [experiments._with_id(r, f"{r.optimizer}-lr{r.lr:g}-s{r.seed}") for r in runs]

    plans.register(name, plan, keep_weights=False)
    try:
        reports = runner.run_experiment(name, results_dir=tmp_path)
    finally:
        del plans.EXPERIMENTS[name]
    status = {r["run_id"]: r["status"] for r in reports}
    assert status == {"sgd-lr1e+10-s0": "failed", "sgd-lr0.01-s0": "complete"}
    summary = io.read_json(tmp_path / name / "sgd-lr1e+10-s0" / "summary.json")
    assert summary["status"] == "failed"
    assert re.search(r"loss became (nan|inf) in epoch 1 of 1", summary["error"])
    table = results.load_results(name, tmp_path)
    assert list(table["run_id"]) == ["sgd-lr0.01-s0"]
    params = io.read_json(tmp_path / name / "sgd-lr0.01-s0" / "params.json")
    assert params["threads"] == 1


def test_a_summary_complete_with_nan_is_refused(tmp_path):
    run_dir = tmp_path / "optimizers" / "sgd-e30-s0"
    shutil.copytree(results.RESULTS / "optimizers" / "sgd-e30-s0", run_dir)
    summary = io.read_json(run_dir / "summary.json") | {"test_acc": float("nan")}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    refused(lenet("results", "optimizers", "--results-dir", tmp_path), "test_acc is not a finite")


def test_finish_run_never_writes_complete_for_nan(tmp_path):
    row = dict(epoch=1, train_loss=math.nan, train_acc=10.0, test_loss=math.nan, test_acc=9.8)
    params = dict(optimizer="sgd", epochs=1, seed=0, lr=1.0, batch_size=64, momentum=0.0)
    with pytest.raises(train.Diverged):
        experiments.finish_run(tmp_path, params, [row | {"seconds": 1.0}], (math.nan, 10.0), 0)
    assert not (tmp_path / "summary.json").exists()


# --- Broken files: one line, never a traceback --------------------------------------------


def test_a_folder_in_place_of_a_data_file(data_copy):
    target = data.raw_dir(data_copy) / "t10k-labels-idx1-ubyte"
    target.unlink()
    target.mkdir()
    assert data.verify(data_copy)["t10k-labels-idx1-ubyte"] == "not a file"
    refused(lenet("data", "fetch", "--root", data_copy), "remove it")
    with pytest.raises(data.DataError, match="remove it"):
        data.load_mnist("test", data_copy)


def test_a_results_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = lenet("run", "optimizers", "--quick", "--only", "sgd-e30-s0", "--results-dir", blocker)
    refused(proc, str(blocker), "--results-dir")


def copy_run(tmp_path, experiment="optimizers", rid="adam-e100-s0"):
    run_dir = tmp_path / experiment / rid
    shutil.copytree(results.RESULTS / experiment / rid, run_dir)
    return run_dir


@pytest.mark.parametrize("payload", ["[]", "3", '"complete"', "\x00\xff"])
def test_a_summary_that_is_not_an_object(tmp_path, payload):
    run_dir = copy_run(tmp_path)
    (run_dir / "summary.json").write_text(payload)
    refused(lenet("results", "optimizers", "--results-dir", tmp_path), "summary.json")


@pytest.mark.parametrize("params", [{}, {"parameters": 3, "device_name": "", "torch": "",
                                         "git_commit": "", "started": ""}])  # fmt: skip
def test_a_params_json_without_the_expected_keys(tmp_path, params):
    run_dir = copy_run(tmp_path)
    (run_dir / "params.json").write_text(json.dumps(params))
    refused(lenet("results", "optimizers", "--results-dir", tmp_path), "params.json")


def predict(tmp_path, png):
    return lenet("predict", png, "--run", "adam-e100-s0", "--results-dir", tmp_path)


def test_predict_with_a_truncated_checkpoint(tmp_path, digit_png):
    ckpt = copy_run(tmp_path) / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    last = refused(predict(tmp_path, digit_png), "truncated or corrupt")
    assert "weights_only" not in last


def test_predict_with_a_malicious_checkpoint(tmp_path, digit_png):
    ckpt = copy_run(tmp_path) / "checkpoint.pt"
    torch.save({"model": Path("/etc/passwd")}, ckpt)  # a pickle of a class: code on load
    proc = predict(tmp_path, digit_png)
    refused(proc, "holds Python objects besides tensors", "refused")
    assert "weights_only" not in proc.stderr


def test_predict_with_a_flipped_byte(tmp_path, digit_png):
    """A flipped exponent bit makes a weight about 1e36 and still loads: the sha256 of the
    weights recorded in summary.json catches it."""
    ckpt = copy_run(tmp_path) / "checkpoint.pt"
    raw = bytearray(ckpt.read_bytes())
    weights = io.load_torch(ckpt)["model"]["c1.weight"].numpy().tobytes()
    at = raw.find(weights)
    assert at > 0
    raw[at + 3] ^= 0x40
    ckpt.write_bytes(bytes(raw))
    assert io.load_torch(ckpt)["model"]["c1.weight"].abs().max() > 1e30  # torch loads it
    refused(predict(tmp_path, digit_png), "does not hold the weights its run recorded")


def test_every_committed_weights_file_matches_its_recorded_sha256():
    checked = 0
    for ckpt in sorted(results.RESULTS.glob("*/*/checkpoint.pt")):
        summary = io.read_json(ckpt.parent / "summary.json")
        assert "weights_sha256" in summary, f"{ckpt}: run io.record_weights_sha256"
        assert io.weights_sha256(io.load_torch(ckpt)["model"]) == summary["weights_sha256"]
        checked += 1
    assert checked >= 20


def test_ctrl_c_ends_in_one_line_and_the_same_command_resumes(tmp_path, mnist):
    args = ["run", "optimizers", "--quick", "--only", "adam-e30-s0", "--results-dir", tmp_path]
    log = tmp_path / "out.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(LENET), *map(str, args)], cwd=ROOT, stdout=out, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
            # A shell's background job ignores SIGINT, and children inherit that: undo it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        deadline = time.time() + 300
        while "running" not in log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # inside the notebook
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole group
        _, stderr = proc.communicate(timeout=120)
    proc.stderr = stderr
    refused(proc, "interrupted", "run the same command again")
    assert proc.returncode == 130
    again = lenet(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = io.read_json(tmp_path / "optimizers" / "adam-e30-s0" / "summary.json")
    assert summary["status"] == "complete"


# --- Missing runs, and the thread count of the committed runs ------------------------------


def test_require_names_the_missing_runs_and_the_command(tmp_path):
    shutil.copytree(results.RESULTS / "gap", tmp_path / "gap")
    shutil.rmtree(tmp_path / "gap" / "sgd-lr1-b64-s0")
    ids = results.plan_ids("gap")
    with pytest.raises(FileNotFoundError) as e:
        results.require("gap", ids, tmp_path)
    assert str(e.value).endswith(
        f"make them with `lenet run gap --seeds 0 --only sgd-lr1-b64-s0 --results-dir {tmp_path}`"
    )
    assert len(results.require("gap", ids)) == len(ids)


def test_chapter_07_says_which_runs_are_missing(tmp_path):
    # a results folder as committed (the benchmarks' tables too), with runs missing
    for experiment in ("optimizers", "gap", "rate1", "largebatch", "benchmarks"):
        shutil.copytree(results.RESULTS / experiment, tmp_path / experiment)
    shutil.rmtree(tmp_path / "optimizers" / "sgd-e30-s2")
    assert results.missing_runs("optimizers", results.plan_ids("optimizers", (0, 1, 2)),
                                tmp_path) == ["sgd-e30-s2"]  # fmt: skip
    source = (ROOT / "chapters" / "07_optimizers.ipynb").read_text()
    assert "did not fit in the time" not in source
    shutil.rmtree(tmp_path / "gap" / "adam-lr0.0001-b1024-s0")
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(
            str(ROOT / "chapters" / "07_optimizers.ipynb"), str(tmp_path / "07.ipynb"),
            parameters={"results_dir": str(tmp_path)}, kernel_name=runner.KERNEL,
            cwd=str(ROOT), progress_bar=False,
        )  # fmt: skip
    assert "lacks the complete run(s) adam-lr0.0001-b1024-s0" in str(e.value)
    assert "lenet run gap --seeds 0 --only adam-lr0.0001-b1024-s0" in str(e.value)


def reproduce_threads() -> dict[str, int]:
    """The thread count `make reproduce` gives each run: its recipe runs each experiment with
    no flags but --jobs, so as plans.COMMITTED says (runner.committed)."""
    recipe = (ROOT / "Makefile").read_text().split("\nreproduce:")[1].split("\n\n")[0]
    out = {}
    for line in recipe.splitlines()[1:]:
        m = re.fullmatch(r"\t\$\(RUN\) (\w+) --jobs \$\(JOBS\)", line)
        assert m, f"make reproduce: {line!r} is not `$(RUN) EXPERIMENT --jobs $(JOBS)`"
        seeds, only, threads = runner.committed(m.group(1))
        for r in runner.plan(m.group(1), seeds, only=only):
            out[f"{m.group(1)}/{experiments.run_id(r)}"] = threads(experiments.run_id(r))
    return out


def test_make_reproduce_uses_the_thread_counts_of_the_committed_runs():
    planned = reproduce_threads()
    committed = {
        f"{p.parent.parent.name}/{p.parent.name}": io.read_json(p)["threads"]
        for p in results.RESULTS.glob("*/*/params.json")
    }
    assert committed and {k: planned.get(k) for k in committed} == committed
    assert set(planned) == set(committed), "make reproduce plans runs results/ does not hold"


def test_flags_override_the_committed_runs():
    seeds, only, threads = runner.committed("paper")
    assert seeds == (0, 1, 2) and "sdlm-pooled-e20-s2" in only and "sdlm-e20-s1" not in only
    assert (threads("sdlm-e20-s0"), threads("sdlm-pooled-e20-s0")) == (2, 1)
    seeds, only, threads = runner.committed("paper", seeds=(1,), threads=3)
    assert seeds == (1,) and only is None and threads("sdlm-e20-s0") == 3
    assert runner.committed("paper", only=["sdlm-e20-s1"])[:2] == ((0, 1, 2), ["sdlm-e20-s1"])
    seeds, only, threads = runner.committed("paper", quick=True)  # the tests' quick runs
    assert (seeds, only, threads("sdlm-e20-s0")) == ((0,), None, 1)
