"""Issue 17: keep the final numbers of the notes' network's runs before they are made again.

The engine's fast layers (lenet_lib/nets/models.py) round differently, so every committed run of
the notes' network was re-made with them; this writes one row per complete run of a results
folder (the runs before, at the engine's commit before), which chapter 07 sets beside the
re-made Table 2. Run it from a checkout of that commit:

    .venv/bin/python benchmarks/default_layers_runs.py --out results/benchmarks/default_layers_runs.csv
"""

import argparse

import pandas as pd

from lenet_lib import results

EXPERIMENTS = ("optimizers", "largebatch", "rate1", "capacity", "gap")  # the notes' network's
COLUMNS = ["experiment", "run_id", "seed", "optimizer", "epochs", "batch_size", "lr", "test_acc",
           "test_loss", "train_acc", "train_loss", "seconds", "wall_seconds", "threads",
           "git_commit", "started"]  # fmt: skip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results-dir", default=str(results.RESULTS))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    runs = [results.load_results(e, args.results_dir)[COLUMNS] for e in EXPERIMENTS]
    pd.concat(runs, ignore_index=True).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
