"""One run on a Dask worker: `chapters/06_training_run.ipynb` executed with papermill, the
run's files sent back (runner.py submits it; nothing else of ours runs on a cluster).

The worker executes the notebook in the client's run folder where it sees it (the embedded
cluster, a shared file system: its checkpoints then survive a client that dies), else in a
scratch folder of its own, which goes when the run ends, with the kernel's connection file.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from lenet_lib.base import io

from .experiments import Run, run_id

NOTEBOOK = io.ROOT / "chapters" / "06_training_run.ipynb"
KERNEL = "python3"  # the standard name: from the venv, its own kernel (ipykernel's)
TOKEN = ".runner"  # the client's mark in a run folder: a worker that reads it shares the folder


def _shares(client_dir: str, token: str) -> bool:
    """Whether this worker sees the client's run folder (same machine or a shared file system);
    LENET_WORKER_SCRATCH=1 makes a worker keep to its scratch folder all the same."""
    if os.environ.get("LENET_WORKER_SCRATCH") == "1":
        return False
    try:
        return (Path(client_dir) / TOKEN).read_text() == token
    except OSError:
        return False


def _clear_stale_scratch() -> None:
    """Remove the scratch folders of processes that died mid-run (killed workers or clients)."""
    for folder in Path(tempfile.gettempdir()).glob("lenet-run-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _say(text: str) -> None:
    """Print `text` where the client runs: a worker sends it as distributed.print does, but
    without printing it too (the embedded cluster's workers share the client's stdout)."""
    from distributed import get_worker

    try:
        get_worker().log_event("print", {"args": (text,), "sep": " ", "end": "\n", "flush": True})
    except ValueError:  # not on a worker
        print(text, flush=True)


def _papermill(run: Run, run_dir: Path, output: Path, device: str, threads: int) -> None:
    import papermill as pm
    from jupyter_client.manager import AsyncKernelManager

    params = run.params() | {
        "run_id": run_id(run),
        "run_dir": str(run_dir),
        "device": device,
        "threads": threads,
    }
    # A loop of this run's own: Dask runs tasks in copies of the submitting context, where an
    # earlier papermill call may have left jupyter_core's loop of another thread, which is
    # then "already running" (jupyter_core keeps it in a context variable).
    from jupyter_core import utils as jc

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    token = jc._loop.set(loop) if hasattr(jc, "_loop") else None
    # The kernel's connection file in the scratch folder, not in /tmp: it goes with it.
    km = AsyncKernelManager(kernel_name=KERNEL, connection_file=str(output.parent / "kernel.json"))
    try:
        pm.execute_notebook(
            str(NOTEBOOK),
            str(output),
            parameters=params,
            kernel_name=KERNEL,
            cwd=str(io.ROOT),
            progress_bar=False,
            log_output=False,
            km=km,
        )
    finally:
        # nbclient leaves alone a kernel whose manager it was handed: without this, every
        # finished run's kernel stayed alive, idle, holding its memory (1.4 GB for a paper run).
        if km.has_kernel:
            loop.run_until_complete(km.shutdown_kernel(now=True))
        if token is not None:
            jc._loop.reset(token)
        asyncio.set_event_loop(None)
        loop.close()


def execute(
    run: Run, client_dir: str, token: str, start=None, action="fresh", device="auto", threads=1
) -> dict:
    """Execute the training notebook for `run` (on a Dask worker) and return the run's files.

    `start` holds files to place in the run folder first (the checkpoint to resume from, or
    that of the shorter run this one continues). Returns {"run_id", "status", "error",
    "files"}: an exception in a cell gives a failed run (trying again would fail again); a
    kernel that died raises, and Dask tries again.
    """
    import papermill as pm

    rid = run_id(run)
    _clear_stale_scratch()
    with tempfile.TemporaryDirectory(prefix=f"lenet-run-{os.getpid()}-") as scratch:
        scratch = Path(scratch)
        run_dir = Path(client_dir) if _shares(client_dir, token) else scratch / "run"
        run_dir.mkdir(exist_ok=True)
        if not (run_dir / "checkpoint.pt").exists():  # else an earlier try got further: resume
            for name, payload in (start or {}).items():
                io.write_atomic(run_dir / name, payload)
        _say(f"{rid}: running ({action})")
        error = None
        try:
            _papermill(run, run_dir, scratch / "run.ipynb", device, threads)
        except pm.PapermillExecutionError as e:
            error = f"{e.ename}: {e.evalue}"
        files = {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())
                 if p.is_file() and not p.name.startswith(".")}  # fmt: skip
        if (scratch / "run.ipynb").exists():
            files["run.ipynb"] = (scratch / "run.ipynb").read_bytes()
    return {"run_id": rid, "status": "failed" if error else "complete", "error": error,
            "files": files}  # fmt: skip


def _glue_record(out) -> bool:
    """A myst-nb glue record: data for a book built from this notebook, which no notebook
    viewer shows (a run's notebook is never built into the book; metrics.csv has the data)."""
    keys = out.get("data", {}).keys()
    return bool(keys) and all(k.startswith("application/papermill.record/") for k in keys)


def compact_notebook(path: Path) -> None:
    """Keep of an executed notebook what a reader sees: consecutive stream outputs merged,
    each line that a progress bar rewrote with carriage returns in its last state, and no
    glue records."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if _glue_record(out):
                continue
            if out.output_type == "stream" and last and last.get("name") == out.name:
                last.text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = re.sub(r"[^\n]*\r(?=[^\n])", "", out.text)
        if "outputs" in cell:
            cell.outputs = merged
    io.write_atomic(path, nbformat.writes(nb))
