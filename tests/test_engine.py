"""The training engine's speed-ups change nothing of the arithmetic (issue 17): each is checked
bit for bit against the plain way it replaces (lenet_lib/nets/models.py, train.py)."""

import sys

import pytest
import torch
import torch.nn.functional as F

from lenet_lib import data, experiments, train


@pytest.fixture(scope="module")
def digits(mnist):
    X, y = mnist["train"]
    return data.prepare(X[:640]), y[:640]


@pytest.mark.parametrize("kw", [{}, {"width": 0.5}, {"in_size": 28}, {"c3": "paper"}])
def test_forward_pools_before_the_relu_bit_for_bit(digits, kw):
    X, y = digits
    if kw.get("in_size") == 28:
        X = X[..., 2:30, 2:30].contiguous()
    model = train.new_model(seed=3, **kw)
    grads = []
    for out in (lambda: model(X), lambda: model.features(X)["output"]):
        model.zero_grad()
        o = out()
        F.cross_entropy(o, y).backward()
        grads.append((o.detach(), [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = grads
    assert torch.equal(a, b)
    assert all(torch.equal(u, v) for u, v in zip(ga, gb, strict=True))


def test_fast_layers_are_torchs_default_layers_up_to_rounding(digits):
    X, y = digits
    model = train.new_model(seed=0)
    assert model.c1(X[:2]).is_contiguous(memory_format=torch.channels_last)
    fast = model(X)
    F.cross_entropy(fast, y).backward()
    fast_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = model.set_fast_layers(False)(X)
    assert model.c1(X[:2]).is_contiguous()
    F.cross_entropy(plain, y).backward()
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)
    for a, p in zip(fast_grads, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)


def test_the_paper_network_keeps_torchs_default_layers():
    """Its committed runs (chapter 09) were made with them."""
    model = train.new_model("paper", seed=0)
    assert not model.fast_layers and model.c1(torch.zeros(2, 1, 32, 32)).is_contiguous()


def test_forward_of_other_activations_is_the_layer_by_layer_one(digits):
    model = train.new_model(seed=0, activation="tanh", pool="avg")
    X, _ = digits
    assert torch.equal(model(X[:8]), model.features(X[:8])["output"])


@pytest.mark.parametrize(
    "name,weight_decay",
    [("sgd", 0.0), ("momentum", 1e-4), ("nesterov", 0.0), ("adam", 1e-4), ("adamw", 0.1)],
)
def test_foreach_optimizers_equal_the_per_tensor_loop(digits, name, weight_decay):
    X, y = digits
    weights = []
    for foreach in (False, True):
        model = train.new_model(seed=0)
        opt = train.make_optimizer(name, model.parameters(), 1e-2, weight_decay=weight_decay)
        assert opt.param_groups[0]["foreach"] is True
        for group in opt.param_groups:
            group["foreach"] = foreach
        for Xb, yb in data.batches(X, y, 64, torch.Generator().manual_seed(0)):
            opt.zero_grad()
            F.cross_entropy(model(Xb), yb).backward()
            opt.step()
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_epoch_sums_stay_on_the_device_and_equal_a_python_float_sum(digits):
    """train_epoch sums in float64 on the device; the old loop summed loss.item() in Python."""
    X, y = digits
    X, y = X[:600], y[:600]  # a last batch of 24
    model = train.new_model(seed=0)
    rule = train.TorchRule(model, "adam", 1e-3, None, 0.0, 64)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss, acc, seen = rule.train_epoch(model, X, y, torch.Generator().manual_seed(0), 0)
    model.load_state_dict(state)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    total, correct = 0.0, 0
    for Xb, yb in data.batches(X, y, 64, torch.Generator().manual_seed(0)):
        out = model.features(Xb)["output"]
        batch_loss = F.cross_entropy(out, yb)
        opt.zero_grad()
        batch_loss.backward()
        opt.step()
        total += batch_loss.item() * len(yb)
        correct += (out.argmax(1) == yb).sum().item()
    assert (loss, acc, seen) == (total / 600, 100.0 * correct / 600, 600)


def one_epoch_checkpoint(tmp_path, digits):
    """A model after one epoch of Adam, its checkpoint's path and its state."""
    X, y = digits
    model = train.new_model(seed=0)
    ckpt = tmp_path / "checkpoint.pt"
    run = experiments.Run("test", "adam", 1e-3, 1)
    train.fit(model, X, y, X[:64], y[:64], run, checkpoint=ckpt, progress=False)
    return model, ckpt, torch.load(ckpt, weights_only=True)


def test_a_checkpoint_of_the_per_tensor_loop_resumes_on_the_foreach_path(tmp_path, digits):
    model, ckpt, state = one_epoch_checkpoint(tmp_path, digits)
    for group in state["optimizer"]["param_groups"]:
        group["foreach"] = None  # as the checkpoints written before issue 17 hold
    torch.save(state, ckpt)
    rule = train.TorchRule(model, "adam", 1e-3, None, 0.0, 64)
    rule.resume(state, ckpt)
    assert all(g["foreach"] is True for g in rule.opt.param_groups)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_allocator_keeps_freed_memory_on_linux():
    assert train.keep_freed_memory()


def test_cuda_graphs_only_on_a_gpu_at_a_constant_rate(monkeypatch):
    assert not train.cuda_graphs_wanted(torch.device("cpu"))
    assert train.cuda_graphs_wanted(torch.device("cuda:0"))
    assert not train.cuda_graphs_wanted("cuda", lr_gamma=0.7)  # a graph holds its rate
    monkeypatch.setenv("LENET_CUDA_GRAPHS", "0")
    assert not train.cuda_graphs_wanted("cuda")


def test_a_checkpoint_resumes_on_the_other_path(tmp_path, digits):
    # A run made on the CPU continues on a GPU (and back): the optimizer takes the
    # resuming path's capturable setting, not the checkpoint's.
    model, ckpt, state = one_epoch_checkpoint(tmp_path, digits)
    rule = train.TorchRule(model, "adam", 1e-3, None, 0.0, 64, graphs=True)
    rule.resume(state, ckpt)
    assert all(g["capturable"] is True for g in rule.opt.param_groups)
