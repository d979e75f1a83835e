"""Soaks, run by `make soak` and skipped by `make test` (marker `soak`): long loops of what the suite does once.

- Two batches on one output folder, SOAK_PAIRS times (default 20), with the cores loaded by a busy process:
  smoke notebooks 01 and 10 with continual backprop and a checkpoint every epoch, the case that once failed.
- A smoke batch of every notebook (01-10) SIGKILLed SOAK_KILLS times (default 20), aimed in turn at each notebook
  and, by a seeded draw, at its training (after a checkpoint, after a run is stored) or its execution, then
  finished: every run must equal an uninterrupted batch's, none lost or trained twice, nothing partial left, no
  lock held, claims.csv the same to the last digit.
Each writes its log (every pair's outcome, every kill's moment) beside its outputs and prints where it is.
"""
import json
import multiprocessing
import os
import random
import signal
import time

import pandas as pd
import pytest

from plasticity_nb.analysis.claims import read_claims
from tests.helpers import NOTEBOOK_LINE, batch, events, leftovers, stored_runs, wait_for, where
from tests.test_robustness import BATCH, check_two_batches

pytestmark = pytest.mark.soak
PAIRS = int(os.environ.get("SOAK_PAIRS", 20))
KILLS = int(os.environ.get("SOAK_KILLS", 20))
EVERY_NOTEBOOK = ["run", "--preset", "smoke", "--checkpoint-every", "1"]


def burn(seconds: float, parent: int) -> None:
    """Keep a core busy for `seconds`, or until the test that started this is gone."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and os.getppid() == parent:
        pass


def test_two_batches_on_one_folder_many_times_with_the_cores_loaded(tmp_path):
    load = multiprocessing.get_context("spawn").Process(target=burn, args=(36_000, os.getpid()), daemon=True)
    load.start()
    outcomes = []
    try:
        for pair in range(PAIRS):
            started = time.monotonic()
            logs = (tmp_path / f"pair{pair}-a.log", tmp_path / f"pair{pair}-b.log")
            try:
                check_two_batches(tmp_path / f"pair{pair}", BATCH, *logs)
                outcome = "passed"
            except AssertionError as err:
                outcome = f"FAILED: {err}"
            failed_lines = [line for log in logs for line in log.read_text().splitlines() if "FAILED" in line]
            outcomes.append({"pair": pair, "seconds": round(time.monotonic() - started), "outcome": outcome[:2000],
                             "failed_lines": failed_lines})
            print(json.dumps(outcomes[-1]), flush=True)
    finally:
        load.terminate()
        (tmp_path / "pairs.log").write_text("\n".join(map(json.dumps, outcomes)) + "\n")
    assert [o["outcome"] for o in outcomes] == ["passed"] * PAIRS, [o for o in outcomes if o["outcome"] != "passed"]


def test_every_notebook_killed_many_times_ends_like_an_uninterrupted_batch(tmp_path):
    out, reference = tmp_path / "killed", tmp_path / "reference"
    rng = random.Random(2026_12_01)
    kills, started = [], time.monotonic()
    # Kill after kill, the batch moves on through the notebooks: KILLS / 10 kills aimed at each, in order, each at a
    # stage drawn by the seeded generator (training, where a checkpoint or a stored run is the moment; or executing).
    stages = ["training: after a checkpoint", "training: after a run is stored", "executing its notebook"]
    while len(kills) < KILLS:
        log = tmp_path / f"attempt{len(kills)}.log"
        process = batch(out, EVERY_NOTEBOOK, log, start_new_session=True)
        notebook, stage = f"{1 + len(kills) * 10 // KILLS:02d}", rng.choice(stages)
        wait_for(notebook, stage, process, out, log, rng)
        if process.poll() is not None:
            break  # the batch finished before this kill: nothing left to interrupt
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        kills.append({"kill": len(kills), "aimed_at": f"{notebook}, {stage}",
                      "at_s": round(time.monotonic() - started, 1), **where(out, log)})
        print(json.dumps(kills[-1]), flush=True)
        stored_runs(out)  # after every kill: whatever is in the store loads completely
    (tmp_path / "kills.log").write_text("\n".join(map(json.dumps, kills)) + "\n")
    finish = batch(out, EVERY_NOTEBOOK, tmp_path / "finish.log")
    assert finish.wait() == 0, (tmp_path / "finish.log").read_text()[-4000:]
    assert len(kills) >= KILLS, f"only {len(kills)} kills landed before the batch finished"
    assert batch(reference, EVERY_NOTEBOOK, tmp_path / "reference.log").wait() == 0
    killed, uninterrupted = stored_runs(out), stored_runs(reference)
    assert killed.keys() == uninterrupted.keys()  # no run lost, none extra
    for key, history in uninterrupted.items():
        pd.testing.assert_frame_equal(killed[key], history, obj=key)
    finished = pd.Series([e["key"] for e in events(out) if e["event"] == "finish"])
    assert finished.value_counts().max() == 1  # no run trained to the end twice
    assert leftovers(out) == []
    claims, expected = read_claims(out), read_claims(reference)
    assert claims.equals(expected)  # the same runs: the same claims, to the last digit
    landed = sorted({k["batch"][1:3] for k in kills if NOTEBOOK_LINE.match(k["batch"])})
    print(f"{len(kills)} kills, landed in notebooks {landed}, in {time.monotonic() - started:.0f} s", flush=True)
    assert len(landed) >= 8, landed  # spread over the notebooks, not all in the first ones
