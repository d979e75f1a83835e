"""Where a sweep's runs execute: local worker processes, or Ray tasks on a (local or remote) cluster.

Both call the work function they are given (the runner's `execute_run`: one config, with the batch's
ExecutionSettings whole, its compile setting included) in a fresh process and write into the same run store,
so results do not depend on the executor (with the same threads per run). Ray is imported only when asked for
(`pip install .[ray]`). On a cluster every node needs the package, the data (`--data` or PLASTICITY_DATA at the
same path) and the output folder on a shared filesystem.
"""
from __future__ import annotations

import multiprocessing
import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable

EXECUTORS = ("local", "ray")
# The retry policy (docs/cluster.md): a run's Ray task whose worker process or node dies is started again, up to
# this many times, and resumes from the run's last checkpoint. A run that raises is not retried: it would again.
RAY_RETRIES = 3
# A driver whose head dies is not told: Ray's wait hangs, and after 60 s (gcs_rpc_server_reconnect_timeout_s) Ray ends
# the driver's process without a Python error. So a waiting driver asks the head's GCS every HEAD_CHECK_S whether it
# still answers, and stops the batch once it has not answered for HEAD_GRACE_S (a GCS restarting under Ray's fault
# tolerance comes back within that; Ray's own limit must not be reached first).
HEAD_CHECK_S = 1.0
HEAD_GRACE_S = 10.0


class LostWorkers(RuntimeError):
    """A run's task lost its worker or node more often than the retry policy allows, or the driver lost the head."""


class LocalExecutor:
    """`workers` spawned processes (fork after torch's OpenMP threads start can hang) calling `work`."""

    def __init__(self, workers: int, threads: int, work: Callable[..., str]):
        self.slots, self.threads, self.work = workers, threads, work
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, *args: Any) -> Future:
        return self.pool.submit(self.work, *args, self.threads)

    def wait_any(self, handles: list[Future]) -> list[Future]:
        return list(wait(handles, return_when=FIRST_COMPLETED)[0])

    def result(self, handle: Future) -> str:
        return handle.result()  # re-raises the worker's exception

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class RayExecutor:
    """Ray tasks calling `work`, one GPU each when the cluster has GPUs, else `threads` CPUs each.

    Without an address a local Ray cluster with `workers` CPUs is started (and stopped on close).
    """

    def __init__(self, address: str | None, workers: int, threads: int, use_gpu: bool, work: Callable[..., str]):
        try:
            import ray
        except ImportError:
            raise RuntimeError("the Ray executor needs Ray: pip install 'plasticity_nb[ray]'") from None
        self.ray, self.started = ray, not ray.is_initialized()
        if self.started:
            env = {k: v for k, v in os.environ.items() if k.startswith("PLASTICITY_") or k == "PYTHONPATH"}
            # Without an address, a new local cluster of `workers` CPUs: "local", because Ray's default (None) joins
            # any cluster already running on this machine (RAY_ADDRESS, or the last `ray start`), sized otherwise.
            ray.init(address=address or "local", num_cpus=None if address else workers * threads,
                     include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=False)
        resources = ray.cluster_resources()
        self.threads = threads
        options = {"num_gpus": 1, "num_cpus": 1} if use_gpu else {"num_cpus": threads}
        options.update(max_retries=RAY_RETRIES, retry_exceptions=False)
        self.slots = int(resources.get("GPU", 0)) if use_gpu else max(1, int(resources.get("CPU", 1)) // threads)
        self.task = ray.remote(**options)(work)
        self.head = ray.get_runtime_context().gcs_address

    def submit(self, *args: Any):
        return self.task.remote(*args, self.threads)

    def wait_any(self, handles: list) -> list:
        """The finished tasks among `handles` (at least one); LostWorkers once the head stops answering."""
        silent_since = None
        while True:
            done = self.ray.wait(handles, num_returns=1, timeout=HEAD_CHECK_S)[0]
            if done:
                return done
            if answers(self.head):
                silent_since = None
                continue
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since >= HEAD_GRACE_S:
                raise LostWorkers(f"the Ray cluster lost its head: {self.head} has not answered for "
                                  f"{HEAD_GRACE_S:.0f} s; the store keeps every finished run and each run's last "
                                  "checkpoint: start the cluster again and run the same command to continue")

    def result(self, handle) -> str:
        """The task's run key; the run's own exception as it is; a lost worker or node past the retries as one
        LostWorkers (the store keeps every finished run and the last checkpoints: the same command continues)."""
        lost = (self.ray.exceptions.WorkerCrashedError, self.ray.exceptions.NodeDiedError,
                self.ray.exceptions.ObjectLostError, self.ray.exceptions.LocalRayletDiedError,
                self.ray.exceptions.RaySystemError)
        try:
            return self.ray.get(handle)
        except lost as err:
            raise LostWorkers(f"a run's Ray task lost its worker or node {RAY_RETRIES + 1} times (the retry policy: "
                              f"{RAY_RETRIES} retries), or the cluster lost its head ({type(err).__name__}); the store "
                              "keeps every finished run and each run's last checkpoint: run the same command again "
                              "to continue") from None

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def answers(address: str) -> bool:
    """Whether something accepts connections at `address` (host:port): a dead head's port refuses, a vanished
    machine's times out."""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=HEAD_CHECK_S).close()
    except OSError:
        return False
    return True
