"""Training on in-memory tensors, with atomic per-epoch checkpoints that resume exactly.

Used by the training-run chapter (one run of Table 2), the optimizer, preprocessing,
capacity and convolution chapters.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import data
from .models import build_model

# sdlm: the paper's procedure (sdlm.py); sdlm-exact: the same with the exact Gauss-Newton
# diagonal as its curvature.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "sdlm", "sdlm-exact")
# default: the weights the model is built with (sdlm redraws them: sdlm.fan_in_init);
# pooled: sdlm.pooled_init (chapter 09).
INITS = ("default", "pooled")


def make_optimizer(name, params, lr, momentum=0.9, weight_decay=0.0, betas=(0.9, 0.999)):
    """'sgd' (vanilla), 'momentum' (classic), 'nesterov' or 'adam' ('sdlm' is in sdlm.py)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")


def pick_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when there is one, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


@torch.no_grad()
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


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary name in the same folder, then rename over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; checkpoints are shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def check_params(optimizer, lr, epochs, batch_size, n_train, momentum=0.9, init="default"):
    """Refuse bad hyperparameters before any training, naming the problem and the fix."""
    problems = []
    if init not in INITS:
        problems.append(f"init {init!r} is unknown: use one of {', '.join(INITS)}")
    elif init != "default" and not str(optimizer).startswith("sdlm"):
        problems.append(f"init {init!r} is for the sdlm optimizers only: use init 'default'")
    if optimizer not in OPTIMIZERS:
        problems.append(f"optimizer {optimizer!r} is unknown: use one of {', '.join(OPTIMIZERS)}")
    if not isinstance(epochs, int) or epochs < 1:
        problems.append(f"epochs must be an integer >= 1, got {epochs!r}")
    if not lr > 0:
        problems.append(f"lr must be > 0, got {lr!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= n_train:
        problems.append(
            f"batch_size must be between 1 and the number of training images ({n_train}), "
            f"got {batch_size!r}"
        )
    if not 0 <= momentum < 1:
        problems.append(f"momentum must be in [0, 1), got {momentum!r}")
    if problems:
        raise ValueError("bad parameters:\n  " + "\n  ".join(problems))


def fit(
    model,
    X,
    y,
    X_test,
    y_test,
    *,
    optimizer="adam",
    lr=1e-3,
    momentum=0.9,
    weight_decay=0.0,
    epochs=1,
    batch_size=64,
    seed=0,
    checkpoint: str | Path | None = None,
    progress=True,
    init="default",
):
    """Train `model` on in-memory tensors and return one dict of metrics per epoch.

    The model must already be on the device of X. Shuffling uses its own generator seeded by
    `seed`. With `checkpoint`, the state after each epoch (model, optimizer, shuffle and
    global RNG states, metrics) is written there atomically, and a run whose checkpoint
    exists resumes after its last epoch: its metrics are those of an uninterrupted run. A
    checkpoint of a shorter run of the same protocol continues to `epochs`. `init`: "default"
    keeps the weights the model was built with (sdlm redraws them with `sdlm.fan_in_init`);
    "pooled" is `sdlm.pooled_init`, for sdlm only.
    """
    check_params(optimizer, lr, epochs, batch_size, len(X), momentum, init)
    if optimizer.startswith("sdlm"):  # the paper's own procedure (chapter 09) has its own loop
        from . import sdlm

        return sdlm.fit(
            model, X, y, X_test, y_test, epochs=epochs, seed=seed, checkpoint=checkpoint,
            progress=progress, eta0=lr, curvature="exact" if optimizer == "sdlm-exact" else "paper",
            init=sdlm.INIT if init == "default" else init,
        )  # fmt: skip
    opt = make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history, start = [], 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, start = list(state["history"]), state["epoch"]
        if start > epochs:
            raise ValueError(f"{checkpoint} is at epoch {start}, beyond epochs={epochs}")
    bar = tqdm(
        range(start, epochs), desc="epochs", disable=not progress, initial=start, total=epochs
    )
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        total_loss, correct, seen = 0.0, 0, 0
        for Xb, yb in data.batches(X, y, batch_size, gen):
            out = model(Xb)
            loss = model.loss(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(yb)
            correct += (model.decide(out) == yb).sum().item()
            seen += len(yb)
        seconds = time.perf_counter() - t0
        test_loss, test_acc = evaluate(model, X_test, y_test)
        row = {
            "epoch": epoch + 1,
            "train_loss": total_loss / seen,
            "train_acc": 100.0 * correct / seen,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "seconds": seconds,
            "images_per_s": seen / seconds,
        }
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", test_acc=f"{test_acc:.2f}")
        if checkpoint is not None:
            save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "epoch": epoch + 1,
                },
                Path(checkpoint),
            )
    return history


def seed_everything(seed: int) -> None:
    """Seed torch and ask for deterministic kernels (bit-identical runs on the CPU)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def new_model(model="notes", seed=0, device="cpu", **kwargs):
    """A freshly initialised model, its weights drawn from `seed`."""
    seed_everything(seed)
    return build_model(model, **kwargs).to(device)
