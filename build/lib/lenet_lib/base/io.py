"""Files: atomic writes, JSON, torch checkpoints, and the provenance of a run.

The bottom of the library: it imports nothing else from `lenet_lib` but the version. Every
file the library writes (data files, checkpoints, a run's records) goes through
`write_atomic`, so a killed process never leaves a half-written file under its real name.
"""

from __future__ import annotations

import hashlib
import io as _stdio
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from lenet_lib import __version__

ROOT = Path(__file__).resolve().parents[2]
# The committed results, which the book reads. Not moved by LENET_DATA (that is the data).
RESULTS = ROOT / "results"


def write_atomic(path: str | Path, payload: str | bytes) -> None:
    """Write `payload` (text or bytes) to a temporary name in the same folder, then rename it
    over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload.encode() if isinstance(payload, str) else payload)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; data and results are shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path, keys=()) -> dict:
    """A JSON object (a run's `params.json` or `summary.json`) that holds at least `keys`;
    anything else is refused with the file's name and the fix."""
    fix = f"restore it (git checkout) or delete {Path(path).parent} and re-run that run"
    try:
        obj = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}): {fix}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file: {fix}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a JSON {type(obj).__name__}, not an object: {fix}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(map(repr, missing))}: {fix}")
    return obj


def save_torch(obj, path: str | Path) -> None:
    """torch.save, atomically (checkpoints)."""
    buf = _stdio.BytesIO()
    torch.save(obj, buf)
    write_atomic(path, buf.getvalue())


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose weights are not those its run recorded."""


def load_torch(path: str | Path) -> dict:
    """A checkpoint, tensors only (`weights_only`: a pickle that runs code is refused).

    A truncated, corrupt or unsafe file is a `CheckpointError` that names it; torch's own
    message (which suggests `weights_only=False`, the unsafe way) never reaches the user.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as e:  # torch raises many kinds for a bad file, OSError among them
        kind = (
            "holds Python objects besides tensors, which loading would run (refused)"
            if "weights_only" in str(e)
            else "is truncated or corrupt"
        )
        raise CheckpointError(
            f"{path} {kind}: restore it (git checkout) or delete it and re-run its run"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint of this library: delete it")
    return state


def weights_sha256(model_state: dict) -> str:
    """sha256 of a model's weights: each tensor's name, dtype, shape and bytes, in order.

    It hashes the weights rather than the file, so it survives pruning (which rewrites the
    checkpoint without the optimizer state); `results.load_model` checks it.
    """
    h = hashlib.sha256()
    for name, t in model_state.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and torch's thread count (`lenet bench`, runs)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = torch.get_num_threads()
    return f"{cpu} ({n} thread{'s' if n > 1 else ''})"


def provenance(device: torch.device, data_md5: dict) -> dict:
    """What produced a run: versions, data checksums, commit, device, threads, time."""
    from importlib.metadata import version

    import numpy

    return {
        "lenet_lib": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "numpy": numpy.__version__,
        "data_md5": data_md5,
        "git_commit": git_commit(),
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def record_weights_sha256(run_dir) -> str:
    """Add to a complete run's `summary.json` the sha256 of the weights in its checkpoint
    (`weights_sha256`), for runs made before summaries carried it. Trust the weights first:
    this records whatever the file holds now."""
    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json", keys=("status",))
    if summary["status"] != "complete":
        raise ValueError(f"{run_dir} is not a complete run")
    digest = weights_sha256(load_torch(run_dir / "checkpoint.pt")["model"])
    write_json(run_dir / "summary.json", summary | {"weights_sha256": digest})
    return digest


class Lock:
    """An exclusive, non-blocking lock on a run's folder (filelock: freed if the process
    dies, on every platform). `with Lock(d) as got:` gives False if another runner holds it."""

    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(run_dir / ".lock")

    def __enter__(self):
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def __exit__(self, *exc):
        if self.lock.is_locked:
            self.lock.release()
