"""Is the pass-2 collapse of the paper's procedure set off by the rates it re-estimates after
pass 1? (issue 18, for chapter 09)

Pass 2 of a run of `lenet run paper`, from that run's pass-1 weights (the checkpoint cache of
`paper_saturation.py`, which trains passes 1 and 2 there if missing), in the run's own digit
order, but with the rates that pass 1 used (estimated on the initial weights) instead of rates
re-estimated on the pass-1 weights; beside it the run's own pass 2. Also per layer: the median effective rate of pass 1 and the one
re-estimated for pass 2 (on pass 2's own curvature digits), and their ratio. `--train-subset N`
trains on N digits instead of all 60,000; `--out` appends the table to a CSV file (chapter 09
reads results/benchmarks/paper_frozen_rates.csv, written by the two calls below).

    .venv/bin/python benchmarks/paper_frozen_rates.py --init pooled --seed 1 --out FILE
    .venv/bin/python benchmarks/paper_frozen_rates.py --init default --seed 0 --out FILE
"""

import argparse
from pathlib import Path

import pandas as pd
import torch
from paper_saturation import CACHE, LAYERS, cache_folder, paper_run, passes, probe_digits

from lenet_lib import data, experiments, sdlm, train
from lenet_lib.nets.sdlm_net import Net


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", default="pooled", choices=experiments.RUN_INITS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eta0", type=float, default=0.0005)
    p.add_argument("--train-subset", type=int, default=0, help="training digits (0: all)")
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--out", help="append the table to this CSV file")
    args = p.parse_args()
    for _ in passes(args.init, args.seed, 2, args.cache, args.eta0, args.train_subset):
        pass  # the checkpoints of passes 1 and 2, trained unless the cache holds them
    folder = cache_folder(args.cache, args.init, args.seed, args.train_subset, args.eta0)
    X, y, X_test, y_test = data.load_run_data("paper", args.train_subset, 0, "cpu", args.seed)
    X, n = X.contiguous(), len(X)
    run = paper_run(args.init, args.seed, args.eta0, args.train_subset)
    # Pass 1's rates: its curvature digits are the second draw of the run's generator
    # (sdlm._one_pass draws the order, then the curvature digits).
    start = experiments.new_model(run)
    gen = torch.Generator().manual_seed(args.seed)
    torch.randperm(n, generator=gen)
    sample = torch.randperm(n, generator=gen)[: min(sdlm.N_CURVATURE, n)]
    state = train.load_checkpoint(folder / "pass1.pt")
    model = experiments.new_model(run)
    model.load_state_dict(state["model"])
    gen.set_state(state["generator"])
    eta2 = sdlm.eta(1, args.eta0)
    with sdlm._OneThread(), torch.inference_mode():
        first = Net(start)
        frozen = first.rates(first.curvature(X[sample]), eta2)
        order = torch.randperm(n, generator=gen)
        sample2 = torch.randperm(n, generator=gen)[: min(sdlm.N_CURVATURE, n)]
        medians = {}
        for when, m, digits in (("pass 1", start, sample), ("pass 2", model, sample2)):
            h = sdlm.curvature(m, X[digits])
            medians[when] = {
                layer: torch.cat([eta2 / (sdlm.MU + h[k].flatten()) for k in names]).median().item()
                for layer, names in LAYERS.items()
            }
        net = Net(model)
        labels = y.tolist()
        for i in order.tolist():
            net.step(X[i], labels[i], frozen)
    net.write_back()
    with sdlm._OneThread():
        _, test_acc = train.evaluate(model, X_test, y_test)
    name = folder.name  # init, seed, and the subset and eta0 where not the runs'
    own_err = 100 - train.load_checkpoint(folder / "pass2.pt")["history"][-1]["test_acc"]
    print(f"{name}, pass 2 with its own rates: test error {own_err:.2f}%")
    print(f"{name}, pass 2 with pass 1's rates: test error {100 - test_acc:.2f}%")
    table = pd.DataFrame(medians).rename_axis("layer").reset_index()
    table = table.rename(columns={"pass 1": "rate_median_pass1", "pass 2": "rate_median_pass2"})
    table["ratio"] = table["rate_median_pass2"] / table["rate_median_pass1"]
    table = table.assign(run=name, init=args.init, seed=args.seed, train_digits=n,
                         pass2_test_error_frozen=100 - test_acc, pass2_test_error_own=own_err)  # fmt: skip
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("pass-2 weights (frozen rates), on 500 digits:")
    print(sdlm.layer_spread(model, probe_digits()).round(2).T.to_string())
    if args.out:
        out = Path(args.out)
        old = pd.read_csv(out) if out.exists() else None
        if old is not None:
            old = old[old["run"] != name]  # a second call replaces its own rows
        pd.concat([old, table], ignore_index=True).to_csv(out, index=False)


if __name__ == "__main__":
    main()
