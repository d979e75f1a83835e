"""The training loop keeps stored runs valid: the recorded cases train to the same keys and histories.

Bitwise where this machine's identity (core/cpu.machine_identity) has a recording in tests/data/loop_compat/;
elsewhere structurally against every recording (keys, rows, epochs, steps, which epochs were evaluated, status; a
phase that stops at a train-accuracy target is checked against its rule instead, since when it stops depends on
the floats), since floats differ between CPUs whose kernels differ. The test session's header says which comparison runs
(conftest.py); `python -m tests.loop_compat` adds this machine's recording. Columns added since a recording
(e.g. a probe's loss) are not compared: every recorded column must come out the same.
"""
import pytest

from plasticity_nb.core.cpu import machine_identity
from tests.loop_compat import (
    CASES,
    comparable,
    configs_of,
    recorded_columns,
    recording_for,
    recordings,
    stops_at_its_target,
    structure,
    train_case,
)

RECORDINGS = recordings()
EXACT = recording_for(machine_identity())


@pytest.mark.parametrize("name", list(CASES))
def test_the_loop_reproduces_the_recorded_run(cifar, name):
    trained, configs = comparable(train_case(CASES[name], cifar)), configs_of(CASES[name])
    assert all(stops_at_its_target(r, c) for r, c in zip(trained, configs))
    holding = [r for r in RECORDINGS.values() if name in r["cases"]]
    assert holding, f"case {name} is in no recording: python -m tests.loop_compat records it"
    for recording in holding:  # every recording, whatever its machine, has the same structure
        recorded = comparable(recording["cases"][name])
        expected = [structure(r, c) for r, c in zip(recorded, configs)]
        assert [structure(r, c) for r, c in zip(trained, configs)] == expected
    if EXACT is not None and name in EXACT[1]["cases"]:
        recorded = comparable(EXACT[1]["cases"][name])
        assert recorded_columns(trained, recorded) == recorded, f"not bit for bit as recording {EXACT[0]}"


def test_every_recording_names_a_machine_and_lacks_only_cases_added_after_it():
    assert RECORDINGS, "no recording in tests/data/loop_compat"
    added = {case: stamp["recorded"] for r in RECORDINGS.values() for case, stamp in r.get("added", {}).items()}
    for name, recording in RECORDINGS.items():
        assert set(recording["cases"]) <= set(CASES), name
        missing = set(CASES) - set(recording["cases"])
        assert all(added.get(case, "") > recording["recorded"] for case in missing), (name, missing)
        assert {"model", "flags", "torch", "aten_cpu_capability"} <= set(recording["machine"]), name
