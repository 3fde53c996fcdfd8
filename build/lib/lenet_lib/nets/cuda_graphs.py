"""Training on a GPU with CUDA graphs: each full batch of an epoch replays one recorded graph of
the whole step (gather the batch, forward, backward, update, running sums), one launch a step
instead of about fifty, with the same operations (benchmarks/gpu_table2.py measures it).

Used by train.py's `TorchRule` on a GPU; the CPU path never comes here.
"""

from __future__ import annotations

import os

import torch


def cuda_graphs_wanted(device, lr_gamma=1.0) -> bool:
    """Whether `fit` records each training step as one CUDA graph: on a GPU, at a constant rate
    (a graph holds the rate it was recorded with), unless LENET_CUDA_GRAPHS=0."""
    return (
        torch.device(device).type == "cuda"
        and lr_gamma == 1
        and os.environ.get("LENET_CUDA_GRAPHS", "1") != "0"
    )


class GraphedEpochs:
    """The epochs of one run on a GPU: the same shuffled batches as `TorchRule.train_epoch`;
    the first epoch runs three steps eagerly (on a side stream, as CUDA graphs need) and
    records the fourth, which every later full batch replays; a last, smaller batch runs
    eagerly. `opt` must be made `capturable` where the optimizer has that option."""

    def __init__(self, opt, batch_size: int):
        self.opt, self.batch_size = opt, batch_size
        self.graph = None

    def _step(self, model, X, y, idx, total_loss, correct):
        Xb, yb = X.index_select(0, idx), y.index_select(0, idx)
        out = model(Xb)
        loss = model.loss(out, yb)
        loss.backward()
        self.opt.step()
        total_loss.add_(loss.detach().double() * len(yb))
        correct.add_((model.decide(out.detach()) == yb).sum())

    def train_epoch(self, model, X, y, gen):
        """One epoch; returns the running loss, accuracy (%) and images, as train_epoch does."""
        n, b = len(X), self.batch_size
        order = torch.randperm(n, generator=gen).to(X.device)
        if self.graph is None:
            self.idx = torch.zeros(b, dtype=torch.int64, device=X.device)
            self.sums = (
                torch.zeros((), dtype=torch.float64, device=X.device),
                torch.zeros((), dtype=torch.int64, device=X.device),
            )
        for t in self.sums:
            t.zero_()
        first = 0  # the first batch the graph runs
        if self.graph is None:
            first = min(3 * b, n // b * b)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for start in range(0, first, b):
                    self.idx.copy_(order[start : start + b])
                    self.opt.zero_grad(set_to_none=True)
                    self._step(model, X, y, self.idx, *self.sums)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            self.opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(self.graph):
                self._step(model, X, y, self.idx, *self.sums)
        for start in range(first, n // b * b, b):
            self.idx.copy_(order[start : start + b])
            self.graph.replay()
        if n % b:
            self.opt.zero_grad(set_to_none=True)
            self._step(model, X, y, order[n // b * b :], *self.sums)
        total_loss, correct = self.sums
        return total_loss.item() / n, 100.0 * correct.item() / n, n
