"""Issue 27's ladder: Lush's network with ReLU, max pooling, full C3 and cross-entropy
(lush.CHANGES), its hand-written gradient against autograd and its curvature against the
exact Gauss-Newton diagonal where they must agree; the training changes (order, schedule)
and the plan's rungs. Real MNIST, small sizes."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from lenet_lib import data, experiments, ladder, lush, lush_net, plans, train
from lenet_lib.runs.results import load_results

ARCHS = ["", "relu", "relu+maxpool", "relu+maxpool+fullc3", "relu+maxpool+fullc3+ce", "ce"]


@pytest.fixture(scope="module")
def digits():
    return data.load_run_data("lush", 300, 100, "cpu", 0)


def moved(changes, seed):
    """A network of the rung moved off its initial values (biases and S layers not uniform)."""
    m = lush.LeNet5Lush(init_seed=seed, changes=changes)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return m


def autograd_grads(m, x, label):
    """The 12 slots of lush_net.NAMES from autograd (zeros for absent S layers; C3 as its
    connected kernels)."""
    m.zero_grad()
    m.loss(m(x), label).backward()
    zeros = torch.zeros
    s2 = (zeros(6), zeros(6)) if m.arch.maxpool else (m.s2.weight.grad, m.s2.bias.grad)
    s4 = (zeros(16), zeros(16)) if m.arch.maxpool else (m.s4.weight.grad, m.s4.bias.grad)
    return [m.c1.weight.grad, m.c1.bias.grad, *s2, m.c3.weight.grad, m.c3.bias.grad, *s4,
            m.c5.weight.grad, m.c5.bias.grad, m.output.weight.grad, m.output.bias.grad]  # fmt: skip


@pytest.mark.parametrize("changes", ARCHS)
def test_forward_and_gradient_are_autograds(digits, changes):
    X, y = digits[0][:3], digits[1][:3]
    nets = [moved(changes, s) for s in range(3)]
    group = lush_net.Group(nets)
    c, out = lush_net.forward(X.squeeze(1).contiguous(), group.params, group.arch)
    t = lush.targets(y).unsqueeze(2)
    grads = lush_net.backward(c, lush_net.loss_gradient(out, t, group.arch), group.params,
                              arch=group.arch)  # fmt: skip
    for g, m in enumerate(nets):
        assert torch.allclose(out[g].view(1, 10), m(X[g : g + 1]), atol=1e-5)
        want = autograd_grads(m, X[g : g + 1], y[g : g + 1])
        for name, ours, theirs in zip(lush_net.NAMES, grads, want, strict=True):
            ours = ours[g]
            if name == "W3":
                ours = ours.view(16, 6, 5, 5)[m.c3.out_idx, m.c3.in_idx]
            scale = theirs.abs().max().clamp_min(1e-6)
            assert (ours.reshape(theirs.shape) - theirs).abs().max() <= 2e-5 * scale, name


@pytest.mark.parametrize("changes", ARCHS)
def test_curvature_of_the_output_layer_is_the_exact_gauss_newton_diagonal(digits, changes):
    """The output layer's weights reach one output each, so Lush's recursion is exact there:
    x_j^2 times the loss's second derivative at output k (1 for the squared distance,
    through the squashing; p_k (1 - p_k) for cross-entropy)."""
    X = digits[0][:20]
    m = moved(changes, 4)
    h = lush_net._views(lush_net.Group([m]).curvature(X.squeeze(1).contiguous()))[10][0]
    feats = m.features(X)
    x5, out = feats["c5"], feats["output"]
    if m.arch.ce:
        p = out.softmax(1)
        at_output = p * (1 - p)
    else:  # f'(a)^2 of the squashed output, f'(a) = A S (1 - (o / A)^2)
        at_output = (lush_net.A * lush_net.S * (1 - (out / lush_net.A) ** 2)) ** 2
    exact = (at_output.unsqueeze(2) * (x5**2).unsqueeze(1)).mean(0)
    assert torch.allclose(h, exact, rtol=1e-3, atol=1e-9)


def test_rung_networks():
    relu = lush.LeNet5Lush(init_seed=0, changes="relu+maxpool+fullc3+ce")
    assert not any(True for _ in relu.s2.parameters()) and relu.c3.table.all()
    # Full C3: 16 x 6 kernels, each of fan-in 150 under Lush's rule.
    assert relu.c3.weight.shape == (96, 5, 5)
    assert relu.c3.weight.abs().max() <= 1 / math.sqrt(150)
    assert relu.loss(torch.zeros(1, 10), torch.tensor([3])).item() == pytest.approx(math.log(10))
    paper = lush.LeNet5Lush(init_seed=0, scaling="paper", init="sqrt")
    assert paper.s2.weight.abs().max() <= 1.2 and paper.s2.weight.abs().max() > 0.5
    assert paper.c1.bias.abs().max() > 0 and paper.c1.weight.abs().max() <= 2.4 / 5
    assert paper.output.weight.abs().max() <= 2.4 / math.sqrt(120)
    with pytest.raises(ValueError, match="share one architecture"):
        lush_net.Group([relu, paper])


def test_the_ladder_plan():
    runs = plans.ladder_runs(seeds=(0, 1, 2))
    assert len(runs) == 33 and {r.experiment for r in runs} == {"ladder"}
    by_id = {experiments.run_id(r): r for r in runs}
    side = by_id["notes4-ce-lr3e-05-e30-s2"]  # beside the ladder: another rate, nothing else
    assert replace(side, lr=1e-4) == by_id["notes4-ce-e30-s2"]
    sched = by_id["paper4-schedule-e20-s1"]
    assert (sched.epochs, sched.scaling, sched.init, sched.changes, sched.seed) == (
        20, "paper", "sqrt", "shuffle+schedule", 1
    )  # fmt: skip
    adam = by_id["notes5-adam-e30-s2"]
    assert (adam.optimizer, adam.batch_size, adam.lr, adam.epochs) == ("adam", 64, 1e-3, 30)
    net = experiments.new_model(by_id["paper3-init-e30-s0"])
    assert net.init == "sqrt" and net.scaling == "paper" and net.changes == {"shuffle"}


def test_training_changes_order_and_schedule(digits, tmp_path):
    """'shuffle' draws a new order every epoch (so the running accuracy of epoch 1 differs from
    file order's); 'schedule' uses the paper's rates, h every pass; both resume exactly."""
    X, y, X_test, y_test = digits

    def fit(changes, epochs, path, seed=3):
        m = lush.LeNet5Lush(init_seed=seed, changes=changes)
        run = experiments.Run("ladder", "sdlm-lush", 1e-4, epochs, batch_size=1, model="lush",
                              scaling="lush", changes=changes)  # fmt: skip
        return m, train.fit(m, X, y, X_test, y_test, run, checkpoint=path, progress=False)

    _, plain = fit("", 1, tmp_path / "p.pt")
    _, shuffled = fit("shuffle", 1, tmp_path / "s.pt")
    assert plain[0]["train_loss"] != shuffled[0]["train_loss"]
    whole, h_whole = fit("shuffle+schedule", 3, tmp_path / "w.pt")
    fit("shuffle+schedule", 2, tmp_path / "r.pt")
    resumed, h_res = fit("shuffle+schedule", 3, tmp_path / "r.pt", seed=9)
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h_res]
    assert strip == [{k: r[k] for k in strip[0]} for r in h_whole]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state = train.load_checkpoint(tmp_path / "w.pt")["sdlm"]
    assert state["changes"] == "schedule+shuffle" and state["n_curvature"] == 500


def test_the_ladder_table_reads_the_committed_runs():
    t = ladder.table()
    assert len(t) == len(ladder.RUNGS) and list(t["rung"]) == [r[3] for r in ladder.RUNGS]
    lush_err = 100 - load_results("lush").sort_values("seed")["test_acc"].to_numpy()
    first = t.iloc[0]
    assert first["seeds"] == 3 and first["mean"] == pytest.approx(lush_err.mean())
    assert first["lo"] < first["mean"] < first["hi"]
    for _, r in t.iterrows():
        if r["verdict"] in ("matters", "not shown"):
            assert (r["verdict"] == "matters") == (r["diff_lo"] > 0 or r["diff_hi"] < 0)
            assert r["diff_lo"] <= r["diff"] <= r["diff_hi"]
        else:
            assert r["verdict"] in ("", "not yet run") and pd.isna(r["diff"])
    assert ladder.figure(t).axes and len(ladder.view(t)) == len(t)


def test_the_headline_names_the_changes_that_matter():
    t = pd.DataFrame({"ladder": ["to A"] * 3 + ["to B"] * 3,
                      "rung": ["a", "+ b", "+ c", "a", "+ d", "+ e"],
                      "diff": [float("nan"), 0.3, -0.01, float("nan"), -0.2, float("nan")],
                      "verdict": ["", "matters", "not shown", "", "not shown", "not yet run"]})  # fmt: skip
    assert ladder.headline(t) == (
        "to A, b (+0.30 points); to B, none; the other 2 changes do not show (1 rung still to run)"
    )
    t.loc[2, ["verdict", "diff"]] = ["matters", -0.2]
    assert ladder.headline(t).startswith("to A, b (+0.30 points) and c (-0.20); to B, none;")
    t.loc[4, ["verdict", "diff"]] = ["matters", -0.25]
    t.loc[5, ["verdict", "diff"]] = ["not shown", 0.01]
    assert ladder.headline(t) == (
        "to A, b (+0.30 points) and c (-0.20); to B, d (-0.25 points); the other change does not "
        "show"
    )


def test_the_rate_check_sets_each_rate_against_the_rung_before():
    """Against its first row: the cross-entropy rung at the demo's rate differs from the full C3
    rung by the same step as on the ladder itself."""
    rates = ladder.table(rungs=ladder.RATE_CHECK, against="first")
    steps = ladder.table().set_index("row")
    assert rates.iloc[2]["diff"] == pytest.approx(steps.loc["ladder/notes4-ce-e30", "diff"])
    assert rates.iloc[2]["verdict"] == steps.loc["ladder/notes4-ce-e30", "verdict"]
    # at 3e-4 one committed seed diverged: no step, and the table shows the seeds, not a mean
    fast = rates.iloc[3]
    assert (fast["errors"] > ladder.DIVERGED).sum() == 1
    assert fast["verdict"] == "diverged (1 of 3 seeds)" and np.isnan(fast["diff"])
    assert ladder.view(rates).iloc[3]["test error, % (95% interval)"].endswith("(each seed)")
    done = rates.assign(
        verdict=["", "matters", "matters", "not shown"],
        diff=[None, 0.2, 0.1, 0.05],
        errors=[np.array([0.7, 0.6, 0.7])] * 4,
    )
    assert ladder.rate_sentence(done) == (
        "+0.20 points at 3e-5 (matters), +0.10 points at 1e-4 (matters) and +0.05 points at 3e-4 "
        "(not shown): its cost depends on the rate"
    )
    all_cost = done.assign(verdict="matters")
    assert ladder.rate_sentence(all_cost).endswith(
        "where training converged, it costs at every rate"
    )
    all_cost.at[3, "errors"] = np.array([88.65, 2.88, 3.10])
    assert ladder.rate_sentence(all_cost) == (
        "+0.20 points at 3e-5 (matters), +0.10 points at 1e-4 (matters) and at 3e-4 training "
        "diverged in 1 of 3 seeds (88.65% test error) and the others end at 2.88%, 3.10%: where "
        "training converged, it costs at every rate"
    )
