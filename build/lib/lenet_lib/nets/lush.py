"""LeCun and Bottou's own LeNet-5: the LeNet-5 demo of Lush's gblearn2 library, its network and
its training, as the QMNIST authors ran it (Yadav & Bottou 2019: 0.82% on MNIST's test set).

Used by the training-run notebook (06) for the `lush` experiment and by the paper chapter (09).
Read from Lush's sources (`packages/gblearn2/`: demos/lenet5.lsh, net-lenet5.lsh,
net-cscscf.lsh, gb-modules-nn.lsh, gb-modules.lsh, gb-trainers.lsh, gb-params.lsh,
demos/dsource-mnist.lsh) and QMNIST's `making_qmnist/lenet5.lsh.patch`:

- input: 0.01 x the pixel (0 to 2.55), the 28x28 digit at (2, 2) of a 32x32 field of 0;
- C1, S2, C3 (Table I), S4, C5 (120 maps), then a full layer of 10 units, every layer squashed
  by 1.7159 tanh(2a/3), the output too; no F6, no RBF (`LeNet5Lush`);
- loss 0.5 sum_i (o_i - t_i)^2 with t = +1 for the digit's class and -1 for the others; the
  class is the largest output;
- `forget 1 2`: a kernel feeding a map with n input maps uniform in +-1/sqrt(25 n), the output
  layer in +-1/sqrt(120), every S coefficient 0.5, every bias 0;
- training: one update per digit, in file order every epoch, w -= eta / (h + 0.02) * dE/dw,
  eta 1e-4, 1e-5, 1e-6 for ten epochs each; h is Lush's Gauss-Newton diagonal (`bbprop`: the
  squared terms back-propagated, 1 per output at the loss), averaged over training digits
  0-999 at the start of each ten epochs.

Choices where the sources are silent: the random draws come from torch's generator seeded
with the run's seed (Lush: its own generator, `(seed 314)`), in the order C1, C3, C5, output.

The per-digit step, gradient and curvature are hand-written in lush_net.py (`Group`, which can
train several networks at once; a run trains a group of one, benchmarks/lush_step.py times
it). `curvature_table` sets Lush's curvature beside the exact Gauss-Newton diagonal.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev

from . import models, sdlm
from .lush_net import MU, NAMES, A, Arch, Group, S, _views, can_compile
from .models import SparseConv2d, Subsampling, c3_connections

# Issue 27's ladder: one change at a time from Lush's protocol (a run's `changes`, joined by
# "+"; the input coding and the initialisation are the run's `scaling` and `init`). The first
# two change the training (LushRule), the others the network (LeNet5Lush).
CHANGES = {
    "shuffle": "a new random order every epoch",
    "schedule": "the paper's schedule: 20 passes, eta0 times sdlm.SCHEDULE, the curvature "
    "re-estimated every pass on 500 random digits",
    "relu": "ReLU instead of the squashing function in C1 to C5 (the S layers' too)",
    "maxpool": "2x2 max pooling instead of the trainable S layers",
    "fullc3": "every S2 map feeds every C3 map",
    "ce": "10 linear outputs, softmax and cross-entropy, instead of squashed outputs and the "
    "squared distance to +-1",
}
TRAINING_CHANGES = ("shuffle", "schedule")
INITS = ("lush", "sqrt")  # Lush's `forget 1 2`, or the paper's +-2.4 / sqrt(F_i) (models.py)
SCALINGS = ("lush", "paper")


def parse_changes(changes: str) -> frozenset[str]:
    """The set of CHANGES a run's `changes` names ("relu+maxpool"; "" for none)."""
    if not isinstance(changes, str):
        raise ValueError(f"changes must be a string like 'relu+maxpool', got {changes!r}")
    names = frozenset(c for c in changes.split("+") if c)
    unknown = sorted(names - CHANGES.keys())
    if unknown:
        raise ValueError(
            f"unknown change(s) {', '.join(map(repr, unknown))}: use names from "
            f"{', '.join(CHANGES)}, joined by '+'"
        )
    return names


ETAS = (1e-4, 1e-5, 1e-6)  # the global rate of epochs 1-10, 11-20, 21-30 (`eta`)
EPOCHS_PER_ETA = 10  # the curvature is re-estimated at the start of each ten
N_CURVATURE = 1000  # training digits 0-999, in file order


def targets(labels: torch.Tensor) -> torch.Tensor:
    """The outputs each digit is trained toward: +1 for its class, -1 for the others (N, 10)."""
    return F.one_hot(labels.long(), 10).float() * 2 - 1


def squash(a: torch.Tensor) -> torch.Tensor:
    return A * torch.tanh(S * a)


class LeNet5Lush(nn.Module):
    """The Lush demo's LeNet-5 (net-lenet5.lsh): C1-S2-C3-S4-C5 as in the paper, then 10 squashed
    units fully connected to C5's 120; trained on the squared distance to +-1 targets.

    Parameters
    ----------
    init_seed : draw the initial weights from a generator seeded by it
    scaling : the input coding it reads, 'lush' (Lush's) or 'paper' (the ladder)
    changes : the ladder's changes to Lush's protocol (`CHANGES`, joined by "+"); the network
        keeps them all (`changes`) and builds those of the network
    init : 'lush' (Lush's `forget 1 2`) or 'sqrt' (the paper's, as its runs use it)
    """

    layers = ("c1", "s2", "c3", "s4", "c5", "output")
    in_size = 32

    def __init__(self, init_seed: int | None = None, scaling: str = "lush", changes: str = "",
                 init: str = "lush"):  # fmt: skip
        super().__init__()
        if scaling not in SCALINGS:
            raise ValueError(
                f"Lush's network reads scaling 'lush' (Lush's coding) or 'paper', not {scaling!r}"
            )
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
        self.scaling, self.init, self.changes = scaling, init, parse_changes(changes)
        self.arch = Arch(*(name in self.changes for name in Arch._fields))
        self.act = F.relu if self.arch.relu else squash
        pool = (lambda n: nn.MaxPool2d(2)) if self.arch.maxpool else Subsampling
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = pool(6)
        full = "fullc3" in self.changes
        self.c3 = SparseConv2d(torch.ones(16, 6, dtype=torch.bool) if full else c3_connections())
        self.s4 = pool(16)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.output = nn.Linear(120, 10)
        if init == "lush":
            self.forget(init_seed)
        else:
            self.init_paper(init_seed)

    def forget(self, seed: int | None = None) -> None:
        """Lush's `forget 1 2`: weights uniform in +-1/sqrt(fan-in), S coefficients 1/sqrt(4),
        biases 0 (gb-modules-nn.lsh). A C3 kernel's fan-in is 25 times its map's input maps."""
        gen = None if seed is None else torch.Generator().manual_seed(seed)

        def draw(shape, bound):
            return (torch.rand(shape, generator=gen) * 2 - 1) * bound

        with torch.no_grad():
            self.c1.weight.copy_(draw(self.c1.weight.shape, 1 / math.sqrt(25)))
            fan = self.c3.table.sum(1).float()[self.c3.out_idx] * 25
            self.c3.weight.copy_(draw(self.c3.weight.shape, 1.0) * fan.rsqrt().view(-1, 1, 1))
            self.c5.weight.copy_(draw(self.c5.weight.shape, 1 / math.sqrt(400)))
            self.output.weight.copy_(draw(self.output.weight.shape, 1 / math.sqrt(120)))
            for layer in self._weighted():
                if isinstance(layer, Subsampling):
                    layer.weight.fill_(0.5)
                layer.bias.zero_()

    def init_paper(self, seed: int | None = None) -> None:
        """The paper's initialisation as its runs use it (models.LeNet5Paper, init 'sqrt'):
        every weight and bias uniform in +-2.4 / sqrt(F_i), F_i the inputs of the unit it
        feeds (4 for an S unit), drawn in the paper network's order."""
        gen = None if seed is None else torch.Generator().manual_seed(seed)

        def draw(shape, bound):
            return (torch.rand(shape, generator=gen) * 2 - 1) * bound

        with torch.no_grad():
            for layer in self._weighted():
                if layer is self.c3:
                    continue
                bound = 2.4 / math.sqrt(models._inputs_per_unit(layer) - 1)
                for p in layer.parameters():
                    p.copy_(draw(p.shape, bound))
            c3 = self.c3
            bound = 2.4 / (c3.table.sum(1).double() * 25).sqrt()
            c3.weight.copy_(draw(c3.weight.shape, 1.0) * bound[c3.out_idx].view(-1, 1, 1))
            c3.bias.copy_(draw(c3.bias.shape, 1.0) * bound)

    def _weighted(self):
        """The layers with weights, in the paper network's order of initialisation."""
        names = ("c1", "s2", "s4", "c5", "output", "c3")
        return [getattr(self, n) for n in names if any(True for _ in getattr(self, n).parameters())]

    def features(self, x):
        """Every layer's output, in order, as a dict (the chapters look inside)."""
        out, act = {}, self.act
        x = out["c1"] = act(self.c1(x))
        x = out["s2"] = self.s2(x) if self.arch.maxpool else act(self.s2(x))
        x = out["c3"] = act(self.c3(x))
        x = out["s4"] = self.s4(x) if self.arch.maxpool else act(self.s4(x))
        x = out["c5"] = act(self.c5(x)).flatten(1)
        out["output"] = self.output(x) if self.arch.ce else squash(self.output(x))
        return out

    def forward(self, x):
        if x.shape[-1] != 32:
            raise ValueError(f"expected 32x32 input, got {tuple(x.shape)}")
        return self.features(x)["output"]

    def loss(self, out, y):
        """Lush's edist-cost: 0.5 sum_i (o_i - t_i)^2 per digit, averaged over the batch (with
        the change 'ce': the cross-entropy of the softmax)."""
        if self.arch.ce:
            return F.cross_entropy(out, y)
        return 0.5 * ((out - targets(y)) ** 2).sum(1).mean()

    @staticmethod
    def decide(out):
        """The largest output wins (Lush's max-classer)."""
        return out.argmax(1)

    @staticmethod
    def probabilities(out):
        """The softmax of the outputs: with squashed outputs a ranking of the classes, not a
        calibrated probability (the network was not trained for one)."""
        return torch.softmax(out, 1)

    def predict(self, x):
        return self.decide(self(x))


models.MODELS["lush"] = LeNet5Lush


def eta(epoch: int, eta0: float = ETAS[0]) -> float:
    """The global rate of epoch `epoch` (0-based): eta0, eta0 / 10, then eta0 / 100 from
    epoch 20 on (Lush: 1e-4, 1e-5, 1e-6)."""
    return eta0 / 10 ** min(epoch // EPOCHS_PER_ETA, len(ETAS) - 1)


class LushRule:
    """Lush's training as a step rule of `train.fit`: one update per digit in file order (the
    fit's generator is not used), the rates eta / (h + MU) with `eta(epoch, eta0)` and h over
    training digits 0-999 re-estimated at the start of every ten epochs (kept in the
    checkpoint, so a resumed run uses the same rates). The fit runs on one CPU thread.
    train_loss and train_acc are running values (each digit scored before its update).

    The model's training changes (`CHANGES`): 'shuffle' draws each epoch's order from the
    fit's generator; 'schedule' trains with the paper's rates (`sdlm.eta(epoch, eta0)`) and
    re-estimates h every epoch on sdlm.N_CURVATURE digits drawn from it (after the order, as
    the paper experiment's runs draw them).

    The step is compiled where a C++ compiler is found (`can_compile`), else eager: the two
    round differently, so the settings record which, and a run resumes only with its own.
    """

    def __init__(self, model: LeNet5Lush, eta0: float = ETAS[0], compiled: bool | None = None):
        if not isinstance(model, LeNet5Lush):
            raise ValueError(
                f"sdlm-lush trains Lush's network only (model 'lush'), not {type(model).__name__}"
            )
        self.compiled = can_compile() if compiled is None else compiled
        self.eta0, self.h = float(eta0), None
        self.shuffle = "shuffle" in model.changes
        self.paper_schedule = "schedule" in model.changes
        self.settings = {"protocol": "lush", "eta0": self.eta0, "mu": MU,
                         "epochs_per_eta": EPOCHS_PER_ETA, "n_curvature": N_CURVATURE,
                         "step": "compiled" if self.compiled else "eager"}  # fmt: skip
        if model.changes:  # absent from the lush experiment's checkpoints
            self.settings["changes"] = "+".join(sorted(model.changes))
        if self.paper_schedule:
            self.settings |= {"epochs_per_eta": 1, "n_curvature": sdlm.N_CURVATURE}

    def context(self):
        return sdlm._OneThread()

    def state(self) -> dict:
        return {"sdlm": self.settings, "lush_h": self.h}

    def resume(self, state: dict, checkpoint) -> None:
        if state.get("sdlm") != self.settings:
            raise ValueError(
                f"{checkpoint} was written with other settings ({state.get('sdlm')}), not "
                f"{self.settings}: delete it or use another folder"
            )
        self.h = state.get("lush_h")

    def train_epoch(self, model, X, y, gen: torch.Generator, epoch: int):
        """One epoch over (X, y); returns the running loss, accuracy (%) and digits seen."""
        X = X.squeeze(1).contiguous()  # the step reads each digit's 5x5 patches by strides
        n = len(X)
        order = torch.randperm(n, generator=gen) if self.shuffle else None
        with torch.inference_mode():
            group = Group([model], compiled=self.compiled)
            if self.paper_schedule:
                sample = torch.randperm(n, generator=gen)[: min(sdlm.N_CURVATURE, n)]
                self.h = group.curvature(X[sample])
                rate = sdlm.eta(epoch, self.eta0)
            else:
                if epoch % EPOCHS_PER_ETA == 0 or self.h is None:
                    self.h = group.curvature(X[:N_CURVATURE])
                rate = eta(epoch, self.eta0)
            rates = group.rates(self.h, rate)
            if order is not None:
                X, y = X[order], y[order]
            T = targets(y).unsqueeze(2)
            outs = [group.step(X[i : i + 1], T[i : i + 1], rates) for i in range(n)]
            outs = torch.cat(outs).view(n, 10)
        group.write_back()
        if model.arch.ce:
            loss = F.cross_entropy(outs.double(), y).item()
        else:
            loss = 0.5 * ((outs - T.squeeze(2)) ** 2).sum(1).double().mean().item()
        correct = (outs.argmax(1) == y).sum().item()
        return loss, 100.0 * correct / n, n


def exact_ggn_diagonal(model: LeNet5Lush, X) -> dict:
    """The exact Gauss-Newton diagonal of 0.5 |o - t|^2, sum_k (do_k / dw)^2, summed over the
    digits X (N, 1, 32, 32), per parameter of `model` (torch.func; BackPACK's DiagGGNExact
    agrees: tests/test_lush.py)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def outputs(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    total = {k: torch.zeros_like(v) for k, v in params.items()}
    for x in X:
        for k, j in jacrev(outputs)(params, x).items():
            total[k] += (j**2).sum(0)
    return total


def curvature_table(model: LeNet5Lush, X) -> pd.DataFrame:
    """Lush's curvature (the squared terms back-propagated, which the runs use) against the
    exact Gauss-Newton diagonal, over the digits X: per layer's weights, the median and the
    5th and 95th percentiles of their ratio (chapter 09)."""
    group = Group([model])
    h = dict(zip(NAMES, (t[0] for t in _views(group.curvature(X.squeeze(1).contiguous()))),
                 strict=True))  # fmt: skip
    exact = exact_ggn_diagonal(model, X)
    c3 = h["W3"].view(16, 6, 5, 5)[model.c3.out_idx, model.c3.in_idx]
    pairs = {"C1": (h["W1"], exact["c1.weight"]), "S2": (h["c2"], exact["s2.weight"]),
             "C3": (c3, exact["c3.weight"]), "S4": (h["c4"], exact["s4.weight"]),
             "C5": (h["W5"], exact["c5.weight"]), "output": (h["W6"], exact["output.weight"])}  # fmt: skip
    rows = []
    for layer, (ours, ex) in pairs.items():
        r = (ours.flatten() * len(X) / ex.flatten().clamp_min(1e-30)).double()
        q = torch.quantile(r, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)).tolist()
        rows.append({"layer": layer, "weights": r.numel(), "p5": q[0], "median": q[1],
                     "p95": q[2]})  # fmt: skip
    return pd.DataFrame(rows).set_index("layer")
