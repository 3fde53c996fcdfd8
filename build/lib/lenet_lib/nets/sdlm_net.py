"""LeNet5Paper's forward pass, gradient and Gauss-Newton curvature, hand-written for the
paper's per-digit training (sdlm.py).

At one digit per update, autograd's bookkeeping costs far more than this small network's
arithmetic, so `Net` computes the forward pass, the gradient and the curvature with plain
tensor operations on its own copy of the weights; tests/test_sdlm.py checks them against
autograd and torch.func on the real `LeNet5Paper`. Used by sdlm.py only.

Curvature at the output: the exact diagonal of the Hessian of the MAP loss with respect to
F6's 84 outputs, 2 p_r + 4 Var_p(x_j - w_ij), which is never negative (p are the 11
posteriors, rubbish class included, p_r the rubbish one); for the MSE criterion it would be 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .models import LeNet5Paper

MU = 0.02  # the paper's mu, Section III-B
OUTPUT_CURVATURE = "exact"  # or "mse": 2 at every F6 output, see `Net.curvature`
J = 1.0  # the MAP loss's rubbish constant: models.map_loss's default (tested equal)

A, S = 1.7159, 2 / 3  # f(a) = A tanh(S a)
# Written as f(a) = A (2 sigmoid(2 S a) - 1), so f'(a) = 4 A S s (1 - s) with s = sigmoid(2 S a):
# torch's sigmoid is several times faster than its tanh on the CPU.
K = 4 * A * S
NAMES = ("W1", "b1", "c2", "b2", "W3", "b3", "c4", "b4", "W5", "b5", "W6", "b6")
SHAPES = ((6, 25), (6,), (6,), (6,), (16, 150), (16,), (16,), (16,), (120, 400), (120,),
          (84, 120), (84,))  # fmt: skip


def _pool(s, c, n):
    """Sums of the 2x2 blocks of the c maps (c, 2n, 2n), given flat or not: (c, n, n)."""
    v = s.view(c, n, 2, 2 * n)
    v = (v[:, :, 0] + v[:, :, 1]).view(c, n, n, 2)
    return v[..., 0] + v[..., 1]


class Net:
    """LeNet5Paper's 60,000 weights as one flat tensor, with a hand-written forward and
    backward.

    `params` are views of `flat` in the order of NAMES: C1, C3, C5 and F6 as matrices over
    their inputs (5x5 patches for C1 and C3, the flattened 16x5x5 maps for C5), the S layers
    as a coefficient and a bias per map. C3 is kept full, 16 x (6*25): its unconnected
    kernels are zero and get rate zero, so they stay zero without re-building the weight.
    One digit's update is then a single operation on `flat`.
    """

    def __init__(self, model: LeNet5Paper):
        if not isinstance(model, LeNet5Paper):
            raise ValueError(
                f"sdlm trains the paper's network only (model='paper'), not {type(model).__name__}"
            )
        self.model = model
        with torch.no_grad():
            w = [
                model.c1.weight, model.c1.bias, model.s2.weight, model.s2.bias,
                model.c3.full_weight(), model.c3.bias, model.s4.weight, model.s4.bias,
                model.c5.weight, model.c5.bias, model.f6.weight, model.f6.bias,
            ]  # fmt: skip
            self.flat = torch.cat([t.detach().flatten() for t in w])
        self.params = self._views(self.flat)
        self.gflat = torch.zeros_like(self.flat)
        self.grads = self._views(self.gflat)
        self.mask3 = model.c3.table.repeat_interleave(25, 1).to(self.flat.dtype)
        self.centres = model.output.centres.detach().clone()
        W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = self.params
        # Views in the shapes the step uses; in-place updates of `flat` keep them current.
        self._b1, self._b3 = b1.view(6, 1), b3.view(16, 1)
        self._c2, self._b2 = c2.view(6, 1, 1), b2.view(6, 1, 1)
        self._c4, self._b4 = c4.view(16, 1, 1), b4.view(16, 1, 1)
        self._W3t, self._W5t, self._W6t = W3.t(), W5.t(), W6.t()
        dev, dt = self.flat.device, self.flat.dtype
        self._j = torch.full((1,), J, device=dev, dtype=dt)
        self._mA = torch.tensor(-A, device=dev, dtype=dt)
        self._m4A = torch.tensor(-4 * A, device=dev, dtype=dt)
        self._mAc = -A - self.centres  # so that x6 - centres is one operation

    @staticmethod
    def _views(flat):
        out, i = [], 0
        for shape in SHAPES:
            n = math.prod(shape)
            out.append(flat[i : i + n].view(shape))
            i += n
        return out

    def write_back(self) -> None:
        """Copy the working weights into the model (C3: only its connected kernels)."""
        m = self.model
        W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = self.params
        with torch.no_grad():
            m.c1.weight.copy_(W1.view(6, 1, 5, 5))
            m.c1.bias.copy_(b1)
            m.s2.weight.copy_(c2)
            m.s2.bias.copy_(b2)
            m.c3.weight.copy_(W3.view(16, 6, 5, 5)[m.c3.out_idx, m.c3.in_idx])
            m.c3.bias.copy_(b3)
            m.s4.weight.copy_(c4)
            m.s4.bias.copy_(b4)
            m.c5.weight.copy_(W5.view(120, 16, 5, 5))
            m.c5.bias.copy_(b5)
            m.f6.weight.copy_(W6)
            m.f6.bias.copy_(b6)

    def step(self, x, label: int, rates):
        """One digit x (1, 32, 32, contiguous), then flat -= rates * its gradient.

        Returns the 11 log-posteriors of the digit before the update (rubbish class
        first): its MAP loss is -logp[1 + label] and its class the argmax of logp[1:].
        Every line is one tensor operation; constants are folded into alpha and beta.
        """
        W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = self.params
        G = self.grads
        s2S = 2 * S
        # C1's 784 positions in the order (a, b, i, j) for row 2i+a, column 2j+b: S2's 2x2
        # sums and their transpose are then operations on contiguous blocks of 196.
        cols1 = x.as_strided((5, 5, 2, 2, 14, 14), (32, 1, 32, 1, 64, 2)).reshape(25, 784)
        s1 = torch.addmm(self._b1, W1, cols1, beta=s2S, alpha=s2S).sigmoid_()  # (6, 784)
        p2 = torch.add(self._m4A, s1.view(6, 4, 196).sum(1), alpha=2 * A).view(6, 14, 14)
        s2 = torch.addcmul(self._b2, p2, self._c2).mul_(s2S).sigmoid_()  # (6, 14, 14)
        x2 = torch.add(self._mA, s2, alpha=2 * A)
        cols3 = x2.as_strided((6, 5, 5, 10, 10), (196, 14, 1, 14, 1)).reshape(150, 100)
        s3 = torch.addmm(self._b3, W3, cols3, beta=s2S, alpha=s2S).sigmoid_()  # (16, 100)
        p4 = torch.add(self._m4A, _pool(s3, 16, 5), alpha=2 * A)  # (16, 5, 5)
        s4 = torch.addcmul(self._b4, p4, self._c4).mul_(s2S).sigmoid_()
        x4 = torch.add(self._mA, s4.view(400), alpha=2 * A)
        s5 = torch.addmv(b5, W5, x4, beta=s2S, alpha=s2S).sigmoid_()
        x5 = torch.add(self._mA, s5, alpha=2 * A)
        s6 = torch.addmv(b6, W6, x5, beta=s2S, alpha=s2S).sigmoid_()
        d = torch.add(self._mAc, s6, alpha=2 * A)  # x6 - centres, (10, 84)
        logp = torch.cat((self._j, (d * d).sum(1))).neg_().log_softmax(0)
        p = logp.exp()[1:]
        # dE/dx6 = 2 (x6 - w_D) - 2 sum_i p_i (x6 - w_i); K = f'(a) / (s (1 - s)).
        g6 = torch.addmv(d[label], d.t(), p, beta=2 * K, alpha=-2 * K)
        da6 = torch.mul(torch.addcmul(s6, s6, s6, value=-1), g6, out=G[11])
        torch.outer(da6, x5, out=G[10])
        h5 = torch.addmv(b5, self._W6t, da6, beta=0, alpha=K)
        da5 = torch.mul(torch.addcmul(s5, s5, s5, value=-1), h5, out=G[9])
        torch.outer(da5, x4, out=G[8])
        h4 = torch.addmv(x4, self._W5t, da5, beta=0, alpha=K)
        da4 = torch.addcmul(s4, s4, s4, value=-1).view(16, 25).mul_(h4.view(16, 25))
        torch.sum(da4 * p4.view(16, 25), 1, out=G[6])
        torch.sum(da4, 1, out=G[7])
        e4 = (da4 * self._c4.view(16, 1)).mul_(K).view(16, 5, 1, 5, 1)
        da3 = torch.addcmul(s3, s3, s3, value=-1).view(16, 5, 2, 5, 2).mul_(e4).view(16, 100)
        torch.mm(da3, cols3.t(), out=G[4])
        torch.sum(da3, 1, out=G[5])
        dcols = torch.addmm(cols3, self._W3t, da3, beta=0, alpha=K)
        da2 = torch.addcmul(s2, s2, s2, value=-1).mul_(F.fold(dcols, (14, 14), 5))
        torch.sum((da2 * p2).view(6, 196), 1, out=G[2])
        torch.sum(da2.view(6, 196), 1, out=G[3])
        e2 = (da2 * self._c2).mul_(K).view(6, 1, 196)
        da1 = torch.addcmul(s1, s1, s1, value=-1).view(6, 4, 196).mul_(e2).view(6, 784)
        torch.mm(da1, cols1.t(), out=G[0])
        torch.sum(da1, 1, out=G[1])
        self.flat.addcmul_(rates, self.gflat, value=-1)
        return logp

    def forward(self, X):
        """The batch X (B, 1, 32, 32) through the network: every intermediate the backward
        pass needs, as a dict (s* are sigmoid(2 S a), p* the 2x2 sums, cols* the patches)."""
        W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = self.params
        B, s2S = len(X), 2 * S
        c = {"cols1": F.unfold(X, 5)}  # (B, 25, 784)
        c["s1"] = (torch.matmul(W1, c["cols1"]) + self._b1).mul_(s2S).sigmoid_()
        c["p2"] = 2 * A * c["s1"].view(B, 6, 14, 2, 14, 2).sum((3, 5)) - 4 * A
        c["s2"] = torch.addcmul(self._b2, c["p2"], self._c2).mul_(s2S).sigmoid_()
        c["cols3"] = F.unfold(2 * A * c["s2"] - A, 5)  # (B, 150, 100)
        c["s3"] = (torch.matmul(W3, c["cols3"]) + self._b3).mul_(s2S).sigmoid_()
        c["p4"] = 2 * A * c["s3"].view(B, 16, 5, 2, 5, 2).sum((3, 5)) - 4 * A
        c["s4"] = torch.addcmul(self._b4, c["p4"], self._c4).mul_(s2S).sigmoid_()
        c["x4"] = (2 * A * c["s4"] - A).view(B, 400)
        c["s5"] = torch.addmm(b5, c["x4"], W5.t()).mul_(s2S).sigmoid_()
        c["x5"] = 2 * A * c["s5"] - A
        c["s6"] = torch.addmm(b6, c["x5"], W6.t()).mul_(s2S).sigmoid_()
        c["d"] = (2 * A * c["s6"] - A).unsqueeze(1) - self.centres  # (B, 10, 84)
        penalties = (c["d"] * c["d"]).sum(2)
        c["logp"] = torch.cat((-self._j.expand(B, 1), -penalties), 1).log_softmax(1)
        return c

    def backward(self, c, g6, square=False):
        """Backpropagate g6 (B, 84), a derivative with respect to F6's outputs, through the
        batch cached by `forward`; returns the 12 weight tensors' derivatives summed over
        the batch.

        square=False: g6 is dE/dx6 and this is the gradient. square=True: g6 is d2E/dx6^2
        and this is the Gauss-Newton diagonal: the same pass with every weight, input and
        f'(a) squared (the paper's equations 23 and 25). A shared weight gets the sum of
        its connections' second derivatives, as the gradient gets the sum of theirs.
        """
        sq = (lambda t: t * t) if square else (lambda t: t)
        weights = [sq(p) for p in self.params]
        fp = {k: sq(K * c[k] * (1 - c[k])) for k in FP_KEYS}
        da1, da2, da3, da4, da5, da6 = _deltas(weights, fp, g6)
        x4, x5 = sq(c["x4"]), sq(c["x5"])
        p2, p4 = sq(c["p2"]), sq(c["p4"])
        cols1, cols3 = sq(c["cols1"]), sq(c["cols3"])
        return [
            torch.einsum("bop,bkp->ok", da1, cols1), da1.sum((0, 2)),
            (da2 * p2).sum((0, 2, 3)), da2.sum((0, 2, 3)),
            torch.einsum("bop,bkp->ok", da3, cols3), da3.sum((0, 2)),
            (da4 * p4).sum((0, 2, 3)), da4.sum((0, 2, 3)),
            da5.t() @ x4, da5.sum(0),
            da6.t() @ x5, da6.sum(0),
        ]  # fmt: skip

    def gradient_x6(self, c, labels):
        """dE/dx6 of the MAP loss per digit (B, 84): 2 (x6 - w_D) - 2 sum_i p_i (x6 - w_i)."""
        d = c["d"]
        p = c["logp"].exp()[:, 1:]
        return 2 * (d[torch.arange(len(d)), labels] - (p.unsqueeze(2) * d).sum(1))

    def output_curvature(self, c):
        """d2E/dx6^2 on the diagonal, per digit (B, 84): 2 p_r + 4 Var_p(x6 - w_i), exact for
        the MAP loss (whose Hessian in x6 is 2 p_r I + 4 Cov_p, never negative)."""
        p = c["logp"].exp()
        p_real = p[:, 1:].unsqueeze(2)  # (B, 10, 1)
        d = c["d"]
        mean = (p_real * d).sum(1)
        var = (p_real * d * d).sum(1) - mean * mean
        return 2 * p[:, :1] + 4 * var

    def curvature(self, X):
        """h_kk of every weight: the mean over the digits X of the Gauss-Newton diagonal."""
        c = self.forward(X)
        if OUTPUT_CURVATURE == "exact":
            out = self.output_curvature(c)
        else:  # "mse": the curvature of the squared distance to the right centre alone
            out = torch.full_like(c["d"][:, 0], 2.0)
        h = self.backward(c, out, square=True)
        return [t / len(X) for t in h]

    def output_factor(self, c):
        """L (B, 95, 84) with L L^T the full Hessian of each digit's MAP loss in x6,
        2 p_r I + 4 (sum_i p_i d_i d_i^T - m m^T) with d_i = x6 - w_i, m = sum_i p_i d_i:
        84 rows sqrt(2 p_r) I, one per class 2 sqrt(p_i) (d_i - m / s), and one
        2 sqrt(p_r / s) m, where s = sum_i p_i over the ten classes."""
        p = c["logp"].exp()
        q, qr = p[:, 1:], p[:, :1]
        d = c["d"]
        s = q.sum(1, keepdim=True).clamp_min(1e-30)  # all ten p can underflow to 0
        m = (q.unsqueeze(2) * d).sum(1)
        eye = torch.eye(84, dtype=d.dtype, device=d.device) * (2 * qr).sqrt().view(-1, 1, 1)
        rows = 2 * q.sqrt().unsqueeze(2) * (d - (m / s).unsqueeze(1))
        last = (2 * (qr / s).sqrt() * m).unsqueeze(1)
        return torch.cat([eye, rows, last], 1)

    def curvature_exact(self, X, chunk=8):
        """The exact Gauss-Newton diagonal, diag(J^T H J) averaged over the digits X: each
        row l of `output_factor` is backpropagated as a gradient, and each weight sums the
        squares of its derivatives, so a shared weight's connections interact and nothing
        inside the network is dropped (`exact_ggn_diagonal` computes the same with
        torch.func, 100 times slower). About 5 s on 500 digits."""
        total = None
        for i in range(0, len(X), chunk):
            c = self.forward(X[i : i + chunk])
            h = self._rows_squared(c, self.output_factor(c))
            total = h if total is None else [a + b for a, b in zip(total, h, strict=True)]
        return [t / len(X) for t in total]

    def _rows_squared(self, c, L):
        """Sum over digits b and rows r of the squared weight derivatives of L[b, r]."""
        B, R = L.shape[:2]
        fp = {k: (K * c[k] * (1 - c[k])).unsqueeze(1) for k in FP_KEYS}
        da1, da2, da3, da4, da5, da6 = _deltas(self.params, fp, L)
        g1 = torch.matmul(da1.view(B, R * 6, 784), c["cols1"].transpose(1, 2))
        g3 = torch.matmul(da3.view(B, R * 16, 100), c["cols3"].transpose(1, 2))

        def sq(t):
            return (t * t).sum((0, 1))

        return [
            sq(g1.view(B, R, 6, 25)), sq(da1.sum(3)),
            sq((da2 * c["p2"].unsqueeze(1)).sum((3, 4))), sq(da2.sum((3, 4))),
            sq(g3.view(B, R, 16, 150)), sq(da3.sum(3)),
            sq((da4 * c["p4"].unsqueeze(1)).sum((3, 4))), sq(da4.sum((3, 4))),
            torch.einsum("brj,bk->jk", da5 * da5, c["x4"] * c["x4"]), sq(da5),
            torch.einsum("brj,bk->jk", da6 * da6, c["x5"] * c["x5"]), sq(da6),
        ]  # fmt: skip

    def rates(self, h, eta_):
        """eta / (mu + h_kk) per weight, flat like `flat`; zero for C3's unconnected kernels."""
        r = [eta_ / (MU + t) for t in h]
        r[4] = r[4] * self.mask3
        return torch.cat([t.flatten() for t in r])


FP_KEYS = ("s1", "s2", "s3", "s4", "s5", "s6")


def _deltas(weights, fp, g6):
    """Backpropagate g6 (..., 84), derivatives with respect to F6's outputs, to every layer's
    pre-activations: (da1, ..., da6) with g6's leading dimensions, given the 12 weight
    tensors and the f'(a) of each layer (`fp`, broadcastable to those dimensions). With
    squared weights and f'(a) this is the paper's recursion for the curvature. Shared by
    `Net.backward` (leading dimension: the digits) and `Net._rows_squared` (digits, rows)."""
    W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = weights
    lead = g6.shape[:-1]
    da6 = fp["s6"] * g6
    da5 = fp["s5"] * (da6 @ W6)
    da4 = fp["s4"] * (da5 @ W5).view(*lead, 16, 5, 5)
    e4 = (da4 * c4.view(16, 1, 1)).view(*lead, 16, 5, 1, 5, 1)
    da3 = (fp["s3"].unflatten(-1, (5, 2, 5, 2)) * e4).view(*lead, 16, 100)
    back = F.fold(torch.matmul(W3.t(), da3.reshape(-1, 16, 100)), (14, 14), 5)
    da2 = fp["s2"] * back.view(*lead, 6, 14, 14)
    e2 = (da2 * c2.view(6, 1, 1)).view(*lead, 6, 14, 1, 14, 1)
    da1 = (fp["s1"].unflatten(-1, (14, 2, 14, 2)) * e2).view(*lead, 6, 784)
    return da1, da2, da3, da4, da5, da6
