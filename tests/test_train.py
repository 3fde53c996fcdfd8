"""Training: determinism, exact resume and continuation, refusal of bad parameters."""

import pytest
import torch

from lenet_lib import data, experiments, io, train


@pytest.fixture(scope="module")
def small(mnist):
    X, y = data.subset(*mnist["train"], 1000, seed=0)
    X_test, y_test = data.subset(*mnist["test"], 300, seed=0)
    return data.prepare(X), y, data.prepare(X_test), y_test


def run(small, epochs, checkpoint=None, seed=0, optimizer="adam", lr=1e-3, model="notes", **kw):
    net = train.new_model(model, seed)
    hyper = experiments.Run(
        "test", optimizer, lr, epochs, batch_size=50, seed=seed, model=model, **kw
    )
    history = train.fit(net, *small, hyper, checkpoint=checkpoint, progress=False)
    return net, history


def strip_time(history):
    return [{k: v for k, v in h.items() if k not in ("seconds", "images_per_s")} for h in history]


def test_same_seed_same_metrics_bit_for_bit(small):
    a = strip_time(run(small, 2)[1])
    b = strip_time(run(small, 2)[1])
    assert a == b


def test_other_seed_other_metrics(small):
    assert strip_time(run(small, 1, seed=0)[1]) != strip_time(run(small, 1, seed=1)[1])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw", "adadelta"])
def test_every_optimizer_learns(small, optimizer):
    # momentum 0.9: ten times the step; Adadelta at pytorch/examples' rate
    lr = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.1, "adadelta": 1.0}.get(optimizer, 0.02)
    history = run(small, 2, optimizer=optimizer, lr=lr)[1]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_acc"] > 30


def test_resume_equals_uninterrupted(small, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    run(small, 1, checkpoint=ckpt)  # "interrupted" after its first epoch
    state = train.load_checkpoint(ckpt)
    assert state["epoch"] == 1
    net_resumed, resumed = run(small, 3, checkpoint=ckpt, seed=0)
    net_full, full = run(small, 3)
    assert strip_time(resumed) == strip_time(full)
    for a, b in zip(net_resumed.state_dict().values(), net_full.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_decaying_rate_resumes_exactly(small, tmp_path):
    """pytorch/examples' schedule (Adadelta at 1, times 0.7 per epoch): the schedule's state
    travels in the checkpoint, so an interrupted run ends as an uninterrupted one."""
    ckpt = tmp_path / "checkpoint.pt"
    kw = {"optimizer": "adadelta", "lr": 1.0, "lr_gamma": 0.7}
    run(small, 1, checkpoint=ckpt, **kw)
    assert train.load_checkpoint(ckpt)["schedule"]["last_epoch"] == 1
    _, resumed = run(small, 3, checkpoint=ckpt, **kw)
    _, full = run(small, 3, **kw)
    _, constant = run(small, 3, optimizer="adadelta", lr=1.0)
    assert strip_time(resumed) == strip_time(full) != strip_time(constant)


def test_checkpoint_beyond_requested_epochs_is_refused(small, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    run(small, 2, checkpoint=ckpt)
    with pytest.raises(ValueError, match="beyond"):
        run(small, 1, checkpoint=ckpt)


def test_checkpoint_write_is_atomic(tmp_path):
    target = tmp_path / "c.pt"
    io.save_torch({"x": torch.ones(2)}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert torch.equal(train.load_checkpoint(target)["x"], torch.ones(2))


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"optimizer": "rmsprop"}, "optimizer 'rmsprop' is unknown"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"batch_size": 10**6}, "batch_size must be between 1 and the number of training images"),
        ({"optimizer": "sgd", "momentum": 0.9}, "momentum 0.9 has no effect with optimizer 'sgd'"),
        ({"optimizer": "adam", "momentum": 0.5}, "momentum 0.5 has no effect"),
        ({"optimizer": "nesterov", "momentum": 0.0}, "'nesterov' needs a momentum > 0"),
        ({"optimizer": "momentum", "momentum": 0.0}, "'momentum' needs a momentum > 0"),
        ({"optimizer": "momentum", "momentum": 1.0}, "momentum must be in"),
        ({"optimizer": "sdlm", "batch_size": 64}, "batch_size must be 1"),
        ({"lr_gamma": 0.0}, "lr_gamma .* must be in"),
        ({"lr_gamma": 1.5}, "lr_gamma .* must be in"),
        ({"optimizer": "sdlm", "batch_size": 1, "lr_gamma": 0.7}, "leave lr_gamma at 1"),
    ],
)
def test_bad_parameters_are_refused_before_training(kwargs, needle):
    """A Run checks itself when it is made."""
    args = {"optimizer": "adam", "lr": 1e-3, "epochs": 1, "batch_size": 64} | kwargs
    with pytest.raises(ValueError, match=needle):
        experiments.Run("test", **args)


def test_fit_refuses_a_batch_larger_than_its_data(small):
    run = experiments.Run("test", "adam", 1e-3, 1, batch_size=5000)  # valid for all of MNIST
    with pytest.raises(ValueError, match=r"batch_size must be between 1 and .* \(1000\)"):
        train.fit(train.new_model(), *small, run)


def test_paper_model_trains_with_map_loss(small):
    history = run(small, 2, model="paper", optimizer="adam", lr=1e-3)[1]
    assert history[1]["train_loss"] < history[0]["train_loss"] < 84  # 84: all outputs at 0


@pytest.mark.parametrize(
    "optimizer,momentum", [("sgd", 0.0), ("momentum", 0.9), ("nesterov", 0.9), ("adam", 0.0)]
)
def test_momentum_defaults_to_the_optimizers_own(optimizer, momentum):
    assert train.default_momentum(optimizer) == momentum
    assert train.default_momentum(optimizer, 0.5) == 0.5
    opt = train.make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], 0.1)
    assert opt.defaults.get("momentum", 0.0) == momentum
    assert opt.defaults.get("nesterov", False) == (optimizer == "nesterov")


def test_momentum_trains_otherwise_than_plain_sgd(small):
    """With its default, 'momentum' is not plain SGD under another name."""
    sgd = strip_time(run(small, 1, optimizer="sgd", lr=0.01)[1])
    momentum = strip_time(run(small, 1, optimizer="momentum", lr=0.01)[1])
    assert sgd != momentum
