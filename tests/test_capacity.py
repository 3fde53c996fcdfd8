"""Fitting the generalization law (lenet_lib/nets/capacity.py)."""

import numpy as np
import pytest

from lenet_lib import capacity


def test_fit_recovers_a_known_power_law():
    x = np.geomspace(1e-2, 10, 8)
    gap = 0.03 * x**0.7 * np.exp(np.random.default_rng(0).normal(0, 0.01, len(x)))
    fit = capacity.fit_law(x, gap)
    assert fit["alpha"] == pytest.approx(0.7, abs=0.02)
    assert fit["k"] == pytest.approx(0.03, rel=0.05)
    assert fit["alpha_lo"] < 0.7 < fit["alpha_hi"]


def test_non_positive_gaps_are_dropped_and_counted():
    fit = capacity.fit_law([1, 2, 4, 8, 16], [0.01, 0.02, -0.001, 0.08, 0.16])
    assert fit["dropped"] == 1 and fit["n"] == 4


def test_too_few_points_is_an_error():
    with pytest.raises(ValueError, match="at least 3"):
        capacity.fit_law([1, 2], [0.1, 0.2])


def test_converged_needs_a_fitted_training_set_in_each_of_the_last_epochs():
    import pandas as pd

    m = pd.DataFrame({"train_acc": [90.0, 99.9, 100.0, 100.0, 100.0]})
    assert capacity.converged(m)
    assert not capacity.converged(m, last=4)
    assert not capacity.converged(m.iloc[:4])  # 99.9 among the last three
    assert not capacity.converged(m.iloc[:2], last=3)  # too few epochs to tell


def test_capacity_grows_with_width():
    assert capacity.n_params(0.5) < capacity.n_params(1.0) == 61706 < capacity.n_params(2.0)
