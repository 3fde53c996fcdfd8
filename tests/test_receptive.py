"""Shifts, receptive fields and the threshold subsampling of lenet_lib.nets.receptive, on real
digits and the untrained paper network."""

import itertools
import math

import pytest
import torch

from lenet_lib import data, receptive
from lenet_lib.nets.models import LeNet5, LeNet5Paper, c3_connections, scaled_tanh


@pytest.fixture(scope="module")
def digits():
    X, y = data.load_mnist("test")
    return data.prepare(X[:64], "paper"), y[:64]


def test_shift_moves_and_fills(digits):
    X, _ = digits
    moved = receptive.shift(X, 2, -3)
    assert torch.equal(moved[..., 2:, :-3], X[..., :-2, 3:])
    assert (moved[..., :2, :] == data.PAPER_BACKGROUND).all()
    assert (moved[..., :, -3:] == data.PAPER_BACKGROUND).all()
    assert torch.equal(receptive.shift(X, 0, 0), X)
    with pytest.raises(ValueError):
        receptive.shift(X, 32, 0)


def test_shift_error_sees_a_wrong_shift(digits):
    X, _ = digits
    assert receptive.shift_error(X, receptive.shift(X, 1, 2), 1, 2) == 0
    assert receptive.shift_error(X, receptive.shift(X, 1, 2), 2, 1) > 0.5


def test_c1_is_shift_equivariant_and_s2_only_for_even_shifts(digits):
    X, _ = digits
    m = LeNet5Paper().eval()
    with torch.no_grad():
        base = m.features(X)
        for k in (1, 2, 3):
            f = m.features(receptive.shift(X, 0, k))
            assert receptive.shift_error(base["c1"], f["c1"], 0, k) < 1e-5
            s2_error = receptive.shift_error(base["s2"], f["s2"], 0, k // 2)
            assert (s2_error < 1e-5) == (k % 2 == 0)


def test_shift_changes_columns(digits):
    X, y = digits
    df = receptive.shift_changes(LeNet5().eval(), X, [(0, 0), (0, 2)], y=y)
    assert len(df) == 2 * 7
    zero = df[df.dx == 0]
    assert (zero["change"] == 0).all() and zero["same_decision"].dropna().eq(1).all()
    two = df[df.dx == 2].set_index("layer")
    assert two.loc["C1", "change"] > 0.1 and two.loc["C1", "c1_shift_error"] < 1e-5
    assert 0 <= two.loc["OUTPUT", "accuracy"] <= 1


def test_receptive_fields_match_autograd():
    m = LeNet5Paper()
    fields = receptive.receptive_fields(m).set_index("layer")
    assert fields["size"].tolist() == [1, 5, 6, 14, 16, 32]
    assert fields["units"].tolist() == [32, 28, 14, 10, 5, 1]
    # C3's centres: 10 per side, 2 pixels apart, tiling [6, 26): the paper's 20x20 area.
    assert (fields.loc["C3", "first_centre"], fields.loc["C3", "last_centre"]) == (7.0, 25.0)
    assert fields.loc["C3", "centre_span"] == 20
    for layer, unit, top_left in [("c1", (0, 3, 7), (3, 7)), ("c3", (2, 1, 4), (2, 8))]:
        support = receptive.input_support(m, layer, unit)
        rows, cols = support.any(1).nonzero().ravel(), support.any(0).nonzero().ravel()
        size = int(fields.loc[layer.upper(), "size"])
        assert (rows.min().item(), cols.min().item()) == top_left
        assert len(rows) == len(cols) == size and int(support.sum()) == size * size


def test_receptive_fields_with_padding():
    fields = receptive.receptive_fields(LeNet5(in_size=28)).set_index("layer")
    assert fields.loc["C1", "start"] == -2 and fields.loc["C5", "size"] == 32


def test_threshold_subsampling_is_or_and_and_blur():
    patterns = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4))).view(16, 1, 2, 2)
    n_on = (patterns > 0).flatten(1).sum(1)
    ones = torch.ones(1)
    with torch.no_grad():
        gate = {
            t: scaled_tanh(receptive.threshold_subsampling(-ones, ones, 5.0, t)(patterns)).flatten()
            for t in (0.5, 3.5)
        }
        blur = scaled_tanh(receptive.threshold_subsampling(-ones, ones, 0.05, 2.0)(patterns))
    assert torch.equal(gate[0.5] > 0, n_on >= 1)
    assert torch.equal(gate[3.5] > 0, n_on == 4)
    assert gate[0.5].abs().min() > 0.9 * 1.7159
    steps = torch.diff(torch.stack([blur.flatten()[n_on == n].mean() for n in range(5)]))
    assert steps.min() > 0 and steps.max() / steps.min() < 1.01  # equal steps: linear


def test_on_off_levels_follow_the_direction_of_the_map():
    maps = torch.zeros(10, 2, 4, 4)
    maps[:, 0, 0, 0] = 1.5  # a map that goes up on strokes
    maps[:, 1, 0, 0] = -1.2  # and one that goes down
    off, on = receptive.on_off_levels(maps, torch.zeros(2), q=0.99)
    assert on[0] == pytest.approx(1.5) and on[1] == pytest.approx(-1.2)


def test_warp_identity_and_a_quarter_turn(digits):
    X, _ = digits
    assert torch.allclose(receptive.warp(X), X, atol=1e-5)
    turned = receptive.warp(X, angle=90)
    assert torch.allclose(turned, torch.rot90(X, 1, (2, 3)), atol=1e-4) or torch.allclose(
        turned, torch.rot90(X, -1, (2, 3)), atol=1e-4
    )
    smaller = receptive.warp(X, scale=0.5)  # a smaller digit: more background
    assert (smaller == data.PAPER_BACKGROUND).float().mean() > (
        X == data.PAPER_BACKGROUND
    ).float().mean()


def test_shift_and_warp_accuracy_match_a_plain_evaluation(digits):
    X, y = digits
    model = LeNet5Paper().eval()
    with torch.no_grad():
        plain = 100 * (model.decide(model(X)) == y).float().mean().item()
    acc = receptive.shift_accuracy(model, X, y, 2)
    assert list(acc.index) == [0, 1, 2] and acc[0] == pytest.approx(plain)
    warped = receptive.warp_accuracy(model, X, y, {"none": (1.0, 0.0), "small": (0.5, 0.0)})
    assert warped["none"] == pytest.approx(plain, abs=100 / len(X))


def test_s2_gains_recover_the_gain_and_threshold_that_set_the_layer(digits):
    X, _ = digits
    model = LeNet5Paper().eval()
    c1, off, on = receptive.c1_levels(model, X)
    assert c1.shape == (len(X), 6, 28, 28) and (on != off).all()
    model.s2 = receptive.threshold_subsampling(off, on, 3.0, 0.5)
    gains = receptive.s2_gains(model, off, on)
    assert torch.allclose(torch.tensor(gains["gain"].values), torch.full((6,), 3.0), atol=1e-5)
    assert torch.allclose(torch.tensor(gains["threshold"].values), torch.full((6,), 0.5), atol=1e-4)


def test_gate_measures_blur_at_a_small_gain_and_gate_at_a_large_one(digits):
    X, _ = digits
    c1, off, on = receptive.c1_levels(LeNet5Paper().eval(), X)
    m = receptive.gate_measures(c1, off, on, [0.05, 30.0]).set_index(["gain", "gate"])
    assert m.loc[(0.05, "OR"), "R2 linear"] > 0.99
    assert m.loc[(30.0, "OR"), "Boolean share"] > m.loc[(0.05, "OR"), "Boolean share"]


def test_output_sides_ceiling_and_floor():
    assert receptive.output_side(5, 2, 2, 0) == 2
    assert receptive.output_side(5, 2, 2, 0, math.ceil) == 3
    sides = receptive.output_sides(LeNet5Paper())
    assert sides["layer"].tolist() == ["C1", "S2", "C3", "S4", "C5"]
    assert sides["real"].tolist() == [28, 14, 10, 5, 1]
    assert (sides["floor"] == sides["real"]).all() and (
        sides["ceil (notes)"] == sides["real"]
    ).all()
    cases = receptive.size_cases([(5, 2, 2, 0), (28, 5, 1, 0)])
    assert cases["Conv2d"].tolist() == cases["floor"].tolist() == [2, 24]
    assert cases["MaxPool2d ceil_mode"].tolist() == cases["ceil (notes)"].tolist() == [3, 24]


def test_c3_reads_follow_table_i():
    reads = receptive.c3_reads(LeNet5Paper())
    assert torch.equal(reads, 25 * c3_connections().long())
    assert torch.equal(receptive.c3_reads(LeNet5(c3="full")), torch.full((16, 6), 25))
