"""The training loop keeps stored runs valid: the recorded cases train to the same keys and histories.

Bitwise where this machine's identity (provenance.machine_identity) has a recording in tests/data/loop_compat/;
elsewhere structurally against every recording (keys, rows, epochs, steps, which epochs were evaluated, status; a
phase that stops at a train-accuracy target is checked against its rule instead, since when it stops depends on
the floats), since floats differ between CPUs whose kernels differ. The test session's header says which comparison runs
(conftest.py); `python -m tests.loop_compat` adds this machine's recording. Columns added since a recording
(e.g. a probe's loss) are not compared: every recorded column must come out the same.
"""
import pytest

from plasticity_nb.provenance import machine_identity
from tests.loop_compat import (
    CASES,
    comparable,
    configs_of,
    recording_for,
    recordings,
    stops_at_its_target,
    structure,
    train_case,
)

RECORDINGS = recordings()
EXACT = recording_for(machine_identity())


def _recorded_columns(trained, recorded):
    """`trained` with each history/probe row cut to the columns the recording has."""
    def cut(run, reference):
        tables = {t: [{k: row[k] for k in ref if k in row} for row, ref in zip(run[t], reference[t])]
                  + run[t][len(reference[t]):] for t in ("history", "probes")}
        return {**run, **tables}
    return [cut(run, reference) for run, reference in zip(trained, recorded)]


@pytest.mark.parametrize("name", list(CASES))
def test_the_loop_reproduces_the_recorded_run(cifar, name):
    trained, configs = comparable(train_case(CASES[name], cifar)), configs_of(CASES[name])
    assert all(stops_at_its_target(r, c) for r, c in zip(trained, configs))
    for recording in RECORDINGS.values():  # every recording, whatever its machine, has the same structure
        recorded = comparable(recording["cases"][name])
        expected = [structure(r, c) for r, c in zip(recorded, configs)]
        assert [structure(r, c) for r, c in zip(trained, configs)] == expected
    if EXACT is not None:
        recorded = comparable(EXACT[1]["cases"][name])
        assert _recorded_columns(trained, recorded) == recorded, f"not bit for bit as recording {EXACT[0]}"


def test_every_recording_names_a_machine_and_holds_every_case():
    assert RECORDINGS, "no recording in tests/data/loop_compat"
    for name, recording in RECORDINGS.items():
        assert set(recording["cases"]) == set(CASES), name
        assert {"model", "flags", "torch", "aten_cpu_capability"} <= set(recording["machine"]), name
