"""Each study's plan at each preset, as one digest of its runs' labels and keys (bf16, a fixed data id): the pinned
digests in tests/data/plan_keys.json were recorded before the house was re-cut (issue 40) and must not move, since
a stored run is found by its key. Run as a script to print the digests (to record them again, deliberately)."""
from __future__ import annotations

import dataclasses
import hashlib
import json

from plasticity_nb.studies import STUDIES

DATA_ID = "data-id-pinned"


def plan_digests() -> dict[str, dict[str, object]]:
    found = {}
    for study_id, study in STUDIES.items():
        names = {f.name for f in dataclasses.fields(study.config)}
        fixed = {"precision": "bf16"} if "precision" in names else {}  # "auto" would depend on the machine
        for preset in study.config.PRESETS:
            plan = study.config.from_preset(preset, **fixed).plan(DATA_ID)
            rows = [[json.dumps(labels, sort_keys=True, default=str), run.key()] for labels, run in plan]
            digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]
            found[f"{study_id}/{preset}"] = {"runs": len(rows), "digest": digest}
    return found


if __name__ == "__main__":
    print(json.dumps(plan_digests(), indent=1, sort_keys=True))
