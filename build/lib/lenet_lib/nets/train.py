"""The one training loop, `fit`, on in-memory tensors, with atomic per-epoch checkpoints that
resume exactly; its step rules are torch's optimizers, the paper's SDLM (sdlm.py) and Lush's
(lush.py). Used by the training-run chapter (every run), and chapters 02 and 04.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import numbers
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lenet_lib.base import io

from . import cuda_graphs, data, lush, sdlm
from .cuda_graphs import cuda_graphs_wanted  # noqa: F401 (fit's switch, tested here)
from .models import build_model

# sdlm: the paper's procedure (sdlm.py); sdlm-exact: with the exact Gauss-Newton diagonal;
# sdlm-lush: Lush's LeNet-5 demo's (lush.py).
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "adadelta", "sdlm", "sdlm-exact",
              "sdlm-lush")  # fmt: skip
MOMENTUM = 0.9  # the momentum of 'momentum' and 'nesterov' when none is given
WITH_MOMENTUM = ("momentum", "nesterov")


def default_momentum(optimizer: str, momentum: float | None = None) -> float:
    """`momentum`, or when it is None the default: 0.9 for 'momentum' and 'nesterov', else 0."""
    if momentum is not None:
        return momentum
    return MOMENTUM if optimizer in WITH_MOMENTUM else 0.0


def make_optimizer(
    name, params, lr, momentum=None, weight_decay=0.0, betas=(0.9, 0.999), capturable=False,
    fused=False,
):  # fmt: skip
    """'sgd' (vanilla), 'momentum' (classic), 'nesterov', 'adam', 'adamw' (Adam with decoupled
    weight decay: the capacity chapter's regulariser) or 'adadelta' (the optimizer of
    pytorch/examples' MNIST script, the optimizer chapter's hypothesis for the notes' rate of
    1); 'sdlm' is in sdlm.py.

    All take torch's foreach path: one kernel per operation over all ten parameter tensors,
    bit for bit the per-tensor loop (tests/test_engine.py), about 10% faster on this CPU.
    `capturable` keeps Adam's step counts on the GPU, so a CUDA graph can hold the step;
    `fused` (the GPU's graphed path) takes torch's one-kernel update (all but Adadelta have one).
    """
    momentum = default_momentum(name, momentum)
    kw = {"lr": lr, "weight_decay": weight_decay, "foreach": True}
    if fused and name != "adadelta":  # Adadelta has no fused kernel
        kw |= {"foreach": False, "fused": True}
    if capturable and name in ("adam", "adamw", "adadelta"):
        kw["capturable"] = True
    if name == "sgd":
        return torch.optim.SGD(params, **kw)
    if name in WITH_MOMENTUM:
        return torch.optim.SGD(params, momentum=momentum, nesterov=name == "nesterov", **kw)
    if name == "adam":
        return torch.optim.Adam(params, betas=betas, **kw)
    if name == "adamw":
        return torch.optim.AdamW(params, betas=betas, **kw)
    if name == "adadelta":
        return torch.optim.Adadelta(params, **kw)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")


def pick_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when there is one, else the CPU; 'cpu', 'cuda' and 'cuda:N' are checked
    against what torch sees (the training-run notebook, `lenet run --device`)."""
    problem = device_problem(device)
    if problem:
        raise ValueError(problem)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def device_problem(device) -> str | None:
    """Why `device` cannot train here, or None."""
    if device == "auto":
        return None
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        d = None
    if d is None or d.type not in ("cpu", "cuda"):
        return f"device {device!r} is unknown: use auto, cpu, cuda or cuda:N"
    if d.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            return f"device {device!r}: torch sees no CUDA GPU here: use auto or cpu"
        if d.index is not None and d.index >= n:
            return f"device {device!r}: torch sees {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}"
    return None


@torch.inference_mode()
def evaluate(model, X, y, batch_size: int = 2000):
    """Mean loss and accuracy (in %) of `model` in eval mode over (X, y)."""
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(X), batch_size):
        out = model(X[i : i + batch_size])
        yb = y[i : i + batch_size]
        total_loss += model.loss(out, yb).item() * len(yb)
        correct += (model.decide(out) == yb).sum().item()
    return total_loss / len(X), 100.0 * correct / len(X)


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of handing it back to the
    system: each step allocates and frees a batch's activations (about a megabyte each), which
    by default means fresh pages and page faults every step. Worth about a quarter of the
    training speed on one thread (benchmarks/engine_levers.py); no effect on the arithmetic.
    Returns whether it applied (glibc only; elsewhere nothing changes)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    # M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD
    return all(
        mallopt(option, value) == 1
        for option, value in ((-1, 1 << 30), (-2, 64 << 20), (-3, 1 << 30))
    )


def load_checkpoint(path: Path) -> dict:
    """A checkpoint of `fit` (or its weights alone, once its run is finished and pruned)."""
    return io.load_torch(path)


def is_int(x) -> bool:
    """An integer, not a bool (papermill and JSON hand over Python numbers)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_number(x) -> bool:
    """A finite real number, not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def param_problems(
    optimizer, lr, epochs, batch_size, n_train, momentum=None, weight_decay=0.0, lr_gamma=1.0
) -> list[str]:
    """What is wrong with these hyperparameters, one phrase each (empty if nothing)."""
    problems = []
    if not is_number(lr_gamma) or not 0 < lr_gamma <= 1:
        problems.append(
            f"lr_gamma (the rate's factor per epoch) must be in (0, 1], got {lr_gamma!r}"
        )
    elif lr_gamma != 1 and str(optimizer).startswith("sdlm"):
        problems.append(f"{optimizer} has its own schedule: leave lr_gamma at 1")
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        problems.append(f"optimizer {optimizer!r} is unknown: use one of {', '.join(OPTIMIZERS)}")
        optimizer = ""
    if not is_int(epochs) or epochs < 1:
        problems.append(f"epochs must be an integer >= 1, got {epochs!r}")
    if not is_number(lr) or not lr > 0:
        problems.append(f"lr must be > 0 and finite, got {lr!r}")
    if not is_int(batch_size) or not 1 <= batch_size <= n_train:
        problems.append(
            f"batch_size must be between 1 and the number of training images ({n_train}), "
            f"as an integer, got {batch_size!r}"
        )
    m = default_momentum(optimizer, momentum)
    if not is_number(m) or not 0 <= m < 1:
        problems.append(f"momentum must be in [0, 1), got {m!r}")
    elif optimizer in WITH_MOMENTUM and m == 0:
        problems.append(
            f"optimizer {optimizer!r} needs a momentum > 0: leave momentum unset "
            f"({MOMENTUM}) or give one, or use optimizer 'sgd'"
        )
    elif optimizer and optimizer not in WITH_MOMENTUM and m != 0:
        problems.append(
            f"momentum {m!r} has no effect with optimizer {optimizer!r}: use optimizer "
            "'momentum' or 'nesterov', or leave momentum unset"
        )
    if not is_number(weight_decay) or weight_decay < 0:
        problems.append(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if optimizer.startswith("sdlm"):
        if batch_size != 1:
            problems.append(f"{optimizer} updates once per digit: batch_size must be 1")
        if weight_decay:
            problems.append(f"{optimizer} has no weight decay: leave weight_decay at 0")
    return problems


class Diverged(ValueError):
    """The loss of a run became NaN or infinite: the run stops and is never complete."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


class TorchRule:
    """A torch optimizer as a step rule of `fit`: one update per shuffled batch; with
    `lr_gamma` below 1 the rate is multiplied by it after every epoch (torch's StepLR).

    On a GPU (`cuda_graphs_wanted`) the full batches of an epoch replay one CUDA graph that
    holds the whole step (gather the batch, forward, backward, update, running sums): one
    launch a step instead of about fifty (benchmarks/gpu_table2.py), the update by torch's
    fused kernel where there is one. The CPU path is untouched.
    """

    def __init__(
        self, model, optimizer, lr, momentum, weight_decay, batch_size, lr_gamma=1.0, graphs=False
    ):
        self.graphs = graphs
        self.opt = make_optimizer(
            optimizer, model.parameters(), lr, momentum, weight_decay, capturable=graphs,
            fused=graphs,
        )  # fmt: skip
        self.batch_size = batch_size
        self.schedule = None
        if lr_gamma != 1:
            self.schedule = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=lr_gamma)
        self.graphed = cuda_graphs.GraphedEpochs(self.opt, batch_size) if graphs else None

    def context(self):
        return contextlib.nullcontext()

    def state(self) -> dict:
        state = {"optimizer": self.opt.state_dict()}
        if self.schedule is not None:  # absent from the checkpoints of constant-rate runs
            state["schedule"] = self.schedule.state_dict()
        return state

    def resume(self, state: dict, checkpoint) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        fused = bool(self.graphs and self.opt.defaults.get("fused"))
        for group in self.opt.param_groups:  # a checkpoint of the per-tensor loop, or of the
            group["foreach"] = not fused  # other path (CPU or GPU): this path's settings
            if "fused" in group:
                group["fused"] = fused
            if "capturable" in group:
                group["capturable"] = self.graphs

    def train_epoch(self, model, X, y, gen: torch.Generator, epoch: int):
        """One epoch of shuffled batches; returns the running loss, accuracy (%) and images.

        The running sums stay on the device until the epoch ends (no host sync per batch);
        the loss sum is in float64 in batch order, as a Python float sum would be.
        """
        if self.graphed is not None:
            return self.graphed.train_epoch(model, X, y, gen)
        total_loss = torch.zeros((), dtype=torch.float64, device=X.device)
        correct = torch.zeros((), dtype=torch.int64, device=X.device)
        for Xb, yb in data.batches(X, y, self.batch_size, gen):
            out = model(Xb)
            loss = model.loss(out, yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total_loss += loss.detach().double() * len(yb)
            correct += (model.decide(out.detach()) == yb).sum()
        if self.schedule is not None:
            self.schedule.step()
        seen = len(X)
        return total_loss.item() / seen, 100.0 * correct.item() / seen, seen


def step_rule(model, run, graphs=False):
    """The step rule `fit` trains with, from the run's hyperparameters: a torch optimizer, the
    paper's SDLM (sdlm.py) or Lush's (lush.py)."""
    if run.optimizer == "sdlm-lush":
        return lush.LushRule(model, eta0=run.lr)
    if run.optimizer.startswith("sdlm"):
        curvature = "exact" if run.optimizer == "sdlm-exact" else "paper"
        return sdlm.SDLM(model, eta0=run.lr, curvature=curvature)
    return TorchRule(model, run.optimizer, run.lr, run.momentum, run.weight_decay,
                     run.batch_size, run.lr_gamma, graphs)  # fmt: skip


def fit(model, X, y, X_test, y_test, run, *, checkpoint: str | Path | None = None, progress=True):
    """Train `model` on in-memory tensors and return one dict of metrics per epoch.

    `run` (an experiments.Run, checked when it was made) gives the hyperparameters: optimizer,
    lr, momentum, weight_decay, epochs, batch_size, seed, lr_gamma; fit reads nothing else.
    The model must already be on the device of X; it is trained as it is handed over (never
    re-initialised). Shuffling uses its own generator seeded by the run's seed. With
    `checkpoint`, the state after each epoch (model, the step rule's state, shuffle and
    global RNG states, metrics) is written there atomically, and a
    run whose checkpoint exists resumes after its last epoch: its metrics are those of an
    uninterrupted run. A checkpoint of a shorter run that differs only in length continues to
    `epochs`. `seconds` covers the training steps, not the evaluation. `lr_gamma` below 1
    multiplies the rate by it after every epoch (pytorch/examples' MNIST schedule: 0.7).
    """
    if run.batch_size > len(X):
        raise ValueError(f"bad parameters: batch_size must be between 1 and the number of "
                         f"training images ({len(X)}), got {run.batch_size}")  # fmt: skip
    epochs = run.epochs
    keep_freed_memory()
    graphs = cuda_graphs_wanted(X.device, run.lr_gamma) and run.batch_size < len(X)
    rule = step_rule(model, run, graphs)
    gen = torch.Generator().manual_seed(run.seed)
    history, start = [], 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        if "generator" not in state:
            raise ValueError(
                f"{checkpoint} holds only the weights of a finished run (pruned), not the state "
                "a run resumes or continues from: delete it to train from scratch"
            )
        rule.resume(state, checkpoint)
        model.load_state_dict(state["model"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, start = list(state["history"]), state["epoch"]
        if start > epochs:
            raise ValueError(f"{checkpoint} is at epoch {start}, beyond epochs={epochs}")
    bar = tqdm(
        range(start, epochs), desc="epochs", disable=not progress, initial=start, total=epochs
    )
    with rule.context():
        for epoch in bar:
            model.train()
            t0 = time.perf_counter()
            train_loss, train_acc, seen = rule.train_epoch(model, X, y, gen, epoch)
            seconds = time.perf_counter() - t0
            test_loss, test_acc = evaluate(model, X_test, y_test)
            for name, value in (("training", train_loss), ("test", test_loss)):
                # Nothing of a diverged epoch is kept: the checkpoint stays at the last
                # finite one, and no summary can say "complete".
                if not math.isfinite(value):
                    raise Diverged(
                        f"the {name} loss became {value} in epoch {epoch + 1} of {epochs} "
                        f"(optimizer {run.optimizer}, lr {run.lr:g}): the run failed; "
                        "train with a smaller lr",
                        epoch + 1,
                    )
            row = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "seconds": seconds,
                "images_per_s": seen / seconds,
            }
            history.append(row)
            bar.set_postfix(loss=f"{train_loss:.4f}", test_acc=f"{test_acc:.2f}")
            if checkpoint is not None:
                state = {
                    "model": model.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "epoch": epoch + 1,
                }
                io.save_torch(state | rule.state(), checkpoint)
    return history


def seed_everything(seed: int) -> None:
    """Seed torch and ask for deterministic kernels (bit-identical runs on the CPU): torch's
    `use_deterministic_algorithms(True, warn_only=True)` without importing torch.compile's
    compiler to set its flag too (0.5 s a run; nothing here compiles)."""
    torch.manual_seed(seed)
    torch.set_deterministic_debug_mode("warn")


def new_model(model="notes", seed=0, device="cpu", **kwargs):
    """A freshly initialised model, its weights drawn from `seed`."""
    seed_everything(seed)
    return build_model(model, **kwargs).to(device)
