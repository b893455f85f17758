"""The browser check: `dagster dev` with the project's definitions, seen through headless Chromium.

It loads the UI's asset graph (global asset lineage), expands every group of the
graph and asserts each of the project's assets is a node of it, the chain from the hopper
through the daemons' calls to the reports laid out in that order; then, with an active
campaign whose hopper no daemon fills, the hopper's page showing the failed freshness check;
then the automation page for its sensors and schedules. Screenshots go to `test-artifacts/`. Chromium is
Debian's (`.ci/run` installs it); where it is missing the test skips with the
reason, unless `DIALER_REQUIRE_BROWSER` is set (CI), where it fails.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.helpers import add_prospects, free_port, zone_at_midday
from tests.test_dagster_dev import (
    ROOT,
    _dialer,
    _graphql,
    dagster_env,
    start_dagster_dev,
    stop_dagster_dev,
)

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "test-artifacts"
ASSETS = ["upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows", "loaded_prospects",
          "dnc_list_numbers", "dnc_registry", "expired_prospects", "hopper", "call_attempts", "report_detail",
          "report_summary"]
CHAIN = ["loaded_prospects", "hopper", "call_attempts", "report_detail", "report_summary"]
AUTOMATION = ["inbox_sensor", "dnc_sensor", "registry_sensor", "report_sensor", "hopper_fills_sensor",
              "call_attempts_sensor", "freshness_sensor", "daily_expiry"]
HOPPER_CHECKS = """{ assetNodeOrError(assetKey: {path: ["hopper"]}) { ... on AssetNode {
  dependencyKeys { path } dependedByKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name
    executionForLatestMaterialization { status evaluation { severity description } } } } } } } }"""


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


def _unfilled_campaign(env) -> None:
    """The example campaign, active, with prospects whose window has been open for hours and no
    fill: no daemon runs beside this `dagster dev`, so its hopper is overdue."""
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t

    _dialer(env, "campaign", "apply", str(ROOT / "examples/campaign.yaml"))
    engine = db.make_engine(f"sqlite:///{env['DIALER_HOME']}/dialer.sqlite3")
    try:
        with engine.connect() as conn:
            campaign_id = conn.execute(sa.select(t.campaigns.c.id)).scalar_one()
        now = datetime.now(UTC)
        add_prospects(engine, campaign_id, [{"phone": f"+1212555{i:04d}", "zones": (zone_at_midday(now),)}
                                            for i in range(3)], now=now - timedelta(hours=1))
    finally:
        engine.dispose()


def _failed_hopper_check(port: int, timeout: float) -> tuple[dict | None, dict]:
    """Wait for freshness_sensor's first evaluation of `hopper_filled_on_time`; (it, the hopper node)."""
    deadline = time.monotonic() + timeout
    node: dict = {}
    while time.monotonic() < deadline:
        node = ((_graphql(port, HOPPER_CHECKS) or {}).get("assetNodeOrError")) or {}
        checks = {c["name"]: c for c in (node.get("assetChecksOrError") or {}).get("checks") or []}
        execution = (checks.get("hopper_filled_on_time") or {}).get("executionForLatestMaterialization")
        if execution and execution["status"] != "IN_PROGRESS":
            return execution, node
        time.sleep(2)
    return None, node


def test_the_dagster_ui_lists_the_projects_assets_sensors_and_schedules(tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    port = free_port()
    env = dagster_env(tmp_path)
    _dialer(env, "init")
    _unfilled_campaign(env)
    ARTIFACTS.mkdir(exist_ok=True)
    process = start_dagster_dev(env, port)
    try:
        execution, hopper_node = _failed_hopper_check(port, timeout=150)
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
            # The graph is laid out left to right by depth: each link of the chain sits right of the last.
            chain_x = []
            for asset in CHAIN:
                boxes = [b for b in (n.bounding_box() for n in page.get_by_text(asset, exact=True).all())
                         if b and b["x"] > 470]
                chain_x.append(boxes[0]["x"] if boxes else None)

            # The hopper's page: the freshness check freshness_sensor failed, shown on the asset.
            page.goto(f"http://127.0.0.1:{port}/assets/hopper?view=checks", wait_until="networkidle")
            page.get_by_text("hopper_filled_on_time").first.wait_for(timeout=15000)
            page.get_by_text("Failed").first.wait_for(timeout=15000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(ARTIFACTS / "freshness-failed.png"))
            checks_page = page.inner_text("body")
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
    assert None not in chain_x and chain_x == sorted(chain_x) and len(set(chain_x)) == len(CHAIN), chain_x
    assert {"path": ["call_attempts"]} in hopper_node["dependedByKeys"]
    assert {"path": ["dnc_list_numbers"]} in hopper_node["dependencyKeys"]
    assert {"path": ["dnc_registry"]} in hopper_node["dependencyKeys"]
    assert execution is not None, "freshness_sensor reported no evaluation of hopper_filled_on_time within 150 s"
    assert (execution["status"], execution["evaluation"]["severity"]) == ("FAILED", "ERROR")
    assert "no daemon is filling it" in execution["evaluation"]["description"]
    assert "hopper_filled_on_time" in checks_page and "Failed" in checks_page
    assert all(name in automation for name in AUTOMATION)
    assert (ARTIFACTS / "asset-graph.png").stat().st_size > 10_000
