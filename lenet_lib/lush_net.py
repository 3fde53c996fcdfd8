"""Lush's LeNet-5 (lush.py) as G networks in one tensor, with a hand-written forward pass,
gradient and curvature, every operation batched over the networks: at one digit an update,
autograd's bookkeeping costs more than the network's arithmetic, and a batched operation
pays the per-call cost once for G updates. tests/test_lush.py checks it against autograd,
the paper network's recursion (sdlm_net.py) and BackPACK. Used by lush.py.
"""

from __future__ import annotations

import functools
import math
import shutil

import torch
import torch.nn.functional as F
from torch import nn

A, S = 1.7159, 2 / 3  # f(a) = A tanh(S a) = 2 A sigmoid(2 S a) - A
K = 4 * A * S  # f'(a) = K s (1 - s), s = sigmoid(2 S a)
MU = 0.02  # Lush's mu: each rate is eta / (h + MU)

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
        with torch.no_grad():
            self.flat = torch.stack([self._flatten(m) for m in models])
        self.params = _views(self.flat)
        self.step_fn = compiled_step() if compiled else step
        table = models[0].c3.table.repeat_interleave(25, 1).float()  # (16, 150)
        mask = [torch.ones(s) for s in SHAPES]
        mask[4] = table
        self.mask = torch.cat([m.flatten() for m in mask])

    @staticmethod
    def _flatten(m: nn.Module) -> torch.Tensor:
        w = [m.c1.weight, m.c1.bias, m.s2.weight, m.s2.bias, m.c3.full_weight(), m.c3.bias,
             m.s4.weight, m.s4.bias, m.c5.weight, m.c5.bias, m.output.weight, m.output.bias]  # fmt: skip
        return torch.cat([t.detach().flatten() for t in w])

    def write_back(self) -> None:
        """Copy each member's weights into its model (C3: only its connected kernels)."""
        for g, m in enumerate(self.models):
            W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = (p[g] for p in self.params)
            with torch.no_grad():
                m.c1.weight.copy_(W1.view(6, 1, 5, 5))
                m.c1.bias.copy_(b1.view(6))
                m.s2.weight.copy_(c2.view(6))
                m.s2.bias.copy_(b2.view(6))
                m.c3.weight.copy_(W3.view(16, 6, 5, 5)[m.c3.out_idx, m.c3.in_idx])
                m.c3.bias.copy_(b3.view(16))
                m.s4.weight.copy_(c4.view(16))
                m.s4.bias.copy_(b4.view(16))
                m.c5.weight.copy_(W5.view(120, 16, 5, 5))
                m.c5.bias.copy_(b5.view(120))
                m.output.weight.copy_(W6)
                m.output.bias.copy_(b6.view(10))

    def step(self, x, t, rates):
        """One digit per member: x (G, 32, 32) contiguous, t (G, 10, 1) its targets; then
        flat -= rates * the gradient of 0.5 |o - t|^2 (`step`, compiled where it can be).
        Returns the outputs before the update (G, 10, 1)."""
        return self.step_fn(self.flat, x, t, rates)

    def curvature(self, X, chunk: int = 50) -> torch.Tensor:
        """h of every weight of every member (G, SIZE): Lush's Gauss-Newton diagonal, 1 per
        output at the loss, back-propagated with squared terms and averaged over the digits X
        (N, 32, 32)."""
        h = torch.zeros_like(self.flat)
        for g in range(len(self.models)):
            member = [p[g : g + 1] for p in self.params]
            for i in range(0, len(X), chunk):
                c, out = forward(X[i : i + chunk], member)
                terms = backward(c, torch.ones_like(out), member, square=True)
                h[g] += torch.cat([t.sum(0).flatten() for t in terms])
        return h / len(X)

    def rates(self, h: torch.Tensor, eta: float) -> torch.Tensor:
        """eta / (h + MU) per weight (G, SIZE); zero for C3's unconnected kernels."""
        return eta / (h + MU) * self.mask


def forward(x, params):
    """x (N, 32, 32), contiguous, through N networks: `params` (the 12 tensors of `_views`)
    with a leading dimension N, or 1 (one network for every digit). Returns what `backward`
    needs, as a dict, and the outputs (N, 10, 1)."""
    W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = params
    N, t = x.shape[0], 2 * S
    W1, W3, W5, W6 = (w.expand(N, -1, -1) for w in (W1, W3, W5, W6))
    # C1's 784 positions in the order (a, b, i, j) for row 2i+a, column 2j+b: S2's 2x2
    # sums and their transpose are then sums over contiguous blocks of 196.
    cols1 = x.as_strided((N, 5, 5, 2, 2, 14, 14), (1024, 32, 1, 32, 1, 64, 2))
    cols1 = cols1.reshape(N, 25, 784)
    s1 = torch.baddbmm(b1, W1, cols1, beta=t, alpha=t).sigmoid_()  # (N, 6, 784)
    p2 = s1.view(N, 6, 4, 196).sum(2).mul_(2 * A).sub_(4 * A)  # S2's 2x2 sums of C1
    s2 = torch.addcmul(b2, p2, c2).mul_(t).sigmoid_()  # (N, 6, 196)
    x2 = s2.mul(2 * A).sub_(A)
    cols3 = x2.as_strided((N, 6, 5, 5, 10, 10), (1176, 196, 14, 1, 14, 1)).reshape(N, 150, 100)
    s3 = torch.baddbmm(b3, W3, cols3, beta=t, alpha=t).sigmoid_()  # (N, 16, 100)
    p4 = _pool(s3, 16, 5).mul_(2 * A).sub_(4 * A)  # (N, 16, 25)
    s4 = torch.addcmul(b4, p4, c4).mul_(t).sigmoid_()
    x4 = s4.mul(2 * A).sub_(A).view(N, 400, 1)
    s5 = torch.baddbmm(b5, W5, x4, beta=t, alpha=t).sigmoid_()  # (N, 120, 1)
    x5 = s5.mul(2 * A).sub_(A)
    s6 = torch.baddbmm(b6, W6, x5, beta=t, alpha=t).sigmoid_()  # (N, 10, 1)
    out = s6.mul(2 * A).sub_(A)
    c = dict(cols1=cols1, s1=s1, p2=p2, s2=s2, cols3=cols3, s3=s3, p4=p4, s4=s4, x4=x4,
             s5=s5, x5=x5, s6=s6)  # fmt: skip
    return c, out


def backward(c, g, params, square=False):
    """Back-propagate g (N, 10, 1), a derivative with respect to the outputs, through the
    networks cached by `forward`; returns the 12 weight tensors' derivatives per network,
    each (N, *shape).

    square=False: g is dE/do and this is the gradient. square=True: g is d2E/do2 and this
    is Lush's `bbprop`: the same pass with every weight, input and f'(a) squared (a shared
    weight gets the sum of its connections' terms: the paper's equations 22-25).
    """
    W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = params
    N = g.shape[0]

    def fp(s):  # f'(a), or its square
        d = torch.addcmul(s, s, s, value=-1).mul_(K)
        return d.mul_(d) if square else d

    def sq(v):
        return v * v if square else v

    def sums(d, x=None):  # over a map's positions: (N, maps, 1)
        return (d if x is None else d * sq(x)).sum(2, keepdim=True)

    W3, W5, W6, c2, c4 = (sq(w) for w in (W3, W5, W6, c2, c4))
    d6 = fp(c["s6"]).mul_(g)  # (N, 10, 1)
    d5 = fp(c["s5"]).mul_(torch.matmul(W6.transpose(1, 2), d6))  # (N, 120, 1)
    d4 = fp(c["s4"]).mul_(torch.matmul(W5.transpose(1, 2), d5).view(N, 16, 25))
    e4 = (d4 * c4).view(N, 16, 5, 1, 5, 1)  # each input of a 2x2 block: c times its sum's
    d3 = fp(c["s3"]).view(N, 16, 5, 2, 5, 2).mul_(e4).view(N, 16, 100)
    back = F.fold(torch.matmul(W3.transpose(1, 2), d3), (14, 14), 5).view(N, 6, 196)
    d2 = fp(c["s2"]).mul_(back)
    e2 = (d2 * c2).view(N, 6, 1, 196)
    d1 = fp(c["s1"]).view(N, 6, 4, 196).mul_(e2).view(N, 6, 784)

    def outer(d, x):
        return torch.bmm(d, sq(x).transpose(1, 2))

    return [
        outer(d1, c["cols1"]), sums(d1), sums(d2, c["p2"]), sums(d2),
        outer(d3, c["cols3"]), sums(d3), sums(d4, c["p4"]), sums(d4),
        outer(d5, c["x4"]), d5, outer(d6, c["x5"]), d6,
    ]  # fmt: skip


def step(flat, x, t, rates):
    """One digit for each of G networks: x (G, 32, 32) contiguous, t (G, 10, 1) its
    targets; flat (G, SIZE) -= rates * the gradient of 0.5 |o - t|^2. Returns the outputs
    before the update (G, 10, 1)."""
    params = _views(flat)
    c, out = forward(x, params)
    grads = backward(c, out - t, params)
    flat.addcmul_(rates, torch.cat([q.flatten(1) for q in grads], 1), value=-1)
    return out


def can_compile() -> bool:
    """Whether torch.compile can build the step here: it needs a C++ compiler."""
    return shutil.which("g++") is not None or shutil.which("c++") is not None


@functools.cache
def compiled_step():
    """`step` compiled by torch.compile (inductor's C++ kernels, C++ wrapper): about twice the
    eager step's digits per second on one core here (benchmarks/lush_step.py). Compiling
    takes 20-40 s the first time in a machine, seconds once its cache holds it."""
    import torch._inductor.config as inductor

    inductor.cpp_wrapper = True
    return torch.compile(step, dynamic=False)
