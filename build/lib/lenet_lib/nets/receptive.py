"""Receptive fields and shifts: where each layer looks in the input, and what a shifted input
does to each layer.

Used by the convolution chapter (04: shift equivariance and sensitivity, local receptive
fields) and the architecture chapter (05: receptive-field sizes and centres, the C3 wiring).
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .models import LeNet5, Subsampling, scaled_tanh


def shift(X: torch.Tensor, dy: int, dx: int, fill: float | None = None) -> torch.Tensor:
    """Images (..., H, W) moved down by `dy` and right by `dx` pixels (negative: up, left).

    What moves out of the field is lost; the uncovered border takes `fill`, by default each
    image's top-left pixel (its background). Chapter 04.
    """
    H, W = X.shape[-2:]
    if abs(dy) >= H or abs(dx) >= W:
        raise ValueError(f"shift ({dy}, {dx}) is larger than the {H}x{W} field")
    if fill is None:
        out = X[..., :1, :1].expand_as(X).clone()
    else:
        out = torch.full_like(X, fill)
    out[..., max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = X[
        ..., max(-dy, 0) : H - max(dy, 0), max(-dx, 0) : W - max(dx, 0)
    ]
    return out


def shift_error(ref: torch.Tensor, moved: torch.Tensor, dy: int, dx: int) -> float:
    """Largest |moved - ref shifted by (dy, dx)| where both are defined, i.e. away from the
    border the shift uncovers: 0 when `moved` is exactly `ref` shifted. Chapter 04."""
    H, W = ref.shape[-2:]
    a = moved[..., max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)]
    b = ref[..., max(-dy, 0) : H - max(dy, 0), max(-dx, 0) : W - max(dx, 0)]
    return (a - b).abs().max().item()


@torch.no_grad()
def shift_changes(model: LeNet5, X: torch.Tensor, shifts, y=None, seed: int = 0) -> pd.DataFrame:
    """How far each layer's output moves when the inputs X (N, 1, H, W) are shifted.

    For each (dy, dx) in `shifts` and each layer: `change`, the mean over the images of
    ||f(shifted x) - f(x)||, divided by `reference`, the mean ||f(x') - f(x)|| between each
    image and another image of X (a random pairing drawn from `seed`): 1 means a shift moves
    the layer as far as replacing the digit by another one. For the C1 maps, `c1_shift_error`
    is the largest difference between the maps of the shifted image and the shifted maps
    (see `shift_error`); for the output, `same_decision` is the share of images whose decided
    class is unchanged and `prob_change` the mean absolute change of the probability of the
    class decided on the unshifted image; with the labels `y`, `accuracy` is the share of
    shifted images correctly classified. Chapter 04.
    """
    model.eval()
    base = model.features(X)
    gen = torch.Generator().manual_seed(seed)
    base_other = model.features(X[torch.randperm(len(X), generator=gen)])
    decided = model.decide(base["output"])
    p0 = model.probabilities(base["output"]).gather(1, decided[:, None]).squeeze(1)
    rows = []
    for dy, dx in shifts:
        feats = model.features(shift(X, dy, dx))
        for name in model.layers:
            a, b = base[name].flatten(1), feats[name].flatten(1)
            ref = (base_other[name].flatten(1) - a).norm(dim=1).mean().item()
            row = {"dy": dy, "dx": dx, "layer": name.upper() if name != "output" else "OUTPUT"}
            row["change"] = (b - a).norm(dim=1).mean().item() / ref
            row["reference"] = ref
            if name == "c1":
                row["c1_shift_error"] = shift_error(base[name], feats[name], dy, dx)
            if name == "output":
                row["same_decision"] = (model.decide(feats[name]) == decided).float().mean().item()
                p = model.probabilities(feats[name]).gather(1, decided[:, None]).squeeze(1)
                row["prob_change"] = (p - p0).abs().mean().item()
                if y is not None:
                    row["accuracy"] = (model.decide(feats[name]) == y).float().mean().item()
            rows.append(row)
    return pd.DataFrame(rows)


def geometry(model: LeNet5) -> list[tuple[str, int, int, int]]:
    """(layer, kernel, stride, padding) of the spatial layers C1 to C5 of a LeNet5."""
    out = []
    for name in ("c1", "s2", "c3", "s4", "c5"):
        layer = getattr(model, name)
        if isinstance(layer, nn.Conv2d):
            k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
        elif isinstance(layer, Subsampling):
            k, s, p = 2, 2, 0
        else:  # SparseConv2d
            k, s, p = layer.shape[2], 1, 0
        out.append((name.upper(), k, s, p))
    return out


def output_side(W: int, K: int, S: int, P: int, rounding=math.floor) -> int:
    """Output side of a layer with kernel K, stride S and padding P on a W-wide input:
    rounding((W - K + 2P) / S) + 1. PyTorch's convolutions and poolings round down
    (`math.floor`); the notes' formula rounds up (`math.ceil`). Chapter 05."""
    return rounding((W - K + 2 * P) / S) + 1


def output_sides(model: LeNet5) -> pd.DataFrame:
    """For each spatial layer of `model`: its input side W, kernel K, stride S, padding P, the
    output side by the ceiling formula (the notes'), by the floor, and the real one from a
    forward pass. Chapter 05."""
    feats = model.features(torch.zeros(1, 1, model.in_size, model.in_size))
    rows, W = [], model.in_size
    for name, K, S, P in geometry(model):
        out = feats[name.lower()]
        real = out.shape[-1] if out.dim() == 4 else 1  # C5's 1x1 maps come out flattened
        rows.append({"layer": name, "W": W, "K": K, "S": S, "P": P,
                     "ceil (notes)": output_side(W, K, S, P, math.ceil),
                     "floor": output_side(W, K, S, P), "real": real})  # fmt: skip
        W = real
    return pd.DataFrame(rows)


def size_cases(cases) -> pd.DataFrame:
    """For each (W, K, S, P) in `cases`: the output side by the ceiling formula and by the
    floor, and the sides PyTorch gives for a convolution, a max pooling and a max pooling with
    `ceil_mode=True`, each on a W x W input. Chapter 05."""
    rows = []
    for W, K, S, P in cases:
        x = torch.zeros(1, 1, W, W)
        rows.append({"W": W, "K": K, "S": S, "P": P,
                     "ceil (notes)": output_side(W, K, S, P, math.ceil),
                     "floor": output_side(W, K, S, P),
                     "Conv2d": nn.Conv2d(1, 1, K, S, P)(x).shape[-1],
                     "MaxPool2d": nn.MaxPool2d(K, S, P)(x).shape[-1],
                     "MaxPool2d ceil_mode": nn.MaxPool2d(K, S, P, ceil_mode=True)(x).shape[-1]})  # fmt: skip
    return pd.DataFrame(rows)


def c3_reads(model: LeNet5, row: int = 5, col: int = 5, seed: int = 0) -> torch.Tensor:
    """How many positions of each S2 map one unit (`row`, `col`) of each C3 map depends on,
    found by autograd on a random S2 input: an int tensor (C3 maps, S2 maps). A C3 map wired
    to an S2 map reads a K x K window of it, and nothing of the maps it is not wired to.
    Chapter 05."""
    shape = model.features(torch.zeros(1, 1, model.in_size, model.in_size))["s2"].shape
    s2 = torch.randn(shape, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    out = model.c3(s2)
    reads = []
    for k in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[0, k, row, col], s2, retain_graph=True)
        reads.append((grad[0] != 0).flatten(1).sum(1))
    return torch.stack(reads)


def receptive_fields(model: LeNet5) -> pd.DataFrame:
    """Receptive field of each spatial layer, in input pixels, by the usual recurrence.

    Pixel p of the input covers [p, p + 1). Unit i of a layer sees [start + i * jump,
    start + i * jump + size); its centre is the middle of that interval. Columns: units per
    side, size, jump (the distance between neighbouring units' fields), the first and last
    centres, and `centre_span`, units * jump: the side of the area the centres tile when each
    stands for a jump x jump cell. Chapter 05.
    """
    n, start, jump, size = model.in_size, 0.0, 1, 1
    rows = [{"layer": "INPUT", "units": n, "size": 1, "jump": 1}]
    for name, k, s, p in geometry(model):
        n = math.floor((n + 2 * p - k) / s) + 1
        start, size, jump = start - p * jump, size + (k - 1) * jump, jump * s
        rows.append({"layer": name, "units": n, "size": size, "jump": jump, "start": start})
    df = pd.DataFrame(rows)
    df.loc[0, "start"] = 0.0
    df["first_centre"] = df["start"] + df["size"] / 2
    df["last_centre"] = df["first_centre"] + (df["units"] - 1) * df["jump"]
    df["centre_span"] = df["units"] * df["jump"]
    return df


def input_support(model: LeNet5, layer: str, unit: tuple, x: torch.Tensor | None = None):
    """Boolean mask (H, W) of the input pixels on which one unit of `layer` depends, found by
    autograd: the pixels where its gradient is non-zero. `unit` indexes the layer's output of
    one image, e.g. (map, row, column). Use a model whose nonlinearities have no flat parts
    (LeNet5Paper): a ReLU or a max pooling zeroes gradients inside the field. Chapters 04, 05.
    """
    if x is None:
        x = torch.randn(
            1, 1, model.in_size, model.in_size, generator=torch.Generator().manual_seed(0)
        )
    x = x.detach().clone().requires_grad_(True)
    model.features(x)[layer][(0, *unit)].backward()
    return x.grad[0, 0] != 0


def on_off_levels(maps: torch.Tensor, off: torch.Tensor, q: float = 0.99):
    """The 'off' and 'on' values of each of the C maps (N, C, H, W): `off` is given (the map's
    response to a blank input); 'on' is the q-quantile of the values on the side where the map
    departs furthest from 'off' (a map may answer a stroke by going up or down). Chapter 04.
    """
    d = (maps - off.view(1, -1, 1, 1)).transpose(0, 1).flatten(1)
    hi, lo = torch.quantile(d, q, dim=1), torch.quantile(d, 1 - q, dim=1)
    return off, off + torch.where(hi.abs() >= lo.abs(), hi, lo)


def threshold_subsampling(off: torch.Tensor, on: torch.Tensor, gain: float, count: float):
    """A `Subsampling` layer set so that, before squashing, each unit computes
    gain * (n - count), where n is the sum over its 2x2 block of (x - off) / (on - off): the
    number of its inputs that are 'on'. With count 0.5 and a large gain it is an OR of the four
    inputs, with count 3.5 an AND, and with count 2 and a small gain a scaled blur.
    Chapter 04.
    """
    layer = Subsampling(len(off))
    with torch.no_grad():
        layer.weight.copy_(gain / (on - off))
        layer.bias.copy_(-gain * (4 * off / (on - off) + count))
    return layer


@torch.no_grad()
def shift_accuracy(model, X: torch.Tensor, y: torch.Tensor, max_shift: int) -> pd.Series:
    """Accuracy (%) of `model` on the digits X moved by k = 0 .. `max_shift` pixels, the mean
    over the four directions (up, down, left, right); any model with `decide`, the MLP
    baseline included. Chapter 04."""
    model.eval()
    acc = {}
    for k in range(max_shift + 1):
        moves = [(0, 0)] if k == 0 else [(k, 0), (-k, 0), (0, k), (0, -k)]
        hits = [(model.decide(model(shift(X, dy, dx))) == y).float().mean() for dy, dx in moves]
        acc[k] = 100 * torch.stack(hits).mean().item()
    return pd.Series(acc, name="accuracy").rename_axis("k")


def warp(X: torch.Tensor, scale: float = 1.0, angle: float = 0.0) -> torch.Tensor:
    """Digits X (N, 1, H, W) scaled by `scale` and rotated by `angle` degrees about the
    field's centre (bilinear); the uncovered area takes each image's background, its top-left
    pixel. Chapter 04 (scale and distortion)."""
    t = math.radians(angle)
    cos, sin = math.cos(t) / scale, math.sin(t) / scale
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=X.dtype).expand(len(X), 2, 3)
    grid = F.affine_grid(theta, list(X.shape), align_corners=False)
    bg = X[..., :1, :1]
    return F.grid_sample(X - bg, grid, align_corners=False) + bg


@torch.no_grad()
def warp_accuracy(model, X: torch.Tensor, y: torch.Tensor, warps: dict) -> pd.Series:
    """Accuracy (%) of `model` on the digits X under each named (scale, angle) of `warps`
    (see `warp`). Chapter 04."""
    model.eval()
    hits = {name: model.decide(model(warp(X, *sa))) == y for name, sa in warps.items()}
    return pd.Series({name: 100 * h.float().mean().item() for name, h in hits.items()})


# --- the trainable subsampling as a blur or a gate (chapter 04) -----------------------------


@torch.no_grad()
def c1_levels(model: LeNet5, X: torch.Tensor):
    """The C1 maps of the digits X and each map's 'off' and 'on' levels (`on_off_levels`, off
    being the map's response to a blank input of X's background). Chapter 04."""
    c1 = model.features(X)["c1"]
    blank = torch.full_like(X[:1], float(X[0, 0, 0, 0]))  # the corner pixel is background
    return (c1, *on_off_levels(c1, model.features(blank)["c1"][0, :, 0, 0]))


@torch.no_grad()
def gate_measures(c1, off, on, gains, counts=(("OR", 0.5), ("AND", 3.5))) -> pd.DataFrame:
    """What a subsampling layer set by `threshold_subsampling` makes of real C1 maps, per gain
    and gate: `R2 linear`, the share of the output's variance a straight line in the block's
    average explains (1: a pure blur); `Boolean share`, the outputs within 10% of the ends of
    the squashing range; `sign agrees %`, how often the output's sign is the OR (AND) of the
    block's inputs, each counted on when more than halfway from off to on. Chapter 04."""
    z = (c1 - off.view(1, -1, 1, 1)) / (on - off).view(1, -1, 1, 1)
    mean, hit = F.avg_pool2d(z, 2).flatten(), (z > 0.5).float()
    target = {"OR": F.max_pool2d(hit, 2), "AND": -F.max_pool2d(-hit, 2)}
    rows = []
    for g in gains:
        for gate, t in counts:
            out = scaled_tanh(threshold_subsampling(off, on, g, t)(c1))
            r = torch.corrcoef(torch.stack([out.flatten(), mean]))[0, 1].item()
            rows.append(
                {
                    "gain": g,
                    "gate": gate,
                    "R2 linear": r**2,
                    "Boolean share": (out.abs() > 0.9 * 1.7159).float().mean().item(),
                    "sign agrees %": 100
                    * ((out > 0).float() == target[gate]).float().mean().item(),
                }
            )
    return pd.DataFrame(rows)


def s2_gains(model: LeNet5, off, on) -> pd.DataFrame:
    """The paper network's own S2 units in the terms of `threshold_subsampling`: per map the
    coefficient w, the bias b, the gain g = w (on - off) and the threshold t (in inputs on),
    given the C1 levels `off` and `on` (`c1_levels`). Chapter 04."""
    w, b = model.s2.weight.detach(), model.s2.bias.detach()
    gain = w * (on - off)
    return pd.DataFrame(
        {"w": w, "b": b, "gain": gain, "threshold": -b / gain - 4 * off / (on - off)}
    ).rename_axis("map")
