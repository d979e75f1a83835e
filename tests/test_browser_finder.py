"""The browser test's search order (tests/browser.py), without launching or installing anything."""
import pytest

from tests import browser


@pytest.fixture
def calls(monkeypatch):
    """Record install attempts instead of making them; by default each fails."""
    made = []

    def attempt(command, name, tried):
        made.append(name)
        tried.append(f"{name} failed (test)")
        return False

    monkeypatch.setattr(browser, "attempt", attempt)
    monkeypatch.setattr(browser, "on_path", lambda: None)
    monkeypatch.setattr(browser, "playwright_chromium", lambda: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    return made


def test_a_browser_on_path_comes_first(calls, monkeypatch):
    monkeypatch.setattr(browser, "on_path", lambda: "/usr/bin/chromium")
    assert browser.find_browser().executable == "/usr/bin/chromium" and calls == []


def test_then_playwrights_own_chromium_installed_if_missing(calls, monkeypatch):
    installed = []
    monkeypatch.setattr(browser, "playwright_chromium", lambda: installed and "/pw/chrome")
    monkeypatch.setattr(browser, "attempt", lambda command, name, tried: installed.append(name) or True)
    found = browser.find_browser()
    assert (found.executable, found.why) == ("/pw/chrome", "Playwright's own Chromium")
    assert installed == ["python -m playwright install chromium"]


def test_without_root_apt_get_is_never_run_and_the_skip_says_why(calls):
    found = browser.find_browser()
    assert found.executable is None and calls == ["python -m playwright install chromium"]
    line = found.line()
    assert line.startswith("browser test: skipped") and "not root" in line and "playwright install" in line


def test_as_root_debians_package_is_the_last_resort(calls, monkeypatch):
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    assert browser.find_browser().executable is None
    assert calls == ["python -m playwright install chromium", "apt-get update"]
