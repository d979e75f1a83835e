"""A full disk (ENOSPC on a real, small tmpfs: every writer, torch's and pyarrow's serialisers included) ends the
batch with one message naming the output folder and nothing half-written; after space is freed the same
command continues from the stored runs and the last checkpoints (tests/full_disk.py does the work)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow(seconds=55)
ROOT = Path(__file__).resolve().parents[1]


def namespace() -> list[str] | None:
    """A command prefix that runs a program where it may mount a tmpfs: a user and mount namespace, or (as root)
    a mount namespace; None where neither works here."""
    for prefix in (["unshare", "-rm"], ["unshare", "-m"]) if os.geteuid() == 0 else (["unshare", "-rm"],):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def test_a_full_disk_ends_the_batch_cleanly_and_a_rerun_continues(tmp_path):
    prefix = namespace()
    if prefix is None:
        pytest.skip("cannot mount a small tmpfs here: `unshare -rm` fails (no user namespaces) and this is not root")
    report = tmp_path / "report.json"
    done = subprocess.run([*prefix, sys.executable, "-m", "tests.full_disk", str(tmp_path), str(report)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, level in json.loads(report.read_text()).items():
        out = str(tmp_path / "small" / name)
        errors = [line for line in re.split(r"[\r\n]", level["failed_stderr"]) if "error:" in line]
        assert level["failed_rc"] == 1, (name, level["failed_stderr"])
        assert len(errors) == 1 and "is full" in errors[0] and out in errors[0], (name, level["failed_stderr"])
        assert "Traceback" not in level["failed_stderr"], (name, level["failed_stderr"])
        assert level["leftovers"] == [] and level["readable"] == level["stored"], (name, level)
        assert level["rerun_rc"] == 0, (name, level["rerun_stderr"])
        assert level["trained_again"] == [] and set(level["checkpoints"]) <= set(level["resumed"]), (name, level)
        assert level["identical"] and level["notebook"] and level["leftovers_after"] == [], (name, level)
    assert json.loads(report.read_text())["notebook"]["checkpoints"] == []  # its full disk came after training
