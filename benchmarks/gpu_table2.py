"""Issue 17 on a GPU: Table 2's 18 runs (three seeds) through `lenet run optimizers`, and the
training rate of one process, eager and as one CUDA graph per step.

    python benchmarks/gpu_table2.py --out DIR [--seeds 0,1,2] [--jobs 12] [--timeout 380]

Writes DIR/gpu_table2.json (device, versions, rates, the wall time of the whole run and each
run's test error and training seconds) and DIR/gpu_runs.tar.gz (each run's params.json,
summary.json and metrics.csv; no checkpoints). Phases that fail are recorded, not fatal.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

from lenet_lib import data, io, train

BATCH = 64


def eager_rate(X, y, X_test, y_test, epochs=2):
    """train.fit as a run uses it (Adam, batch 64): images/s of the last epoch."""
    model = train.new_model("notes", seed=0, device=X.device)
    history = train.fit(model, X, y, X_test, y_test, epochs=epochs, progress=False)
    return history[-1]["images_per_s"], history[-1]["test_acc"]


def graphed_rate(X, y, X_test, y_test, epochs=2):
    """One CUDA graph per training step (batch gather, forward, backward, Adam, running sums):
    one launch a step instead of about fifty. Full batches only."""
    dev = X.device
    model = train.new_model("notes", seed=0, device=dev)
    torch.use_deterministic_algorithms(False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True, capturable=True)
    idx = torch.arange(BATCH, device=dev)
    total_loss = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)

    def step():
        xb, yb = X.index_select(0, idx), y.index_select(0, idx)
        out = model(xb)
        loss = model.loss(out, yb)
        loss.backward()
        opt.step()
        total_loss.add_(loss.detach().double() * BATCH)
        correct.add_((model.decide(out.detach()) == yb).sum())

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()
    gen = torch.Generator().manual_seed(0)
    n_full = len(X) // BATCH * BATCH
    rate = None
    for _ in range(epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        order = torch.randperm(len(X), generator=gen).to(dev)
        for i in range(0, n_full, BATCH):
            idx.copy_(order[i : i + BATCH])
            graph.replay()
        torch.cuda.synchronize()
        rate = n_full / (time.perf_counter() - t0)
    _, acc = train.evaluate(model, X_test, y_test)
    return rate, acc


def table2(out: Path, seeds: str, jobs: int, timeout: int, device: str, quick: bool) -> dict:
    results = Path(tempfile.mkdtemp(prefix="gpu_table2_"))
    cmd = [sys.executable, "-m", "lenet_lib.cli", "run", "optimizers", "--seeds", seeds,
           "--device", device, "--jobs", str(jobs), "--results-dir", str(results)]  # fmt: skip
    cmd += ["--quick"] * quick
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (out / "lenet_run.log").write_text(proc.stdout[-200_000:] + proc.stderr[-200_000:])
    runs = []
    for summary in sorted(results.glob("optimizers/*/summary.json")):
        s = json.loads(summary.read_text())
        params = json.loads((summary.parent / "params.json").read_text())
        runs.append({"run_id": summary.parent.name, "summary": s,
                     "wall_seconds": params.get("wall_seconds")})  # fmt: skip
    with tarfile.open(out / "gpu_runs.tar.gz", "w:gz") as tar:
        for f in sorted(results.glob("optimizers/*/*")):
            if f.name in ("params.json", "summary.json", "metrics.csv"):
                tar.add(f, arcname=str(f.relative_to(results)))
    return {"returncode": proc.returncode, "wall_seconds": wall, "jobs": jobs, "runs": runs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--timeout", type=int, default=380)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small runs (a dry run of this script)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"torch": torch.__version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "git_commit": os.environ.get("GIT_COMMIT", "unknown"),
              "device_name": io.device_name(torch.device(args.device)), "cpu_count": os.cpu_count()}  # fmt: skip

    def save():
        (args.out / "gpu_table2.json").write_text(json.dumps(report, indent=1))

    def phase(name, fn):
        t0 = time.perf_counter()
        try:
            report[name] = fn()
        except Exception:
            report[name] = {"error": traceback.format_exc()[-3000:]}
        print(name, f"{time.perf_counter() - t0:.1f} s", str(report[name])[:400], flush=True)
        save()

    dev = torch.device(args.device)
    n = 6400 if args.quick else 0
    X, y, X_test, y_test = data.load_run_data(train_subset=n, test_subset=n, device=dev)
    phase("eager", lambda: eager_rate(X, y, X_test, y_test))
    phase("table2", lambda: table2(args.out, args.seeds, args.jobs, args.timeout, args.device,
                                   args.quick))  # fmt: skip
    if dev.type == "cuda":
        phase("graphed", lambda: graphed_rate(X, y, X_test, y_test))


if __name__ == "__main__":
    main()
