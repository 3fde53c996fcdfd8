"""The two LeNet-5s: every count of Table 1 and of the paper, shapes, C3's wiring, the MAP
criterion, the paper's initialisation, and `lenet params`."""

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import torch

from lenet_lib import cli, data
from lenet_lib.nets.models import (
    C3_TABLE,
    LeNet5,
    LeNet5Paper,
    build_model,
    c3_connections,
    layer_table,
    map_loss,
)

# The paper's parameters and connections per layer (its section II.B).
PAPER_COUNTS = {
    "C1": (156, 122_304),
    "S2": (12, 5_880),
    "C3": (1_516, 151_600),
    "S4": (32, 2_000),
    "C5": (48_120, 48_120),
    "F6": (10_164, 10_164),
}


@pytest.fixture(scope="module")
def paper_table():
    return layer_table(LeNet5Paper()).set_index("layer")


@pytest.mark.parametrize("layer", list(PAPER_COUNTS))
def test_paper_layer_counts(paper_table, layer):
    params, connections = PAPER_COUNTS[layer]
    assert paper_table.loc[layer, "params"] == params
    assert paper_table.loc[layer, "connections"] == connections


def test_paper_totals_and_rbf(paper_table):
    assert paper_table.loc["TOTAL", "params"] == 60_000
    # The RBF centres are 10 bitmaps of 7x12, fixed: buffers, not parameters.
    assert paper_table.loc["OUTPUT", "params"] == 0
    assert paper_table.loc["OUTPUT", "fixed"] == 840
    assert paper_table.loc["TOTAL", "fixed"] == 840


def test_notes_variant_counts():
    t = layer_table(LeNet5()).set_index("layer")
    assert t.loc["C3", "params"] == 2_416
    assert t.loc["S2", "params"] == t.loc["S4", "params"] == 0
    assert t.loc["OUTPUT", "params"] == 850
    assert t.loc["TOTAL", "params"] == sum(p.numel() for p in LeNet5().parameters()) == 61_706


def test_c3_table_fan_in():
    fan_in = c3_connections().sum(1).tolist()
    assert fan_in == [3] * 6 + [4] * 9 + [6]
    assert len(C3_TABLE) == 6 and all(len(row) == 16 for row in C3_TABLE)


@pytest.mark.parametrize(
    "model, size",
    [(LeNet5(), 32), (LeNet5Paper(), 32), (LeNet5(in_size=28), 28)],
    ids=["notes", "paper", "notes-28"],
)
def test_shapes(model, size):
    feats = model.features(torch.zeros(3, 1, size, size))
    shapes = {k: tuple(v.shape) for k, v in feats.items()}
    assert shapes == {
        "c1": (3, 6, 28, 28),
        "s2": (3, 6, 14, 14),
        "c3": (3, 16, 10, 10),
        "s4": (3, 16, 5, 5),
        "c5": (3, 120),
        "f6": (3, 84),
        "output": (3, 10),
    }


def test_wrong_input_size_is_refused():
    with pytest.raises(ValueError, match="expected 32x32"):
        LeNet5()(torch.zeros(1, 1, 28, 28))


def test_c3_connections_by_autograd():
    """One unit of each C3 map depends on 25 positions of each S2 map Table I marks, and on
    nothing else: counted from gradients, not from the layer's own bookkeeping."""
    c3 = LeNet5Paper().c3
    s2 = torch.randn(1, 6, 14, 14, generator=torch.Generator().manual_seed(0), requires_grad=True)
    table = c3_connections()
    for k in range(16):
        (grad,) = torch.autograd.grad(c3(s2)[0, k, 4, 6], s2)
        nonzero = grad[0] != 0
        assert int(nonzero.sum()) == 25 * int(table[k].sum())
        assert nonzero.flatten(1).any(1).tolist() == table[k].tolist()
        # ...and those 25 are the 5x5 block under the unit.
        assert nonzero[:, 4:9, 6:11].sum() == nonzero.sum()


def test_map_loss_by_hand():
    penalties = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.2, 1.0]])
    y = torch.tensor([2, 1])
    j = 1.0
    by_hand = [
        p[c] + math.log(math.exp(-j) + sum(math.exp(-v) for v in p.tolist()))
        for p, c in zip(penalties, y.tolist(), strict=True)
    ]
    expected = sum(float(v) for v in by_hand) / 2
    assert map_loss(penalties, y, j=j).item() == pytest.approx(expected, rel=1e-6)


def test_map_loss_decreases_with_the_correct_penalty():
    y = torch.tensor([0])
    losses = [map_loss(torch.tensor([[c, 2.0, 3.0]]), y).item() for c in (4.0, 2.0, 1.0, 0.1)]
    assert losses == sorted(losses, reverse=True) and losses[0] > losses[-1]
    # and increases when a wrong class's penalty decreases
    assert map_loss(torch.tensor([[1.0, 0.5, 3.0]]), y) > map_loss(
        torch.tensor([[1.0, 2.0, 3.0]]), y
    )


def test_paper_model_decides_by_smallest_penalty():
    X, y = data.load_mnist("test")
    m = LeNet5Paper()
    out = m(data.prepare(X[:8], "paper"))
    assert torch.equal(m.predict(data.prepare(X[:8], "paper")), out.argmin(1))
    assert m.loss(out, y[:8]).item() == pytest.approx(map_loss(out, y[:8]).item())


def test_paper_init_within_fan_in_bounds():
    torch.manual_seed(0)
    m = LeNet5Paper()
    fan_in = {"c1": 25, "s2": 4, "s4": 4, "c5": 16 * 25, "f6": 120}
    for name, fan in fan_in.items():
        for p in getattr(m, name).parameters():
            assert p.abs().max() <= 2.4 / fan, name
            assert p.abs().max() > 0.5 * 2.4 / fan, name  # drawn across the range, not zero
    fan = c3_connections().sum(1).float() * 25  # 75, 100 or 150 per map
    assert (m.c3.weight.abs().amax((1, 2)) <= 2.4 / fan[m.c3.out_idx]).all()
    assert (m.c3.bias.abs() <= 2.4 / fan).all()


def test_build_model_refuses_unknown_names():
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("alexnet")


def test_cli_params_paper():
    """The installed command's real path, in its own process."""
    out = subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", "params", "--model", "paper", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {r["layer"]: r for r in json.loads(out.stdout)}
    for layer, (params, connections) in PAPER_COUNTS.items():
        assert (rows[layer]["params"], rows[layer]["connections"]) == (params, connections)
    assert rows["TOTAL"]["params"] == 60_000


def test_cli_params_notes(capsys):
    assert cli.main(["params", "--model", "notes", "--format", "json"]) == 0
    rows = {r["layer"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["C3"]["params"] == 2_416
    assert rows["TOTAL"]["params"] == 61_706


def test_mlp_baseline_counts_and_shapes():
    from lenet_lib.nets.models import MLP, build_model

    net = build_model("mlp")
    assert isinstance(net, MLP)
    assert sum(p.numel() for p in net.parameters()) == 1024 * 300 + 300 + 300 * 100 + 100 + 1010
    out = net(torch.zeros(5, 1, 32, 32))
    assert out.shape == (5, 10) and net.decide(out).shape == (5,)


def test_the_layer_table_follows_the_model_to_its_device():
    # The training notebook shows the table of a model already on its device (a GPU run
    # failed here once): "meta" tensors stand in for a device other than the CPU (the
    # paper's network reads its connection table's values, which meta tensors lack).
    pd.testing.assert_frame_equal(layer_table(LeNet5().to("meta")), layer_table(LeNet5()))
