"""Sweeps that survive: killed batch runs resume, concurrent batches share one store, bad input is named."""
import os
import random
import signal
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from plasticity_nb.analysis.claims import read_claims
from tests.helpers import batch, events, leftovers, stored_runs, wait_for

pytestmark = pytest.mark.slow(seconds=120)
# Smoke notebooks 01 and 10 (continual backprop only: a remedy whose state, units' utilities and ages, must be
# checkpointed) with longer runs, so that kills land inside runs, and a checkpoint every epoch. Under pytest-xdist a
# batch here has one core and so trains in its own process; `make soak` kills batches with worker processes.
BATCH = ["run", "--preset", "smoke", "--only", "01,10", "--checkpoint-every", "1", "--param", "pretrain_epochs=3",
         "--param", "tune_epochs=5", "--param", "remedies=['cbp']"]


def cli(out, **popen):
    return subprocess.Popen([sys.executable, "-m", "plasticity_nb", *BATCH, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


@pytest.fixture(scope="module")
def two_batches(tmp_path_factory):
    """BATCH's store written by two batches started together: the second test's subject and, since each run is
    trained once whichever batch trains it, the first test's uninterrupted reference."""
    folder = tmp_path_factory.mktemp("two-batches")
    check_two_batches(folder / "shared", BATCH, folder / "first.log", folder / "second.log")
    return folder / "shared"


def test_two_batches_on_one_folder_never_train_a_run_twice(two_batches):
    assert stored_runs(two_batches)  # check_two_batches asserted the rest while the fixture ran


# One SIGKILL of the whole process group (CLI, workers, kernel) at each kind of moment, in the order the batch reaches
# them: inside a run after a checkpoint, while a notebook executes, inside a remedy's run (continual backprop's state
# must come back from its checkpoint). `make soak` (tests/test_soak.py) kills every notebook twenty times.
KILLS = [("01", "training: after a checkpoint"), ("01", "executing its notebook"),
         ("10", "training: after a checkpoint")]


def test_killed_batches_resume_and_end_like_an_uninterrupted_batch(tmp_path, two_batches):
    out = tmp_path / "killed"
    rng = random.Random(2026)
    for attempt, (notebook, stage) in enumerate(KILLS):
        log = tmp_path / f"attempt{attempt}.log"
        process = batch(out, BATCH, log, start_new_session=True)
        wait_for(notebook, stage, process, out, log, rng)
        assert process.poll() is None, f"the batch ended before the kill aimed at {notebook}, {stage}"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        stored_runs(out)  # after every kill: whatever is in the store loads completely
    finished = cli(out)
    assert finished.wait() == 0, finished.stdout.read()
    assert any(e["event"] == "resume" for e in events(out)), "no kill landed inside a run: nothing was resumed"
    killed, uninterrupted = stored_runs(out), stored_runs(two_batches)
    assert killed.keys() == uninterrupted.keys()
    for key, history in uninterrupted.items():
        pd.testing.assert_frame_equal(killed[key], history, obj=key)
    assert leftovers(out) == []  # no checkpoint, temporary folder or held lock
    before = len(events(out))
    assert cli(out).wait() == 0
    assert len(events(out)) == before  # rerunning recomputes nothing that finished


def check_two_batches(out, args, *logs):
    """Two batches started together on one output folder both finish, train each run once, and leave claims.csv,
    report.md, the executed notebooks and the execution cache whole (tests/test_soak.py repeats this)."""
    processes = [batch(out, args, log) for log in logs]
    codes = [p.wait() for p in processes]
    assert codes == [0, 0], [log.read_text()[-4000:] for log in logs]
    starts = [e["key"] for e in events(out) if e["event"] == "start"]
    assert len(starts) == len(set(starts)) == len(stored_runs(out))
    claims = read_claims(out)
    assert set(claims.claim) == set(SMOKE_CLAIMS), claims.claim.tolist()
    report = (out / "report.md").read_text()
    assert all(f"### {claim}: " in report for claim in SMOKE_CLAIMS)
    for notebook in (out / "notebooks").glob("*.ipynb"):
        nbformat.read(notebook, as_version=4)
    assert leftovers(out) == []


# What BATCH's notebooks claim at smoke (01: C1; 10 with continual backprop only: C13c).
SMOKE_CLAIMS = ("C1", "C13c")
