"""Issue 17: what each lever of the training engine buys, one torch thread, batch 64, Adam,
the notes' LeNet-5 on MNIST (run it on a quiet machine; it prints a table and, with
--profile, torch.profiler's top operators with no lever, with all but the last, and with all).

    .venv/bin/python benchmarks/engine_levers.py [--images 12800] [--repeats 3] [--profile]
        [--out results/benchmarks/engine_levers.csv]

Each configuration adds one lever to the one above it; each is timed `repeats` times, the
configurations taking turns, and the median is shown (this VM's rates vary by 10-20% from one
timing to the next). "bit for bit" says whether the weights after the timed images equal the
first row's: all but the last lever (the fast layers, which round differently) keep them.
"""

import argparse
import ctypes
import statistics
import sys
import time
from datetime import UTC, datetime

import torch

from lenet_lib import data, train

LEVERS = ["before", "foreach", "no sync", "pool first", "allocator", "fast layers"]


def step_loop(model, opt, X, y, gen, levers):
    total_loss = torch.zeros((), dtype=torch.float64)
    loss_py, correct_py = 0.0, 0
    for Xb, yb in data.batches(X, y, 64, gen):
        out = model(Xb) if "pool first" in levers else model.features(Xb)["output"]
        loss = model.loss(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if "no sync" in levers:
            total_loss += loss.detach().double() * len(yb)
        else:
            loss_py += loss.item() * len(yb)
            correct_py += (model.decide(out) == yb).sum().item()


def rate(levers, X, y, images):
    model = train.new_model(seed=0).set_fast_layers("fast layers" in levers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach="foreach" in levers)
    gen = torch.Generator().manual_seed(0)
    step_loop(model, opt, X[:1280], y[:1280], gen, levers)  # warm up
    t0 = time.perf_counter()
    step_loop(model, opt, X[:images], y[:images], gen, levers)
    seconds = time.perf_counter() - t0
    return images / seconds, [p.detach().clone() for p in model.parameters()]


def tune_allocator():
    """glibc: keep freed memory in the heap instead of returning it to the system after every
    step (the activations of a batch are allocated and freed each step; mmap and trimming
    cost page faults). What `train.fit` does on Linux."""
    libc = ctypes.CDLL("libc.so.6")
    for option, value in ((-1, 1 << 30), (-2, 64 << 20), (-3, 1 << 30)):  # TRIM, TOP_PAD, MMAP
        libc.mallopt(option, value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12800)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", help="also write the table to this CSV (results/benchmarks/)")
    args = ap.parse_args()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    torch.set_num_threads(1)
    X, y = data.load_mnist("train")
    X = data.prepare(X)
    configs = [LEVERS[: i + 1] for i in range(len(LEVERS))]
    rates = {i: [] for i in range(len(configs))}
    weights = {}
    # The allocator stays tuned once tuned: the configurations without it are timed first.
    # Within each group the repeats take turns, so a drift of the VM's speed hits all alike.
    tuned = LEVERS.index("allocator")
    for group in (range(tuned), range(tuned, len(configs))):
        if group[0] == tuned:
            tune_allocator()
        for _ in range(args.repeats):
            for i in group:
                r, weights[i] = rate(configs[i], X, y, args.images)
                rates[i].append(r)
    base = statistics.median(rates[0])
    print(f"torch {torch.__version__}, 1 thread, batch 64, Adam, {args.images:,} images x "
          f"{args.repeats}")  # fmt: skip
    print(f"{'lever added':16s} {'images/s':>9s} {'x before':>9s}  bit for bit  all timings")
    rows = []
    for i, levers in enumerate(configs):
        med = statistics.median(rates[i])
        same = all(torch.equal(a, b) for a, b in zip(weights[0], weights[i], strict=True))
        print(f"{levers[-1]:16s} {med:9,.0f} {med / base:9.2f}  {str(same):11s}  "
              f"{[round(r) for r in rates[i]]}")  # fmt: skip
        rows.append({"lever": levers[-1], "images_per_s": med, "x_before": med / base,
                     "bit_for_bit": same, "timings": " ".join(str(round(r)) for r in rates[i])})  # fmt: skip
    if args.out:
        import pandas as pd

        from lenet_lib import io

        table = pd.DataFrame(rows).assign(
            torch=torch.__version__, device_name=io.device_name(torch.device("cpu")),
            git_commit=io.git_commit(), images=args.images,
            started=started,
        )  # fmt: skip
        table.to_csv(args.out, index=False)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for levers in (configs[0], configs[-2], configs[-1]):
            model = train.new_model(seed=0).set_fast_layers("fast layers" in levers)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach="foreach" in levers)
            gen = torch.Generator().manual_seed(0)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step_loop(model, opt, X[:6400], y[:6400], gen, levers)
            print(f"\nprofile, levers {levers}:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    sys.exit(main())
