"""`dialer campaign status [SLUG] --watch`: a live view for ops, refreshed every dialer interval.

Each refresh reads, per campaign shown (one, or every active campaign), the status use case
(`campaigns.reporting.status.campaign_status`: state, lease holder, sessions, calls in flight and
over the last 5 minutes, abandon rates, hopper depth) and the reasons prospects may not be dialed
(`campaigns.reporting.explain.not_dialable_summary`). On a terminal the view redraws in place
(rich's Live); otherwise each refresh prints one block, or one JSON object per line with
`--json`. Ctrl-C leaves at once with exit status 0 and the cursor shown.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from campaigns.core.db import Engine
from campaigns.core.lifecycle import CampaignState
from campaigns.reporting.explain import not_dialable_summary
from campaigns.reporting.status import CampaignStatusReport, campaign_status
from campaigns.setup import registry
from dialer_cli.common import literal, now, out

# With no campaign shown (none active yet) the view still refreshes at the default dialer interval.
IDLE_REFRESH_S = 10
# The reasons read every waiting prospect of the campaign: on a large one that is a scan, so
# they are refreshed at most this often, whatever the dialer interval (their time is shown).
REASONS_EVERY_S = 30.0


@dataclass(frozen=True)
class CampaignView:
    status: CampaignStatusReport
    dialability: dict  # `not_dialable_summary`, possibly from an earlier refresh (its `as_of`)

    def as_dict(self) -> dict:
        return {**self.status.as_dict(), "dialability": self.dialability}


@dataclass(frozen=True)
class Refresh:
    as_of: datetime
    interval_s: int  # until the next refresh: the smallest dialer interval among the campaigns shown
    campaigns: list[CampaignView]
    only: str | None  # the campaign asked for; None: every active campaign

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "interval_s": self.interval_s,
                "campaigns": [c.as_dict() for c in self.campaigns]}


class CampaignWatch:
    """Reads one refresh of the view: one campaign (`ref`), or every active campaign."""

    def __init__(self, engine: Engine, ref: str | None) -> None:
        self.engine = engine
        self.campaign_id: int | None = None
        self.label: str | None = None
        if ref is not None:
            with engine.connect() as conn:
                found = registry.resolve_campaign(conn, ref)
            self.campaign_id, self.label = found.id, found.qualified_slug
        self._reasons: dict[int, tuple[float, dict]] = {}  # campaign id → (monotonic time, summary)

    def refresh(self) -> Refresh:
        moment = now()
        views = []
        with self.engine.connect() as conn:
            if self.campaign_id is not None:
                ids = [self.campaign_id]
            else:
                ids = [c.id for c in registry.list_campaigns(conn, states=[CampaignState.ACTIVE])]
            for campaign_id in ids:
                status = campaign_status(conn, campaign_id, moment)
                views.append(CampaignView(status, self._dialability(conn, campaign_id, moment)))
        intervals = [v.status.dialer_interval_s for v in views if v.status.dialer_interval_s]
        return Refresh(moment, min(intervals, default=IDLE_REFRESH_S), views, self.label)

    def _dialability(self, conn, campaign_id: int, moment: datetime) -> dict:
        read_at, summary = self._reasons.get(campaign_id, (float("-inf"), {}))
        if time.monotonic() - read_at >= REASONS_EVERY_S:
            summary = not_dialable_summary(conn, campaign_id, moment)
            self._reasons[campaign_id] = (time.monotonic(), summary)
        return summary


def run(engine: Engine, ref: str | None, *, json_out: bool, count: int | None) -> None:
    """Refresh until Ctrl-C (or `count` times); returns normally either way."""
    watch = CampaignWatch(engine, ref)
    rounds: Iterable[int] = itertools.count(1) if count is None else range(1, count + 1)
    try:
        if json_out or not out.is_terminal:
            _print_each(watch, rounds, json_out)
        else:
            _live(watch, rounds)
    except KeyboardInterrupt:
        pass  # leaving is what Ctrl-C asks for: no traceback, exit 0 (Live has restored the cursor)


def _print_each(watch: CampaignWatch, rounds: Iterable[int], json_out: bool) -> None:
    wait = 0
    for _ in rounds:
        time.sleep(wait)
        refresh = watch.refresh()
        if json_out:
            out.file.write(_json_line(refresh.as_dict()) + "\n")
        else:
            out.print(render(refresh))
            out.print()
        out.file.flush()
        wait = refresh.interval_s


def _live(watch: CampaignWatch, rounds: Iterable[int]) -> None:
    wait = 0
    with Live(console=out, auto_refresh=False, redirect_stdout=False, redirect_stderr=False) as live:
        for _ in rounds:
            time.sleep(wait)
            refresh = watch.refresh()
            live.update(render(refresh, live=True), refresh=True)
            wait = refresh.interval_s


def _json_line(payload: dict) -> str:
    # One object per line; every character outside ASCII (control characters in names included) escaped.
    return json.dumps(payload, default=str, ensure_ascii=True)


def render(refresh: Refresh, *, live: bool = False) -> RenderableType:
    what = literal(refresh.only) if refresh.only else Text("every active campaign")
    head = Text.assemble(
        ("dialer campaign status ", "bold"), what, f" at {refresh.as_of:%H:%M:%S} UTC, every {refresh.interval_s} s",
        (" (Ctrl-C to leave)" if live else ""),
    )
    if not refresh.campaigns:
        return Group(head, Text("No campaign is active: `dialer campaign resume SLUG` starts one."))
    return Group(head, *(_campaign(view) for view in refresh.campaigns))


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _campaign(view: CampaignView) -> RenderableType:
    s, d = view.status, view.dialability
    holder = (Text.assemble("paced by ", literal(s.paced_by, "bold")) if s.paced_by
              else Text("no daemon holds its lease", style="bold red"))
    lines = [Text.assemble(
        "\n", literal(f"{s.workspace}/{s.slug}", "bold"), " — ", literal(s.name),
        f"   {s.state} · ", (str(s.status), "bold"), " · ", holder,
    )]
    p = s.pacing
    if p is not None and p.sessions_total is not None:
        idle, wrap_up = p.sessions_idle or 0, p.sessions_wrap_up or 0
        sessions = (f"sessions {p.sessions_total}: {idle} idle, {max(0, p.sessions_total - idle - wrap_up)} busy, "
                    f"{wrap_up} wrap-up")
    else:
        sessions = "sessions: no tick yet"
    lines.append(Text(f"  {sessions} · {s.calls_in_flight:,} calls in flight · hopper {s.hopper_depth:,}"))
    r = s.recent
    if r is not None:
        lines.append(Text(f"  last {r.minutes:g} min: {r.calls:,} calls, {r.answered:,} answered, "
                          f"{r.abandoned:,} abandoned · abandon rate last hour "
                          f"{_percent(p.abandon_rate_hour if p else None)}, 30 days "
                          f"{_percent(p.abandon_rate_30d if p else None)}"))
    if d:
        reasons = " · ".join(f"{reason['code']} {reason['prospects']:,}" for reason in d["top_reasons"][:3])
        as_of = datetime.fromisoformat(d["as_of"])
        lines.append(literal(
            f"  {d['dialable_now']:,} of {d['open_prospects']:,} open prospects dialable "
            f"(as of {as_of:%H:%M:%S})" + (f"; not dialable: {reasons}" if reasons else "")
        ))
    return Group(*lines)
