"""The paper's own training: one update per digit with the stochastic diagonal
Levenberg-Marquardt step (Appendix C of LeCun et al. 1998), a step rule of `train.fit`.

Used through `train.fit` (a run with optimizer "sdlm") by the training-run notebook (06) for the paper
experiment, and by the paper chapter (09).

Each weight w_k moves by -eta / (mu + h_kk) times the gradient of the digit's loss, where
h_kk is the Gauss-Newton estimate of the second derivative of the loss with respect to w_k,
averaged over 500 training digits before each pass and kept fixed during it. For a shared
weight h_kk is the sum, over the connections that share it, of each connection's second
derivative (the paper's equation 22); second derivatives are propagated backwards with the
squared weights and f'(a)^2, dropping the f''(a) terms (its equation 25). The forward pass,
gradient and curvature are hand-written in sdlm_net.py.

Choices where the paper is silent or ambiguous (the chapter repeats them):

- Order: a new random permutation every pass, drawn from a generator seeded by `seed`. The
  paper says only that the digits come in random order. With one update per digit the last
  digits of a pass weigh most on the weights that are tested after it; a fixed order would
  make those the same digits every pass.
- The 500 digits for the curvature: a fresh random draw from the training set before every
  pass (same generator), mean of their per-digit second derivatives (the paper's running
  average, with each digit weighted equally).
- Loss: the MAP criterion (equation 9) with j = 1 (`models.map_loss`'s default), the
  criterion the paper's Section II-C puts forward for the RBF outputs. Section III's results
  do not name the loss again.
- Curvature at the output: the exact diagonal of the Hessian of that loss with respect to
  F6's 84 outputs (sdlm_net.py).
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from .models import LeNet5Paper, map_loss
from .sdlm_net import MU, NAMES, OUTPUT_CURVATURE, J, Net

N_CURVATURE = 500  # digits the curvature is averaged over before each pass
CURVATURES = ("paper", "exact")  # h_kk: the paper's equations 22-25, or the exact GGN diagonal
# eta of each pass as a multiple of the first pass's: 0.0005 for passes 1-2, 0.0002 for
# 3-5, 0.0001 for 6-8, 0.00005 for 9-12, 0.00001 after (Section III-B).
SCHEDULE = (1.0, 1.0, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1)
LATER = 0.02
# The initialisation a run of the paper's procedure starts from (`models.LeNet5Paper`'s
# `init`): uniform in +-2.4 / sqrt(F_i), not the +-2.4 / F_i that the paper prints: with the
# printed rule the paper's own procedure stalls within a few digits (chapter 09 shows it), and
# the paper's stated reason for the rule (every weighted sum starting with the same spread)
# calls for the square root. The runs' model is built with it (experiments.py) unless a run
# asks for "pooled" (the same reason applied to the S layers, `models.LeNet5Paper`); every
# checkpoint's "sdlm" settings record the model's init, and a run resumes only with its own.
INIT = "sqrt"


def eta(epoch: int, eta0: float = 0.0005) -> float:
    """The global rate of pass `epoch` (0-based) when the first pass's is `eta0`."""
    return eta0 * (SCHEDULE[epoch] if epoch < len(SCHEDULE) else LATER)


def curvature(model: LeNet5Paper, X, kind: str = "paper") -> dict:
    """h_kk for every weight of `model`, the mean over the digits X, as {name: tensor} in
    the model's own layout (C3: its 60 connected kernels). `kind`: "paper" (equations
    22-25) or "exact" (the exact Gauss-Newton diagonal)."""
    if kind not in CURVATURES:
        raise ValueError(f"kind must be one of {', '.join(CURVATURES)}, not {kind!r}")
    with torch.no_grad():
        net = Net(model)
        X = X.contiguous()
        h = net.curvature(X) if kind == "paper" else net.curvature_exact(X)
    h[4] = h[4].view(16, 6, 5, 5)[model.c3.out_idx, model.c3.in_idx]
    shapes = [p.shape for p in model.parameters()]
    return {k: t.reshape(s) for k, t, s in zip(NAMES, h, shapes, strict=True)}


def effective_rates(model: LeNet5Paper, X, eta_: float = 0.0005) -> torch.Tensor:
    """eta / (mu + h_kk) of every trainable weight of `model` (60,000 values), h_kk averaged
    over the digits X. Chapter 09 compares their range with the paper's."""
    return torch.cat([eta_ / (MU + t.flatten()) for t in curvature(model, X).values()])


def exact_ggn_diagonal(model: LeNet5Paper, X, labels) -> dict:
    """The exact diagonal of the Gauss-Newton matrix J^T H J, averaged over the digits X,
    with torch.func: J the Jacobian of F6's 84 outputs with respect to every weight, H the
    Hessian of the MAP loss with respect to those outputs. No diagonal approximation inside
    the network, and a shared weight's connections interact. Same layout as `curvature`;
    chapter 09 and the tests compare the two (small X: one Jacobian per digit)."""
    from torch.func import functional_call, hessian, jacrev

    wrapper = _F6(model)
    params = {f"m.{k}": v.detach() for k, v in model.named_parameters()}
    buffers = {f"m.{k}": v for k, v in model.named_buffers()}

    def f6(p, x):
        return functional_call(wrapper, (p, buffers), (x[None],))[0]

    def loss_x6(v, label):
        return map_loss(model.output(v[None]), label.view(1))

    total = {k: torch.zeros_like(v) for k, v in params.items()}
    for x, label in zip(X, labels, strict=True):
        out = f6(params, x).detach()
        H = hessian(loss_x6)(out, label)
        for k, Jk in jacrev(f6)(params, x).items():
            Jf = Jk.reshape(84, -1)
            total[k] += torch.einsum("ap,ab,bp->p", Jf, H, Jf).view_as(total[k])
    return dict(zip(NAMES, (t / len(X) for t in total.values()), strict=True))


def layer_spread(model: LeNet5Paper, X) -> pd.DataFrame:
    """Per layer, over the digits X: the standard deviation of the pre-activations a, the
    share (%) of them with |a| > 2 (f'(a) below a quarter of f'(0): saturated), and for S2
    and S4 the effective fan-in of the coefficient, mean (sum of a 2x2 block)^2 over mean
    (one input)^2: 4 for independent zero-mean inputs, 16 for four equal ones. Chapter 09
    and `benchmarks/paper_saturation.py` follow the saturation with it."""
    seen = {}
    names = ("c1", "s2", "c3", "s4", "c5", "f6")
    hooks = [
        getattr(model, n).register_forward_hook(
            lambda m, inp, out, n=n: seen.__setitem__(n, (inp[0], out))
        )
        for n in names
    ]
    try:
        with torch.no_grad():
            model(X)
    finally:
        for h in hooks:
            h.remove()
    rows = {}
    for n in names:
        x, a = seen[n]
        row = {"std": a.std().item(), "saturated %": 100 * (a.abs() > 2).double().mean().item()}
        if n in ("s2", "s4"):
            block = F.avg_pool2d(x, 2) * 4
            row["effective fan-in"] = ((block * block).mean() / (x * x).mean()).item()
        rows[n.upper()] = row
    return pd.DataFrame(rows).T


class _F6(torch.nn.Module):
    """The model up to F6's outputs, for torch.func."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x):
        return self.m.features(x)["f6"]


class _OneThread:
    """torch on one CPU thread inside the block: faster for operations this small, and the
    results do not depend on the caller's thread count."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def _one_pass(model, X, labels: list, gen: torch.Generator, eta_: float, curvature="paper"):
    """One pass: draw the order and the curvature digits from `gen`, estimate h_kk, update
    once per digit. Returns the order and each digit's 11 log-posteriors before its update."""
    n = len(X)
    order = torch.randperm(n, generator=gen)
    sample = torch.randperm(n, generator=gen)[: min(N_CURVATURE, n)]
    with torch.inference_mode():
        net = Net(model)
        estimate = net.curvature if curvature == "paper" else net.curvature_exact
        rates = net.rates(estimate(X[sample.to(X.device)]), eta_)
        logp = [net.step(X[i], labels[i], rates) for i in order.tolist()]
        logp = torch.stack(logp).cpu()
    net.write_back()
    return order, logp


def first_pass_losses(model: LeNet5Paper, X, y, eta0: float = 0.0005, seed: int = 0):
    """The MAP loss of each digit of one pass over (X, y), before its update, in the order
    seen: the first pass of `fit` on a small set. Chapter 09 uses it on a few thousand
    digits to show how training starts. Trains `model` in place."""
    X = X.contiguous()
    with _OneThread():
        order, logp = _one_pass(model, X, y.tolist(), torch.Generator().manual_seed(seed), eta0)
    return -logp[torch.arange(len(X)), 1 + y.cpu()[order]]


class SDLM:
    """The paper's procedure as a step rule of `train.fit`: one pass of `train_epoch` draws
    the pass's order and N_CURVATURE digits from the fit's generator, estimates h_kk on those
    digits, then updates once per digit in that order with rates eta / (mu + h_kk),
    eta = `eta(epoch, eta0)`. train_loss and train_acc are running values (each digit scored
    before its update). The fit runs on one CPU thread (`context`). `curvature`: "paper"
    (equations 22-25) or "exact" (the exact Gauss-Newton diagonal, `Net.curvature_exact`),
    the one change chapter 09 tries on the paper's procedure. The model is trained as it
    is handed over: build it with `init=INIT` for the paper's procedure.
    """

    def __init__(self, model: LeNet5Paper, eta0: float = 0.0005, curvature: str = "paper"):
        if curvature not in CURVATURES:
            raise ValueError(f"curvature must be one of {', '.join(CURVATURES)}, not {curvature!r}")
        Net(model)  # refuses anything but LeNet5Paper before any work
        self.eta0, self.curvature = float(eta0), curvature
        self.settings = {"eta0": self.eta0, "mu": MU, "n_curvature": N_CURVATURE, "j": J}
        self.settings["init"] = model.init
        if OUTPUT_CURVATURE != "exact":
            self.settings["output_curvature"] = OUTPUT_CURVATURE
        if curvature != "paper":  # absent from the paper-curvature runs' checkpoints
            self.settings["curvature"] = curvature

    def context(self):
        return _OneThread()

    def state(self) -> dict:
        """What a checkpoint holds of the rule: its settings (the curvature is redrawn)."""
        return {"sdlm": self.settings}

    def resume(self, state: dict, checkpoint) -> None:
        """Check that `state` was written with these settings, the initialisation included:
        a run resumes only from a model built with its own init (the weights themselves are
        the checkpoint's)."""
        stored = state.get("sdlm") or {}
        if stored != self.settings:
            raise ValueError(
                f"{checkpoint} was written with other SDLM settings ({state.get('sdlm')}), "
                f"not {self.settings}: delete it or use another folder"
            )

    def train_epoch(self, model, X, y, gen: torch.Generator, epoch: int):
        """One pass over (X, y); returns the running loss, accuracy (%) and digits seen."""
        X = X.contiguous()  # the step reads each digit's 5x5 patches by strides
        rate = eta(epoch, self.eta0)
        order, logp = _one_pass(model, X, y.tolist(), gen, rate, self.curvature)
        y_seen = y.cpu()[order]
        losses = -logp[torch.arange(len(X)), 1 + y_seen]
        correct = (logp[:, 1:].argmax(1) == y_seen).sum().item()
        return losses.double().mean().item(), 100.0 * correct / len(X), len(X)
