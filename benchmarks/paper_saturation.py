"""Saturation and effective rates of the paper's network trained with SDLM, pass by pass
(issue 18, for chapter 09).

For the weights at the start (pass 0) and after each pass: per layer, the spread of the
pre-activations on 500 training digits and the share of saturated units (|a| > 2,
`sdlm.layer_spread`), and the effective rates eta / (mu + h_kk) that the next pass starts
from (smallest, median, largest over the layer's weights; h_kk the paper's estimate on the
same 500 digits, eta the schedule's rate of that pass). The training is the run's own
(`train.fit` with optimizer sdlm on the model `experiments.new_model` builds, as `lenet run
paper` does), one pass at a time through its checkpoint, which gives the metrics of an
uninterrupted run; each pass's checkpoint is kept in --cache, so a second call only measures.
`--runs` measures the final weights of complete runs in results/paper instead.
`--train-subset N` trains on N digits instead of all 60,000 (a quick check that it runs).

    .venv/bin/python benchmarks/paper_saturation.py --init pooled --seed 0 --passes 3
    .venv/bin/python benchmarks/paper_saturation.py --runs sdlm-e20-s0 sdlm-pooled-e20-s0
"""

import argparse
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from lenet_lib import data, experiments, results, sdlm, train

LAYERS = {"C1": ("W1", "b1"), "S2": ("c2", "b2"), "C3": ("W3", "b3"), "S4": ("c4", "b4"),
          "C5": ("W5", "b5"), "F6": ("W6", "b6")}  # fmt: skip
CACHE = Path(tempfile.gettempdir()) / "paper_saturation"


def probe_digits(n=500, seed=0):
    """n training digits drawn as chapter 09 draws its curvature digits."""
    X, _ = data.load_mnist("train")
    pick = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:n]
    return data.prepare(X[pick], "paper")


def paper_run(init, seed, eta0=0.0005, train_subset=0, epochs=20):
    """The Run of `lenet run paper` with this init, seed and first rate."""
    return experiments.Run(
        "paper", "sdlm", eta0, epochs, batch_size=1, model="paper", scaling="paper", seed=seed,
        train_subset=train_subset, init=init,
    )  # fmt: skip


def cache_folder(cache, init, seed, train_subset=0, eta0=0.0005):
    """Where the pass checkpoints of one setting are kept."""
    name = f"{init}-s{seed}" + (f"-n{train_subset}" if train_subset else "")
    return Path(cache) / (name + (f"-eta{eta0:g}" if eta0 != 0.0005 else ""))


def measure(model, X, eta_):
    """One row per layer: spread, saturation, effective rates at global rate eta_."""
    spread = sdlm.layer_spread(model, X)
    h = sdlm.curvature(model, X)
    rows = []
    for layer, names in LAYERS.items():
        r = torch.cat([eta_ / (sdlm.MU + h[k].flatten()) for k in names])
        rows.append(
            {
                "layer": layer,
                "std": spread.loc[layer, "std"],
                "saturated %": spread.loc[layer, "saturated %"],
                "rate min": r.min().item(),
                "rate median": r.median().item(),
                "rate max": r.max().item(),
                "at cap %": 100 * (r > 0.9 * eta_ / sdlm.MU).double().mean().item(),
            }
        )
    return pd.DataFrame(rows)


def passes(init, seed, n_passes, cache, eta0=0.0005, train_subset=0):
    """Yield (pass, model, history) for pass 0 .. n_passes, training what the cache lacks."""
    folder = cache_folder(cache, init, seed, train_subset, eta0)
    folder.mkdir(parents=True, exist_ok=True)
    run = paper_run(init, seed, eta0, train_subset)
    yield 0, experiments.new_model(run), []
    X = y = None
    for k in range(1, n_passes + 1):
        done = folder / f"pass{k}.pt"
        if not done.exists():
            if X is None:
                X, y, X_test, y_test = data.load_run_data("paper", train_subset, 0, "cpu", seed)
            ck = folder / "checkpoint.pt"
            if k > 1:
                shutil.copyfile(folder / f"pass{k - 1}.pt", ck)
            else:
                ck.unlink(missing_ok=True)
            train.fit(experiments.new_model(run), X, y, X_test, y_test, replace(run, epochs=k),
                      checkpoint=ck, progress=False)  # fmt: skip
            os.replace(ck, done)
        state = train.load_checkpoint(done)
        model = experiments.new_model(run)
        model.load_state_dict(state["model"])
        yield k, model, state["history"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", default="pooled", choices=experiments.RUN_INITS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--eta0", type=float, default=0.0005)
    p.add_argument("--train-subset", type=int, default=0, help="training digits (0: all)")
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--runs", nargs="*", help="complete runs in results/paper to measure")
    p.add_argument("--out", help="also write the table to this CSV file")
    args = p.parse_args()
    X = probe_digits()
    tables = []
    if args.runs:
        done = results.load_results("paper").set_index("run_id")
        for rid in args.runs:
            row = done.loc[rid]
            model = results.load_model(rid, "paper")
            t = measure(model, X, sdlm.eta(int(row.epochs), row.lr))
            tables.append(t.assign(run=rid, passes=int(row.epochs), test_err=100 - row.test_acc))
    else:
        history = []
        for k, model, history in passes(
            args.init, args.seed, args.passes, args.cache, args.eta0, args.train_subset
        ):
            t = measure(model, X, sdlm.eta(k, args.eta0))
            err = 100 - history[-1]["test_acc"] if history else float("nan")
            run_err = 100 - history[-1]["train_acc"] if history else float("nan")
            tables.append(t.assign(run=f"{args.init}-s{args.seed}", passes=k, test_err=err,
                                   running_train_err=run_err))  # fmt: skip
        for h in history:  # the numbers of the run's metrics.csv, to compare bit for bit
            print(f"pass {h['epoch']}: train_loss {h['train_loss']!r}, test_acc {h['test_acc']}")
    table = pd.concat(tables, ignore_index=True)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
