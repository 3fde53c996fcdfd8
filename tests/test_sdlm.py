"""The paper's training procedure (lenet_lib/nets/sdlm.py, sdlm_net.py): the hand-written forward,
gradient and curvature against autograd and torch.func on the real LeNet5Paper, the schedule,
and SDLM as a step rule of train.fit (resume equals an uninterrupted run). Real MNIST, small
sizes."""

import inspect

import pytest
import torch
from torch.func import functional_call, hessian, jacrev

from lenet_lib import data, experiments, models, sdlm, train
from lenet_lib.nets.sdlm_net import NAMES, A, Net


def fit(model, X, y, X_test, y_test, checkpoint=None, optimizer="sdlm", lr=5e-4, epochs=1, seed=0):
    """train.fit with a Run of the paper experiment (per-digit, the paper's network)."""
    run = experiments.Run("paper", optimizer, lr, epochs, batch_size=1, seed=seed, model="paper",
                          scaling="paper")  # fmt: skip
    return train.fit(model, X, y, X_test, y_test, run, checkpoint=checkpoint, progress=False)


@pytest.fixture(scope="module")
def digits():
    X, y, X_test, y_test = data.load_run_data("paper", 1000, 200, "cpu", 0)
    return X, y, X_test, y_test


def paper_model(seed=0, sqrt_init=False):
    """LeNet5Paper with bounds 2.4 / sqrt(F_i), or 2.4 / F_i as Appendix A prints them."""
    return train.new_model("paper", seed, init="sqrt" if sqrt_init else "printed", init_seed=seed)


def autograd_grads(model, X, y):
    """Gradient of the summed MAP loss, in sdlm's order (NAMES), C3 as its 60 kernels."""
    model.zero_grad()
    loss = model.loss(model(X), y) * len(X)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def as_model_layout(model, tensors):
    """sdlm's 12 tensors in the model's shapes (C3 full -> its connected kernels)."""
    out = []
    for t, p in zip(tensors, model.parameters(), strict=True):
        if t.numel() == 16 * 150:
            t = t.view(16, 6, 5, 5)[model.c3.out_idx, model.c3.in_idx]
        out.append(t.reshape(p.shape))
    return out


def assert_close_rel(got, want, rtol):
    for g, w, name in zip(got, want, NAMES, strict=True):
        err = (g - w).abs().max() / w.abs().max()
        assert err < rtol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("sqrt_init", [False, True])
def test_step_is_the_autograd_gradient(digits, sqrt_init):
    X, y, _, _ = digits
    model = paper_model(sqrt_init=sqrt_init)
    for i in (0, 7):
        net = Net(model)
        before = net.flat.clone()
        with torch.inference_mode():
            logp = net.step(X[i], int(y[i]), torch.ones_like(net.flat))
        loss, grads = autograd_grads(model, X[i : i + 1], y[i : i + 1])
        assert -logp[1 + int(y[i])].item() == pytest.approx(loss, rel=1e-5)
        assert int(logp[1:].argmax()) == int(model.predict(X[i : i + 1]))
        assert_close_rel(as_model_layout(model, net._views(before - net.flat)), grads, 1e-4)


def test_batched_backward_is_the_autograd_gradient(digits):
    X, y, _, _ = digits
    model = paper_model(sqrt_init=True)
    net = Net(model)
    with torch.no_grad():
        c = net.forward(X[:16])
        grads = net.backward(c, net.gradient_x6(c, y[:16]))
    assert_close_rel(as_model_layout(model, grads), autograd_grads(model, X[:16], y[:16])[1], 1e-4)


def test_rubbish_constant_is_map_loss_default():
    assert sdlm.J == inspect.signature(models.map_loss).parameters["j"].default


def test_schedule_is_the_papers():
    got = [sdlm.eta(e, 0.0005) for e in range(14)]
    want = [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 2
    assert got == pytest.approx(want)
    assert sdlm.eta(3, 0.001) == pytest.approx(4e-4)  # scales with eta0


def test_output_curvature_is_the_exact_hessian_diagonal(digits):
    X, y, _, _ = digits
    model = paper_model(sqrt_init=True)
    net = Net(model)
    with torch.no_grad():
        c = net.forward(X[:3])
        got = net.output_curvature(c)
    x6 = 2 * A * c["s6"] - A
    for k in range(3):
        H = hessian(lambda v, k=k: models.map_loss(model.output(v[None]), y[k : k + 1]))(x6[k])
        assert torch.allclose(got[k], H.diagonal(), rtol=1e-4, atol=1e-5)
        assert (got[k] >= 0).all()


def layerwise_curvature(model, x, label):
    """The paper's recursion by brute force: every layer's exact Jacobian (torch.func),
    squared, applied backwards to the diagonal second derivatives (its equations 22-25)."""
    layers = [model.c1, model.s2, model.c3, model.s4, model.c5, model.f6]
    u, inputs, pre = x[None], [], []
    for i, layer in enumerate(layers):
        u = u.flatten(1) if i == 5 else u
        inputs.append(u)
        pre.append(layer(u))
        u = models.scaled_tanh(pre[-1])
    H = hessian(lambda v: models.map_loss(model.output(v), label.view(1)))(u)
    D = H.reshape(84, 84).diagonal()
    h = []
    for i, layer, u, a in reversed(list(zip(range(6), layers, inputs, pre, strict=True))):
        fprime = 1.7159 * 2 / 3 * (1 - torch.tanh(2 * a / 3) ** 2)
        Da = fprime.flatten() ** 2 * D
        params = dict(layer.named_parameters())
        J = jacrev(lambda p, u=u, layer=layer: functional_call(layer, p, (u,)).flatten())(params)
        h = [(J[k].reshape(len(Da), -1) ** 2).T @ Da for k in ("weight", "bias")] + h
        if i > 0:  # the input's own second derivatives are not needed
            Ju = jacrev(lambda v, layer=layer: layer(v).flatten())(u).reshape(len(Da), -1)
            D = (Ju**2).T @ Da
    return h


def test_curvature_is_the_papers_recursion_and_positive(digits):
    X, y, _, _ = digits
    model = paper_model(sqrt_init=True)
    for i in (3,):
        h = sdlm.curvature(model, X[i : i + 1])
        brute = layerwise_curvature(model, X[i], y[i])
        got = [t.flatten() for t in h.values()]
        assert_close_rel(got, brute, 1e-4)
        assert all((t >= 0).all() for t in got)
    h = sdlm.curvature(model, X[:200])
    assert all((t > 0).any() and (t >= 0).all() for t in h.values())


def test_curvature_of_c5_and_f6_is_the_exact_gauss_newton_diagonal(digits):
    """Where each unit reaches the outputs by one path and shares no weight (C5, F6), the
    paper's recursion is exact: it equals the exact Gauss-Newton diagonal once the output
    Hessian is diagonal (at these weights it nearly is: the rubbish class dominates)."""
    X, y, _, _ = digits
    model = paper_model(sqrt_init=True)
    h = sdlm.curvature(model, X[:4])
    exact = sdlm.exact_ggn_diagonal(model, X[:4], y[:4])
    for name in ("W5", "b5", "W6", "b6"):
        err = (h[name] - exact[name]).abs().max() / exact[name].abs().max()
        assert err < 1e-3, f"{name}: relative error {err:.2e}"
    # Earlier, the diagonal recursion drops the interactions of a shared weight's
    # connections and of a unit's paths: it can only be a rough, positive estimate.
    for name in ("W1", "W3"):
        ratio = (h[name] / exact[name]).median()
        assert 0.01 < ratio < 10


def test_exact_curvature_is_the_torch_func_gauss_newton_diagonal(digits):
    """`Net.curvature_exact` (rows of a factor of the output Hessian, backpropagated and
    squared) against torch.func's J^T H J, at weights where the output Hessian is far from
    diagonal (after a short pass) and at the start."""
    X, y, _, _ = digits
    trained = paper_model(sqrt_init=True)
    sdlm.first_pass_losses(trained, X[:300], y[:300])
    for model in (paper_model(sqrt_init=True), trained):
        want = sdlm.exact_ggn_diagonal(model, X[400:405], y[400:405])
        with torch.inference_mode():
            got = Net(model).curvature_exact(X[400:405].contiguous(), chunk=2)
        assert_close_rel(as_model_layout(model, got), list(want.values()), 1e-4)


def test_a_checkpoint_resumes_only_with_its_own_curvature(digits, tmp_path):
    X, y, X_test, y_test = digits
    X, y = X[:100], y[:100]
    kw = dict(lr=0.0005, epochs=1)
    ck = tmp_path / "c.pt"
    fit(paper_model(), X, y, X_test, y_test, optimizer="sdlm-exact", checkpoint=ck, **kw)
    assert train.load_checkpoint(ck)["sdlm"]["curvature"] == "exact"
    with pytest.raises(ValueError, match="other SDLM settings"):
        fit(paper_model(), X, y, X_test, y_test, optimizer="sdlm", checkpoint=ck, **kw)
    with pytest.raises(ValueError, match="curvature must be one of"):
        sdlm.SDLM(paper_model(), curvature="diag")


def test_refuses_other_models(digits):
    X, y, X_test, y_test = digits
    with pytest.raises(ValueError, match="paper"):
        fit(train.new_model("notes", 0), X, y, X_test, y_test)


def test_the_model_is_trained_as_handed_over(digits):
    """The rule never redraws the weights: with a vanishing rate, a pass leaves the printed
    initialisation it was given where it was, and the checkpoint records the model's init."""
    X, y, X_test, y_test = digits
    model = paper_model(sqrt_init=False)
    before = [p.detach().clone() for p in model.parameters()]
    assert sdlm.SDLM(model).settings["init"] == "printed"
    fit(model, X[:20], y[:20], X_test, y_test, lr=1e-12)
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-8)


def test_resume_equals_uninterrupted(digits, tmp_path):
    X, y, X_test, y_test = digits
    X, y = X[:300], y[:300]
    kw = dict(lr=0.0005, seed=3)
    whole = paper_model(sqrt_init=True)
    h_whole = fit(whole, X, y, X_test, y_test, epochs=2, checkpoint=tmp_path / "a.pt", **kw)
    first = paper_model(sqrt_init=True)
    fit(first, X, y, X_test, y_test, epochs=1, checkpoint=tmp_path / "b.pt", **kw)
    resumed = paper_model(seed=9, sqrt_init=True)  # its weights are replaced by the checkpoint's
    h_res = fit(resumed, X, y, X_test, y_test, epochs=2, checkpoint=tmp_path / "b.pt", **kw)
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h_res]
    assert strip == [{k: r[k] for k in strip[0]} for r in h_whole]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state = train.load_checkpoint(tmp_path / "b.pt")
    assert state["epoch"] == 2 and state["sdlm"]["mu"] == sdlm.MU
    assert set(h_res[0]) == {
        "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"
    }  # fmt: skip


def test_short_run_decreases_the_loss(digits):
    X, y, X_test, y_test = digits
    model = paper_model(sqrt_init=True)
    before = train.evaluate(model, X_test, y_test)
    threads = torch.get_num_threads()
    history = fit(model, X, y, X_test, y_test)
    assert history[0]["test_loss"] < 0.5 * before[0]
    assert history[0]["test_acc"] > 60
    assert torch.get_num_threads() == threads  # fit runs on one thread, then restores


def test_printed_initialisation_stalls_the_first_pass(digits):
    """The finding chapter 09 reports: with Appendix A's bounds as printed (2.4 / F_i), the
    first pass's rates drive C5 and F6 into saturation within a few digits and the loss
    climbs instead of falling; with 2.4 / sqrt(F_i) it falls."""
    X, y, _, _ = digits
    X, y = X[:600], y[:600]
    for sqrt_init in (False, True):
        model = paper_model(sqrt_init=sqrt_init)
        start = train.evaluate(model, X, y)[0]
        late = sdlm.first_pass_losses(model, X, y)[-200:].mean()
        if sqrt_init:
            assert late < 0.6 * start
        else:
            assert late > 1.5 * start


def test_pooled_init_gives_the_s_layers_the_spread_of_the_others(digits):
    """The reason for init 'pooled', measured on 500 real digits: one S coefficient
    multiplies the sum of four nearly equal inputs (effective fan-in near 16, not 4), so
    with +-2.4 / sqrt(4) S4 starts far wider than the layers around it and half saturated;
    with +-2.4 / 4 it starts like them."""
    X = digits[0][:500]
    sqrt = sdlm.layer_spread(paper_model(sqrt_init=True), X)
    pooled_model = train.new_model("paper", 0, init="pooled", init_seed=0)
    pooled = sdlm.layer_spread(pooled_model, X)
    assert (sqrt.loc[["S2", "S4"], "effective fan-in"] > 10).all()
    others = ["C3", "C5", "F6"]
    assert sqrt.loc["S4", "std"] > 1.5 * sqrt.loc[others, "std"].max()
    assert sqrt.loc["S4", "saturated %"] > 35
    assert pooled.loc["S4", "std"] <= pooled.loc[others, "std"].max()
    assert (pooled["saturated %"] < 20).all()
    # The same draws as 'sqrt', with the S coefficients and biases halved.
    sqrt_weights = paper_model(sqrt_init=True).named_parameters()
    for (name, a), b in zip(sqrt_weights, pooled_model.parameters(), strict=True):
        assert torch.equal(a / 2 if name.startswith(("s2", "s4")) else a, b), name


def test_a_checkpoint_resumes_only_with_its_own_init(digits, tmp_path):
    X, y, X_test, y_test = digits
    X, y = X[:100], y[:100]
    kw = dict(lr=0.0005)
    ck = tmp_path / "c.pt"
    pooled = train.new_model("paper", 0, init="pooled", init_seed=0)
    fit(pooled, X, y, X_test, y_test, checkpoint=ck, epochs=1, **kw)
    assert train.load_checkpoint(ck)["sdlm"]["init"] == "pooled"
    with pytest.raises(ValueError, match="other SDLM settings"):
        fit(paper_model(sqrt_init=True), X, y, X_test, y_test, checkpoint=ck, epochs=2, **kw)
    again = train.new_model("paper", 5, init="pooled", init_seed=5)
    fit(again, X, y, X_test, y_test, checkpoint=ck, epochs=2, **kw)
    assert train.load_checkpoint(ck)["epoch"] == 2


def test_the_papers_network_starts_alike_whatever_trains_it():
    # paperadam differs from the SDLM runs in the training alone (chapter 09)
    from lenet_lib import experiments, plans

    adam = plans.paper_adam_runs()[0]
    sdlm_run = plans.paper_runs()[0]
    a, s = experiments.new_model(adam), experiments.new_model(sdlm_run)
    assert a.init == s.init == sdlm.INIT
    pairs = zip(a.state_dict().values(), s.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
