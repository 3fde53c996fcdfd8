"""Lush's LeNet-5 demo (lenet_lib/nets/lush.py): the network, its initialisation, input coding and
loss as read from Lush's sources; the hand-written step against autograd; Lush's curvature
against the paper network's recursion (sdlm_net.py, written and tested apart) and the exact
Gauss-Newton diagonal against BackPACK; the step rule in train.fit (resume equals an
uninterrupted run). Real MNIST, small sizes."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from lenet_lib import data, experiments, lush, lush_net, models, plans, sdlm_net, train


def fit(model, X, y, X_test, y_test, checkpoint=None, lr=1e-4, epochs=1, changes=""):
    """train.fit with a Run of Lush's protocol (per digit, Lush's network)."""
    run = experiments.Run("lush", "sdlm-lush", lr, epochs, batch_size=1, model="lush",
                          scaling="lush", changes=changes)  # fmt: skip
    return train.fit(model, X, y, X_test, y_test, run, checkpoint=checkpoint, progress=False)


@pytest.fixture(scope="module")
def digits():
    return data.load_run_data("lush", 300, 100, "cpu", 0)


def trained_a_little(seed=0):
    """A Lush network moved off its initial values (S coefficients and biases not uniform)."""
    m = lush.LeNet5Lush(init_seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return m


def test_network_counts_and_initialisation():
    m = lush.LeNet5Lush(init_seed=0)
    # The paper's 60,000 less F6's 10,164 plus the 120 -> 10 output layer's 1,210.
    assert sum(p.numel() for p in m.parameters()) == 60000 - 10164 + 1210
    assert m.c1.weight.abs().max() <= 1 / math.sqrt(25) and m.c1.weight.abs().max() > 0.19
    fan = m.c3.table.sum(1)[m.c3.out_idx] * 25  # 75, 100 or 150 inputs per kernel's map
    bound = fan.float().rsqrt().view(-1, 1, 1)
    assert (m.c3.weight.abs() <= bound).all() and (m.c3.weight.abs() > 0.9 * bound).any()
    assert m.c5.weight.abs().max() <= 0.05 and m.output.weight.abs().max() <= 1 / math.sqrt(120)
    assert torch.equal(m.s2.weight, torch.full((6,), 0.5))
    assert all(not layer.bias.any() for layer in (m.c1, m.s2, m.c3, m.s4, m.c5, m.output))
    again = lush.LeNet5Lush(init_seed=0)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), again.parameters(), strict=True))


def test_lush_coding_places_the_digit_at_2_2_on_zero(mnist):
    X, _ = mnist["train"]
    Z = data.prepare(X[:5], "lush")
    assert Z.shape == (5, 1, 32, 32)
    assert torch.equal(Z[:, 0, 2:30, 2:30], X[:5].float() * 0.01)
    assert Z[:, :, :2].abs().max() == 0 and Z[:, :, :, 30:].abs().max() == 0


def test_loss_and_decision():
    m = lush.LeNet5Lush(init_seed=1)
    out = torch.tensor([[0.5, -1.0, 1.2, *([-1.0] * 7)]])
    t = torch.tensor([[-1.0, -1.0, 1.0, *([-1.0] * 7)]])
    assert m.loss(out, torch.tensor([2])).item() == pytest.approx(0.5 * ((out - t) ** 2).sum())
    assert m.decide(out).item() == 2


def test_bad_scaling_init_and_changes_are_refused():
    with pytest.raises(ValueError, match="scaling 'lush'"):
        lush.LeNet5Lush(scaling="standard")
    with pytest.raises(ValueError, match="init must be one of lush, sqrt"):
        lush.LeNet5Lush(init="printed")
    with pytest.raises(ValueError, match="unknown change.*'rleu'.*joined by"):
        lush.LeNet5Lush(changes="rleu+maxpool")


def test_group_forward_and_gradient_are_autograds(digits):
    """Three networks, each on its own digit, in one batched step: outputs and gradients
    equal each network's own autograd pass."""
    X, y = digits[0][:3], digits[1][:3]
    nets = [trained_a_little(s) for s in range(3)]
    group = lush_net.Group(nets)
    c, out = lush_net.forward(X.squeeze(1).contiguous(), group.params)
    grads = lush_net.backward(c, out - lush.targets(y).unsqueeze(2), group.params)
    for g, m in enumerate(nets):
        m.zero_grad()
        o = m(X[g : g + 1])
        assert torch.allclose(out[g].view(1, 10), o, atol=1e-5)
        m.loss(o, y[g : g + 1]).backward()
        want = torch.cat([p.grad.flatten() for p in m.parameters()])
        got = [t[g] for t in grads]
        got[4] = got[4].view(16, 6, 5, 5)[m.c3.out_idx, m.c3.in_idx]
        assert torch.allclose(torch.cat([t.flatten() for t in got]), want, atol=1e-5)


def test_curvature_is_the_papers_recursion(digits):
    """Lush's bbprop equals the paper network's recursion (sdlm_net.Net, its own code) on a
    paper network holding the same C1-C5 weights, whose F6 holds the output layer in its first
    10 units, with 1 at those outputs and 0 at the others."""
    X = digits[0][:7]
    m = trained_a_little(3)
    h = lush_net.Group([m]).curvature(X.squeeze(1).contiguous(), chunk=3)
    pm = models.LeNet5Paper(init="sqrt", init_seed=0)
    with torch.no_grad():
        for name in ("c1", "s2", "c3", "s4", "c5"):
            for a, b in zip(
                getattr(pm, name).parameters(), getattr(m, name).parameters(), strict=True
            ):
                a.copy_(b)
        pm.f6.weight.zero_(), pm.f6.bias.zero_()
        pm.f6.weight[:10], pm.f6.bias[:10] = m.output.weight, m.output.bias
    net = sdlm_net.Net(pm)
    ones = torch.zeros(len(X), 84)
    ones[:, :10] = 1
    want = [t / len(X) for t in net.backward(net.forward(X), ones, square=True)]
    want[10], want[11] = want[10][:10], want[11][:10]
    for name, got, w in zip(lush_net.NAMES, lush_net._views(h), want, strict=True):
        assert torch.allclose(got[0].flatten(), w.flatten(), rtol=1e-4, atol=1e-9), name
    assert (h >= 0).all()


def _ggn_twin(m):
    """The Lush network in BackPACK's standard layers. f(a) = A tanh(S a) becomes nn.Tanh with
    S folded into the weights before it and A into the weights after it (a layer reading the
    first layer's input is scaled by S, one reading a squashed layer by S A); full C3 (its
    unconnected kernels 0); the S layers as 2x2 depthwise convolutions of stride 2 with four
    equal weights. Returns the network and each compared layer's scale."""
    k = lush_net.S * lush_net.A

    def conv(weight, bias, scale, **kw):
        c = nn.Conv2d(
            weight.shape[1] * kw.get("groups", 1), weight.shape[0], weight.shape[-1], **kw
        )
        c.weight.data, c.bias.data = weight.detach() * scale, bias.detach() * lush_net.S
        return c

    def sub(s):
        w = s.weight.detach().view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
        return conv(w, s.bias, k, stride=2, groups=len(s.weight))

    out = nn.Linear(120, 10)
    out.weight.data, out.bias.data = (
        m.output.weight.detach() * k,
        m.output.bias.detach() * lush_net.S,
    )
    layers = [conv(m.c1.weight, m.c1.bias, lush_net.S), nn.Tanh(), sub(m.s2), nn.Tanh(),
              conv(m.c3.full_weight(), m.c3.bias, k), nn.Tanh(), sub(m.s4), nn.Tanh(),
              conv(m.c5.weight, m.c5.bias, k), nn.Tanh(), nn.Flatten(), out, nn.Tanh()]  # fmt: skip
    return nn.Sequential(*layers), {0: lush_net.S, 4: k, 8: k, 11: k}


def test_exact_gauss_newton_diagonal_backpack_against_torch_func(digits):
    """BackPACK's DiagGGNExact equals the exact Gauss-Newton diagonal of 0.5 |o - t|^2,
    sum_k (do_k/dw)^2, computed with torch.func on LeNet5Lush itself, for C1, C3, C5 and the
    output layer; and Lush's recursion is that diagonal for the output layer (one path from a
    weight to the loss) but not for C1 (shared weights, many paths)."""
    backpack = pytest.importorskip("backpack")
    from backpack.extensions import DiagGGNExact

    X, y = digits[0][:4], digits[1][:4]
    m = trained_a_little(5)
    params = {k: v.detach() for k, v in m.named_parameters()}

    def outputs(p, x):
        return functional_call(m, p, (x.unsqueeze(0),)).squeeze(0)

    exact = {k: torch.zeros_like(v) for k, v in params.items()}
    for x in X:
        J = jacrev(outputs)(params, x)  # {name: (10, *shape)}
        for k in exact:
            exact[k] += (J[k] ** 2).sum(0)
    twin, scale = _ggn_twin(m)
    assert torch.allclose(lush_net.A * twin(X), m(X), atol=1e-5)
    twin, loss_fn = backpack.extend(twin), backpack.extend(nn.MSELoss(reduction="sum"))
    # 0.5 |A u - t|^2 = (A^2 / 2) |u - t / A|^2, and d/dw = scale d/dw_twin
    loss = loss_fn(twin(X), lush.targets(y) / lush_net.A)
    with backpack.backpack(DiagGGNExact()):
        loss.backward()

    def bp(i):
        return twin[i].weight.diag_ggn_exact * scale[i] ** 2 * lush_net.A**2 / 2

    for i, name in ((0, "c1.weight"), (8, "c5.weight"), (11, "output.weight")):
        assert torch.allclose(bp(i), exact[name], rtol=1e-3, atol=1e-9), name
    c3 = bp(4)[m.c3.out_idx, m.c3.in_idx]
    assert torch.allclose(c3, exact["c3.weight"], rtol=1e-3, atol=1e-9)
    h = lush_net._views(lush_net.Group([m]).curvature(X.squeeze(1).contiguous()) * len(X))
    assert torch.allclose(h[10][0], exact["output.weight"], rtol=1e-4)
    assert not torch.allclose(h[0][0].view(6, 1, 5, 5), exact["c1.weight"], rtol=0.1)


def test_compiled_step_matches_eager(digits):
    if not lush_net.can_compile():
        pytest.skip("no C++ compiler: the step runs eager")
    X, y = digits[0][:2].squeeze(1).contiguous(), digits[1][:2]
    a, b = (
        lush_net.Group([trained_a_little(1)]),
        lush_net.Group([trained_a_little(1)], compiled=True),
    )
    rates = a.rates(a.curvature(X), 1e-4)
    for i in range(2):
        t = lush.targets(y[i : i + 1]).unsqueeze(2)
        assert torch.allclose(
            a.step(X[i : i + 1], t, rates), b.step(X[i : i + 1], t, rates), atol=1e-6
        )
    assert torch.allclose(a.flat, b.flat, atol=1e-6)


def test_schedule():
    got = [lush.eta(e) for e in (0, 9, 10, 19, 20, 29, 40)]
    assert got == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6, 1e-6], rel=1e-12)
    assert lush.eta(10, 2e-4) == pytest.approx(2e-5)


def test_resume_equals_uninterrupted(digits, tmp_path):
    X, y, X_test, y_test = digits
    whole = lush.LeNet5Lush(init_seed=2)
    h_whole = fit(whole, X, y, X_test, y_test, epochs=2, checkpoint=tmp_path / "a.pt")
    first = lush.LeNet5Lush(init_seed=2)
    fit(first, X, y, X_test, y_test, epochs=1, checkpoint=tmp_path / "b.pt")
    resumed = lush.LeNet5Lush(init_seed=9)  # its weights are replaced by the checkpoint's
    h_res = fit(resumed, X, y, X_test, y_test, epochs=2, checkpoint=tmp_path / "b.pt")
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h_res]
    assert strip == [{k: r[k] for k in strip[0]} for r in h_whole]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert h_whole[1]["train_loss"] < h_whole[0]["train_loss"]
    state = train.load_checkpoint(tmp_path / "b.pt")
    assert state["sdlm"]["protocol"] == "lush" and state["lush_h"].shape == (1, lush_net.SIZE)


def test_a_checkpoint_resumes_only_with_its_own_settings(digits, tmp_path):
    X, y, X_test, y_test = digits
    ck = tmp_path / "c.pt"
    fit(lush.LeNet5Lush(init_seed=0), X[:50], y[:50], X_test, y_test, checkpoint=ck)
    with pytest.raises(ValueError, match="other settings"):
        fit(lush.LeNet5Lush(init_seed=0), X[:50], y[:50], X_test, y_test, lr=2e-4, epochs=2,
            checkpoint=ck)  # fmt: skip


def test_the_experiment_and_its_checks():
    runs = plans.lush_runs(seeds=(0, 1, 2))
    assert [experiments.run_id(r) for r in runs] == [f"lush-e30-s{s}" for s in range(3)]
    for r in runs:
        assert (r.model, r.scaling, r.optimizer, r.epochs, r.batch_size) == (
            "lush", "lush", "sdlm-lush", 30, 1
        )  # fmt: skip
    bad = [
        ({"model": "paper", "scaling": "paper"}, "sdlm-lush trains the lush network only"),
        ({"scaling": "standard"}, "Lush's network reads scaling 'lush'"),
        ({"model": "notes"}, "scaling 'lush' is Lush's coding, for model 'lush'"),
        ({"optimizer": "sdlm"}, "sdlm trains the paper network only"),
        ({"init": "pooled"}, "Lush's network starts from init 'default'"),
        ({"changes": "relu+pool"}, "unknown change.*'pool'"),
        ({"changes": "shuffle", "optimizer": "adam", "batch_size": 64}, "'shuffle' and 'schedule'"),
        ({"model": "notes", "scaling": "standard", "changes": "relu"}, "changes to Lush"),
        ({"batch_size": 8}, "updates once per digit"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            experiments.Run(**{**runs[0].params(), **change})
    with pytest.raises(ValueError, match="trains Lush's network only"):
        lush.LushRule(models.LeNet5Paper())
    net = experiments.new_model(runs[1])
    assert isinstance(net, lush.LeNet5Lush)
    assert torch.equal(net.c1.weight, lush.LeNet5Lush(init_seed=1).c1.weight)


def test_curvature_table(digits):
    """Lush's curvature is the exact Gauss-Newton diagonal where a weight reaches each output
    by one path (C5, the output layer), and smaller for the shared kernels of C1 and C3."""
    table = lush.curvature_table(trained_a_little(4), digits[0][:6])
    assert list(table.index) == ["C1", "S2", "C3", "S4", "C5", "output"]
    assert table.loc[["C5", "output"], "median"].to_numpy() == pytest.approx([1, 1], rel=1e-4)
    assert table.loc["C1", "p95"] < 1 and table.loc["C3", "median"] < 1


def test_the_step_costs_the_multiply_adds_counted(digits):
    """lush_net.macs_per_update (the appendix's arithmetic per update) against torch's own
    count of the step's matrix products."""
    from torch.utils.flop_counter import FlopCounterMode

    group = lush_net.Group([trained_a_little(0)])
    X, y = digits[0][:1].squeeze(1).contiguous(), digits[1][:1]
    rates = torch.full_like(group.flat, 1e-6)
    with FlopCounterMode(display=False) as counter:
        lush_net.step(group.flat, X, lush.targets(y).unsqueeze(2), rates)
    assert counter.get_total_flops() == 2 * lush_net.macs_per_update()
