"""The committed results (results/): every complete run's checkpoint, evaluated again on the
test digits it was scored on, gives the test accuracy in its summary.json; finished runs keep
only what something reads, so results/ stays small."""

import pytest
import torch

from lenet_lib import data, experiments, io, plans, results, runner, train

EXPERIMENTS = sorted(plans.WEIGHTS_READ)  # those whose runs keep their weights


def committed():
    for experiment in EXPERIMENTS:
        folder = results.RESULTS / experiment
        if not folder.is_dir():
            continue
        for row in results.load_results(experiment).itertuples():
            yield pytest.param(experiment, row.run_id, id=f"{experiment}/{row.run_id}")


@pytest.mark.parametrize("experiment,run_id", list(committed()))
def test_checkpoint_gives_the_summary_test_accuracy(mnist, experiment, run_id):
    row = results.load_results(experiment).set_index("run_id").loc[run_id]
    model = results.load_model(run_id, experiment)
    *_, X_test, y_test = data.load_run_data(
        model.scaling, test_subset=int(row.test_subset or 0), seed=int(row.seed)
    )
    _, test_acc = train.evaluate(model, X_test, y_test)
    assert test_acc == pytest.approx(row.test_acc, abs=0.011)  # one digit in 10,000


def test_results_are_committed():
    assert list(committed()), "no complete runs under results/: run `make reproduce`"


def test_finished_runs_keep_only_what_is_read():
    """Weights alone for the experiments whose weights are read, no checkpoint for the
    others (`lenet prune`, which the runner applies to every finished chain)."""
    for folder in sorted(results.RESULTS.glob("*/*/summary.json")):
        run_dir = folder.parent
        ckpt = run_dir / "checkpoint.pt"
        chain = runner._plan_chain(runner._stored_run(run_dir))
        if not all(runner._complete(run_dir.parent / experiments.run_id(r)) for r in chain):
            continue  # a longer run of its chain may still continue from it
        if run_dir.parent.name in plans.WEIGHTS_READ:
            state = torch.load(ckpt, weights_only=True)
            assert set(state) <= {"model", "epoch", "sdlm"}, f"{run_dir}: run `lenet prune`"
        else:
            assert not ckpt.exists(), f"{ckpt} is read by nothing: run `lenet prune`"


def test_results_fit_in_30_mb():
    # Small enough to clone in seconds and to travel with the working tree to a GPU machine;
    # the weights of each run something reads (about 250 kB) are most of it. 20 MB until the
    # ladder (issue 27), whose 33 runs (27 rungs and a rate check) keep theirs: about 9 MB more.
    size = sum(p.stat().st_size for p in results.RESULTS.rglob("*") if p.is_file())
    assert size <= 30e6, f"results/ holds {size / 1e6:.1f} MB"


def test_every_run_names_a_commit_of_this_history():
    """A run's params.json names the commit that made it; that commit must be reachable from
    here, so that a reader can check it out (a branch's commit is kept by a merge)."""
    import subprocess

    root = results.RESULTS.parent
    git = ["git", "-C", str(root)]
    shallow = subprocess.run([*git, "rev-parse", "--is-shallow-repository"],
                             capture_output=True, text=True)  # fmt: skip
    if shallow.returncode or shallow.stdout.strip() != "false":
        pytest.skip("needs the full git history")
    missing = []
    for params in sorted(results.RESULTS.glob("*/*/params.json")):
        commit = io.read_json(params)["git_commit"].removesuffix("-dirty")
        ok = subprocess.run([*git, "merge-base", "--is-ancestor", commit, "HEAD"])
        if ok.returncode:
            missing.append(f"{params.parent.relative_to(root)}: {commit}")
    assert not missing, missing


def test_every_committed_run_was_made_from_a_clean_commit():
    # A run made with uncommitted changes ("-dirty") cannot be traced to the code that made it:
    # re-make it from a clean commit (README, "What results/ holds").
    dirty = [
        str(params.parent.relative_to(results.RESULTS))
        for params in sorted(results.RESULTS.glob("*/*/params.json"))
        if io.read_json(params)["git_commit"].endswith("-dirty")
    ]
    assert not dirty, dirty


def test_the_notes_networks_runs_were_made_again_with_the_fast_layers():
    """Issue 17: every committed run of the notes' network (a diverged one too) was re-made by
    the engine with its fast layers; none is one of the runs before
    (results/benchmarks/default_layers_runs.csv)."""
    before = results.load_benchmark("default_layers_runs")
    old = set(zip(before["run_id"], before["git_commit"], strict=True))
    for experiment in before["experiment"].unique():
        params = sorted((results.RESULTS / experiment).glob("*/params.json"))
        now = {(p.parent.name, io.read_json(p)["git_commit"]) for p in params}
        assert {r for r, _ in now} == set(before.loc[before["experiment"] == experiment, "run_id"])
        assert not now & old, f"{experiment}: runs from before the fast layers: {now & old}"
