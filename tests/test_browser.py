"""The browser check: `dagster dev` with the project's definitions, seen through headless Chromium.

It loads the UI's asset graph (global asset lineage), expands every group of the
graph and asserts each of the project's assets is a node of it, then the
automation page for its sensors and schedules. Screenshots go to `test-artifacts/`. Chromium is
Debian's (`.ci/run` installs it); where it is missing the test skips with the
reason, unless `DIALER_REQUIRE_BROWSER` is set (CI), where it fails.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.helpers import free_port
from tests.test_dagster_dev import (
    ROOT,
    _dialer,
    dagster_env,
    start_dagster_dev,
    stop_dagster_dev,
)

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "test-artifacts"
ASSETS = ["upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows", "loaded_prospects",
          "dnc_list_numbers", "dnc_registry", "expired_prospects", "hopper", "report_detail", "report_summary"]
AUTOMATION = ["inbox_sensor", "dnc_sensor", "registry_sensor", "report_sensor", "hopper_fills_sensor", "daily_expiry"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        reason = "browser check: needs Debian's chromium and the playwright package (`.ci/run` installs them)"
        if os.environ.get("DIALER_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def test_the_dagster_ui_lists_the_projects_assets_sensors_and_schedules(tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    port = free_port()
    env = dagster_env(tmp_path)
    _dialer(env, "init")
    ARTIFACTS.mkdir(exist_ok=True)
    process = start_dagster_dev(env, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/asset-groups", wait_until="networkidle")
            # A first visit may be greeted by Dagster's newsletter dialog, which covers the page.
            skip = page.get_by_role("button", name="Skip")
            try:
                skip.wait_for(timeout=8000)
                skip.click()
            except PlaywrightTimeout:
                pass  # no dialog this time
            # Expand every group of the graph (the canvas settings' "Expand all groups", ⌥E), so the
            # screenshot shows each asset and its lineage rather than five collapsed boxes.
            page.mouse.click(1000, 200)
            page.keyboard.press("Alt+KeyE")
            on_canvas: dict[str, bool] = {}
            deadline = time.monotonic() + 20  # expanding and the zoom-to-fit animate
            while time.monotonic() < deadline and not all(on_canvas.get(a) for a in ASSETS):
                page.wait_for_timeout(500)
                for asset in ASSETS:
                    boxes = [node.bounding_box() for node in page.get_by_text(asset, exact=True).all()]
                    on_canvas[asset] = any(box and box["x"] > 470 for box in boxes)  # right of the tree
            page.wait_for_timeout(1000)  # let the last animation settle for the screenshot
            page.screenshot(path=str(ARTIFACTS / "asset-graph.png"))
            listed = page.inner_text("body")
            page.goto(f"http://127.0.0.1:{port}/automation", wait_until="networkidle")
            for name in AUTOMATION:
                page.get_by_text(name, exact=True).first.wait_for(timeout=15000)
            page.screenshot(path=str(ARTIFACTS / "automation.png"))
            automation = page.inner_text("body")
            browser.close()
    finally:
        stop_dagster_dev(process)
    assert "Global asset lineage" in listed
    assert on_canvas == dict.fromkeys(ASSETS, True), "every asset is a node of the graph"
    assert all(name in automation for name in AUTOMATION)
    assert (ARTIFACTS / "asset-graph.png").stat().st_size > 10_000
