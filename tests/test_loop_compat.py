"""The training loop keeps stored runs valid: the recorded cases train to the same keys and histories.

tests/data/loop_compat.json was written by the loop before its redesign (`python -m tests.loop_compat`).
Bitwise equality holds only on the CPU kind and torch version it was recorded with; elsewhere the
float columns are skipped and only what a history is made of (rows, epochs, steps, which epochs were
evaluated, status) is compared. Columns added since the recording (e.g. a probe's loss) are not compared:
every recorded column must come out the same.
"""
import json

import pytest

from tests.loop_compat import CASES, RECORDED, comparable, platform, train_case

RECORD = json.loads(RECORDED.read_text())
EXACT = RECORD["platform"] == platform()
STRUCTURE = ("phase", "pool", "epoch", "phase_epoch", "step")


def _structure(result):
    """What a history is made of, without its float values: rows, their epochs and steps, which were evaluated."""
    rows = lambda table: [{**{k: r[k] for k in STRUCTURE}, "evaluated": r.get("test_acc") != "NaN"} for r in table]
    return {**result, "history": rows(result["history"]), "probes": rows(result["probes"])}


def _recorded_columns(trained, recorded):
    """`trained` with each history/probe row cut to the columns the recording has."""
    def cut(run, reference):
        tables = {t: [{k: row[k] for k in ref if k in row} for row, ref in zip(run[t], reference[t])]
                  + run[t][len(reference[t]):] for t in ("history", "probes")}
        return {**run, **tables}
    return [cut(run, reference) for run, reference in zip(trained, recorded)]


@pytest.mark.parametrize("name", list(CASES))
def test_the_loop_reproduces_the_recorded_run(cifar, name):
    recorded = comparable(RECORD["cases"][name])
    trained = _recorded_columns(comparable(train_case(CASES[name], cifar)), recorded)
    assert [r["key"] for r in trained] == [r["key"] for r in recorded]
    if not EXACT:
        assert [_structure(r) for r in trained] == [_structure(r) for r in recorded]
        pytest.skip(f"recorded on {RECORD['platform']}, this is {platform()}: float columns not compared")
    assert trained == recorded
