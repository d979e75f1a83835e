"""The explorer in a real browser: JupyterLab on 127.0.0.1 with a token, driven by Playwright in headless
Chromium (the first found by `tests/browser.py`: on PATH, Playwright's own, Debian's package when root;
skipped when there is none). Runs the explorer notebook, changes a widget and checks that the plot changes;
then, when study 10 is stored, unpicks its remedies and checks that the plot and the gap table change. Then opens
the committed bundle (results/quick, docs/bundle.md) the same way: its banner, its claims and its studies show, and
nothing is written into it.

By default on a fresh smoke store; `PLASTICITY_EXPLORER_STORE=outputs PLASTICITY_SCREENSHOT=docs/explorer.png
pytest tests/test_browser.py` runs it on an existing store (e.g. quick results) and makes the README's picture."""
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import plasticity_nb as pnb
from plasticity_nb.batch.cli import main
from plasticity_nb.core.paths import project_root
from plasticity_nb.studies import remedies, tuning_lr, warm_start_gap
from tests.browser import find_browser
from tests.helpers import COMMITTED, files_of
from tests.smoke_store import copy_runs, plan_keys

pytestmark = [pytest.mark.browser, pytest.mark.slow(seconds=30)]
# Without the background-networking flags Chromium keeps dialling out, which this machine refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(os.environ.get("PLASTICITY_SCREENSHOT", project_root() / "outputs" / "explorer_screenshot.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_browser()
    if not found.executable:
        pytest.skip(found.line())
    return found.executable


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A run store with three studies' runs (smoke unless given), and JupyterLab serving the project with it."""
    if os.environ.get("PLASTICITY_EXPLORER_STORE"):
        out = Path(os.environ["PLASTICITY_EXPLORER_STORE"]).resolve()
    else:
        out = tmp_path_factory.mktemp("explorer-store")
        # Study 10 with one remedy (8 runs, not the preset's 16): enough to pick it away.
        ten = remedies.Config.from_preset("smoke", remedies=["shrink_perturb"])
        configs = [warm_start_gap.Config.from_preset("smoke"), tuning_lr.Config.from_preset("smoke"), ten]
        data_id = pnb.load_cifar10().data_id
        copy_runs(out, [key for config in configs for key in plan_keys(config, data_id)])  # the session's smoke runs
        assert main(["run", "--preset", "smoke", "--only", "01,08", "--out", str(out)]) == 0
        pnb.run_study(ten, out_dir=out, progress=False)
    with jupyterlab(out) as served:
        yield served


@pytest.fixture(scope="module")
def bundle_lab(tmp_path_factory):
    """A copy of the committed bundle, and JupyterLab serving the project with it."""
    copy = tmp_path_factory.mktemp("bundle") / "quick"
    shutil.copytree(COMMITTED, copy)
    with jupyterlab(copy) as served:
        yield served, copy


@contextlib.contextmanager
def jupyterlab(out):
    """JupyterLab on a free port, serving the project, its kernels reading the run store `out` (PLASTICITY_OUT)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"PLASTICITY_OUT": str(out)}
    # kernels import this checkout's package (not the one the environment was installed from: another worktree's)
    env["PYTHONPATH"] = os.pathsep.join([str(project_root()), *filter(None, [os.environ.get("PYTHONPATH")])])
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={project_root()}", "--LabApp.news_url="],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start")
    try:
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def plot_source(page) -> str:
    """The src of the figure the explorer's output widget shows (a base64 PNG), once there is one."""
    image = page.locator(".widget-output img").first
    image.wait_for(state="attached", timeout=180_000)
    return image.get_attribute("src")


def next_plot(page, previous: str) -> str:
    """The src of the next figure, once it differs from `previous`."""
    page.wait_for_function("previous => { const img = document.querySelector('.widget-output img');"
                           " return img && img.src !== previous; }", arg=previous, timeout=120_000)
    return plot_source(page)


def run_explorer(page, base: str, token: str) -> str:
    """Open the explorer notebook, run all its cells, and return the src of the first figure it shows."""
    page.goto(f"{base}/lab/tree/notebooks/00_explorer.ipynb?token={token}")
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=120_000)
    page.get_by_text("Python (plasticity_nb) | Idle").wait_for(timeout=120_000)  # the kernel is up
    if page.get_by_role("button", name="No", exact=True).is_visible():
        page.get_by_role("button", name="No", exact=True).click()  # JupyterLab's news prompt
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    try:
        return plot_source(page)
    except Exception:
        page.screenshot(path=str(SCREENSHOT.with_name("explorer_failure.png")), full_page=True)
        raise


@pytest.mark.smoke_store
def test_explorer_runs_in_a_real_browser_and_reacts_to_its_widgets(chromium, lab):
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        before = run_explorer(page, base, token)
        study = page.locator(".widget-dropdown select").first
        options = study.locator("option").all_inner_texts()
        if len(options) >= 2 or not os.environ.get("PLASTICITY_EXPLORER_STORE"):
            assert len(options) >= 2, options  # both studies' runs are in the store
            study.select_option(label=options[1])
        else:  # a given store of one study (e.g. notebook 11's quick runs): show its plasticity metrics instead
            page.locator(".widget-dropdown select").nth(1).select_option(label="plasticity metrics")
        after = next_plot(page, before)
        assert after != before
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        if "10_remedies" in options or not os.environ.get("PLASTICITY_EXPLORER_STORE"):  # a given store may lack it
            study.select_option(label="10_remedies")
            picked = next_plot(page, after)
            table = page.locator(".widget-output").nth(1)  # the second output widget holds the gap table
            expect(table).to_contain_text("shrink_perturb", timeout=120_000)
            page.locator(".widget-select-multiple select").select_option([])  # unpick every remedy
            next_plot(page, picked)
            expect(table).not_to_contain_text("shrink_perturb", timeout=120_000)
            expect(table).to_contain_text("none")  # the plain warm start stays, as the reference
        browser.close()
    assert SCREENSHOT.stat().st_size > 20_000


def test_the_committed_bundle_opens_in_the_explorer_under_its_banner(chromium, bundle_lab):
    from playwright.sync_api import expect, sync_playwright

    (base, token), copy = bundle_lab
    before = files_of(copy)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        first = run_explorer(page, base, token)
        expect(page.get_by_text("Committed runs, read-only")).to_be_visible()
        expect(page.locator(".widget-html").first).to_contain_text("C4: a transient bias")  # the claims lead
        study = page.locator(".widget-dropdown select").first
        assert study.locator("option").all_inner_texts() == ["01_warm_start_gap", "02_pretraining_duration",
                                                             "04_blending"]
        study.select_option(label="04_blending")
        next_plot(page, first)
        expect(page.locator(".widget-output").nth(1)).to_contain_text("C4")  # the study's gap and claim rows
        page.screenshot(path=str(SCREENSHOT.with_name("explorer_bundle.png")), full_page=True)
        browser.close()
    assert files_of(copy) == before
