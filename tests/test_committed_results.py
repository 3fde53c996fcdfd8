"""The committed results (results/): every complete run's checkpoint, evaluated again on the
test digits it was scored on, gives the test accuracy in its summary.json."""

import pytest

from lenet_lib import data, results, train

EXPERIMENTS = ("optimizers", "largebatch", "paper")


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
