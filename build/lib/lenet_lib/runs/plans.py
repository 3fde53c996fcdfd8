"""Every experiment's plan as data: the runs (`experiments.Run`) each experiment makes.

`EXPERIMENTS` maps an experiment's name to its plan, `plan(seeds, quick)`; the runner
(runner.py) executes them, the CLI lists them, the chapters read their results. `COMMITTED`
says which of a plan's runs results/ holds, and at which thread count: what `lenet run NAME`
(and `make reproduce`) runs without flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .experiments import Run, _with_id

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
# The notes' network as trained longest: `lenet predict`'s and the draw page's default
NOTES_RUN = "adam-e100-s0"


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


# Issue 27's two ladders, each rung one change on top of the one before (chapter 09, "From
# 1998 to today"): rung id, run parameters beside Lush's. Lush -> the paper's network ends at
# the paper experiment's sdlm-eta1e-04 rows (its F6 and RBF head, MAP loss: another network),
# Lush -> the notes' at Table 2's Adam rows.
LADDER = {
    "paper1-shuffle": dict(changes="shuffle"),
    "paper2-coding": dict(changes="shuffle", scaling="paper"),
    "paper3-init": dict(changes="shuffle", scaling="paper", init="sqrt"),
    "paper4-schedule": dict(changes="shuffle+schedule", scaling="paper", init="sqrt", epochs=20),
    "notes1-relu": dict(changes="relu"),
    "notes2-maxpool": dict(changes="relu+maxpool"),
    "notes3-fullc3": dict(changes="relu+maxpool+fullc3"),
    "notes4-ce": dict(changes="relu+maxpool+fullc3+ce"),
    "notes5-adam": dict(
        changes="relu+maxpool+fullc3+ce", optimizer="adam", lr=1e-3, batch_size=64, momentum=None
    ),  # fmt: skip
    # beside the ladder: the cross-entropy rung at a third and at three times the demo's rate,
    # to tell the change's cost from its fit to the rate every rung keeps
    "notes4-ce-lr3e-05": dict(changes="relu+maxpool+fullc3+ce", lr=3e-5),
    "notes4-ce-lr3e-04": dict(changes="relu+maxpool+fullc3+ce", lr=3e-4),
}


def ladder_runs(seeds=(0,), quick=False) -> list[Run]:
    """The ladder's rungs (`LADDER`), each Lush's run (`lush_runs`) with its changes, 30
    epochs (the paper's schedule: 20); `quick`: 1 on 1,000 and 500, same run ids."""
    out = []
    for seed in seeds:
        for name, change in LADDER.items():
            run = replace(lush_runs((seed,), quick)[0], experiment="ladder", **change)
            epochs = change.get("epochs", 30)
            if quick:
                run = replace(run, epochs=1, batch_size=min(run.batch_size, 500))
            out.append(_with_id(run, f"{name}-e{epochs}-s{seed}"))
    return out


EXPERIMENTS = {
    "optimizers": optimizer_runs,
    "rate1": rate_one_runs,
    "gap": gap_runs,
    "capacity": capacity_runs,
    "largebatch": largebatch_runs,
    "paper": paper_runs,
    "paperadam": paper_adam_runs,
    "lush": lush_runs,
    "ladder": ladder_runs,
}


@dataclass(frozen=True)
class Committed:
    """The runs of a plan that results/ holds: those of `seeds` (`only`: just these run ids
    of them), each made with `threads` torch threads (run id: count, where not one). Runs are
    bit for bit only at the thread count they were made with; each records its own."""

    seeds: tuple[int, ...] = (0,)
    only: tuple[str, ...] = ()
    threads: dict[str, int] = field(default_factory=dict)


# What `lenet run NAME` runs without --seeds, --only and --threads (not with --quick: seed 0,
# one thread); an experiment not named here: seed 0, one thread.
COMMITTED = {
    "optimizers": Committed(seeds=(0, 1, 2)),
    "rate1": Committed(seeds=(0, 1, 2)),
    "gap": Committed(),
    "capacity": Committed(seeds=(0, 1)),
    "largebatch": Committed(),
    # every row for seed 0, the paper's rate (sdlm) and a fifth of it with two threads (the
    # first runs made); seeds 1 and 2 for the two rows chapter 09 gives an interval
    "paper": Committed(
        seeds=(0, 1, 2),
        only=tuple(f"{name}-e20-s0" for name in PAPER_RUNS)
        + tuple(f"{name}-e20-s{s}" for s in (1, 2) for name in ("sdlm-eta1e-04", "sdlm-pooled")),
        threads={"sdlm-e20-s0": 2, "sdlm-eta1e-04-e20-s0": 2},
    ),
    "paperadam": Committed(seeds=(0, 1, 2)),
    "lush": Committed(seeds=(0, 1, 2)),
    "ladder": Committed(seeds=(0, 1, 2)),
}

# The experiments whose weights something reads (chapters 08 and 09, `lenet predict`,
# tests/test_committed_results.py); a finished run of another keeps no checkpoint.
WEIGHTS_READ = {"optimizers", "largebatch", "paper", "paperadam", "lush", "ladder"}


def register(name, plan, keep_weights=True):
    """Add an experiment: `plan(seeds, quick)` returns its runs."""
    EXPERIMENTS[name] = plan
    if keep_weights:
        WEIGHTS_READ.add(name)
