"""The monitoring shipped in docs/monitoring/: every metric its dashboard and alert rules name is one
a live daemon exports, and the daemon's metrics behind the alerts (roster, health, hopper fills).

The alert rules' behaviour is tested by `promtool test rules` (docs/monitoring/check.sh, in .ci/run).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from campaigns.core.lifecycle import CampaignState
from campaigns.dialing import hopper
from campaigns.dialing.roster import RosterEntry
from dialer_daemon.metrics import Metrics, serve_metrics
from tests.helpers import add_prospects, free_port, wait_for
from tests.test_daemon import START, campaign, phones
from tests.test_daemon_fleet import _daemon, _start_simulator, _stop, _tomorrow_at

MONITORING = Path(__file__).parent.parent / "docs" / "monitoring"
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
# Series Prometheus makes itself, not the daemon.
PROMETHEUS_OWN = {"up"}

# -- reading metric names out of PromQL ------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
             "bool", "inf", "nan", "atan2", "topk", "bottomk", "quantile", "count_values"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and durations left out)."""
    text = _STRING.sub('""', expr)  # label values may hold anything, braces and names included
    text = _GRAFANA_VARIABLE.sub("1", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def exported_series(metrics_text: str) -> set[str]:
    """The series names a /metrics page exports: a counter `x` is `x_total`, a histogram `h` is
    `h_bucket`, `h_sum` and `h_count` (never `h`), a gauge its name — whether or not a labelled
    family has a sample yet."""
    names = set()
    for family in text_string_to_metric_families(metrics_text):
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
        elif family.type == "summary":
            names |= {family.name, f"{family.name}_sum", f"{family.name}_count", f"{family.name}_created"}
        else:
            names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def dashboard_expressions(dashboard: dict) -> dict[str, str]:
    """Where → PromQL: every panel target (rows' nested panels too) and every variable's query."""
    found: dict[str, str] = {}

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found[f"panel {panel['title']!r} target {target.get('refId')}"] = target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        selector = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        found[f"variable {variable['name']!r}"] = selector.group(1) if selector else query
    return found


def alert_expressions(rules: dict) -> dict[str, str]:
    return {f"rule {rule.get('alert') or rule.get('record')!r}": rule["expr"]
            for group in rules["groups"] for rule in group["rules"]}


def unexported(expressions: dict[str, str], exported: set[str]) -> list[str]:
    """'where: name' for each metric an expression names that neither the daemon nor Prometheus makes."""
    return [f"{where}: {name}" for where, expr in expressions.items()
            for name in sorted(metric_names(expr)) if name not in exported and name not in PROMETHEUS_OWN]


def _dashboard() -> dict:
    return json.loads((MONITORING / "dashboard.json").read_text())


def _rules() -> dict:
    return yaml.safe_load((MONITORING / "alerts.yaml").read_text())


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (campaign) (rate(dialer_calls_placed_total{campaign=~"$campaign"}[$__rate_interval])) * 60',
     {"dialer_calls_placed_total"}),
    ("histogram_quantile(0.9, sum by (campaign, le) (rate(dialer_tick_seconds_bucket[5m])))",
     {"dialer_tick_seconds_bucket"}),
    ("max by (campaign) (dialer_campaign_active) == 1 unless on (campaign) max by (campaign) (dialer_lease_held) == 1",
     {"dialer_campaign_active", "dialer_lease_held"}),
    ('absent(up{job="dialer"} == 1)', {"up"}),
    ('a_metric{label="has {braces} and other_name"} offset 1h > bool 2e3', {"a_metric"}),
    ("rate(x_total[5m:1m]) / ignoring(cause) group_left(mode) y", {"x_total", "y"}),
    ("time() - dialer_last_loop_timestamp_seconds", {"dialer_last_loop_timestamp_seconds"}),
    ("count(dialer_healthy == 0) or vector(0)", {"dialer_healthy"}),
    ("{__name__=\"only_matchers\"}", set()),
])
def test_metric_names_are_read_out_of_promql(expr, names):
    assert metric_names(expr) == names


def test_series_names_follow_the_metric_types():
    metrics = Metrics()
    metrics.placed.labels("acme/a").inc()
    exported = exported_series(metrics.text())
    assert {"dialer_calls_placed_total", "dialer_tick_seconds_bucket", "dialer_tick_seconds_sum",
            "dialer_tick_seconds_count", "dialer_hopper_depth", "dialer_campaign_active"} <= exported
    # A histogram is no series of its own; a counter only with its _total.
    assert "dialer_tick_seconds" not in exported and "dialer_calls_placed" not in exported


def test_every_panel_and_rule_has_an_expression():
    dashboard, rules = dashboard_expressions(_dashboard()), alert_expressions(_rules())
    assert len(dashboard) >= 30 and all(metric_names(e) for e in dashboard.values())
    assert len(rules) >= 10 and all(metric_names(e) for e in rules.values())


def test_the_dashboard_is_laid_out_for_grafana():
    board = _dashboard()
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24 and box["h"] > 0, panel["title"]
        if panel["type"] != "row":  # each panel reads the data source the viewer picks
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "campaign"}


def test_each_alert_is_labelled_and_points_at_its_runbook():
    operations = (MONITORING.parent / "OPERATIONS.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", line[4:].strip().lower()).replace(" ", "-")
               for line in operations.splitlines() if line.startswith("### ")}
    for group in _rules()["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical") and rule.get("for"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
            assert page == "docs/OPERATIONS.md" and anchor in anchors, rule["alert"]


# -- a live daemon on loopback --------------------------------------------------------------

def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def live_metrics(engine, db_url, tmp_path) -> str:
    """/metrics of a `dialer daemon --metrics-port` dialing a campaign through `dialer simulator`
    (retrying some requests), scraped once calls have been placed, answered and retried."""
    cid = campaign(engine, call_ratio=2.0, dialer_interval_s=2)
    add_prospects(engine, cid, phones(80), now=datetime.now(UTC) - timedelta(minutes=1))
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_HOME": str(tmp_path / "home"),
           "DIALER_VOICE_API_URL": f"http://127.0.0.1:{port}"}
    simulator = _start_simulator(env, port, "--speed", "20", "--start", _tomorrow_at(11).isoformat(),
                                 "--faults", "error=0.2")
    daemon = _daemon(env, "live", "--metrics-port", str(metrics_port), "--lease-seconds", "4")
    scraped: list[str] = []
    try:
        def busy_enough():
            if daemon.poll() is not None:
                raise AssertionError(f"the daemon exited {daemon.returncode}: {daemon.communicate()[1][-2000:]}")
            try:
                text = _scrape(metrics_port)
            except OSError:
                return False
            samples = _samples(text)
            label = (("campaign", "acme/renewals"),)
            if (samples.get(("dialer_calls_answered_total", label), 0) > 0
                    and any(name == "dialer_voice_api_retries_total" for name, _ in samples)
                    and samples.get(("dialer_healthy", ()), 0) == 1):
                scraped.append(text)
                return True
            return False

        wait_for(busy_enough, 90, step=0.5)
    finally:
        _stop(daemon)
        _stop(simulator)
    return scraped[-1]


@SQLITE
def test_the_dashboard_and_the_alert_rules_name_only_metrics_a_live_daemon_exports(live_metrics):
    exported = exported_series(live_metrics)
    assert unexported(dashboard_expressions(_dashboard()), exported) == []
    assert unexported(alert_expressions(_rules()), exported) == []
    samples = _samples(live_metrics)
    label = (("campaign", "acme/renewals"),)
    # The series the alerts join on, as the live daemon sets them.
    assert samples[("dialer_campaign_active", label)] == 1
    assert samples[("dialer_lease_held", label)] == 1
    # Every lease series is labelled by name, from the first lease on (never a bare campaign id).
    assert [key for key in samples if key[0] == "dialer_lease_held"] == [("dialer_lease_held", label)]
    assert samples[("dialer_campaign_interval_seconds", label)] == 2
    assert samples[("dialer_hopper_more_dialable", label)] in (0, 1)
    assert samples[("dialer_healthy", ())] == 1
    assert samples[("dialer_calls_placed_total", label)] > 0


@SQLITE
def test_a_panel_or_rule_naming_a_metric_the_daemon_does_not_export_is_caught(live_metrics):
    exported = exported_series(live_metrics)
    dashboard = _dashboard()
    dashboard["panels"][-1]["targets"][0]["expr"] = 'sum(rate(dialer_calls_dialed_total{campaign=~"$campaign"}[5m]))'
    dashboard["templating"]["list"][1]["query"]["query"] = "label_values(dialer_campaign, campaign)"
    missing = unexported(dashboard_expressions(dashboard), exported)
    assert [m.rsplit(": ", 1)[1] for m in missing] == ["dialer_calls_dialed_total", "dialer_campaign"]
    rules = _rules()
    rules["groups"][0]["rules"][0]["expr"] = "dialer_tick_seconds > 1"  # a histogram has no such series
    assert [m.rsplit(": ", 1)[1] for m in unexported(alert_expressions(rules), exported)] == ["dialer_tick_seconds"]


# -- the metrics behind the alerts ------------------------------------------------------------

def _entry(cid: int, state: CampaignState, name: str, interval: int = 10) -> RosterEntry:
    return RosterEntry(cid, state, interval, name)


def test_every_daemon_exports_the_roster_and_archived_campaigns_leave_it():
    metrics = Metrics()
    metrics.record_roster([_entry(1, CampaignState.ACTIVE, "acme/a", 5), _entry(2, CampaignState.PAUSED, "acme/b"),
                           _entry(3, CampaignState.ARCHIVED, "acme/c")])
    samples = _samples(metrics.text())
    assert samples[("dialer_campaign_active", (("campaign", "acme/a"),))] == 1
    assert samples[("dialer_campaign_active", (("campaign", "acme/b"),))] == 0
    assert samples[("dialer_campaign_interval_seconds", (("campaign", "acme/a"),))] == 5
    assert ("dialer_campaign_active", (("campaign", "acme/c"),)) not in samples
    metrics.record_roster([_entry(1, CampaignState.ARCHIVED, "acme/a"), _entry(2, CampaignState.ACTIVE, "acme/b")])
    samples = _samples(metrics.text())
    assert ("dialer_campaign_active", (("campaign", "acme/a"),)) not in samples
    assert ("dialer_campaign_interval_seconds", (("campaign", "acme/a"),)) not in samples
    assert samples[("dialer_campaign_active", (("campaign", "acme/b"),))] == 1


def test_the_healthy_gauge_is_the_verdict_of_healthz_at_each_scrape():
    metrics = Metrics()
    server = serve_metrics(metrics, 0)
    try:
        port = server.server_port
        assert _samples(_scrape(port))[("dialer_healthy", ())] == 0  # no loop completed yet
        metrics.loop_done()
        assert _samples(_scrape(port))[("dialer_healthy", ())] == 1
        metrics.set_faults({"the database": "gone"})
        assert _samples(_scrape(port))[("dialer_healthy", ())] == 0
    finally:
        server.shutdown()


def test_a_fill_that_ran_short_says_no_more_prospects_are_dialable(engine):
    cid = campaign(engine, hopper_min_level=30)
    add_prospects(engine, cid, phones(20), now=START - timedelta(hours=1))
    with engine.connect() as conn:
        assert hopper.last_fill(conn, cid) is None
    short = hopper.fill_campaign(engine, cid, START)
    assert short.queued == 20 and not short.reached_level  # everyone dialable is queued, below the level
    add_prospects(engine, cid, phones(40, npa="718"), now=START - timedelta(hours=1))
    full = hopper.fill_campaign(engine, cid, START + timedelta(seconds=1))
    assert full.queued == 10 and full.reached_level  # 30 more were dialable
    with engine.connect() as conn:
        last = hopper.last_fill(conn, cid)
    assert last is not None and last.fill_id == full.fill_id and last.reached_level
    closed = hopper.fill_campaign(engine, cid, START + timedelta(hours=12))  # 23:00 in New York: shut
    assert closed.note and not closed.reached_level
    with engine.connect() as conn:
        assert not hopper.last_fill(conn, cid).reached_level


def test_the_tick_reports_whether_the_last_fill_left_prospects_dialable(engine):
    from dialer_daemon.simulator import Profile, Simulator, serve
    from dialer_daemon.voice import VoiceClient
    from tests.test_daemon import daemon_for

    sim = Simulator(seed=1, start=START, speed=1.0, default=Profile(sessions=2))
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=2, backoff_s=0.01)
    try:
        cid = campaign(engine, hopper_min_level=20)
        add_prospects(engine, cid, phones(60), now=START - timedelta(hours=1))
        filling = daemon_for(engine, client, fill_hopper=True)
        assert filling.tick(cid).more_dialable is True  # its own fill reached its level
        other = daemon_for(engine, client, fill_hopper=False)
        assert other.tick(cid).more_dialable is True  # read from the last fill recorded
        samples = _samples(other.metrics.text())
        assert samples[("dialer_hopper_more_dialable", (("campaign", "acme/renewals"),))] == 1
    finally:
        server.shutdown()
        client.close()
