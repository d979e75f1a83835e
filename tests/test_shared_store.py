"""A run store shared over a network filesystem, as cluster nodes share it: one folder mounted twice with sshfs over
loopback (tests/sshfs.py), each mount a node. What the store needs from such a filesystem is in docs/cluster.md."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from plasticity_nb import Phase, RunStore, run, run_many
from plasticity_nb.core.files import is_locked
from tests.helpers import DETERMINISTIC, events, leftovers, tiny_run
from tests.sshfs import mounted_twice

pytestmark = pytest.mark.slow(seconds=60)
LONG = tiny_run(0, phases=(Phase(pool="full", epochs=6),))  # several checkpoints: a kill lands inside the run
SEEDS = [tiny_run(seed) for seed in (1, 2)]  # each a prefix and its continuation


@pytest.fixture(scope="module")
def mounts(tmp_path_factory):
    with mounted_twice(tmp_path_factory.mktemp("sshfs")) as (a, b, served):
        yield a, b, served


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_thread, cifar):
    """The runs trained uninterrupted in this process, on a local disk."""
    out = tmp_path_factory.mktemp("reference")
    return {r.key: r.history[DETERMINISTIC] for r in run_many([LONG, *SEEDS], out_dir=out, workers=1)}


def python(code: str) -> subprocess.Popen:
    """A process of its own (a node's worker), one thread as in this one."""
    return subprocess.Popen([sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_record_locks_are_per_mount_on_sshfs(mounts, tmp_path):
    """The fact docs/cluster.md rests on: a lock held through one mount is seen through it, not through another
    (FUSE keeps the locks of a filesystem without a lock protocol, like SFTP, in the mounting kernel)."""
    a, b, served = mounts
    holder = python(f"from plasticity_nb.core.files import locked\nimport time\nwith locked({str(a / 'x.lock')!r}):"
                    "\n    print('held', flush=True); time.sleep(60)")
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_locked(a / "x.lock") and not is_locked(b / "x.lock") and not is_locked(served / "x.lock")
    finally:
        holder.kill()
        holder.wait()


def test_a_run_killed_on_one_node_resumes_on_the_other_bit_for_bit(mounts, reference, one_thread):
    """SIGKILL a writer on node A after a checkpoint; node B resumes the run from it (a retried task on another
    node), and the store ends complete, with nothing left behind."""
    a, b, served = mounts
    out = "kill"
    writer = python(f"from plasticity_nb import RunConfig, run\nrun(RunConfig.from_dict({LONG.to_dict()!r}), "
                    f"out_dir={str(a / out)!r}, checkpoint_every=1)")
    checkpoint = RunStore(served / out).checkpoint_path(LONG)
    while not checkpoint.exists() and writer.poll() is None:
        time.sleep(0.02)
    assert writer.poll() is None, f"the writer ended before its first checkpoint: {writer.stdout.read()}"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    record = run(LONG, out_dir=b / out)
    pd.testing.assert_frame_equal(record.history[DETERMINISTIC], reference[LONG.key()])
    assert [e["event"] for e in events(served / out)][-2:] == ["resume", "finish"]
    assert len(record.provenance["attempts"]) == 2
    assert leftovers(served / out) == []


def test_one_batch_s_workers_on_two_nodes_write_one_store(mounts, reference):
    """The design on such mounts: each run has one writer (the Ray driver hands it to one task at a time), while
    workers on both nodes write the store, its event log and locks folder at once, and read each other's runs."""
    a, b, served = mounts
    out = "batch"
    workers = [python(f"from plasticity_nb import RunConfig, run_many\nrun_many([RunConfig.from_dict({c.to_dict()!r})],"
                      f" out_dir={str(mount / out)!r}, workers=1)") for c, mount in zip(SEEDS, (a, b))]
    assert [w.wait() for w in workers] == [0, 0], [w.stdout.read()[-2000:] for w in workers]
    for mount in (a, b, served):
        for record in run_many(SEEDS, out_dir=mount / out, workers=1):
            pd.testing.assert_frame_equal(record.history[DETERMINISTIC], reference[record.key], obj=str(mount))
    starts = [e["key"] for e in events(served / out) if e["event"] == "start"]
    assert sorted(starts) == sorted({c.truncated(n).key() for c in SEEDS for n in (1, 2)})  # each trained once
    assert leftovers(served / out) == []
