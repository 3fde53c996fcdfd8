"""Is the pass-2 collapse of the paper's procedure set off by the rates it re-estimates after
pass 1? (issue 18, for chapter 09)

Pass 2 of a run of `lenet run paper`, from that run's pass-1 weights (the checkpoint cache of
`paper_saturation.py`), in the run's own digit order, but with the rates that pass 1 used
(estimated on the initial weights) instead of rates re-estimated on the pass-1 weights. The
run's own pass 2 is in its metrics.csv.

    .venv/bin/python benchmarks/paper_frozen_rates.py --init pooled --seed 1
"""

import argparse
import tempfile
from pathlib import Path

import torch
from paper_saturation import probe_digits

from lenet_lib import runs, sdlm, train


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", default="pooled", choices=["default", "pooled"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eta0", type=float, default=0.0005)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "paper_saturation"))
    args = p.parse_args()
    X, y, X_test, y_test = runs.load_run_data("paper", 0, 0, "cpu", args.seed)
    X, n = X.contiguous(), len(X)
    # Pass 1's rates: its curvature digits are the second draw of the run's generator.
    start = train.new_model("paper", args.seed)
    (sdlm.pooled_init if args.init == "pooled" else sdlm.fan_in_init)(start, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    torch.randperm(n, generator=gen)
    sample = torch.randperm(n, generator=gen)[: sdlm.N_CURVATURE]
    state = train.load_checkpoint(Path(args.cache) / f"{args.init}-s{args.seed}" / "pass1.pt")
    model = train.new_model("paper", args.seed)
    model.load_state_dict(state["model"])
    gen.set_state(state["generator"])
    with sdlm._OneThread(), torch.inference_mode():
        first = sdlm._Net(start)
        frozen = first.rates(first.curvature(X[sample]), sdlm.eta(1, args.eta0))
        order = torch.randperm(n, generator=gen)
        torch.randperm(n, generator=gen)  # pass 2's curvature digits, unused here
        net = sdlm._Net(model)
        labels = y.tolist()
        for i in order.tolist():
            net.step(X[i], labels[i], frozen)
    net.write_back()
    with sdlm._OneThread():
        _, test_acc = train.evaluate(model, X_test, y_test)
    print(f"{args.init}-s{args.seed}, pass 2 with pass 1's rates: test error {100 - test_acc:.2f}%")
    print(sdlm.layer_spread(model, probe_digits()).round(2).T.to_string())


if __name__ == "__main__":
    main()
