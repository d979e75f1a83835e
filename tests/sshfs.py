"""A network filesystem on this machine: one folder served by a private sshd on loopback, mounted twice with sshfs
(FUSE), each mount playing a cluster node that shares the run store (tests/test_shared_store.py, docs/cluster.md).

sshfs and sshd are used from PATH, or installed with apt-get (Debian's sshfs and openssh-server) when running as
root, as tests/browser.py installs Chromium. `mounted_twice` skips, with its reason, where FUSE is missing or
the mount is refused (some laptops and containers).
"""
from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.browser import attempt

# Every read and lookup goes to the server: the kernel's and sshfs's caches would show one mount stale folders
# (a run the other mount stored or set aside). docs/cluster.md names these options.
MOUNT_OPTIONS = "cache=no,entry_timeout=0,attr_timeout=0,negative_timeout=0"


def missing_tools() -> str | None:
    """Why sshfs cannot be tried here (after installing what is missing, as root), or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse: FUSE is missing on this machine, so no sshfs mount"
    if shutil.which("sshfs") and sshd():
        return None
    if os.geteuid() != 0:
        return "sshfs or sshd is missing and, not being root, the test does not install them (apt-get)"
    tried: list[str] = []
    if (attempt(["apt-get", "update", "-qq"], "apt-get update", tried)
            and attempt(["apt-get", "install", "-y", "-qq", "sshfs", "openssh-server"], "apt-get install", tried)
            and shutil.which("sshfs") and sshd()):
        return None
    return "; ".join(tried) or "sshfs or sshd is missing after apt-get install"


def sshd() -> str | None:
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mounted_twice(folder: Path) -> Iterator[tuple[Path, Path, Path]]:
    """(node A's mount, node B's mount, the served folder itself), all the same files; unmounted afterwards."""
    if why := missing_tools():
        pytest.skip(why)
    served, keys = folder / "served", folder / "keys"
    for path in (served, keys, folder / "a", folder / "b"):
        path.mkdir()
    server, port = start_sshd(keys)
    mounts: list[Path] = []
    try:
        for name in ("a", "b"):
            mount(port, keys / "user", served, folder / name)
            mounts.append(folder / name)
        yield mounts[0], mounts[1], served
    finally:
        for path in mounts:
            subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True)
        server.terminate()
        server.wait()


def start_sshd(keys: Path) -> tuple[subprocess.Popen, int]:
    """sshd on a free loopback port, and the port: in the foreground of its own process (its id is ours to stop),
    letting this user in with a key of its own."""
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "user.pub").read_text())
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {keys / 'host'}\nAuthorizedKeysFile "
                      f"{keys / 'authorized_keys'}\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
                      f"PidFile none\nSubsystem sftp internal-sftp\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # its privilege separation folder
    server = subprocess.Popen([sshd(), "-D", "-f", str(config), "-E", str(keys / "sshd.log")])
    wait_for_port(port, server, keys / "sshd.log")
    return server, port


def wait_for_port(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    server.terminate()
    pytest.skip(f"sshd did not start: {log.read_text()[-500:] if log.exists() else 'no log'}")


def mount(port: int, key: Path, served: Path, at: Path) -> None:
    done = subprocess.run(["sshfs", "-p", str(port), "-o", f"IdentityFile={key},StrictHostKeyChecking=no,"
                           f"UserKnownHostsFile=/dev/null,BatchMode=yes,{MOUNT_OPTIONS}",
                           f"{getpass.getuser()}@127.0.0.1:{served}", str(at)], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        pytest.skip(f"sshfs could not mount: {done.stderr.strip()[-300:]}")
