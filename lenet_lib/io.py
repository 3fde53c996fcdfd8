"""Files: atomic writes, JSON, torch checkpoints, and the provenance of a run.

The bottom of the library: it imports nothing else from `lenet_lib` but the version. Every
file the library writes (data files, checkpoints, a run's records) goes through
`write_atomic`, so a killed process never leaves a half-written file under its real name.
"""

from __future__ import annotations

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

from . import __version__

ROOT = Path(__file__).resolve().parent.parent
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


def read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}): delete it and re-run the run") from e


def save_torch(obj, path: str | Path) -> None:
    """torch.save, atomically (checkpoints)."""
    buf = _stdio.BytesIO()
    torch.save(obj, buf)
    write_atomic(path, buf.getvalue())


def load_torch(path: str | Path) -> dict:
    """A checkpoint, tensors only (`weights_only`: a pickle that runs code is refused)."""
    return torch.load(path, map_location="cpu", weights_only=True)


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
    import numpy
    import torchvision

    return {
        "lenet_lib": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "data_md5": data_md5,
        "git_commit": git_commit(),
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
