"""Which Chromium the real-browser test drives, found without needing root where possible.

In order: a Chromium or Chrome on PATH; Playwright's own Chromium (installed with `python -m playwright
install chromium` when missing, which needs internet; a failure is not an error); Debian's `chromium`
package, installed with apt-get only when running as root. `python -m tests.browser` (run by `make test`)
prints one line: the browser used, or why the browser test will be skipped.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class Found:
    executable: str | None  # None: no browser; `why` says what was tried
    why: str

    def line(self) -> str:
        if self.executable:
            return f"browser test: using {self.executable} ({self.why})"
        return f"browser test: skipped ({self.why})"


def find_browser() -> Found:
    tried = []
    if path := on_path():
        return Found(path, "found on PATH")
    tried.append(f"none of {', '.join(ON_PATH)} on PATH")
    try:
        import playwright  # noqa: F401
    except ImportError:
        tried.append("Playwright is not installed (pip install -e '.[browser]')")
    else:
        if (path := playwright_chromium()) or (install_playwright_chromium(tried) and (path := playwright_chromium())):
            return Found(path, "Playwright's own Chromium")
    if os.geteuid() != 0:
        tried.append("not root, so Debian's chromium package is not installed")
    elif install_debian_chromium(tried) and (path := on_path()):
        return Found(path, "Debian's chromium package, installed with apt-get")
    return Found(None, "; ".join(tried))


def on_path() -> str | None:
    return next((path for name in ON_PATH if (path := shutil.which(name))), None)


def playwright_chromium() -> str | None:
    """Playwright's Chromium executable, if it is installed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        path = p.chromium.executable_path
    return path if os.path.exists(path) else None


def install_playwright_chromium(tried: list[str]) -> bool:
    return attempt([sys.executable, "-m", "playwright", "install", "chromium"], "python -m playwright install chromium",
                   tried)


def install_debian_chromium(tried: list[str]) -> bool:
    return (attempt(["apt-get", "update", "-qq"], "apt-get update", tried)
            and attempt(["apt-get", "install", "-y", "-qq", "chromium"], "apt-get install chromium", tried))


def attempt(command: list[str], name: str, tried: list[str]) -> bool:
    """Run an install step; on failure note why in `tried` and go on."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        tried.append(f"{name} failed ({type(err).__name__})")
        return False
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        tried.append(f"{name} failed ({last[0][:200]})")
        return False
    return True


if __name__ == "__main__":
    print(find_browser().line(), flush=True)
