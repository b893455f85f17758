"""Small builders shared by tests."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MINIMAL = {"name": "Spring Renewals", "workspace": "acme", "locale": "US", "agent": "agent_1"}


def campaign_file(tmp_path: Path, data: dict[str, Any] | None = None, name: str = "c.yaml", **overrides) -> Path:
    content = dict(MINIMAL if data is None else data)
    content.update(overrides)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every project table, for 'nothing was written' assertions."""
    import sqlalchemy as sa

    from campaigns.core.schema import metadata

    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
            for name, table in metadata.tables.items()
        }


UPLOADS_CAMPAIGN = {
    "name": "Spring Renewals",
    "slug": "renewals",
    "workspace": "acme",
    "locale": "US",
    "agent": "agent_1",
    "dnc": {"lists": ["internal"], "dnc_disposition": "Do Not Call"},
    "dispositions": [{"title": "Do Not Call", "contacted": True, "dnc": True}],
}


def apply_campaign(engine, data: dict | None = None, now=None):
    from datetime import UTC, datetime

    from campaigns.setup import registry
    from campaigns.setup.settings import parse_settings

    with engine.begin() as conn:
        return registry.apply_campaign(conn, parse_settings(data or UPLOADS_CAMPAIGN), now or datetime.now(UTC))


def drop(home_bucket, key: str, content: bytes | str) -> str:
    """Write a file into the bucket folder at `key`."""
    from pathlib import Path

    path = Path(home_bucket) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return key


def run_upload(partition_key: str, instance=None):
    """Run the load_prospect_list job for one partition in process (as the sensor's run would)."""
    import dagster as dg

    from campaigns.core.config import DialerConfig
    from pipelines.definitions import defs, resources_for

    instance = instance or dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", [partition_key])
    return defs.resolve_job_def("load_prospect_list").execute_in_process(
        partition_key=partition_key, instance=instance, raise_on_error=False,
        resources=resources_for(DialerConfig.from_env()),
    )


def materialized(result, asset: str) -> dict:
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION" and event.asset_key.path[-1] == asset:
            return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialised")


def check_results(result) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def failure(result) -> str | None:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.event_specific_data
            if data.user_failure_data is not None:
                return data.user_failure_data.description
            return data.error.message
    return None


def add_prospects(engine, campaign_id: int, prospects: list[dict], now=None) -> list[int]:
    """Insert prospects straight into the table (one seed upload), for hopper and rule tests.

    Each dict gives `phone` and optionally `zones` (tuple or comma string),
    `state`, `area_state`, `priority`, `status`, `attempts`, `last_attempt_at`,
    `next_dial_at`, `callback_at`, `expires_at`, `loaded_at`.
    """
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from campaigns.core import schema as t
    from campaigns.ingestion.zones import zone_group

    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        list_id = conn.execute(
            sa.insert(t.prospect_lists).values(
                campaign_id=campaign_id, source_key=f"seed-{now.timestamp()}-{len(prospects)}",
                source_version="1", filename="seed.csv", status="loaded", priority=50,
                dupe_days=90, expire_days=90, warnings=[], created_at=now,
            ).returning(t.prospect_lists.c.id)
        ).scalar_one()
        ids = []
        for row, spec in enumerate(prospects, start=1):
            zones = spec.get("zones", ("America/New_York",))
            zones = zones if isinstance(zones, str) else ",".join(zones)
            loaded = spec.get("loaded_at", now - timedelta(days=1))
            ids.append(conn.execute(
                sa.insert(t.prospects).values(
                    campaign_id=campaign_id, list_id=list_id, source_row=row,
                    phone_e164=spec["phone"], address_state=spec.get("state"),
                    area_code_state=spec.get("area_state"), candidate_zones=zones,
                    zone_group=zone_group(zones, spec.get("state"), spec.get("area_state")),
                    priority=spec.get("priority", 50), status=spec.get("status", "ready"),
                    disposition=spec.get("disposition"), attempts=spec.get("attempts", 0),
                    last_attempt_at=spec.get("last_attempt_at"),
                    next_dial_at=spec.get("next_dial_at", loaded),
                    callback_at=spec.get("callback_at"),
                    expires_at=spec.get("expires_at", now + timedelta(days=30)),
                    loaded_at=loaded, updated_at=loaded, custom_fields={},
                ).returning(t.prospects.c.id)
            ).scalar_one())
    return ids


def zone_at_midday(now):
    """An IANA zone whose local time is between 12:00 and 13:00 at `now`, with no US state, so only
    the federal hours and a campaign's 09:00–21:00 window decide: its window has been open for hours."""
    offset = 12 - now.hour  # hours east of UTC, -11 … +12: every one has an Etc/GMT zone
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # (Etc/GMT-3 is UTC+3)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, step: float = 0.05):
    """`predicate()`'s first truthy value within `timeout` seconds; AssertionError past it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


def email_page(message, folder: Path, chromium: str, screenshot: Path) -> dict:
    """Open an email's HTML in headless Chromium as a mail client would, and read it back.

    The inline images (`cid:` references) are written beside the page and referenced by file
    name; every request but those files is refused, so nothing leaves the machine. A full-page
    screenshot goes to `screenshot`. Returns what the page shows: its title, the headline
    figures by key, each table's rows, the images' alt texts, and how many images loaded.
    """
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    page_html = message.get_body(("html",)).get_content()
    for n, part in enumerate(p for p in message.walk() if p.get("Content-ID")):
        name = f"inline-{n}.{part.get_content_subtype()}"
        (folder / name).write_bytes(part.get_content())
        page_html = page_html.replace(f'"cid:{part["Content-ID"].strip("<>")}"', f'"{name}"')
    path = folder / "email.html"
    path.write_text(page_html, encoding="utf-8")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 760, "height": 900})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else route.abort())
            page.goto(path.as_uri(), wait_until="load")
            page.screenshot(path=str(screenshot), full_page=True)
            return page.evaluate("""() => ({
                title: document.querySelector('#title').innerText,
                figures: Object.fromEntries([...document.querySelectorAll('[id^="figure-"]')].map(
                    e => [e.id.slice(7), e.querySelector('.value').innerText])),
                tables: Object.fromEntries([...document.querySelectorAll('table[id^="by-"]')]
                    .filter(t => !t.parentElement.closest('[id^="by-"]')).map(
                    t => [t.id, [...t.querySelectorAll('tr.row')].map(
                        r => [...r.querySelectorAll('td')].map(c => c.innerText))])),
                alts: [...document.images].map(i => i.alt),
                images_loaded: [...document.images].filter(i => i.complete && i.naturalWidth > 0).length,
            })""")
        finally:
            browser.close()
