"""Issue 17 on a GPU: the training rate of one process (train.fit eager, and with its CUDA
graph per step), then Table 2's 18 runs (three seeds) through `lenet run optimizers`.

    python benchmarks/gpu_table2.py --out DIR [--seeds 0,1,2] [--jobs 12] [--timeout 380]

Writes DIR/gpu_table2.json (device, versions, rates, the wall time of the whole run and each
run's summary), DIR/gpu_table2.csv (one row a run, with the setting beside it: what the
optimizer chapter reads from results/benchmarks/) and DIR/gpu_runs.tar.gz (each run's
params.json, summary.json, metrics.csv and the executed notebook, whose cells carry their
start and end times; no checkpoints). Phases that fail are recorded, not
fatal. Start NVIDIA's MPS first (`nvidia-cuda-mps-control -d`, as root) to let the runs' kernels
share the GPU at once rather than by turns; the report says whether it ran.
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

import pandas as pd
import torch

from lenet_lib import data, experiments, io, train


def fit_rate(X, y, X_test, y_test, graphs: bool, epochs=2):
    """train.fit as a run uses it (Adam, batch 64), with or without its CUDA graph: images/s
    of the last epoch and the test accuracy (the same seed and batches either way)."""
    os.environ["LENET_CUDA_GRAPHS"] = "1" if graphs else "0"
    try:
        model = train.new_model("notes", seed=0, device=X.device)
        run = experiments.Run("optimizers", "adam", 1e-3, epochs)
        history = train.fit(model, X, y, X_test, y_test, run, progress=False)
    finally:
        del os.environ["LENET_CUDA_GRAPHS"]
    return {"images_per_s": history[-1]["images_per_s"], "test_acc": history[-1]["test_acc"],
            "train_loss": history[-1]["train_loss"]}  # fmt: skip


def table2(out: Path, seeds: str, jobs: int, timeout: int, device: str, quick: bool) -> dict:
    results = Path(tempfile.mkdtemp(prefix="gpu_table2_"))
    cmd = [sys.executable, "-m", "lenet_lib.cli", "run", "optimizers", "--seeds", seeds,
           "--device", device, "--jobs", str(jobs), "--results-dir", str(results)]  # fmt: skip
    cmd += ["--quick"] * quick
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (out / "lenet_run.log").write_text(proc.stdout[-200_000:] + proc.stderr[-200_000:])
    runs = []
    for summary in sorted(results.glob("optimizers/*/summary.json")):
        s = json.loads(summary.read_text())  # a run's wall time is in its summary.json
        runs.append({"run_id": summary.parent.name, "summary": s,
                     "wall_seconds": s.get("wall_seconds")})  # fmt: skip
    with tarfile.open(out / "gpu_runs.tar.gz", "w:gz") as tar:
        for f in sorted(results.glob("optimizers/*/*")):
            if f.name in ("params.json", "summary.json", "metrics.csv", "run.ipynb"):
                tar.add(f, arcname=str(f.relative_to(results)))
    return {"returncode": proc.returncode, "wall_seconds": wall, "jobs": jobs, "runs": runs,
            "started_utc": started}  # fmt: skip


STARTUP = {
    "python": "pass",
    "import torch": "import torch",
    "torch + CUDA context": "import torch; torch.zeros(1, device='cuda')",
    "import torchvision": "import torch, torchvision",
    "run notebook imports": "import pandas, torch; from lenet_lib import data, experiments, "
    "models, plots, train; from lenet_lib import glue",
    "imports + data on the GPU": "import torch; from lenet_lib import data, experiments, models, "
    "plots, train; data.load_run_data(device='cuda')",
}


def startup() -> dict:
    """Wall seconds of a fresh process doing each of STARTUP's steps (what every run's kernel
    pays before its first epoch), the second of two tries (files then in the page cache)."""
    out = {}
    for name, code in STARTUP.items():
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            out[name] = time.perf_counter() - t0
    return out


def mps_running() -> bool:
    """Whether NVIDIA's multi-process service runs here (its control daemon)."""
    return (
        subprocess.run(["pgrep", "-f", "nvidia-cuda-mps-control"], capture_output=True).returncode
        == 0
    )


def runs_table(report: dict) -> pd.DataFrame:
    """One row a run of the table2 phase, with the setting and the phase's rates beside it."""
    rows = [{**r["summary"], "wall_seconds": r["summary"].get("wall_seconds")}
            for r in report["table2"]["runs"]]  # fmt: skip
    t = pd.DataFrame(rows)[["run_id", "optimizer", "epochs", "seed", "test_acc", "seconds"]]
    return t.assign(
        device_name=report["device_name"],
        torch=report["torch"],
        git_commit=report["git_commit"],
        started=report["started"],
        mps=report["mps"],
        jobs=report["table2"]["jobs"],
        table2_wall_seconds=report["table2"]["wall_seconds"],
        eager_images_per_s=report["eager"]["images_per_s"],
        graphed_images_per_s=report["graphed"]["images_per_s"],
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--timeout", type=int, default=380)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small runs (a dry run of this script)")
    ap.add_argument("--phases", default="startup,eager,graphed,table2")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "torch": torch.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "git_commit": os.environ.get("GIT_COMMIT", "unknown"),
        "device_name": io.device_name(torch.device(args.device)),
        "cpu_count": os.cpu_count(),
        "mps": mps_running(),
    }

    def save():
        (args.out / "gpu_table2.json").write_text(json.dumps(report, indent=1))

    def phase(name, fn):
        if name not in args.phases.split(","):
            return
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
    phase("startup", startup)
    phase("eager", lambda: fit_rate(X, y, X_test, y_test, graphs=False))
    phase("graphed", lambda: fit_rate(X, y, X_test, y_test, graphs=True))
    phase("table2", lambda: table2(args.out, args.seeds, args.jobs, args.timeout, args.device,
                                   args.quick))  # fmt: skip
    if "runs" in report.get("table2", {}):
        runs_table(report).to_csv(args.out / "gpu_table2.csv", index=False)


if __name__ == "__main__":
    main()
