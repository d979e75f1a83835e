"""A batch on a full disk, for tests/test_full_disk.py: run inside a user and mount namespace (`unshare -rm`),
where it may mount a small tmpfs.

    python -m tests.full_disk WORKDIR REPORT.json

Trains smoke notebook 01's runs once on the real filesystem (the reference), then runs its batch on a 32 MiB
tmpfs filled so that the disk fills up twice: while training (half the space the reference's runs take is left:
checkpoints and run folders fail) and, with every run already stored, while the notebook writes (figures,
claims.csv, report.md, the executed copy, the execution cache). Each time the batch must end with one message
naming the output folder and leave nothing half-written, and once the filler is deleted the same command must
finish from the stored runs and the last checkpoints, every run identical to the reference. The findings go to
REPORT.json.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from plasticity_nb import RunStore
from tests.helpers import events, run_folders, stored_runs

BATCH = ["run", "--preset", "smoke", "--only", "01", "--checkpoint-every", "1", "--param", "pretrain_epochs=3",
         "--param", "tune_epochs=4"]
SIZE = 32 * 2**20  # the tmpfs
NOTEBOOK_SPACE = 64 * 1024  # left for the notebook's outputs: less than its figures take


def batch(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plasticity_nb", *BATCH, "--out", str(out), *extra],
                          capture_output=True, text=True)


def allocated(folder: Path) -> int:
    """Bytes the files under `folder` take on a tmpfs (whole 4 KiB pages)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in folder.rglob("*") if p.is_file())


def free_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def leftovers(out: Path) -> list[str]:
    """Temporary files and folders left anywhere under `out` (writers use dot-names ending .tmp, or .tmp-*)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*")
                  if p.name.endswith(".tmp") or p.name.startswith(".tmp-"))


def fill(small: Path, budget: int) -> Path:
    """A file that leaves `budget` bytes free on the tmpfs."""
    filler = small / "filler"
    filler.write_bytes(b"\0" * max(0, free_bytes(small) - budget))
    return filler


def level(out: Path, filler: Path, reference: dict) -> dict:
    """Run the batch until the disk is full, look at what it left, free the space and run it again."""
    failed = batch(out)
    store = RunStore(out)
    at_failure = {"stored": sorted(p.name for p in run_folders(out)),
                  "checkpoints": sorted(p.parent.name for p in (store.root / ".partial").glob("*/checkpoint.pt")),
                  "leftovers": leftovers(out), "readable": store.stored_keys(), "events": len(events(out))}
    filler.unlink()
    rerun = batch(out)
    later = events(out)[at_failure["events"]:]
    runs = stored_runs(out)
    return {"failed_rc": failed.returncode, "failed_stderr": failed.stderr[-3000:], **at_failure,
            "rerun_rc": rerun.returncode, "rerun_stderr": rerun.stderr[-3000:],
            "trained_again": sorted({e["key"] for e in later if e["event"] in ("start", "resume")}
                                    & set(at_failure["stored"])),
            "resumed": sorted({e["key"] for e in later if e["event"] == "resume"}),
            "identical": sorted(runs) == sorted(reference) and all(runs[k].equals(reference[k]) for k in reference),
            "notebook": (out / "notebooks" / "01_warm_start_gap.ipynb").exists(), "leftovers_after": leftovers(out)}


def main(workdir: str, report_path: str) -> None:
    work = Path(workdir)
    assert batch(work / "reference", "--train-only").returncode == 0
    reference = stored_runs(work / "reference")
    small = work / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(small)], check=True)
    try:
        report = {"training": level(small / "training", fill(small, allocated(work / "reference" / "runs") // 2),
                                    reference)}
        shutil.copytree(small / "training" / "runs", small / "notebook" / "runs")  # every run stored
        shutil.rmtree(small / "training")
        report["notebook"] = level(small / "notebook", fill(small, NOTEBOOK_SPACE), reference)
    finally:
        subprocess.run(["umount", str(small)])
    Path(report_path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
