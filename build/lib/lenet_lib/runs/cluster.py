"""Where the runner's runs execute (runner.py): here and now in order (`Here`), or as tasks on
Dask (`Dask`): a running scheduler's workers, or a `LocalCluster` in this process that listens
on nothing beyond the loopback and opens its dashboard only when asked (`lenet run
--dashboard`).
"""

from __future__ import annotations

import uuid

from .experiments import run_id
from .worker import execute

RETRIES = 2  # a kernel that died (not an exception in a cell) is run again, then reported
LOOPBACK = "127.0.0.1"


class Here:
    """Runs each run here and now, in order (`runner.run_chain`)."""

    def __init__(self, threads=1):
        self.threads = threads

    def slots(self) -> int:  # one run at a time
        return 1

    def submit(self, *args, **kw):
        try:
            return execute(*args, **{**kw, "threads": self.threads})
        except Exception as e:  # as a Dask task that raised
            return e

    def first_done(self, tasks):
        return tasks[0], tasks[0]  # a task here is its result


class Dask:
    """Runs each run as a task on a Dask cluster: the scheduler at `address`, or else a
    `LocalCluster` of `jobs` one-thread workers in this process, started on the first run and
    closed with this object (its workers are threads here, so they never outlive it; each
    run's kernel is a process of its own). A scheduler without workers is waited for
    `wait_workers` seconds (0: without limit), then refused."""

    def __init__(self, address=None, jobs=1, dashboard=False, wait_workers=60.0):
        self.address, self.jobs, self.client, self.cluster = address, jobs, None, None
        self.dashboard, self.wait_workers = dashboard, wait_workers

    def slots(self) -> int:
        """Runs at a time: the workers' threads (asked each time: a scheduler's workers may
        come and go)."""
        if self.client is None:
            self._start()
        return max(1, sum(self.client.nthreads().values())) if self.address else self.jobs

    def submit(self, run, *args, **kw):
        key = f"{run_id(run)}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(execute, run, *args, key=key, retries=RETRIES, pure=False,
                                  **kw)  # fmt: skip

    def local_options(self) -> dict:
        """The embedded cluster's settings: threads in this process, talking in memory. Dask
        still gives the scheduler and each worker an HTTP server (health checks, and the
        dashboard where bokeh is installed), on every interface by default: here on the
        loopback only, the dashboard only if asked for."""
        import importlib.util

        if self.dashboard and not importlib.util.find_spec("bokeh"):
            raise ValueError("--dashboard needs the bokeh package, which this environment "
                             "lacks: install bokeh, or leave --dashboard out")  # fmt: skip
        return dict(
            n_workers=self.jobs, threads_per_worker=1, processes=False, protocol="inproc://",
            dashboard_address=f"{LOOPBACK}:0", worker_dashboard_address=f"{LOOPBACK}:0",
            scheduler_kwargs={"dashboard": self.dashboard}, silence_logs=50,
        )  # fmt: skip

    def _start(self):
        from distributed import Client, LocalCluster

        if self.address:
            try:
                self.client = Client(self.address, timeout="10s")
            except (OSError, ValueError, TypeError) as e:  # dead, refusing or malformed
                raise ValueError(
                    f"cannot reach the Dask scheduler {self.address!r} "
                    f"({' '.join(str(e).split())[:160]}): start it, or fix --scheduler (or "
                    "DASK_SCHEDULER_ADDRESS), or leave both unset to run on this machine"
                ) from None
            self._wait_for_a_worker()
        else:
            self.cluster = LocalCluster(**self.local_options())
            self.client = Client(self.cluster)
        port = self.client.scheduler_info().get("services", {}).get("dashboard")
        if port and self.address:  # a scheduler's own dashboard
            print(f"Dask dashboard: {self.client.dashboard_link}", flush=True)
        elif port and self.dashboard:  # Dask's link names the machine's address, not ours
            print(f"Dask dashboard: http://{LOOPBACK}:{port}/status", flush=True)

    def _wait_for_a_worker(self):
        if self.client.nthreads():
            return
        limit = f"for {self.wait_workers:g} s" if self.wait_workers else "without limit"
        print(f"no Dask worker has joined {self.address} yet: waiting {limit}", flush=True)
        try:
            self.client.wait_for_workers(1, timeout=self.wait_workers or None)
        except TimeoutError:
            raise ValueError(
                f"no Dask worker joined the scheduler {self.address} in {self.wait_workers:g} "
                f"s: start one (dask worker {self.address}), or give --wait-workers 0 to wait "
                "without limit"
            ) from None

    def first_done(self, tasks):
        """The first of `tasks` (futures) to end, and the run's report or the exception of a
        task that raised (its worker or kernel died too often)."""
        from distributed import wait

        f = next(f for f in tasks if f in wait(tasks, return_when="FIRST_COMPLETED").done)
        if f.status == "finished":
            return f, f.result()
        return f, f.exception() if f.status == "error" else RuntimeError(f.status)

    def close(self):
        for part in (self.client, self.cluster):
            if part is not None:
                part.close()
