"""What a run is: its parameters (`Run`), their checks, its model and its files.

A run is one execution of `chapters/06_training_run.ipynb` with the fields of a `Run` as its
parameters; its folder `results/<experiment>/<run_id>/` holds the executed notebook,
`params.json`, `metrics.csv`, `summary.json` and `checkpoint.pt`. The notebook calls
`runfolder.train_run`, which calls `new_model`, `start_run` and `finish_run`; the runner
(runner.py) executes the experiments' plans (plans.py); the chapters read the results back
through results.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd
import torch

from lenet_lib.base import io
from lenet_lib.nets import data, lush, models, sdlm, train

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
    # The ladder's changes to Lush's protocol, model "lush" only (lush.CHANGES, "+"-joined).
    changes: str = ""
    run_id: str = field(default="", compare=False)

    def __post_init__(self):
        """Resolve the momentum's default, then refuse bad parameters, all at once on one line:
        a Run that exists is valid (the one check of a run's parameters)."""
        if isinstance(self.optimizer, str):
            momentum = train.default_momentum(self.optimizer, self.momentum)
            object.__setattr__(self, "momentum", momentum)
        problems = [p for p in _problems(self) if p]
        if problems:
            raise ValueError("bad parameters: " + "; ".join(problems))

    @classmethod
    def from_namespace(cls, ns: dict) -> Run:
        """The Run whose fields are the names in `ns` (the training notebook's globals, set by
        its parameters cell and papermill); a field `ns` lacks keeps its default."""
        return cls(**{f.name: ns[f.name] for f in fields(cls) if f.name in ns})

    def continuation_key(self):
        """Everything but the length: runs with the same key can continue one another."""
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


def check_machine(device="auto", threads=0) -> None:
    """Refuse a bad device or thread count (the two settings of a run that are not its
    parameters: they change its speed, not its numbers on the CPU)."""
    problems = [train.device_problem(device)]
    if not train.is_int(threads) or threads < 0:
        problems.append(f"threads must be an integer >= 0 (0: torch's default), got {threads!r}")
    problems = [p for p in problems if p]
    if problems:
        raise ValueError("bad parameters: " + "; ".join(problems))


def _problems(run: Run) -> list[str]:
    """What is wrong with a run's parameters: types, ranges, the optimizer, the model."""
    problems = []
    for name in ("experiment", "optimizer", "model", "scaling", "run_id"):
        if not isinstance(getattr(run, name), str):
            problems.append(f"{name} must be a string, got {getattr(run, name)!r}")
    if not train.is_int(run.seed) or not 0 <= run.seed <= SEED_MAX:
        problems.append(f"seed must be an integer >= 0 and <= {SEED_MAX}, got {run.seed!r}")
    for name, size in data.SPLIT_SIZES.items():
        n = getattr(run, f"{name}_subset")
        if not train.is_int(n) or not 0 <= n <= size:
            problems.append(f"{name}_subset must be an integer from 0 (all) to {size}, got {n!r}")
    n_train = run.train_subset if train.is_int(run.train_subset) and run.train_subset > 0 else 0
    problems += train.param_problems(
        run.optimizer, run.lr, run.epochs, run.batch_size, n_train or data.SPLIT_SIZES["train"],
        run.momentum, run.weight_decay, run.lr_gamma,
    )  # fmt: skip
    if run.model not in models.MODELS:  # lush.py registers "lush"; "mlp" is chapter 04's
        problems.append(f"model must be one of {', '.join(models.MODELS)}, not {run.model!r}")
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
    problems += _lush_problems(run, sdlm_run, lush_run)
    return problems


def _lush_problems(run: Run, sdlm_run: bool, lush_run: bool) -> list[str]:
    """The checks of scaling, init and changes, which Lush's network reads its own way."""
    problems = []
    if run.model == "lush":
        if run.scaling not in lush.SCALINGS:
            problems.append("Lush's network reads scaling 'lush' (its coding) or 'paper'")
        if run.init not in ("default", "sqrt"):
            problems.append(f"Lush's network starts from init 'default' (Lush's) or 'sqrt' "
                            f"(the paper's), not {run.init!r}")  # fmt: skip
        try:
            changes = lush.parse_changes(run.changes)
        except ValueError as e:
            problems.append(str(e))
        else:
            if changes & set(lush.TRAINING_CHANGES) and not lush_run:
                problems.append("changes 'shuffle' and 'schedule' are sdlm-lush's: use it")
        return problems
    if run.scaling == "lush":
        problems.append("scaling 'lush' is Lush's coding, for model 'lush'")
    if run.changes:
        problems.append(f"changes {run.changes!r} are changes to Lush's protocol: model 'lush'")
    if run.init not in RUN_INITS:
        problems.append(f"init {run.init!r} is unknown: use one of {', '.join(RUN_INITS)}")
    elif run.init != "default" and not sdlm_run:
        problems.append(f"init {run.init!r} is for the sdlm optimizers only: use init 'default'")
    return problems


def new_model(run: Run, device="cpu"):
    """The run's freshly initialised model, its weights drawn from the run's seed; the paper's
    network starts from `sdlm.INIT` whatever trains it (so that its Adam runs differ from its
    SDLM runs in the training alone), or from the run's `init` where it names one."""
    if run.model == "notes":
        return train.new_model("notes", run.seed, device, width=run.width, scaling=run.scaling)
    if run.model == "mlp":
        return train.new_model("mlp", run.seed, device, scaling=run.scaling)
    if run.model == "lush":
        init = "lush" if run.init == "default" else run.init
        return train.new_model("lush", run.seed, device, init_seed=run.seed, init=init,
                               scaling=run.scaling, changes=run.changes)  # fmt: skip
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
