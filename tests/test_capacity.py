"""Fitting the generalization law (lenet_lib/capacity.py)."""

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


@pytest.mark.parametrize(
    "alpha,lo,hi,verdict",
    [
        (0.7, 0.6, 0.8, "holds"),
        (0.4, 0.3, 0.55, "holds approximately"),
        (1.5, 1.3, 1.7, "does not hold"),
    ],
)
def test_verdict_on_alpha(alpha, lo, hi, verdict):
    assert capacity.verdict_alpha({"alpha": alpha, "alpha_lo": lo, "alpha_hi": hi}) == verdict


def test_capacity_grows_with_width():
    assert capacity.n_params(0.5) < capacity.n_params(1.0) == 61706 < capacity.n_params(2.0)
