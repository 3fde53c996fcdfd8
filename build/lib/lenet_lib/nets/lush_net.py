"""Lush's LeNet-5 (lush.py) as G networks in one tensor, with a hand-written forward pass,
gradient and curvature, every operation batched over the networks: at one digit an update,
autograd's bookkeeping costs more than the network's arithmetic, and a batched operation
pays the per-call cost once for G updates. tests/test_lush.py checks it against autograd,
the paper network's recursion (sdlm_net.py) and BackPACK. Used by lush.py.
"""

from __future__ import annotations

import collections
import functools
import math
import shutil

import torch
import torch.nn.functional as F
from torch import nn

A, S = 1.7159, 2 / 3  # f(a) = A tanh(S a) = 2 A sigmoid(2 S a) - A
K = 4 * A * S  # f'(a) = K s (1 - s), s = sigmoid(2 S a)
MU = 0.02  # Lush's mu: each rate is eta / (h + MU)

# The architecture a group trains (issue 27's ladder, lush.CHANGES): ReLU instead of the
# squashing function in C1 to C5, max pooling instead of the S layers, linear outputs with
# softmax and cross-entropy instead of squashed outputs and the squared distance.
Arch = collections.namedtuple("Arch", "relu maxpool ce", defaults=(False, False, False))
LUSH = Arch()

NAMES = ("W1", "b1", "c2", "b2", "W3", "b3", "c4", "b4", "W5", "b5", "W6", "b6")
SHAPES = ((6, 25), (6, 1), (6, 1), (6, 1), (16, 150), (16, 1), (16, 1), (16, 1), (120, 400),
          (120, 1), (10, 120), (10, 1))  # fmt: skip
SIZE = sum(math.prod(s) for s in SHAPES)


def _views(flat: torch.Tensor):
    """The 12 weight tensors of each member as views of `flat` (G, SIZE): (G, *shape)."""
    out, i = [], 0
    for shape in SHAPES:
        n = math.prod(shape)
        out.append(flat[:, i : i + n].view(-1, *shape))
        i += n
    return out


def _pool(s, c, n):
    """Sums of the 2x2 blocks of c maps of side 2n, (G, c, 4 n^2) -> (G, c, n^2)."""
    G = s.shape[0]
    v = s.view(G, c, n, 2, 2 * n)
    v = (v[:, :, :, 0] + v[:, :, :, 1]).view(G, c, n * n, 2)
    return v[..., 0] + v[..., 1]


class Group:
    """G Lush networks (lush.LeNet5Lush) as one tensor `flat` (G, SIZE), with a hand-written forward pass,
    gradient and Lush's curvature, every operation batched over the members.

    C3 is held full, 16 x (6*25): its unconnected kernels are zero and get rate zero, so they
    stay zero. Member g's weights read and write back to `models[g]`.
    """

    def __init__(self, models: list[nn.Module], compiled: bool = False):
        self.models = models
        self.arch = models[0].arch
        if any(m.arch != self.arch for m in models):
            raise ValueError("a group's networks share one architecture")
        with torch.no_grad():
            self.flat = torch.stack([self._flatten(m) for m in models])
        self.params = _views(self.flat)
        self.step_fn = (
            compiled_step(self.arch) if compiled else functools.partial(step, arch=self.arch)
        )
        table = models[0].c3.table.repeat_interleave(25, 1).float()  # (16, 150)
        mask = [torch.ones(s) for s in SHAPES]
        mask[4] = table
        if self.arch.maxpool:  # no S coefficients or biases: their slots stay 0
            for i in (2, 3, 6, 7):
                mask[i].zero_()
        self.mask = torch.cat([m.flatten() for m in mask])

    @staticmethod
    def _flatten(m: nn.Module) -> torch.Tensor:
        if m.arch.maxpool:  # no S layers: zeros in their slots
            s2, s4 = (torch.zeros(6), torch.zeros(6)), (torch.zeros(16), torch.zeros(16))
        else:
            s2, s4 = (m.s2.weight, m.s2.bias), (m.s4.weight, m.s4.bias)
        w = [m.c1.weight, m.c1.bias, *s2, m.c3.full_weight(), m.c3.bias, *s4,
             m.c5.weight, m.c5.bias, m.output.weight, m.output.bias]  # fmt: skip
        return torch.cat([t.detach().flatten() for t in w])

    def write_back(self) -> None:
        """Copy each member's weights into its model (C3: only its connected kernels)."""
        for g, m in enumerate(self.models):
            W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = (p[g] for p in self.params)
            with torch.no_grad():
                m.c1.weight.copy_(W1.view(6, 1, 5, 5))
                m.c1.bias.copy_(b1.view(6))
                if not self.arch.maxpool:
                    m.s2.weight.copy_(c2.view(6))
                    m.s2.bias.copy_(b2.view(6))
                    m.s4.weight.copy_(c4.view(16))
                    m.s4.bias.copy_(b4.view(16))
                m.c3.weight.copy_(W3.view(16, 6, 5, 5)[m.c3.out_idx, m.c3.in_idx])
                m.c3.bias.copy_(b3.view(16))
                m.c5.weight.copy_(W5.view(120, 16, 5, 5))
                m.c5.bias.copy_(b5.view(120))
                m.output.weight.copy_(W6)
                m.output.bias.copy_(b6.view(10))

    def step(self, x, t, rates):
        """One digit per member: x (G, 32, 32) contiguous, t (G, 10, 1) its targets; then
        flat -= rates * the gradient of the loss (`step`, compiled where it can be).
        Returns the outputs before the update (G, 10, 1)."""
        return self.step_fn(self.flat, x, t, rates)

    def curvature(self, X, chunk: int = 50) -> torch.Tensor:
        """h of every weight of every member (G, SIZE): Lush's Gauss-Newton diagonal, 1 per
        output at the loss (cross-entropy: p (1 - p) per output, the diagonal of its
        Gauss-Newton matrix at the outputs), back-propagated with squared terms and averaged
        over the digits X (N, 32, 32)."""
        h = torch.zeros_like(self.flat)
        for g in range(len(self.models)):
            member = [p[g : g + 1] for p in self.params]
            for i in range(0, len(X), chunk):
                c, out = forward(X[i : i + chunk], member, self.arch)
                if self.arch.ce:
                    p = out.softmax(1)
                    at_output = p * (1 - p)
                else:
                    at_output = torch.ones_like(out)
                terms = backward(c, at_output, member, square=True, arch=self.arch)
                h[g] += torch.cat([t.sum(0).flatten() for t in terms])
        return h / len(X)

    def rates(self, h: torch.Tensor, eta: float) -> torch.Tensor:
        """eta / (h + MU) per weight (G, SIZE); zero for C3's unconnected kernels."""
        return eta / (h + MU) * self.mask


def _max4(y, c, n):
    """2x2 max pooling of c maps of side 2n held as (N, c, 4 n^2), row-major: the maxima
    (N, c, n^2) and which of each block's four won (N, c, n^2, 1)."""
    N = y.shape[0]
    blocks = y.view(N, c, n, 2, n, 2).permute(0, 1, 2, 4, 3, 5).reshape(N, c, n * n, 4)
    m, idx = blocks.max(3, keepdim=True)
    return m.squeeze(3), idx


def _unmax4(d, idx, c, n):
    """`_max4`'s transpose: d (N, c, n^2) to the winners of the blocks, (N, c, 4 n^2)."""
    N = d.shape[0]
    out = d.new_zeros(N, c, n * n, 4).scatter_(3, idx, d.unsqueeze(3))
    return out.view(N, c, n, n, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(N, c, 4 * n * n)


def forward(x, params, arch: Arch = LUSH):
    """x (N, 32, 32), contiguous, through N networks: `params` (the 12 tensors of `_views`)
    with a leading dimension N, or 1 (one network for every digit). Returns what `backward`
    needs, as a dict, and the outputs (N, 10, 1).

    A squashed unit keeps s = sigmoid(2 S a) (its output is 2 A s - A); a ReLU unit its output.
    """
    W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = params
    N = x.shape[0]
    t = 1.0 if arch.relu else 2 * S  # the sum's factor inside the unit

    def unit(a):  # a already times t: s, in place
        return a.relu_() if arch.relu else a.sigmoid_()

    def value(s):  # the units' outputs
        return s if arch.relu else s.mul(2 * A).sub_(A)

    W1, W3, W5, W6 = (w.expand(N, -1, -1) for w in (W1, W3, W5, W6))
    c = {}
    # C1's 784 positions in the order (a, b, i, j) for row 2i+a, column 2j+b: S2's 2x2
    # sums and their transpose are then sums over contiguous blocks of 196.
    cols1 = x.as_strided((N, 5, 5, 2, 2, 14, 14), (1024, 32, 1, 32, 1, 64, 2))
    c["cols1"] = cols1 = cols1.reshape(N, 25, 784)
    c["s1"] = s1 = unit(torch.baddbmm(b1, W1, cols1, beta=t, alpha=t))  # (N, 6, 784)
    if arch.maxpool:
        x2, c["i2"] = value(s1).view(N, 6, 4, 196).max(2, keepdim=True)
        x2 = x2.view(N, 6, 196)
    else:  # S2's 2x2 sums of C1
        y1 = s1.view(N, 6, 4, 196).sum(2)
        c["p2"] = p2 = y1 if arch.relu else y1.mul_(2 * A).sub_(4 * A)
        c["s2"] = s2 = unit(torch.addcmul(b2, p2, c2).mul_(t))  # (N, 6, 196)
        x2 = value(s2)
    cols3 = x2.as_strided((N, 6, 5, 5, 10, 10), (1176, 196, 14, 1, 14, 1)).reshape(N, 150, 100)
    c["cols3"] = cols3
    c["s3"] = s3 = unit(torch.baddbmm(b3, W3, cols3, beta=t, alpha=t))  # (N, 16, 100)
    if arch.maxpool:
        x4, c["i4"] = _max4(value(s3), 16, 5)
    else:
        y3 = _pool(s3, 16, 5)  # (N, 16, 25)
        c["p4"] = p4 = y3 if arch.relu else y3.mul_(2 * A).sub_(4 * A)
        c["s4"] = s4 = unit(torch.addcmul(b4, p4, c4).mul_(t))
        x4 = value(s4)
    c["x4"] = x4 = x4.reshape(N, 400, 1)
    c["s5"] = s5 = unit(torch.baddbmm(b5, W5, x4, beta=t, alpha=t))  # (N, 120, 1)
    c["x5"] = x5 = value(s5)
    if arch.ce:  # linear outputs
        out = torch.baddbmm(b6, W6, x5)
    else:
        c["s6"] = s6 = torch.baddbmm(b6, W6, x5, beta=2 * S, alpha=2 * S).sigmoid_()
        out = s6.mul(2 * A).sub_(A)  # (N, 10, 1)
    return c, out


def backward(c, g, params, square=False, arch: Arch = LUSH):
    """Back-propagate g (N, 10, 1), a derivative with respect to the outputs, through the
    networks cached by `forward`; returns the 12 weight tensors' derivatives per network,
    each (N, *shape) (the S layers' zero under max pooling).

    square=False: g is dE/do and this is the gradient. square=True: g is d2E/do2 and this
    is Lush's `bbprop`: the same pass with every weight, input and f'(a) squared (a shared
    weight gets the sum of its connections' terms: the paper's equations 22-25).
    """
    W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = params
    N = g.shape[0]

    def fp(s, relu=arch.relu):  # f'(a), or its square
        if relu:
            return (s > 0).to(s.dtype)
        d = torch.addcmul(s, s, s, value=-1).mul_(K)
        return d.mul_(d) if square else d

    def sq(v):
        return v * v if square else v

    def sums(d, x=None):  # over a map's positions: (N, maps, 1)
        return (d if x is None else d * sq(x)).sum(2, keepdim=True)

    W3, W5, W6, c2, c4 = (sq(w) for w in (W3, W5, W6, c2, c4))
    d6 = g if arch.ce else fp(c["s6"], relu=False).mul_(g)  # (N, 10, 1)
    d5 = fp(c["s5"]).mul_(torch.matmul(W6.transpose(1, 2), d6))  # (N, 120, 1)
    back4 = torch.matmul(W5.transpose(1, 2), d5).view(N, 16, 25)
    if arch.maxpool:
        d3 = fp(c["s3"]).mul_(_unmax4(back4, c["i4"], 16, 5))
        d4 = None
    else:
        d4 = fp(c["s4"]).mul_(back4)
        e4 = (d4 * c4).view(N, 16, 5, 1, 5, 1)  # each input of a 2x2 block: c times its sum's
        d3 = fp(c["s3"]).view(N, 16, 5, 2, 5, 2).mul_(e4).view(N, 16, 100)
    back = F.fold(torch.matmul(W3.transpose(1, 2), d3), (14, 14), 5).view(N, 6, 196)
    if arch.maxpool:
        e2 = back.new_zeros(N, 6, 4, 196).scatter_(2, c["i2"], back.unsqueeze(2))
        d1 = fp(c["s1"]).mul_(e2.view(N, 6, 784))
        d2 = None
    else:
        d2 = fp(c["s2"]).mul_(back)
        e2 = (d2 * c2).view(N, 6, 1, 196)
        d1 = fp(c["s1"]).view(N, 6, 4, 196).mul_(e2).view(N, 6, 784)

    def outer(d, x):
        return torch.bmm(d, sq(x).transpose(1, 2))

    if arch.maxpool:
        s2 = [g.new_zeros(N, 6, 1), g.new_zeros(N, 6, 1)]
        s4 = [g.new_zeros(N, 16, 1), g.new_zeros(N, 16, 1)]
    else:
        s2, s4 = [sums(d2, c["p2"]), sums(d2)], [sums(d4, c["p4"]), sums(d4)]
    return [
        outer(d1, c["cols1"]), sums(d1), *s2,
        outer(d3, c["cols3"]), sums(d3), *s4,
        outer(d5, c["x4"]), d5, outer(d6, c["x5"]), d6,
    ]  # fmt: skip


def loss_gradient(out, t, arch: Arch = LUSH):
    """dE/do for outputs (G, 10, 1) and +-1 targets t: o - t for 0.5 |o - t|^2; for
    cross-entropy, softmax(o) - the one-hot class."""
    if arch.ce:
        return out.softmax(1) - (t + 1) / 2
    return out - t


def step(flat, x, t, rates, arch: Arch = LUSH):
    """One digit for each of G networks: x (G, 32, 32) contiguous, t (G, 10, 1) its +-1
    targets; flat (G, SIZE) -= rates * the gradient of the loss. Returns the outputs
    before the update (G, 10, 1)."""
    params = _views(flat)
    c, out = forward(x, params, arch)
    grads = backward(c, loss_gradient(out, t, arch), params, arch=arch)
    flat.addcmul_(rates, torch.cat([q.flatten(1) for q in grads], 1), value=-1)
    return out


def can_compile() -> bool:
    """Whether torch.compile can build the step here: it needs a C++ compiler."""
    return shutil.which("g++") is not None or shutil.which("c++") is not None


@functools.cache
def compiled_step(arch: Arch = LUSH):
    """`step` compiled by torch.compile (inductor's C++ kernels, C++ wrapper): about twice the
    eager step's digits per second on one core here (benchmarks/lush_step.py). Compiling
    takes 20-40 s the first time in a machine, seconds once its cache holds it."""
    import torch._inductor.config as inductor

    inductor.cpp_wrapper = True
    return torch.compile(functools.partial(step, arch=arch), dynamic=False)


def macs_per_update() -> int:
    """Multiply-adds of one per-digit update as `step` computes it (C3 held full, 16 x 150):
    the forward pass, each layer's weight gradient (as many again), and the gradient passed
    back through the output layer, C5 and C3 (C1's input needs none). The S layers and the
    squashing add a few thousand more, left out."""
    layers = {"C1": 6 * 25 * 784, "C3": 16 * 150 * 100, "C5": 120 * 400, "output": 10 * 120}
    forward = sum(layers.values())
    back_to_inputs = layers["C3"] + layers["C5"] + layers["output"]
    return 2 * forward + back_to_inputs
