"""What a run is, and every experiment's plan as data.

A run is one execution of `chapters/06_training_run.ipynb` with the fields of a `Run` as its
parameters; its folder `results/<experiment>/<run_id>/` holds the executed notebook,
`params.json`, `metrics.csv`, `summary.json` and `checkpoint.pt`. The notebook calls
`validate`, `new_model`, `start_run` and `finish_run`; the runner (runner.py) executes the
plans below; the chapters read the results back through results.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import pandas as pd
import torch

from . import data, io, sdlm, train

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]


@dataclass(frozen=True)
class Run:
    """The parameters of one training run; every field is a parameter of the notebook.

    `momentum` None is the optimizer's default (`train.default_momentum`: 0.9 for 'momentum'
    and 'nesterov', 0 for the others), resolved here so that `params.json` records the value
    the run trained with.
    """

    experiment: str
    optimizer: str
    lr: float
    epochs: int
    momentum: float | None = None
    batch_size: int = 64
    seed: int = 0
    model: str = "notes"
    width: float = 1.0
    scaling: str = "standard"
    weight_decay: float = 0.0
    train_subset: int = 0
    test_subset: int = 0
    # Added after the first runs (their params.json lack them: `stored_params`).
    lr_gamma: float = 1.0
    # "default": the model's usual initial weights (for sdlm, `sdlm.INIT`); "pooled": the
    # paper's network with its S layers in +-2.4 / F_i (`models.LeNet5Paper`), sdlm only.
    init: str = "default"
    run_id: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "momentum", train.default_momentum(self.optimizer, self.momentum))

    def protocol(self):
        """Everything but the length: runs with the same protocol can continue one another."""
        d = asdict(self)
        del d["epochs"], d["run_id"]
        return tuple(sorted(d.items()))

    def params(self):
        return asdict(self)


# A field added later has the default that reproduces the runs made before it, so a
# params.json without it stands for that default.
DEFAULTS = {f.name: f.default for f in fields(Run) if f.default is not MISSING}


def stored_params(params: dict) -> dict:
    """The parameters a run's params.json records, with the defaults of fields added since."""
    return DEFAULTS | params


def run_id(run: Run) -> str:
    return run.run_id or f"{run.optimizer}-e{run.epochs}-s{run.seed}"


def _with_id(run: Run, rid: str) -> Run:
    return Run(**{**asdict(run), "run_id": rid})


RUN_INITS = ("default", "pooled")  # the values of Run.init (models.INITS: LeNet5Paper's)
SEED_MAX = 2**32 - 1  # torch takes seeds below 2**64; a margin for seed arithmetic


def validate(run: Run, device=None, threads=0) -> None:
    """Refuse bad parameters before any training, all at once on one line: types, ranges, the
    optimizer, `device` if given and `threads`. The one check of a run's parameters (06, runner)."""
    problems = []
    for name in ("experiment", "optimizer", "model", "scaling", "run_id"):
        if not isinstance(getattr(run, name), str):
            problems.append(f"{name} must be a string, got {getattr(run, name)!r}")
    if not train.is_int(run.seed) or not 0 <= run.seed <= SEED_MAX:
        problems.append(f"seed must be an integer >= 0 and <= {SEED_MAX}, got {run.seed!r}")
    if not train.is_int(threads) or threads < 0:
        problems.append(f"threads must be an integer >= 0 (0: torch's default), got {threads!r}")
    for name, size in data.SPLIT_SIZES.items():
        n = getattr(run, f"{name}_subset")
        if not train.is_int(n) or not 0 <= n <= size:
            problems.append(f"{name}_subset must be an integer from 0 (all) to {size}, got {n!r}")
    n_train = run.train_subset if train.is_int(run.train_subset) and run.train_subset > 0 else 0
    problems += train.param_problems(
        run.optimizer, run.lr, run.epochs, run.batch_size, n_train or data.SPLIT_SIZES["train"],
        run.momentum, run.weight_decay, run.lr_gamma,
    )  # fmt: skip
    if run.model not in ("notes", "paper", "lush"):
        problems.append(f"model must be 'notes', 'paper' or 'lush', not {run.model!r}")
    if run.scaling not in data.TRANSFORMS:
        problems.append(f"scaling must be one of {sorted(data.TRANSFORMS)}, not {run.scaling!r}")
    if not train.is_number(run.width):
        problems.append(f"width must be a finite number, got {run.width!r}")
    elif run.model != "notes" and run.width != 1:
        problems.append(f"the {run.model} network has one width: leave width at 1")
    elif round(6 * run.width) < 1:
        # Below that the six maps of C1 round to none, which models.LeNet5 would make one.
        problems.append(
            f"width must be above 1/12, so that C1 keeps one of its 6 maps: got {run.width!r}"
        )
    sdlm_run = isinstance(run.optimizer, str) and run.optimizer.startswith("sdlm")
    lush_run = run.optimizer == "sdlm-lush"
    net = "lush" if lush_run else "paper"
    if sdlm_run and run.model != net:
        problems.append(f"{run.optimizer} trains the {net} network only: use model {net!r}")
    if (run.model == "lush") != (run.scaling == "lush"):
        problems.append("model 'lush' and scaling 'lush' go together (Lush's input coding)")
    if run.init not in RUN_INITS:
        problems.append(f"init {run.init!r} is unknown: use one of {', '.join(RUN_INITS)}")
    elif run.init != "default" and (lush_run or not sdlm_run):
        problems.append(f"init {run.init!r} is for the sdlm optimizers only: use init 'default'")
    if device is not None:
        problems.append(train.device_problem(device))
    problems = [p for p in problems if p]
    if problems:
        raise ValueError("bad parameters: " + "; ".join(problems))


def new_model(run: Run, device="cpu"):
    """The run's freshly initialised model, its weights drawn from the run's seed; the paper's
    network starts from `sdlm.INIT` whatever trains it (so that its Adam runs differ from its
    SDLM runs in the training alone), or from the run's `init` where it names one."""
    if run.model == "notes":
        return train.new_model("notes", run.seed, device, width=run.width, scaling=run.scaling)
    if run.model == "lush":
        return train.new_model("lush", run.seed, device, init_seed=run.seed)
    init = dict(init=sdlm.INIT if run.init == "default" else run.init, init_seed=run.seed)
    return train.new_model("paper", run.seed, device, scaling=run.scaling, **init)


def start_run(run_dir, params: dict, device: torch.device) -> dict:
    """Write `params.json` (the parameters and the provenance); the notebook calls this."""
    record = {"parameters": params, **io.provenance(device, data.data_checksums())}
    if run_dir:
        io.write_json(Path(run_dir) / "params.json", record)
    return record


def finish_run(run_dir, params: dict, history: list, train_eval: tuple, started: float) -> dict:
    """Write `metrics.csv` and `summary.json` (status 'pending': the runner marks it 'complete'
    once the executed notebook is in place too; the sha256 of the final weights in
    `checkpoint.pt`); return the summary.

    `train_eval` is (loss, accuracy) of the final eval-mode pass over the training set. A
    run with a NaN or infinite metric is refused: it is never complete.
    """
    last = history[-1]
    summary = {
        "run_id": params.get("run_id") or "",
        "experiment": params.get("experiment", ""),
        **{k: params[k] for k in ("optimizer", "epochs", "seed", "lr", "batch_size", "momentum")},
        "train_loss": train_eval[0],
        "train_acc": train_eval[1],
        "train_acc_running": last["train_acc"],
        "test_loss": last["test_loss"],
        "test_acc": last["test_acc"],
        "seconds": sum(h["seconds"] for h in history),
        "wall_seconds": time.time() - started,
        "status": "pending",
    }
    bad = [k for k, v in summary.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise train.Diverged(
            f"{', '.join(bad)} not finite after epoch {last['epoch']}: the run failed; "
            "train with a smaller lr",
            last["epoch"],
        )
    if run_dir:
        ckpt = Path(run_dir) / "checkpoint.pt"
        if ckpt.exists():
            summary["weights_sha256"] = io.weights_sha256(io.load_torch(ckpt)["model"])
        metrics = pd.DataFrame(history, columns=METRIC_COLUMNS + ["images_per_s"])
        io.write_atomic(Path(run_dir) / "metrics.csv", metrics.to_csv(index=False))
        io.write_json(Path(run_dir) / "summary.json", summary)
    return summary


# Table 2 of the notes: the runs. The notes give only the optimizers, the epochs, and a
# learning rate of 1 for vanilla SGD; every other value is our choice (claims.CHOICES says
# why), and claims.NOTES_TABLE2 holds the notes' accuracies.
TABLE2 = [
    # optimizer, epochs, lr, momentum
    ("sgd", 30, 0.01, 0.0),
    ("momentum", 30, 0.01, 0.9),
    ("nesterov", 30, 0.01, 0.9),
    ("adam", 30, 1e-3, 0.0),
    ("adam", 60, 1e-3, 0.0),
    ("adam", 100, 1e-3, 0.0),
]


def optimizer_runs(seeds=(0,), quick=False) -> list[Run]:
    """The six runs of Table 2 for each seed; `quick`: 1,000 training and 500 test images,
    and one epoch for every 30 of the full run (1, 1, 1, 1, 2, 3), so continuation is still
    exercised."""
    runs = []
    for seed in seeds:
        for opt, epochs, lr, momentum in TABLE2:
            extra = dict(train_subset=1000, test_subset=500) if quick else {}
            n = max(1, epochs // 30) if quick else epochs
            r = Run("optimizers", opt, lr, n, momentum=momentum, seed=seed, **extra)
            runs.append(_with_id(r, f"{opt}-e{epochs}-s{seed}"))
    return runs


# Short runs that look for the notes' unstated choices (optimizer chapter): the notes' own
# SGD step (lr 1), smaller steps, and 16 times larger batches (16 times fewer updates).
GAP_GRID = [
    # optimizer, lr, momentum, batch_size
    ("sgd", 1.0, 0.0, 64),
    ("sgd", 0.01, 0.0, 1024),
    ("sgd", 0.001, 0.0, 64),
    ("sgd", 0.001, 0.0, 1024),
    ("momentum", 0.001, 0.9, 1024),
    ("adam", 1e-3, 0.0, 1024),
    ("adam", 1e-4, 0.0, 64),
    ("adam", 1e-4, 0.0, 1024),
]
GAP_EPOCHS = 3


def gap_runs(seeds=(0,), quick=False) -> list[Run]:
    """The grid above, 3 epochs each on all the data (`quick`: 1 epoch on 2,000 images)."""
    out = []
    for seed in seeds:
        for opt, lr, momentum, bs in GAP_GRID:
            extra = dict(train_subset=2000, test_subset=500) if quick else {}
            epochs = 1 if quick else GAP_EPOCHS
            r = Run("gap", opt, lr, epochs, momentum=momentum, batch_size=bs, seed=seed, **extra)
            out.append(_with_id(r, f"{opt}-lr{lr:g}-b{bs}-s{seed}"))
    return out


# Capacity and generalization (chapter 03): training-set size P, width, and weight decay; each
# run trains for 200,000 / P epochs, at least 5 and at most 100 (capacity_epochs).
CAPACITY_P = (500, 1000, 2000, 5000, 10000, 20000, 60000)
CAPACITY_WIDTHS = (0.25, 0.5, 1.0, 2.0)
CAPACITY_DECAYS = (1e-4, 1e-3, 1e-2)
# AdamW's decoupled decay: each step multiplies the weights by 1 - lr * weight_decay, as SGD
# at the same rate does for the notes' beta = weight_decay / 2 (capacity chapter).
CAPACITY_ADAMW_DECAYS = (0.01, 0.1, 1.0)
CAPACITY_FIXED_P = 5000


def capacity_epochs(P: int) -> int:
    return min(100, max(5, 200_000 // P))


def capacity_runs(seeds=(0, 1), quick=False) -> list[Run]:
    """Learning curves over P and over width, and weight decay, with Adam 1e-3, batch 64."""
    grid = [(P, 1.0, 0.0, "adam") for P in CAPACITY_P]
    grid += [(CAPACITY_FIXED_P, w, 0.0, "adam") for w in CAPACITY_WIDTHS if w != 1.0]
    grid += [(CAPACITY_FIXED_P, 1.0, wd, "adam") for wd in CAPACITY_DECAYS]
    grid += [(CAPACITY_FIXED_P, 1.0, wd, "adamw") for wd in CAPACITY_ADAMW_DECAYS]
    out = []
    for seed in seeds:
        for P, width, wd, opt in grid:
            if quick and P > 2000:
                continue
            epochs = 1 if quick else capacity_epochs(P)
            r = Run(
                "capacity", opt, 1e-3, epochs, batch_size=min(64, P), seed=seed, width=width,
                weight_decay=wd, train_subset=P if P < 60000 else 0,
                test_subset=500 if quick else 5000,
            )  # fmt: skip
            decay = f"wd{wd:g}" if opt == "adam" else f"{opt}{wd:g}"
            out.append(_with_id(r, f"p{P}-w{width:g}-{decay}-s{seed}"))
    return out


# The slow regime found by the gap grid, run at Table 2's full lengths: batches of 1,024
# (16 times fewer updates per epoch), SGD-family step 0.01, Adam step 1e-4 (optimizer chapter).
LARGE_BATCH = 1024
LARGE_BATCH_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-4}


def largebatch_runs(seeds=(0,), quick=False) -> list[Run]:
    """Table 2's six runs in the slow regime (`quick`: as for optimizer_runs)."""
    out = []
    for r in optimizer_runs(seeds, quick):
        lr = LARGE_BATCH_LR[r.optimizer]
        bs = min(LARGE_BATCH, r.train_subset or LARGE_BATCH)
        out.append(Run(**{**asdict(r), "experiment": "largebatch", "lr": lr, "batch_size": bs}))
    return out


# The paper's first global rate, and fractions of it (at the paper's, our test error jumps from
# 3% to 25% in pass 2: chapter 09); `lr` is that first rate, sdlm.eta scales the schedule.
# sdlm-exact: the exact Gauss-Newton diagonal as the curvature (the paper's is 3 to 6 times
# smaller for C1 and C3); sdlm-pooled: S2 and S4 started in +-2.4 / F_i (issue 18).
PAPER_RUNS = {
    "sdlm": ("sdlm", 0.0005, "default"),
    "sdlm-eta2e-04": ("sdlm", 0.0002, "default"),
    "sdlm-eta1e-04": ("sdlm", 0.0001, "default"),
    "sdlm-eta5e-05": ("sdlm", 0.00005, "default"),
    "sdlm-exact": ("sdlm-exact", 0.0005, "default"),
    "sdlm-exact-eta1e-04": ("sdlm-exact", 0.0001, "default"),
    "sdlm-pooled": ("sdlm", 0.0005, "pooled"),
}


def paper_runs(seeds=(0,), quick=False) -> list[Run]:
    """The paper's own training of its network (chapter 09): 20 passes of per-digit SDLM
    (sdlm.py) with the paper's schedule and with fractions of it, and with the S layers
    started in +-2.4 / F_i (init "pooled"); `quick`: one pass on 1,000
    training and 500 test digits, same run ids."""
    size = dict(epochs=1, train_subset=1000, test_subset=500) if quick else dict(epochs=20)
    out = []
    for s in seeds:
        for name, (optimizer, eta0, init) in PAPER_RUNS.items():
            r = Run(
                "paper", optimizer, eta0, batch_size=1, model="paper", scaling="paper", seed=s,
                init=init, **size,
            )  # fmt: skip
            out.append(_with_id(r, f"{name}-e20-s{s}"))
    return out


# The notes' rate of 1, tested (chapter 07): pytorch/examples' MNIST recipe (Adadelta at 1,
# times 0.7 every epoch, batches of 64, 14 epochs), and SGD at 1 with batches of 1,024.
RATE_ONE = [
    # name, optimizer, lr_gamma, batch size, epochs
    ("adadelta-lr1-g0.7", "adadelta", 0.7, 64, 14),
    ("sgd-lr1-b1024", "sgd", 1.0, 1024, 30),
]


def rate_one_runs(seeds=(0,), quick=False) -> list[Run]:
    """Two readings of the notes' rate of 1 (`quick`: one epoch on 1,000 training and 500
    test images, same run ids)."""
    out = []
    for seed in seeds:
        for name, opt, gamma, bs, epochs in RATE_ONE:
            size = (
                dict(epochs=1, train_subset=1000, test_subset=500) if quick else {"epochs": epochs}
            )
            r = Run("rate1", opt, 1.0, batch_size=min(bs, 500) if quick else bs, seed=seed,
                    lr_gamma=gamma, **size)  # fmt: skip
            out.append(_with_id(r, f"{name}-e{epochs}-s{seed}"))
    return out


def paper_adam_runs(seeds=(0,), quick=False) -> list[Run]:
    """The paper's network (its scaling, initial weights, RBF output and loss) trained as
    Table 2's Adam rows train the notes' network: Adam at 1e-3, batches of 64, 30, 60 and 100
    epochs, one chain a seed (chapter 09: architecture apart from training). `quick`: as for
    optimizer_runs."""
    return [replace(r, experiment="paperadam", model="paper", scaling="paper")
            for r in optimizer_runs(seeds, quick) if r.optimizer == "adam"]  # fmt: skip


def lush_runs(seeds=(0,), quick=False) -> list[Run]:
    """Lush's LeNet-5 demo (lush.py, chapter 09), 30 epochs; `quick`: 1 on 1,000 and 500."""
    size = dict(epochs=1, train_subset=1000, test_subset=500) if quick else dict(epochs=30)
    run = Run("lush", "sdlm-lush", 1e-4, batch_size=1, model="lush", scaling="lush", **size)
    return [_with_id(replace(run, seed=s), f"lush-e30-s{s}") for s in seeds]


EXPERIMENTS = {
    "optimizers": optimizer_runs,
    "rate1": rate_one_runs,
    "gap": gap_runs,
    "capacity": capacity_runs,
    "largebatch": largebatch_runs,
    "paper": paper_runs,
    "paperadam": paper_adam_runs,
    "lush": lush_runs,
}
# The experiments whose weights something reads (chapters 08 and 09, `lenet predict`,
# tests/test_committed_results.py); a finished run of another keeps no checkpoint.
WEIGHTS_READ = {"optimizers", "largebatch", "paper", "paperadam", "lush"}


def register(name, plan, keep_weights=True):
    """Add an experiment: `plan(seeds, quick)` returns its runs."""
    EXPERIMENTS[name] = plan
    if keep_weights:
        WEIGHTS_READ.add(name)
