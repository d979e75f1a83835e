"""Every study's plan gives the same run keys as before the house was re-cut (issue 40): a stored study loads."""
import json
from pathlib import Path

from tests.plan_keys import plan_digests

PINNED = json.loads((Path(__file__).parent / "data" / "plan_keys.json").read_text())


def test_every_study_plans_the_runs_it_planned_before():
    found = plan_digests()
    moved = sorted(name for name in PINNED if found.get(name) != PINNED[name])
    assert not moved, f"plans whose runs or keys changed: {moved}"
    assert found.keys() >= PINNED.keys()
