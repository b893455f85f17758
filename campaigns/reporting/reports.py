"""A campaign's daily report: the detail of every call attempt, and the summary built from it.

The report day is the **dialing day**: a call belongs to day D when it was
placed on D in its prospect's local time (the first zone of the prospect's
zone group). A Honolulu call at 20:00 local is D's, though it is already D+1
in New York; the `end_of_dialing` schedule sends D's report once the last of
those zones has closed.

`detail_rows` reads the attempts of the day; `summary` is computed from those
same rows (plus the prospects' states now), so its figures always agree with
the detail export. `abandon_rate_period` is the compliance figure: abandoned ÷
answered by a person over the 30 days ending with the report day, flagged above
3%. `export_bytes` makes either table UTF-8 CSV with a header row and ISO-8601
times, optionally zipped or gzipped, with every cell a spreadsheet would run as
a formula neutralised.

The detail export lives in the bucket (a folder or S3, like the inbox), at
`export_key`'s `reports/<workspace>/<slug>/<day>/<slug>-<day>-calls.csv[.zip|.gz]`:
`build` writes it there and `written_report` reads it back, so a summary built in
another process, container or machine than the export still reads the same file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import insert_for
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CallOutcome, ProspectStatus
from campaigns.dialing import runtime
from campaigns.dialing.dialability import (
    DialRules,
    Place,
    calls_left_clause,
    unexpired_clause,
)
from campaigns.dialing.staterules import FEDERAL_HOURS
from campaigns.ingestion.bucket import Bucket, check_key
from campaigns.registry.rules import age_days
from campaigns.reporting import hourly
from campaigns.setup import registry

ABANDON_LIMIT = 0.03  # a telemarketer must keep abandoned calls at or below 3% over 30 days
ABANDON_PERIOD_DAYS = 30
# Any zone's date D lies within D 00:00 UTC-14 … D+1 00:00 UTC+12 (Kiribati to Baker Island).
_EARLIEST_OFFSET, _LATEST_OFFSET = timedelta(hours=14), timedelta(hours=12)
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")

DETAIL_COLUMNS = [
    "attempt_id", "called_at_utc", "called_at_local", "local_zone", "phone", "first_name", "last_name",
    "state", "list", "attempt_number", "outcome", "disposition", "answered_at_utc", "ended_at_utc",
    "duration_s", "callback_at_utc", "custom_fields",
    # The National DNC Registry version the call was checked against, and how old the data of the
    # number's area code was at the call (days); empty for a campaign that did not opt in.
    "registry_version_id", "registry_age_days",
]


def _local_zone(zone_group: str) -> str:
    zones = Place.from_group(zone_group).zones
    return zones[0] if zones else "UTC"


def local_time(moment: datetime, zone_group: str) -> datetime:
    """`moment` in the prospect's local time: the dialing day a call belongs to is its date."""
    return moment.astimezone(ZoneInfo(_local_zone(zone_group)))


def utc_window(day: date) -> tuple[datetime, datetime]:
    """UTC instants between which any zone's date `day` can fall."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start - _EARLIEST_OFFSET, start + timedelta(days=1) + _LATEST_OFFSET


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def detail_rows(conn: sa.Connection, campaign_id: int, day: date) -> list[dict]:
    """One row per call attempt of the dialing day, in the order they were placed."""
    a, p, lists = t.call_attempts, t.prospects, t.prospect_lists
    v, areas = t.dnc_registry_versions, t.dnc_registry_areas
    since, until = utc_window(day)
    # The area code's own obtained-at, from the version's manifest (kept when its sets are pruned).
    area_code = sa.cast(sa.func.substr(a.c.phone_e164, 3, 3), sa.Integer)
    query = (
        sa.select(a, p.c.first_name, p.c.last_name, p.c.address_state, p.c.area_code_state, p.c.zone_group,
                  p.c.custom_fields, lists.c.filename.label("list_name"),
                  sa.func.coalesce(areas.c.obtained_at, v.c.obtained_at).label("registry_obtained_at"))
        .join(p, p.c.id == a.c.prospect_id)
        .join(lists, lists.c.id == p.c.list_id)
        .outerjoin(v, v.c.id == a.c.registry_version_id)
        .outerjoin(areas, sa.and_(areas.c.version_id == a.c.registry_version_id, areas.c.area_code == area_code))
        .where(a.c.campaign_id == campaign_id, a.c.created_at >= since, a.c.created_at < until)
        .order_by(a.c.created_at, a.c.id)
    )
    rows = []
    for r in conn.execute(query):
        local = local_time(r.created_at, r.zone_group)
        zone = str(local.tzinfo)  # a ZoneInfo prints as its IANA name
        if local.date() != day:
            continue
        rows.append({
            "attempt_id": r.id, "called_at_utc": _iso(r.created_at), "called_at_local": local.isoformat(),
            "local_zone": zone, "phone": r.phone_e164, "first_name": r.first_name or "",
            "last_name": r.last_name or "", "state": r.address_state or r.area_code_state or "",
            "list": r.list_name, "attempt_number": r.attempt_number,
            "outcome": r.outcome or r.status, "disposition": r.disposition or "",
            "answered_at_utc": _iso(r.answered_at), "ended_at_utc": _iso(r.ended_at),
            "duration_s": "" if r.duration_s is None else round(r.duration_s, 3),
            "callback_at_utc": _iso(r.callback_at), "custom_fields": r.custom_fields or {},
            "registry_version_id": r.registry_version_id or "",
            "registry_age_days": "" if r.registry_obtained_at is None else round(
                age_days(r.registry_obtained_at, r.created_at), 1),
        })
    return rows


@dataclass
class Summary:
    campaign: str
    day: date
    dials: int = 0  # attempts the platform placed (not `not_placed`)
    not_placed: int = 0
    answered: int = 0  # a person answered and reached an agent
    contacted: int = 0
    qualified: int = 0
    callbacks: int = 0
    dnc_added: int = 0
    abandoned: int = 0
    by_outcome: Counter = field(default_factory=Counter)
    by_disposition: Counter = field(default_factory=Counter)
    by_list: Counter = field(default_factory=Counter)
    by_state: Counter = field(default_factory=Counter)
    prospects: dict[str, int] = field(default_factory=dict)
    remaining_dialable: int = 0  # still to dial: ready or callback, calls left, not expired
    period_abandoned: int = 0
    period_answered: int = 0
    # National DNC Registry version → (calls checked against it, youngest and oldest age in days at the calls).
    registry_versions: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    answered_by_state: Counter = field(default_factory=Counter)
    timezone: str = "UTC"  # the campaign's report time zone: the clock of `hours`
    hours: list[hourly.Hour] = field(default_factory=list)  # the dialing day by clock hour
    agent_sessions: int | None = None  # as the voice platform last reported them: occupancy's denominator

    @property
    def abandon_rate(self) -> float:
        """Abandoned ÷ answered by a person (connected or abandoned), this day."""
        people = self.answered + self.abandoned
        return self.abandoned / people if people else 0.0

    @property
    def period_abandon_rate(self) -> float:
        return self.period_abandoned / self.period_answered if self.period_answered else 0.0

    @property
    def period_flagged(self) -> bool:
        return self.period_abandon_rate > ABANDON_LIMIT

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign, "day": self.day.isoformat(), "dials": self.dials,
            "not_placed": self.not_placed, "answered": self.answered, "contacted": self.contacted,
            "qualified": self.qualified, "callbacks": self.callbacks, "dnc_added": self.dnc_added,
            "abandoned": self.abandoned, "abandon_rate": round(self.abandon_rate, 4),
            "by_outcome": dict(self.by_outcome), "by_disposition": dict(self.by_disposition),
            "by_list": dict(self.by_list), "by_state": dict(self.by_state), "prospects": self.prospects,
            "remaining_dialable": self.remaining_dialable,
            "abandon_rate_30_days": round(self.period_abandon_rate, 4),
            "abandon_rate_30_days_flagged": self.period_flagged,
            "registry_versions": {k: {"calls": n, "age_days_min": low, "age_days_max": high}
                                  for k, (n, low, high) in self.registry_versions.items()},
            "answered_by_state": dict(self.answered_by_state), "timezone": self.timezone,
            "agent_sessions": self.agent_sessions,
            "by_hour": [hour.as_dict(self.agent_sessions) for hour in self.hours],
        }


def summary(conn: sa.Connection, campaign_id: int, day: date, rows: list[dict], now: datetime) -> Summary:
    """The day's figures, from its detail rows; prospects' states and what remains are as of `now`."""
    c, w, d = t.campaigns, t.workspaces, t.dispositions
    name = conn.execute(sa.select(w.c.name + "/" + c.c.slug).join(w, w.c.id == c.c.workspace_id)
                        .where(c.c.id == campaign_id)).scalar_one()
    kinds = {r.title.casefold(): r for r in conn.execute(sa.select(d).where(d.c.campaign_id == campaign_id))}
    s = Summary(name, day)
    for row in rows:
        s.by_outcome[row["outcome"]] += 1
        _count_registry(s, row)
        if row["outcome"] == CallOutcome.NOT_PLACED:
            s.not_placed += 1
            continue
        s.dials += 1
        s.by_list[row["list"]] += 1
        s.by_state[row["state"] or "unknown"] += 1
        if row["answered_at_utc"]:
            s.answered += 1
            s.answered_by_state[row["state"] or "unknown"] += 1
        if row["outcome"] == CallOutcome.ABANDONED:
            s.abandoned += 1
        if row["disposition"]:
            s.by_disposition[row["disposition"]] += 1
            kind = kinds.get(row["disposition"].casefold())
            if kind is not None and row["outcome"] == CallOutcome.COMPLETED:
                s.contacted += bool(kind.contacted)
                s.qualified += bool(kind.qualified)
                s.callbacks += bool(kind.callback)
                s.dnc_added += bool(kind.dnc)
    p = t.prospects
    s.prospects = {str(status): 0 for status in ProspectStatus}
    for status, count in conn.execute(sa.select(p.c.status, sa.func.count()).where(p.c.campaign_id == campaign_id)
                                      .group_by(p.c.status)):
        s.prospects[status] = count
    # Work left on the list: prospects waiting for a call (ready, or a callback) with calls left
    # and not expired, whatever their local time now; a report built after the day's close
    # would otherwise count the next day's window.
    camp = registry.load_campaign(conn, campaign_id)
    rules = DialRules.from_campaign(camp)
    s.remaining_dialable = conn.execute(
        sa.select(sa.func.count()).select_from(p)
        .where(p.c.campaign_id == campaign_id, p.c.status.in_(ProspectStatus.waiting_states()),
               calls_left_clause(p, rules), unexpired_clause(p, now))
    ).scalar_one()
    s.period_abandoned, s.period_answered = abandon_counts_period(conn, campaign_id, day)
    s.timezone = camp.report_timezone
    s.hours = hourly.day_hours(rows, ZoneInfo(camp.report_timezone))
    hourly.on_call_seconds_by_hour(conn, campaign_id, s.hours, now)
    s.agent_sessions = runtime.agent_sessions(conn, campaign_id)
    return s


def _count_registry(s: Summary, row: dict) -> None:
    """Count a row's registry version (rows read back from the export hold strings)."""
    version = str(row.get("registry_version_id") or "")
    if not version:
        return
    age = float(row.get("registry_age_days") or 0)
    calls, low, high = s.registry_versions.get(version, (0, age, age))
    s.registry_versions[version] = (calls + 1, min(low, age), max(high, age))


def registry_text(s: Summary) -> list[str]:
    """The summary's lines on the National DNC Registry versions the day's calls were checked against."""
    return [f"National DNC Registry version {version}: {calls} call(s), data {low:.0f}–{high:.0f} days old at the calls"
            for version, (calls, low, high) in sorted(s.registry_versions.items(), key=lambda kv: int(kv[0]))]


def abandon_counts_period(conn: sa.Connection, campaign_id: int, day: date,
                          days: int = ABANDON_PERIOD_DAYS) -> tuple[int, int]:
    """(abandoned, answered by a person) over the `days` dialing days ending with `day`."""
    from campaigns.dialing.calls import abandon_counts

    first = day - timedelta(days=days - 1)
    since, _ = utc_window(first)
    _, until = utc_window(day)
    # Instants this far inside the window fall on one of the period's dates in every zone:
    # those are counted in SQL; the edges, where the zone decides, attempt by attempt.
    inner_since = since + _EARLIEST_OFFSET + _LATEST_OFFSET
    inner_until = until - _EARLIEST_OFFSET - _LATEST_OFFSET
    abandoned = answered = 0
    if inner_since < inner_until:
        abandoned, answered = abandon_counts(conn, campaign_id, inner_since, inner_until)
        edges: tuple[tuple[datetime, datetime], ...] = ((since, inner_since), (inner_until, until))
    else:
        edges = ((since, until),)
    a, p = t.call_attempts, t.prospects
    for lo, hi in edges:
        inside = [row.id for row in conn.execute(
            sa.select(a.c.id, a.c.created_at, p.c.zone_group).join(p, p.c.id == a.c.prospect_id)
            .where(a.c.campaign_id == campaign_id, a.c.created_at >= lo, a.c.created_at < hi)
        ) if first <= local_time(row.created_at, row.zone_group).date() <= day]
        if inside:
            edge_abandoned, edge_answered = abandon_counts(conn, campaign_id, lo, hi, attempt_ids=inside)
            abandoned += edge_abandoned
            answered += edge_answered
    return abandoned, answered


def neutralise(value) -> str:
    """A cell as text a spreadsheet shows rather than runs: a leading formula character gets a quote.

    A plain signed number (an E.164 phone number, a negative figure) hides no formula and is
    left as it is.
    """
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _flatten(rows: Iterable[dict], columns: list[str]) -> Iterable[list[str]]:
    for row in rows:
        yield [neutralise(row.get(column)) for column in columns]


def export_bytes(rows: Iterable[dict], columns: list[str], name: str,
                 compression: str = "none") -> tuple[str, bytes]:
    """Rows as UTF-8 CSV (header first) called `name`; `zip` or `gz` wrap it.

    Returns the file's name (`name`, `name.zip` or `name.gz`) and its content.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(_flatten(rows, columns))
    data = buffer.getvalue().encode("utf-8")
    if compression == "none":
        return name, data
    if compression == "gz":
        return f"{name}.gz", gzip.compress(data)
    if compression == "zip":
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, data)
        return f"{name}.zip", packed.getvalue()
    raise ValueError(f"compression {compression!r}: expected none, zip or gz")


# -- building, composing, recording ----------------------------------------------------

REPORT_KIND = "daily"
REPORTS = "reports"  # the bucket's folder of report exports: reports/<workspace>/<slug>/<day>/<file>


class ExportMissing(DialerError):
    """The day's detail export is not in the bucket."""


@dataclass(frozen=True)
class Report:
    """A day's report: its summary, and its detail export as it is in the bucket."""

    summary: Summary
    key: str  # the export's bucket key
    url: str  # the export's address, as people and `reports_sent` see it
    content: bytes  # the export's bytes: the email attaches exactly what the summary was computed from
    rows: int

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def beside(self, suffix: str) -> str:
        """The bucket key of a file beside the export: `…/<slug>-<day>-calls.csv.zip` → `…/<slug>-<day>-<suffix>`
        (a slug holds no `.`, so the export's name ends where `-calls.csv` begins)."""
        folder, name = self.key.rsplit("/", 1)
        return check_key(f"{folder}/{name[:name.rindex('-calls.csv')]}-{suffix}")


def _csv_name(slug: str, day: date) -> str:
    return f"{slug}-{day.isoformat()}-calls.csv"


def export_key(workspace: str, slug: str, day: date, compression: str) -> str:
    """`reports/<workspace>/<slug>/<day>/<slug>-<day>-calls.csv[.zip|.gz]`: the day's export in the bucket."""
    suffix = "" if compression == "none" else f".{compression}"
    return check_key(f"{REPORTS}/{workspace}/{slug}/{day.isoformat()}/{_csv_name(slug, day)}{suffix}")


def _campaign(conn: sa.Connection, campaign_id: int) -> sa.Row:
    c, w = t.campaigns, t.workspaces
    return conn.execute(sa.select(c.c.slug, c.c.report_compression, w.c.name.label("workspace"))
                        .join(w, w.c.id == c.c.workspace_id).where(c.c.id == campaign_id)).one()


def build(conn: sa.Connection, campaign_id: int, day: date, now: datetime, *, bucket: Bucket,
          compression: str | None = None) -> Report:
    """Export the day's detail to the bucket (one write) and compute its summary (nothing is sent)."""
    camp = _campaign(conn, campaign_id)
    packing = compression or camp.report_compression
    rows = detail_rows(conn, campaign_id, day)
    _, content = export_bytes(rows, DETAIL_COLUMNS, _csv_name(camp.slug, day), packing)
    key = export_key(camp.workspace, camp.slug, day, packing)
    bucket.write_bytes(key, content)
    return Report(summary(conn, campaign_id, day, rows, now), key, bucket.url_of(key), content, len(rows))


def written_report(conn: sa.Connection, campaign_id: int, day: date, now: datetime, *, bucket: Bucket) -> Report:
    """The day's report from the export `build` wrote to the bucket with the campaign's own settings.

    The summary is computed from the rows of the bytes read, and those bytes are what the email
    attaches: the figures mailed are exactly those of the attachment, whichever process wrote it.
    """
    camp = _campaign(conn, campaign_id)
    key = export_key(camp.workspace, camp.slug, day, camp.report_compression)
    try:
        content = bucket.read_bytes(key)
    except FileNotFoundError:
        raise ExportMissing(f"{bucket.url_of(key)}: the day's detail export is not in the bucket; "
                            f"materialize report_detail for {camp.workspace}/{camp.slug} {day} first.") from None
    rows = read_export(key, content)
    return Report(summary(conn, campaign_id, day, rows, now), key, bucket.url_of(key), content, len(rows))


def summary_text(s: Summary) -> str:
    """The summary as the email's body: plain text, one figure a line."""
    lines = [
        f"Campaign {s.campaign}, dialing day {s.day.isoformat()}",
        "",
        f"Dials                 {s.dials}",
        f"Answered              {s.answered}",
        f"Contacted             {s.contacted}",
        f"Qualified             {s.qualified}",
        f"Callbacks scheduled   {s.callbacks}",
        f"DNC added             {s.dnc_added}",
        f"Abandoned             {s.abandoned} ({s.abandon_rate:.1%} of calls answered by a person)",
        f"Abandon rate, 30 days {s.period_abandon_rate:.2%}"
        + ("  ** ABOVE THE 3% LIMIT **" if s.period_flagged else ""),
        f"Not placed            {s.not_placed}",
        f"Still to dial         {s.remaining_dialable}  (ready or callback, calls left, not expired)",
        *registry_text(s),
    ]
    for title, counts in (("By outcome", s.by_outcome), ("By disposition", s.by_disposition),
                          ("By list", s.by_list), ("By state", s.by_state),
                          ("Prospects by state of the lifecycle", Counter(s.prospects))):
        lines += ["", title] + [f"  {key:<24}{value}" for key, value in sorted(counts.items()) if value]
    return "\n".join(lines) + "\n"


def sent_at(conn: sa.Connection, campaign_id: int, day: date) -> datetime | None:
    r = t.reports_sent
    return conn.execute(sa.select(r.c.sent_at).where(r.c.campaign_id == campaign_id, r.c.report_date == day,
                                                    r.c.kind == REPORT_KIND)).scalar_one_or_none()


def record_sent(conn: sa.Connection, campaign_id: int, day: date, recipients: list[str], attachment: str,
                now: datetime) -> None:
    """Record the day's report as sent; `attachment` is the export's bucket URL."""
    r = t.reports_sent
    values = {"recipients": recipients, "attachment": attachment, "sent_at": now}
    conn.execute(insert_for(conn, r).values(campaign_id=campaign_id, report_date=day, kind=REPORT_KIND, **values)
                 .on_conflict_do_update(index_elements=["campaign_id", "report_date", "kind"], set_=values))


# -- when a day's report is due ------------------------------------------------------------

def zone_windows(conn: sa.Connection, campaign_id: int, day: date) -> dict[str, tuple[datetime, datetime]]:
    """Each zone's (opening, close) of the campaign's dial window on dialing day `day`, in UTC.

    The zones its open prospects occupy (each zone group's first zone; the report time zone
    when none is left), with the campaign's hours held inside the federal 08:00–21:00.
    """
    from campaigns.dialing.hopper import zone_groups

    camp = registry.load_campaign(conn, campaign_id)
    zones = {_local_zone(group) for group in zone_groups(conn, campaign_id)} or {camp.report_timezone}
    earliest = max(camp.dial_earliest_min, FEDERAL_HOURS[0])
    latest = min(camp.dial_latest_min, FEDERAL_HOURS[1])

    def at(minutes: int, zone: str) -> datetime:
        clock = time(minutes // 60, minutes % 60) if minutes < 24 * 60 else time(23, 59, 59)
        return datetime.combine(day, clock, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    return {zone: (at(earliest, zone), at(latest, zone)) for zone in sorted(zones)}


def dialing_span(conn: sa.Connection, campaign_id: int, day: date) -> tuple[datetime, datetime]:
    """(first opening, last close) of the campaign's dial window on dialing day `day`, in UTC."""
    windows = zone_windows(conn, campaign_id, day).values()
    return min(opens for opens, _ in windows), max(closes for _, closes in windows)


def due_at(conn: sa.Connection, campaign_id: int, day: date) -> datetime | None:
    """When the report of dialing day `day` is due (UTC), by the campaign's schedule; None if disabled.

    - `midnight`: 00:00 after the day, in the campaign's report time zone;
    - `end_of_dialing`: when the dial window has closed in the last zone its prospects occupy
      (`dialing_span`'s close).
    """
    camp = registry.load_campaign(conn, campaign_id)
    if camp.report_schedule == "disabled":
        return None
    if camp.report_schedule == "midnight":
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=ZoneInfo(camp.report_timezone)).astimezone(UTC)
    return dialing_span(conn, campaign_id, day)[1]


def read_export(name: str, content: bytes) -> list[dict]:
    """The rows of a detail export called `name` (plain, .gz or .zip) with `content`, for a summary of
    exactly that file."""
    if name.endswith(".gz"):
        data = gzip.decompress(content)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            data = archive.read(archive.namelist()[0])
    else:
        data = content
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    for row in rows:  # undo the neutralising quote where a spreadsheet would have needed it
        for key, value in row.items():
            if value.startswith("'") and value[1:].startswith(_FORMULA_STARTS):
                row[key] = value[1:]
    return rows
