"""Issue 26: the per-digit step, today's beside the new one, one torch thread, in one run.

    .venv/bin/python benchmarks/lush_step.py [--digits 3000] [--repeats 3]
        [--out results/benchmarks/lush_step.csv]

Rows, each `repeats` times over the same MNIST digits, taking turns (the median is kept; this
VM's rates vary from one timing to the next):

- paper, today: the paper network's hand-written step (`sdlm_net.Net.step`), as the paper
  experiment's runs train;
- lush, eager: Lush's network with lush.py's step, batched over one network, not compiled;
- lush, compiled: the same step compiled by torch.compile (C++ kernels and wrapper), as the
  lush experiment's runs train;
- lush, compiled, 3 networks: three networks in one batched step, each on its own digit.

"updates/s" counts digits times networks; "x today" divides it by the first row's. The
curvature is not timed (the paper re-estimates it every pass on 500 digits, Lush every ten
epochs on 1,000).
"""

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch

from lenet_lib import data, io, lush, sdlm, sdlm_net, train


def paper_today(X, y):
    net = sdlm_net.Net(train.new_model("paper", 0, init=sdlm.INIT, init_seed=0))
    Xp = data.prepare(X, "paper").contiguous()
    rates = net.rates(net.curvature(Xp[:500]), 1e-4)
    labels = y.tolist()

    def run():
        for i in range(len(Xp)):
            net.step(Xp[i], labels[i], rates)
        return len(Xp)

    return run


def lush_rows(X, y, networks, compiled):
    group = lush.Group([lush.LeNet5Lush(init_seed=s) for s in range(networks)], compiled)
    Xl = data.prepare(X, "lush").squeeze(1).contiguous()
    rates = group.rates(group.curvature(Xl[:1000]), 1e-4)
    T = lush.targets(y).unsqueeze(2)
    n = len(Xl) // networks
    Xg = Xl[: n * networks].view(n, networks, 32, 32)  # network g reads digit g of each row
    Tg = T[: n * networks].view(n, networks, 10, 1)
    group.step(Xg[0], Tg[0], rates)  # compiles, where compiled

    def run():
        for i in range(n):
            group.step(Xg[i], Tg[i], rates)
        return n * networks

    return run


@torch.inference_mode()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--digits", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, help="write the table there as CSV")
    args = ap.parse_args()
    torch.set_num_threads(1)
    X, y = data.load_mnist("train")
    X, y = X[: args.digits], y[: args.digits]
    rows = {
        "paper, today": paper_today(X, y),
        "lush, eager": lush_rows(X, y, 1, False),
        "lush, compiled": lush_rows(X, y, 1, True),
        "lush, compiled, 3 networks": lush_rows(X, y, 3, True),
    }
    rates = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, run in rows.items():
            t0 = time.perf_counter()
            n = run()
            rates[name].append(n / (time.perf_counter() - t0))
    base = statistics.median(rates["paper, today"])
    table = pd.DataFrame(
        [
            {
                "step": name,
                "updates_per_s": statistics.median(r),
                "x_today": statistics.median(r) / base,
                "timings": ", ".join(f"{v:.0f}" for v in r),
            }
            for name, r in rates.items()
        ]  # fmt: skip
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    stamp = io.provenance(torch.device("cpu"), data.data_checksums())
    print(f"{stamp['device_name']}, torch {torch.__version__}, commit {stamp['git_commit'][:12]}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    if args.out:
        table.assign(
            device=stamp["device_name"], git_commit=stamp["git_commit"], digits=args.digits,
            threads=1, date=f"{datetime.now(UTC):%Y-%m-%d}",
        ).to_csv(args.out, index=False)  # fmt: skip


if __name__ == "__main__":
    main()
