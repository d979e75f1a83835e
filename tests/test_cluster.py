"""The Ray path survives what clusters do: a worker killed mid-run, a node lost mid-batch (docs/cluster.md).

A cluster of a head (no CPUs: it only schedules) and two one-CPU worker nodes is simulated on this machine with
`ray.cluster_utils.Cluster`; every run of a batch on it must equal the same batch trained in this process, bit for
bit, however many of its workers died.
"""
import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from plasticity_nb import Phase, RunStore, run_many
from tests.helpers import DETERMINISTIC, events, leftovers, tiny_run

ray = pytest.importorskip("ray", reason="the Ray executor is an optional extra: pip install '.[ray]'")
pytestmark = pytest.mark.slow(seconds=90)

# Runs long enough (several epochs, one checkpoint each) for a kill to land inside one after its first checkpoint.
CONFIGS = [tiny_run(seed, phases=(Phase(pool="full", epochs=6),)) for seed in range(4)]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_thread, cifar):
    """The batch uninterrupted, in this process with one thread (as each Ray task trains)."""
    return {r.key: r.history[DETERMINISTIC] for r in run_many(CONFIGS, tmp_path_factory.mktemp("reference"), workers=1)}


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


def test_a_killed_worker_is_retried_and_its_run_resumes_from_its_checkpoint(cluster, reference, tmp_path):
    def kill_a_worker():
        key, attempt = attempts_after_a_checkpoint(tmp_path)
        os.kill(attempt["pid"], signal.SIGKILL)
        return key, attempt

    killer, found = in_background(kill_a_worker)
    records = run_many(CONFIGS, tmp_path, workers=2, executor="ray", checkpoint_every=1)
    killer.join()
    key, killed = found["done"]
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

    killer, found = in_background(lose_its_node)
    records = run_many(CONFIGS, tmp_path, workers=2, executor="ray", checkpoint_every=1)
    killer.join()
    key, lost = found["done"]
    assert_finished_like_the_reference(tmp_path, records, reference)
    places = [a["ray_node"] for a in next(r for r in records if r.key == key).provenance["attempts"]]
    assert places[0] == lost["ray_node"] and places[-1] != lost["ray_node"]
