"""The Ray path survives what clusters do: a worker killed mid-run, a node lost mid-batch, the head lost under a
driver, a run whose worker dies more often than the retry policy allows (docs/cluster.md).

A cluster of a head (no CPUs: it only schedules) and two one-CPU worker nodes is simulated on this machine with
`ray.cluster_utils.Cluster`; every run of a batch on it must equal the same batch trained in this process, bit for
bit, however many of its workers died.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from plasticity_nb import Phase, RunStore, run_many
from plasticity_nb.execution import executors
from plasticity_nb.execution.executors import LostWorkers, RayExecutor
from tests.helpers import DETERMINISTIC, events, leftovers, stored_runs, tiny_run

ray = pytest.importorskip("ray", reason="the Ray executor is an optional extra: pip install '.[ray]'")
pytestmark = pytest.mark.slow(seconds=120)  # the head-loss test adds about 30 s

# Runs long enough (several epochs, one checkpoint each) for a kill to land inside one after its first checkpoint.
CONFIGS = [tiny_run(seed, phases=(Phase(pool="full", epochs=6),)) for seed in range(4)]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_thread, cifar):
    """The batch uninterrupted, in this process with one thread (as each Ray task trains)."""
    records = run_many(CONFIGS, out_dir=tmp_path_factory.mktemp("reference"), workers=1)
    return {r.key: r.history[DETERMINISTIC] for r in records}


@pytest.fixture(scope="module")
def cluster():
    """A head that only schedules and two worker nodes of one CPU, whose workers import this checkout's package."""
    from ray.cluster_utils import Cluster

    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), path]))  # the nodes inherit it
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()
    os.environ.pop("PYTHONPATH") if path is None else os.environ.update(PYTHONPATH=path)


def attempts_after_a_checkpoint(out: Path, deadline_s: float = 300) -> tuple[str, dict]:
    """(key, its running attempt) of the first run to write a checkpoint: its worker is then mid-run."""
    partial = RunStore(out).root / ".partial"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for checkpoint in partial.glob("*/checkpoint.pt"):
            try:
                lines = (checkpoint.parent / "attempts.jsonl").read_text().splitlines()
            except FileNotFoundError:  # finished meanwhile
                continue
            return checkpoint.parent.name, json.loads(lines[-1])
        time.sleep(0.02)
    raise AssertionError("no run wrote a checkpoint")


def in_background(action) -> tuple[threading.Thread, dict]:
    """Run `action()` in a thread beside the batch; what it returns lands in the dict (key 'done')."""
    found = {}
    thread = threading.Thread(target=lambda: found.update(done=action()), daemon=True)
    thread.start()
    return thread, found


def assert_finished_like_the_reference(out: Path, records, reference) -> None:
    """Every run stored once, equal to the uninterrupted batch's, and no checkpoint, temporary folder or lock left."""
    assert {r.key: r.history[DETERMINISTIC] for r in records}.keys() == reference.keys()
    for record in records:
        pd.testing.assert_frame_equal(record.history[DETERMINISTIC], reference[record.key], obj=record.key)
    finished = [e["key"] for e in events(out) if e["event"] == "finish"]
    assert sorted(finished) == sorted(reference), "a run was lost or trained to the end twice"
    assert leftovers(out) == []


def batch_while(disrupt, out):
    """The batch of CONFIGS on the cluster while `disrupt` acts in the background; the records, and the run key and
    attempt `disrupt` returned."""
    killer, found = in_background(disrupt)
    records = run_many(CONFIGS, out_dir=out, workers=2, executor="ray", checkpoint_every=1)
    killer.join()
    return (records, *found["done"])


def test_a_killed_worker_is_retried_and_its_run_resumes_from_its_checkpoint(cluster, reference, tmp_path):
    def kill_a_worker():
        key, attempt = attempts_after_a_checkpoint(tmp_path)
        os.kill(attempt["pid"], signal.SIGKILL)
        return key, attempt

    records, key, killed = batch_while(kill_a_worker, tmp_path)
    assert_finished_like_the_reference(tmp_path, records, reference)
    retried = next(r for r in records if r.key == key)
    assert [a["pid"] for a in retried.provenance["attempts"]][0] == killed["pid"]
    assert len(retried.provenance["attempts"]) == 2 and "resumed_from" in retried.provenance
    assert all(len(r.provenance["attempts"]) == 1 for r in records if r.key != key)


def test_a_lost_node_s_runs_are_rescheduled_on_the_other_node(cluster, reference, tmp_path):
    simulated, nodes = cluster

    def lose_its_node():
        key, attempt = attempts_after_a_checkpoint(tmp_path)
        node = next(n for n in nodes if n.node_id == attempt["ray_node"])
        simulated.remove_node(node, allow_graceful=False)  # its raylet and workers die at once
        return key, attempt

    records, key, lost = batch_while(lose_its_node, tmp_path)
    assert_finished_like_the_reference(tmp_path, records, reference)
    places = [a["ray_node"] for a in next(r for r in records if r.key == key).provenance["attempts"]]
    assert places[0] == lost["ray_node"] and places[-1] != lost["ray_node"]


# The batch a driver process runs against the cluster at argv[2], into argv[1]: the first two runs of CONFIGS (two
# slots, so both are mid-run when the head dies). The head counts as lost after 2 s unanswered, not 10, to keep the
# test short; the path is the same.
DRIVER = """
import sys
from plasticity_nb import run_many
from plasticity_nb.execution import executors
from tests.test_cluster import CONFIGS
executors.HEAD_GRACE_S = 2
run_many(CONFIGS[:2], out_dir=sys.argv[1], workers=2, executor="ray", ray_address=sys.argv[2], checkpoint_every=1)
"""


def start_head():
    """A one-node cluster: a head with two CPUs that runs the tasks itself (the driver's PYTHONPATH reaches its
    workers through the executor's runtime_env)."""
    from ray.cluster_utils import Cluster

    return Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})


def driver(out: Path, address: str, log: Path) -> subprocess.Popen:
    """DRIVER in its own process (one thread per run, as the reference trains), its output into `log`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-c", DRIVER, str(out), address], cwd=REPO, env=env,
                                stdout=handle, stderr=subprocess.STDOUT, text=True)


def lose_the_head(head) -> None:
    """The head's machine gone at once: its GCS first (so no process is left to report the others), then its
    raylet and the rest, all SIGKILLed."""
    head.head_node.kill_gcs_server(check_alive=False)
    head.head_node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)


def wait_until_gone(pid: int, deadline_s: float = 60) -> None:
    """Until process `pid` has exited (a worker whose raylet died notices it and exits on its own)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} outlived its raylet")


def cut_short_by_a_lost_head(out: Path, log: Path) -> None:
    """DRIVER against a fresh head that is lost once a run has a checkpoint: the driver ends with one error, its own
    (not Ray's chain), saying so; every stored run is whole and no lock stays held."""
    head = start_head()
    try:
        batch = driver(out, head.address, log)
        _, attempt = attempts_after_a_checkpoint(out)
        lose_the_head(head)
        assert batch.wait(timeout=120) != 0
    finally:
        head.shutdown()
    wait_until_gone(attempt["pid"])
    output = log.read_text()
    assert output.count("Traceback") == 1 and "During handling" not in output, output
    assert output.rstrip().splitlines()[-1].startswith("plasticity_nb.execution.executors.LostWorkers: the Ray "
                                                       "cluster lost its head"), output
    assert len(stored_runs(out)) < 2  # loads every stored run whole; the batch was cut short
    assert not [p for p in leftovers(out) if p.startswith("held:")]


def assert_continued_like_the_reference(out: Path, records, reference) -> None:
    """The cut batch finished: each run equal to the uninterrupted batch's, one of them resumed from a checkpoint."""
    assert_finished_like_the_reference(out, records, {r.key: reference[r.key] for r in records})
    assert any("resumed_from" in r.provenance for r in records)


def test_losing_the_head_stops_the_driver_with_one_error_and_the_store_continues(reference, tmp_path):
    """The suite's form: the batch continues in this process (the soak test below continues it on a fresh cluster
    with the same command; both read the same store)."""
    cut_short_by_a_lost_head(tmp_path / "out", tmp_path / "driver.log")
    records = run_many(CONFIGS[:2], out_dir=tmp_path / "out", workers=1, checkpoint_every=1)
    assert_continued_like_the_reference(tmp_path / "out", records, reference)


@pytest.mark.soak
def test_after_a_lost_head_the_same_command_finishes_the_batch_on_a_fresh_cluster(reference, tmp_path):
    out = tmp_path / "out"
    cut_short_by_a_lost_head(out, tmp_path / "driver.log")
    head = start_head()
    try:
        again = driver(out, head.address, tmp_path / "again.log")
        assert again.wait(timeout=300) == 0, (tmp_path / "again.log").read_text()
    finally:
        head.shutdown()
    assert_continued_like_the_reference(out, [RunStore(out).load(c) for c in CONFIGS[:2]], reference)


def test_a_run_whose_worker_dies_past_the_retries_stops_the_batch_with_lost_workers(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "RAY_RETRIES", 1)
    tries = tmp_path / "tries"

    def dies(*args):  # pickled by value: the workers need not import this module
        with open(tries, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)

    pool = RayExecutor(None, workers=2, threads=1, use_gpu=False, work=dies)
    handle = pool.submit()
    with pytest.raises(LostWorkers, match=r"lost its worker or node 2 times \(the retry policy: 1 retries\)"):
        pool.result(pool.wait_any([handle])[0])
    assert len(set(tries.read_text().split())) == 2  # the first try and its one retry, each in a process of its own
