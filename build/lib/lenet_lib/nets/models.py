"""The two LeNet-5s: the notes' variant and the 1998 paper's network, and their layer table.

Used by the convolution (04), architecture (05), training, optimizer and paper chapters.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lenet_lib.base.notes import digit_bitmaps  # the paper's RBF centres

from . import data

# Table I of the paper: which S2 maps (rows) feed each C3 map (columns).
C3_TABLE = [
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
]


def c3_connections() -> torch.Tensor:
    """Table I as a bool tensor (16 C3 maps, 6 S2 maps)."""
    return torch.tensor([[row[k] == "X" for row in C3_TABLE] for k in range(16)])


def scaled_tanh(a: torch.Tensor) -> torch.Tensor:
    """The paper's squashing function f(a) = 1.7159 tanh(2a/3)."""
    return 1.7159 * torch.tanh(2 * a / 3)


ACTIVATIONS = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "scaled_tanh": scaled_tanh,
    "sigmoid": torch.sigmoid,
}


class Subsampling(nn.Module):
    """The paper's S layers: each 2x2 block summed, times a trainable coefficient, plus a
    trainable bias, one pair per map (before the squashing function)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        s = F.avg_pool2d(x, 2) * 4  # the sum of each 2x2 block
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def inputs_per_unit(self):
        return 4 + 1


class SparseConv2d(nn.Module):
    """A convolution in which output map k reads only the input maps that `table[k]` marks.

    Only the connected kernels are parameters, so counting tensors gives the paper's count.
    """

    def __init__(self, table: torch.Tensor, kernel_size: int = 5):
        super().__init__()
        out_channels, in_channels = table.shape
        self.register_buffer("table", table.clone())
        out_idx, in_idx = table.nonzero(as_tuple=True)
        self.register_buffer("out_idx", out_idx)
        self.register_buffer("in_idx", in_idx)
        self.shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(len(out_idx), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = 1 / math.sqrt(in_channels * kernel_size**2)  # as nn.Conv2d would
        nn.init.uniform_(self.weight, -bound, bound)

    def full_weight(self):
        w = self.weight.new_zeros(self.shape)
        w[self.out_idx, self.in_idx] = self.weight
        return w

    def forward(self, x):
        return F.conv2d(x, self.full_weight(), self.bias)

    def inputs_per_unit(self):
        """Inputs read by a unit of each output map, its bias counted as one."""
        k = self.shape[2] * self.shape[3]
        return (self.table.sum(1) * k + 1).tolist()


class RBF(nn.Module):
    """Euclidean radial basis units: y_i = sum_j (x_j - w_ij)^2, centres fixed (a buffer)."""

    def __init__(self, centres: torch.Tensor):
        super().__init__()
        self.register_buffer("centres", centres.flatten(1).float())

    def forward(self, x):
        return ((x.unsqueeze(1) - self.centres.unsqueeze(0)) ** 2).sum(-1)

    def inputs_per_unit(self):
        return self.centres.shape[1]


class LeNet5(nn.Module):
    """The notes' LeNet-5 (their section 2): ReLU, max pooling, full C3, 10 linear outputs.

    Parameters
    ----------
    activation : 'relu', 'tanh', 'scaled_tanh' or 'sigmoid'
    pool : 'max', 'avg' or 'trainable' (the paper's subsampling, followed by the activation)
    c3 : 'full' (every S2 map feeds every C3 map) or 'paper' (Table I)
    width : multiplies the number of maps and units of every hidden layer (capacity chapter)
    in_size : 32, or 28 for unpadded digits (C1 then pads by 2 with zeros)
    scaling : the input scaling the model is trained with, 'standard' or 'paper'
        (`data.prepare`), with which `lenet predict` and the handwriting chapter scale digits
    """

    layers = ("c1", "s2", "c3", "s4", "c5", "f6", "output")
    # Issue 17: C1's weight in channels-last strides (one input map leaves the layout to them),
    # so C1 to S4 run channels-last, and C5 (5x5 kernels on 5x5 maps) as the linear layer it is:
    # 1.37x a training step on this CPU (benchmarks/engine_levers.py), other rounding; on a GPU
    # untimed. The paper's network keeps torch's defaults.
    fast_layers = True

    def __init__(
        self, activation="relu", pool="max", c3="full", width=1.0, in_size=32, scaling="standard"
    ):
        super().__init__()
        if scaling not in data.TRANSFORMS:
            raise ValueError(f"scaling must be one of {sorted(data.TRANSFORMS)}, not {scaling!r}")
        self.scaling = scaling
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
        if pool not in ("max", "avg", "trainable"):
            raise ValueError(f"pool must be 'max', 'avg' or 'trainable', not {pool!r}")
        if c3 not in ("full", "paper"):
            raise ValueError(f"c3 must be 'full' or 'paper', not {c3!r}")
        if c3 == "paper" and width != 1:
            raise ValueError("c3='paper' fixes 6 S2 and 16 C3 maps: use width=1")
        if in_size not in (28, 32):
            raise ValueError(f"in_size must be 28 or 32, not {in_size}")
        n1, n3, n5, n6 = (max(1, round(n * width)) for n in (6, 16, 120, 84))
        self.act = ACTIVATIONS[activation]
        self.in_size = in_size
        self.c1 = nn.Conv2d(1, n1, 5, padding=(32 - in_size) // 2)
        self.s2 = self._pool(pool, n1)
        self.c3 = SparseConv2d(c3_connections()) if c3 == "paper" else nn.Conv2d(n1, n3, 5)
        self.s4 = self._pool(pool, n3)
        self.c5 = nn.Conv2d(n3, n5, 5)
        self.f6 = nn.Linear(n5, n6)
        self.output = self._head(n6)
        self.pool = pool
        self.set_fast_layers(self.fast_layers)

    @staticmethod
    def _pool(kind, channels):
        if kind == "trainable":
            return Subsampling(channels)
        return nn.MaxPool2d(2) if kind == "max" else nn.AvgPool2d(2)

    def _head(self, n6):
        return nn.Linear(n6, 10)

    def _sized(self, x):
        if x.shape[-1] != self.in_size:
            raise ValueError(f"expected {self.in_size}x{self.in_size} input, got {tuple(x.shape)}")
        return x

    def features(self, x):
        """Every layer's output, in order, as a dict (the chapters look inside)."""
        out = {}
        x = self._sized(x)
        x = out["c1"] = self.act(self.c1(x))
        x = self.s2(x)
        x = out["s2"] = self.act(x) if self.pool == "trainable" else x
        x = out["c3"] = self.act(self.c3(x))
        x = self.s4(x)
        x = out["s4"] = self.act(x) if self.pool == "trainable" else x
        x = out["c5"] = self.act(self._c5(x))
        x = out["f6"] = self.act(self.f6(x))
        out["output"] = self.output(x)
        return out

    def forward(self, x):
        if not (self.act is F.relu and self.pool == "max"):
            return self.features(x)["output"]
        # The notes' network: max pooling before the ReLU, in place. They commute, gradients too,
        # so this is `features(x)["output"]` bit for bit with a quarter of the ReLU work.
        x = F.relu(self.s2(self.c1(self._sized(x))), inplace=True)
        x = F.relu(self.s4(self.c3(x)), inplace=True)
        x = F.relu(self._c5(x), inplace=True)
        x = F.relu(self.f6(x), inplace=True)
        return self.output(x)

    def set_fast_layers(self, on: bool = True) -> LeNet5:
        """C1 to S4 channels-last and C5 as a linear layer (on), or torch's defaults (off;
        benchmarks/engine_levers.py, tests/test_engine.py); same weights. Returns the model."""
        self.fast_layers = on
        self.c1.to(memory_format=torch.channels_last if on else torch.contiguous_format)
        return self

    def _c5(self, x):
        """C5's outputs, flattened: (batch, maps)."""
        if self.fast_layers:
            return F.linear(x.flatten(1), self.c5.weight.flatten(1), self.c5.bias)
        return self.c5(x).flatten(1)

    def loss(self, out, y):
        """The training criterion: cross-entropy on the 10 outputs."""
        return F.cross_entropy(out, y)

    @staticmethod
    def decide(out):
        """Class indices from the outputs: the largest score."""
        return out.argmax(1)

    @staticmethod
    def probabilities(out):
        """Class probabilities from the outputs: the softmax of the scores (chapters 04, 08)."""
        return torch.softmax(out, 1)

    def predict(self, x):
        return self.decide(self(x))


class LeNet5Paper(LeNet5):
    """The 1998 LeNet-5: scaled tanh, trainable subsampling, Table I for C3, and 10 Euclidean
    RBF outputs whose centres are fixed 7x12 bitmaps. Outputs are penalties: lower is better.

    Parameters
    ----------
    init : 'printed' (weights and biases uniform in +-2.4 / F_i, F_i the fan-in of the unit
        the weight feeds, as Appendix A prints it), 'sqrt' (+-2.4 / sqrt(F_i)) or 'pooled'
        ('sqrt', but S2 and S4 in +-2.4 / F_i: the same draws, halved)
    init_seed : draw the weights from a generator seeded by it (None: torch's global one)
    scaling : as for `LeNet5`; the paper's own by default
    """

    fast_layers = False  # its committed runs were made with torch's default layers

    def __init__(self, init="printed", init_seed=None, scaling="paper"):
        super().__init__(activation="scaled_tanh", pool="trainable", c3="paper", scaling=scaling)
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
        self.init = init
        self._init_paper(init, init_seed)

    def _head(self, n6):
        return RBF(digit_bitmaps())

    def _init_paper(self, init: str, seed: int | None):
        """Every weight uniform in +-2.4 / sqrt(F_i) ('sqrt') or +-2.4 / F_i ('printed');
        'pooled': as 'sqrt', but S2 and S4 in +-2.4 / F_i.

        Appendix A prints 2.4 / F_i, for the reason that every unit's weighted sum should start
        with the same spread, in the sigmoid's working range. A sum of F_i terms spreads as
        sqrt(F_i) times one term, so that reason calls for 1 / sqrt(F_i); under 1 / F_i a
        unit's sum shrinks as 1 / sqrt(F_i), and the paper's own procedure then stalls within
        a few digits (chapter 09). The same reason gives 1 / F_i for an S unit: its coefficient
        multiplies the sum of a 2x2 block of nearly equal neighbours, which spreads up to
        F_i = 4 times one input (`sdlm.layer_spread` measures it; chapter 09 trains from it).
        """
        gen = None if seed is None else torch.Generator().manual_seed(seed)

        def draw(shape, bound):
            return (torch.rand(shape, generator=gen) * 2 - 1) * bound

        def scale(fan_in, name=""):
            if init == "printed" or (init == "pooled" and name in ("s2", "s4")):
                return fan_in
            return fan_in.sqrt() if torch.is_tensor(fan_in) else math.sqrt(fan_in)

        with torch.no_grad():
            for name in ("c1", "s2", "s4", "c5", "f6"):
                layer = getattr(self, name)
                bound = 2.4 / scale(_inputs_per_unit(layer) - 1, name)
                for p in layer.parameters():
                    p.copy_(draw(p.shape, bound))
            # C3's maps read 3, 4 or 6 S2 maps: each its own fan-in.
            c3 = self.c3
            fan = c3.table.sum(1).double() * 25  # 75, 100 or 150 inputs per C3 map
            bound = 2.4 / scale(fan)
            c3.weight.copy_(draw(c3.weight.shape, 1.0) * bound[c3.out_idx].view(-1, 1, 1))
            c3.bias.copy_(draw(c3.bias.shape, 1.0) * bound)

    def loss(self, out, y):
        return map_loss(out, y)

    @staticmethod
    def decide(out):
        """The smallest penalty wins."""
        return out.argmin(1)

    @staticmethod
    def probabilities(out):
        """The outputs are penalties, lowest best: the softmax of minus the penalties."""
        return torch.softmax(-out, 1)


INITS = ("printed", "sqrt", "pooled")


def map_loss(penalties: torch.Tensor, y: torch.Tensor, j: float = 1.0) -> torch.Tensor:
    """The paper's MAP criterion (its equation 9), averaged over the batch.

    E = y_D + log(exp(-j) + sum_i exp(-y_i)): the first term pulls the correct class's
    penalty down, the second pushes the others up; exp(-j) is the 'rubbish' class, and j is
    not given in the paper (1.0 is our choice).
    """
    correct = penalties.gather(1, y.view(-1, 1)).squeeze(1)
    rubbish = torch.full_like(correct, -j).unsqueeze(1)
    competition = torch.logsumexp(torch.cat([rubbish, -penalties], 1), 1)
    return (correct + competition).mean()


def _inputs_per_unit(layer):
    """Inputs one output unit reads (its bias counted as one), from the layer's own tensors."""
    if hasattr(layer, "inputs_per_unit"):
        return layer.inputs_per_unit()
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        return layer.in_channels // layer.groups * kh * kw + (layer.bias is not None)
    if isinstance(layer, nn.Linear):
        return layer.in_features + (layer.bias is not None)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        k = layer.kernel_size
        return k * k if isinstance(k, int) else k[0] * k[1]
    raise TypeError(f"no connection count for {type(layer).__name__}")


def layer_table(model: LeNet5) -> pd.DataFrame:
    """Layer, kind, output shape, trainable parameters and connections, counted from `model`.

    Parameters are the elements of the layer's trainable tensors; connections are the inputs
    each output unit reads (bias included) summed over the units, so the sparse C3 counts
    only its connected maps. Used by the architecture chapter and `lenet params`.
    """
    x = torch.zeros(1, 1, model.in_size, model.in_size, device=next(model.parameters()).device)
    with torch.no_grad():
        feats = model.features(x)
    rows = []
    for name in model.layers:
        layer = getattr(model, name)
        shape = tuple(feats[name].shape[1:])
        units = math.prod(shape)
        per_unit = _inputs_per_unit(layer)
        if isinstance(per_unit, list):  # one count per output map
            connections = sum(per_unit) * units // shape[0]
        else:
            connections = per_unit * units
        rows.append(
            {
                "layer": name.upper() if name != "output" else "OUTPUT",
                "kind": type(layer).__name__,
                "output_shape": "x".join(map(str, shape)),
                "params": sum(p.numel() for p in layer.parameters() if p.requires_grad),
                "fixed": sum(b.numel() for b in layer.buffers() if b.is_floating_point()),
                "connections": connections,
            }
        )
    df = pd.DataFrame(rows)
    total = {"layer": "TOTAL", "kind": "", "output_shape": ""}
    total.update(df[["params", "fixed", "connections"]].sum().to_dict())
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


class MLP(nn.Module):
    """Chapter 04's baseline: ReLU layers (300-100) on the 32x32 input, 10 cross-entropy outputs."""

    def __init__(self, hidden=(300, 100), scaling="standard"):
        super().__init__()
        self.scaling, sizes = scaling, (32 * 32, *hidden)
        hid = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), nn.ReLU())]
        self.net = nn.Sequential(nn.Flatten(), *hid, nn.Linear(sizes[-1], 10))

    def forward(self, x):
        return self.net(x)

    loss = LeNet5.loss
    decide, probabilities = staticmethod(LeNet5.decide), staticmethod(LeNet5.probabilities)


# "lush": registered by lush.py, which train.py imports (its network reuses this module's layers)
MODELS = {"notes": LeNet5, "paper": LeNet5Paper, "mlp": MLP}


def build_model(name: str = "notes", **kwargs) -> LeNet5:
    """'notes', 'paper' (1998), 'lush' (Lush's demo) or 'mlp' (04), with its class's kwargs."""

    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, not {name!r}")
    return MODELS[name](**kwargs)
