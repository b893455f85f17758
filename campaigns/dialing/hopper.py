"""The hopper: a table of prospects that may be dialed now, topped up as the dials draw on it.

The daemon that holds a campaign's lease fills its hopper on its own clock
(docs/ARCHITECTURE.md, "The hopper fill"), and consumes the rows; `dialer hopper
fill` and the `hopper` asset fill on demand. Each fill records a `hopper_fills`
row, which Dagster's `hopper_fills_sensor` reports as the asset's materializations.

The level follows the pace (issue 16). A fill tops the hopper up to the dials
the campaign placed (`call_attempts` created) over its last fill interval — or
over the last RECENT_SPAN, if that rate is higher (a ramp-up shows there
first) — projected over the next fill interval, × MARGIN, never below
`hopper_min_level`. Measured from the dials actually placed, it serves every
pacing mode, and queued rows are claimed long before their hopper expiry. The
level it replaces, sessions × ratio × fill interval ÷ dialer interval, assumed
every session idle on every tick: in `bench/scale.py`'s day nine rows in ten it
queued expired unclaimed (docs/PERFORMANCE.md, "Hopper churn"). That estimate
is kept for a cold start only (no dial over the last hopper expiry: the start
of the day, a campaign just started), over BOOTSTRAP_SPAN, until the first
dials are measured.

A campaign is due for a fill (`campaigns_due`) when its fill interval has
passed, or earlier at low water: when its queued rows fall below the dials of
the next LOW_WATER_SPAN at the measured rate × MARGIN, or below one tick with
every session idle. The daemon holding the campaign's lease fills its hopper
(`dialer daemon`, on by default) and asks on every tick, so no tick finds the hopper empty
while a fill would find something to queue (after a fill that found nothing
more, the next one waits for the next whole minute: `campaigns_due`).

One fill of one campaign, in one transaction under the campaign's row lock:

1. Unclaimed rows older than the hopper expiry, rows whose zone group has
   closed (the evening moved on, the campaign was paused) and rows whose
   prospect is no longer READY or CALLBACK (expired, DNC) leave the hopper.
2. The open zone groups at `now` are computed in Python: the campaign's
   distinct groups are read with a loose index scan (one index probe per
   group, never a scan of the campaign), and `dialability.window_reasons`
   decides each group once.
3. The hopper is topped up to its level: due callbacks first, then READY
   prospects in dial order (list priority high first, fewest attempts, oldest
   last attempt, upload order). With few groups open (night in most of the
   continent), each open group is one range of `ix_prospects_fill`, already
   in that order, and the ranges are merged with a UNION ALL under ORDER BY …
   LIMIT (a Merge Append in PostgreSQL, a co-routine merge in SQLite). With
   many open, `ix_prospects_dial_order` is read in dial order and the open
   groups' rows kept. Either way a fill reads about as many index entries as
   it queues, whatever the campaign's size.
4. For a campaign checked against the National DNC Registry, numbers found listed and area
   codes not covered or with data older than 31 days are left out in SQL
   (`dialability.registry_clause`); the campaign's prospects are re-checked first, once per
   new version (`national_registry.fill_rules`).
5. A candidate whose number is on one of the campaign's DNC lists is marked
   DNC (it can never be dialed; VICIdial's hopper does the same with DNCL);
   a candidate at a state's calls-per-24-h cap is skipped and its next dial
   time moved to when the cap allows it.

Queuing touches only the hopper: a queued prospect keeps its READY or
CALLBACK row, and "queued" (DESIGN.md §4) is the presence of its hopper row.
Rewriting the prospect row would re-index it five times over for every queued
prospect, which was most of a fill's cost (docs/PERFORMANCE.md); the daemon's
claim is what moves a prospect to DIALING. A prospect is never queued twice:
candidates exclude prospects with a hopper row, fills of one campaign are
serialised by its row lock, and `hopper.prospect_id` is unique.
"""

from __future__ import annotations

import json
import math
import time as clock
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import (
    CampaignState,
    FillOrigin,
    HopperStatus,
    ProspectStatus,
)
from campaigns.core.model import Campaign
from campaigns.dialing import national_registry, runtime
from campaigns.dialing.dialability import (
    CAP_WINDOW,
    DialRules,
    Place,
    callback_due_clause,
    cap_reached,
    dialed_clause,
    ready_due_clause,
    registry_clause,
    window_open,
)
from campaigns.dialing.staterules import frequency_cap

# SQLite allows 500 terms in a compound SELECT; PostgreSQL plans large unions slowly.
UNION_ARMS = 250
# Above this many open zone groups, read the campaign in dial order instead of merging ranges,
# looking at no more than SCAN_BUDGET entries per row wanted before falling back.
FEW_GROUPS = 40
SCAN_BUDGET = 20
CALLBACK_RANK = 1000  # hopper.priority for due callbacks: above any list priority (0–100)
MAX_ROUNDS = 8
IN_CHUNK = 1000

# The level is the dials expected until the next fill, with room for the pace to rise before it.
MARGIN = 1.5
# The rate is also measured over this last stretch, and the faster of the two used: a campaign
# whose pace rises (its first minutes, sessions added) is seen within a tick or two.
RECENT_SPAN = timedelta(minutes=2)
# Queued rows that would not last this long at the measured rate (× MARGIN) make a campaign due
# before its fill interval: two minutes of dials, so that a fill a minute (after one that found nothing
# more) still has a spare.
LOW_WATER_SPAN = timedelta(minutes=2)
# No dial in the last fill interval (a cold start): the level is every session idle on every tick
# over this span — enough for the first dials to be placed and measured, too few to expire.
BOOTSTRAP_SPAN = timedelta(minutes=1)


@dataclass
class FillResult:
    campaign_id: int
    filled_at: datetime
    level: int = 0
    dials_per_min: float | None = None  # the rate the level was sized from (None: a cold start)
    depth_before: int = 0
    queued: int = 0
    queued_callbacks: int = 0
    returned_expired: int = 0
    returned_closed: int = 0
    marked_dnc: int = 0
    skipped_cap: int = 0
    # National DNC Registry (an opted-in campaign): the version its prospects were re-checked
    # against by this fill (None: no new version), how many were found listed and cleared.
    registry_rechecked: int | None = None
    registry_listed: int = 0
    registry_cleared: int = 0
    open_groups: int = 0
    closed_groups: int = 0
    duration_ms: float = 0.0
    note: str | None = None
    queued_ids: list[int] = field(default_factory=list, repr=False)
    fill_id: int | None = None  # its `hopper_fills` row, once recorded
    filled_by: FillOrigin | None = None  # who filled (None: not said, or recorded before revision 0013)
    filler_id: str | None = None  # the daemon's id or the Dagster run's

    @property
    def depth_after(self) -> int:
        return self.depth_before + self.queued

    @property
    def reached_level(self) -> bool:
        """The fill left the hopper at its level, so prospects may be dialable beyond it; False when
        it ran short (it queued every prospect dialable then) or queued nothing for a `note`."""
        return self.note is None and self.depth_after >= self.level

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("queued_ids")
        out["filled_at"] = self.filled_at.isoformat()
        out["depth_after"] = self.depth_after
        return out


def dial_rate(conn: sa.Connection, campaign: Campaign, now: datetime) -> float | None:
    """The campaign's dials per minute lately; None for a cold start (no dial over its last hopper expiry).

    Attempts created over the last fill interval, or over the last RECENT_SPAN if
    that rate is higher: one range of `ix_call_attempts_campaign_time`, counted
    once for both spans. A campaign that dialed within the hopper expiry but not
    in the last fill interval (slow ticks, a short pause) is measured at 0, not
    cold: rows queued for a burst it may not resume would only expire.
    """
    a = t.call_attempts
    window = timedelta(minutes=campaign.fill_interval_min)
    recent = min(RECENT_SPAN, window)
    mine = (a.c.campaign_id == campaign.id, a.c.created_at <= now)
    total, lately = conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.case((a.c.created_at > now - recent, 1))))
        .where(*mine, a.c.created_at > now - window)
    ).one()
    if total:
        return max(total / _minutes(window), lately / _minutes(recent))
    warm = conn.execute(
        sa.select(a.c.id).where(*mine, a.c.created_at > now - timedelta(minutes=campaign.hopper_expiry_min)).limit(1)
    ).first()
    return 0.0 if warm else None


def hopper_level(campaign: Campaign, agent_sessions: int | None, dials_per_min: float | None) -> int:
    """Rows a fill tops the hopper up to: the dials expected before the next fill, at least `hopper_min_level`.

    With a measured rate (`dial_rate`): that rate over one fill interval, × MARGIN.
    On a cold start (None): every session idle on every tick (sessions × ratio per
    dialer interval) over BOOTSTRAP_SPAN only — an upper bound on the first
    ticks' dials, after which the rate is measured.
    """
    if dials_per_min is not None:
        expected = math.ceil(dials_per_min * campaign.fill_interval_min * MARGIN)
    else:
        expected = _burst(campaign, agent_sessions) * _ticks(campaign, BOOTSTRAP_SPAN)
    return max(campaign.hopper_min_level, expected)


def low_water(campaign: Campaign, agent_sessions: int | None, dials_per_min: float | None) -> int:
    """Queued rows below which the campaign is due for a fill before its fill interval has passed.

    The dials of the next LOW_WATER_SPAN at the measured rate, × MARGIN, and at
    least one tick with every session idle (sessions × ratio: the most the ratio
    pacing asks for at once), so the next tick finds what it may place; never
    above half the level, so a fill that reached its level is not due again at
    once. 0 (never early) when nothing was dialed lately and no session was
    reported: pacing would place no call.
    """
    need = _burst(campaign, agent_sessions)
    if dials_per_min is not None:
        need = max(need, math.ceil(dials_per_min * _minutes(LOW_WATER_SPAN) * MARGIN))
    return min(need, max(1, hopper_level(campaign, agent_sessions, dials_per_min) // 2))


def _burst(campaign: Campaign, agent_sessions: int | None) -> int:
    """Calls one tick places with every session idle: sessions × ratio."""
    return math.ceil((agent_sessions or 0) * campaign.call_ratio)


def _ticks(campaign: Campaign, span: timedelta) -> int:
    return math.ceil(span.total_seconds() / campaign.dialer_interval_s)


def _minutes(span: timedelta) -> float:
    return span.total_seconds() / 60


def campaigns_due(conn: sa.Connection, now: datetime, only: list[int] | None = None) -> list[int]:
    """Active campaigns whose fill interval has passed or whose queued rows ran low, and inactive
    ones still holding queued rows.

    Half a minute of slack lets a caller that asks once a minute keep a five-minute
    interval instead of drifting to six. Low water (`low_water`) makes a campaign
    due early — except, after a fill that could not reach its level (nothing more
    was dialable), before the next whole minute: a dial window opens on a whole
    minute, so an earlier fill would find the same nothing, and a prospect whose
    min time between calls ends meanwhile waits under a minute more. That keeps a
    daemon ticking a campaign whose windows are all shut to one fill a minute.
    What it costs per campaign is the last fill (by `ix_hopper_fills_campaign_time`)
    and, for an active campaign inside its interval, two index ranges: its
    queued rows and its last fill interval of attempts.
    """
    c, f, r = t.campaigns, t.hopper_fills, t.campaign_runtime
    latest = f.alias("latest")
    last_fill = (
        sa.select(latest.c.id).where(latest.c.campaign_id == c.c.id)
        .order_by(latest.c.filled_at.desc(), latest.c.id.desc()).limit(1)
        .correlate(c).scalar_subquery()
    )
    query = (
        sa.select(c, f.c.filled_at.label("last_filled_at"), f.c.level.label("last_level"),
                  (f.c.depth_before + f.c.queued).label("last_depth_after"), r.c.agent_sessions)
        .select_from(c.outerjoin(f, f.c.id == last_fill).outerjoin(r, r.c.campaign_id == c.c.id))
        .order_by(c.c.id)
    )
    if only is not None:
        query = query.where(c.c.id.in_(only))
    due = []
    for row in conn.execute(query).all():
        if row.state != CampaignState.ACTIVE:
            if queued_depth(conn, row.id):
                due.append(row.id)
            continue
        last = row.last_filled_at
        interval = timedelta(minutes=row.fill_interval_min) - timedelta(seconds=30)
        # A fill stamped after `now` (`dialer hopper fill --at` a later instant) does not defer this one.
        if last is None or last > now or now - last >= interval:
            due.append(row.id)
        elif row.last_depth_after < row.last_level and now < _next_minute(last):
            continue
        else:
            campaign = Campaign.from_row(row)
            need = low_water(campaign, row.agent_sessions, dial_rate(conn, campaign, now))
            if need and queued_depth(conn, row.id) < need:
                due.append(row.id)
    return due


def _next_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def fill_campaign(engine: sa.Engine, campaign_id: int, now: datetime, *, filled_by: FillOrigin | None = None,
                  filler_id: str | None = None) -> FillResult:
    """Top one campaign's hopper up at `now` (see the module docstring); the fill is recorded as
    made by `filled_by` (the daemon `filler_id`, the Dagster run `filler_id`, …)."""
    started = clock.perf_counter()
    result = FillResult(campaign_id=campaign_id, filled_at=now, filled_by=filled_by, filler_id=filler_id)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # The candidate queries are short index walks whose cost PostgreSQL overestimates
            # (it cannot know how few rows its filters drop); JIT-compiling them costs more
            # than running them.
            conn.exec_driver_sql("SET LOCAL jit = off")
        campaign = Campaign.from_row(conn.execute(
            sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id).with_for_update()
        ).one())
        rules, recheck = national_registry.fill_rules(conn, campaign, DialRules.from_campaign(campaign), now)
        if recheck is not None and recheck.version_id is not None:
            result.registry_rechecked = recheck.version_id
            result.registry_listed, result.registry_cleared = recheck.listed, recheck.cleared
        result.returned_expired = _return_rows(conn, _expired_rows(conn, campaign, now), only_queued=False)
        groups = zone_groups(conn, campaign_id)
        is_open = {g: window_open(Place.from_group(g), rules, now) for g in groups}
        open_groups = {g for g, ok in is_open.items() if ok}
        result.open_groups, result.closed_groups = len(open_groups), len(is_open) - len(open_groups)
        result.returned_closed = _return_rows(conn, _closed_rows(conn, campaign_id, is_open, rules, now))
        result.dials_per_min = dial_rate(conn, campaign, now)
        result.level = hopper_level(campaign, runtime.agent_sessions(conn, campaign_id), result.dials_per_min)
        result.depth_before = queued_depth(conn, campaign_id)
        need = result.level - result.depth_before
        if campaign.state != CampaignState.ACTIVE:
            result.note = f"campaign is {campaign.state}: nothing queued"
        elif not open_groups:
            result.note = "no zone group is open now"
        elif rules.registry_areas is not None and not rules.registry_areas:
            result.note = ("no area code is covered by a National DNC Registry version at most "
                           "31 days old: import a newer version")
        elif need > 0:
            _queue(conn, campaign, rules, open_groups, need, now, result)
        result.duration_ms = (clock.perf_counter() - started) * 1000
        recorded = conn.execute(sa.insert(t.hopper_fills).values(
            campaign_id=campaign_id, filled_at=now, level=result.level,
            depth_before=result.depth_before, queued=result.queued,
            returned_expired=result.returned_expired, returned_closed=result.returned_closed,
            marked_dnc=result.marked_dnc, skipped_cap=result.skipped_cap,
            open_groups=result.open_groups, closed_groups=result.closed_groups,
            duration_ms=result.duration_ms, note=result.note, dials_per_min=result.dials_per_min,
            filled_by=None if filled_by is None else str(filled_by), filler_id=filler_id,
        ))
        result.fill_id = recorded.inserted_primary_key[0] if recorded.inserted_primary_key else None
    return result


# What a fill records, as `recorded_fills` reads it back (queued ids and registry re-checks are not kept).
_RECORDED = ("campaign_id", "filled_at", "level", "dials_per_min", "depth_before", "queued", "returned_expired",
             "returned_closed", "marked_dnc", "skipped_cap", "open_groups", "closed_groups", "duration_ms", "note",
             "filled_by", "filler_id")


def newest_fill_id(conn: sa.Connection) -> int | None:
    """The id of the last fill recorded (None: none yet): one probe of the primary key."""
    return conn.execute(sa.select(sa.func.max(t.hopper_fills.c.id))).scalar_one()


def recorded_fills(conn: sa.Connection, *, after_id: int | None, since: datetime, limit: int = 500) -> list[FillResult]:
    """Fills recorded after the fill `after_id` (or, without one, since `since`), oldest first, at most `limit`.

    Whoever filled (a daemon on its tick, `dialer hopper fill`, the `hopper` asset), each fill
    is one `hopper_fills` row; this is how Dagster is told of the daemons' fills without a run.
    """
    f = t.hopper_fills
    where = f.c.id > after_id if after_id is not None else f.c.filled_at >= since
    rows = conn.execute(_recorded_select().where(where).order_by(f.c.id).limit(limit))
    return [_recorded(row) for row in rows]


# A fill's id is drawn before it commits, so fills can commit out of id order: an id missing
# below the newest one read is waited for this long (a fill transaction lasts seconds), then
# taken for a rolled-back fill. At most MAX_WAITING such ids are carried.
GAP_WAIT = timedelta(minutes=10)
MAX_WAITING = 1000


@dataclass(frozen=True)
class FillsRead:
    """How far a reader of `hopper_fills` has got: the highest fill id it read, and the ids below
    it that were not committed yet when it read past them, each with when it first missed it."""

    last_id: int | None = None
    waiting: dict[int, datetime] = field(default_factory=dict)

    def text(self) -> str:
        """As a cursor: the id alone while nothing is waiting, else JSON."""
        if not self.waiting:
            return "" if self.last_id is None else str(self.last_id)
        return json.dumps({"last": self.last_id,
                           "waiting": {str(i): at.isoformat() for i, at in sorted(self.waiting.items())}})

    @classmethod
    def parse(cls, text: str | None) -> FillsRead:
        """A cursor written by `text` (or anything else: read from the start)."""
        if not text:
            return cls()
        if text.isdigit():
            return cls(int(text))
        try:
            data = json.loads(text)
            last = data["last"]
            waiting = {int(i): datetime.fromisoformat(at) for i, at in data["waiting"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls()
        if not (last is None or isinstance(last, int)) or any(at.tzinfo is None for at in waiting.values()):
            return cls()
        return cls(last, waiting)


def fills_after(conn: sa.Connection, read: FillsRead, now: datetime, *, since: datetime,
                limit: int = 500) -> tuple[list[FillResult], FillsRead]:
    """The fills recorded since `read` (from `since` when it has no position), oldest id first,
    and the position after them: every committed fill is returned once, including one that
    committed after a later id was read (it waits in `FillsRead.waiting` for up to GAP_WAIT).
    A position past the newest fill (the database was restored or replaced) starts over."""
    newest = newest_fill_id(conn)
    if newest is None:
        return [], FillsRead()
    last = read.last_id
    waiting = {i: at for i, at in read.waiting.items() if now - at < GAP_WAIT}
    if last is not None and last > newest:
        last, waiting = None, {}
    f = t.hopper_fills
    late = [_recorded(row) for row in conn.execute(
        _recorded_select().where(f.c.id.in_(sorted(waiting))).order_by(f.c.id))] if waiting else []
    for fill in late:
        waiting.pop(fill.fill_id or 0, None)
    fresh = recorded_fills(conn, after_id=last, since=since, limit=limit)
    if fresh:
        seen = {fill.fill_id for fill in fresh}
        top = fresh[-1].fill_id or 0
        lowest = max(last + 1 if last is not None else fresh[0].fill_id or 0, top - MAX_WAITING)
        waiting.update({i: now for i in range(lowest, top) if i not in seen and i not in waiting})
        last = top
    elif last is None:
        last = newest  # nothing in the look-back: the next look is by id
    if len(waiting) > MAX_WAITING:
        waiting = dict(sorted(waiting.items())[-MAX_WAITING:])
    return sorted(late + fresh, key=lambda fill: fill.fill_id or 0), FillsRead(last, waiting)


def last_fill(conn: sa.Connection, campaign_id: int) -> FillResult | None:
    """The campaign's latest recorded fill, whoever ran it (one probe of `ix_hopper_fills_campaign_time`)."""
    f = t.hopper_fills
    row = conn.execute(
        _recorded_select().where(f.c.campaign_id == campaign_id).order_by(f.c.filled_at.desc(), f.c.id.desc()).limit(1)
    ).first()
    return None if row is None else _recorded(row)


def _recorded_select() -> sa.Select:
    f = t.hopper_fills
    return sa.select(f.c.id, *(f.c[name] for name in _RECORDED))


def _recorded(row) -> FillResult:
    """A `hopper_fills` row (read by `_recorded_select`) as the FillResult it recorded."""
    values = {name: getattr(row, name) for name in _RECORDED}
    values["filled_by"] = _origin(values["filled_by"])
    return FillResult(**values, fill_id=row.id)


def _origin(text: str | None) -> FillOrigin | None:
    try:
        return None if text is None else FillOrigin(text)
    except ValueError:  # written by a newer version of the code
        return None


def queued_prospects(conn: sa.Connection, prospect_ids: list[int]) -> list[dict]:
    """The prospects among `prospect_ids` (a fill's `queued_ids`) still in the hopper, in that order:
    id, phone, state, priority, attempts, the status it was queued `from` and its zones."""
    p, h = t.prospects, t.hopper
    rows = {}
    for chunk in _chunks(prospect_ids):
        for r in conn.execute(
            sa.select(p.c.id, p.c.phone_e164, p.c.address_state, p.c.priority, p.c.attempts,
                      p.c.candidate_zones, p.c.status)
            .join(h, h.c.prospect_id == p.c.id)
            .where(p.c.id.in_(chunk))
        ):
            rows[r.id] = {"prospect_id": r.id, "phone": r.phone_e164, "state": r.address_state,
                          "priority": r.priority, "attempts": r.attempts, "from": r.status,
                          "zones": r.candidate_zones}
    return [rows[i] for i in prospect_ids if i in rows]


def queued_depth(conn: sa.Connection, campaign_id: int) -> int:
    """Rows waiting for a daemon to claim them: what pacing may dial and the fill tops up."""
    h = t.hopper
    return conn.execute(
        sa.select(sa.func.count()).select_from(h)
        .where(h.c.campaign_id == campaign_id, h.c.status == str(HopperStatus.QUEUED))
    ).scalar_one()


def depth(conn: sa.Connection, campaign_id: int) -> int:
    """Every row of the campaign's hopper, queued or claimed by a daemon (`dialer status`'s depth)."""
    h = t.hopper
    return conn.execute(
        sa.select(sa.func.count()).select_from(h).where(h.c.campaign_id == campaign_id)
    ).scalar_one()


def zone_groups(conn: sa.Connection, campaign_id: int) -> list[str]:
    """The campaign's distinct zone groups among READY and CALLBACK prospects.

    A loose index scan: a recursive query hops from one group to the next
    through `ix_prospects_fill`, one probe per group, however many prospects
    each group holds.
    """
    groups: set[str] = set()
    for status in (ProspectStatus.READY, ProspectStatus.CALLBACK):
        p, q = t.prospects, t.prospects.alias("following")
        where = (p.c.campaign_id == campaign_id, p.c.status == str(status))
        first = sa.select(sa.func.min(p.c.zone_group).label("zone_group")).where(*where)
        start = first.cte(f"groups_{status}", recursive=True)
        step = (
            sa.select(sa.func.min(q.c.zone_group))
            .where(q.c.campaign_id == campaign_id, q.c.status == str(status),
                   q.c.zone_group > start.c.zone_group)
            .scalar_subquery()
        )
        walk = start.union_all(sa.select(step).where(start.c.zone_group.is_not(None)))
        groups.update(conn.execute(
            sa.select(walk.c.zone_group).where(walk.c.zone_group.is_not(None))
        ).scalars())
    return sorted(groups)


def _expired_rows(conn: sa.Connection, campaign: Campaign, now: datetime) -> list[int]:
    """Unclaimed rows older than the hopper expiry (or stamped after `now`, by a fill `--at` later)."""
    h = t.hopper
    cutoff = now - timedelta(minutes=campaign.hopper_expiry_min)
    queued = sa.and_(h.c.status == str(HopperStatus.QUEUED),
                     sa.or_(h.c.queued_at <= cutoff, h.c.queued_at > now))
    # A claim the daemon never turned into an attempt (it stopped in between): starting an
    # attempt deletes the row, so an old CLAIMED row never stands for a call.
    abandoned_claim = sa.and_(h.c.status == str(HopperStatus.CLAIMED), h.c.claimed_at <= cutoff)
    return list(conn.execute(
        sa.select(h.c.id).where(h.c.campaign_id == campaign.id, sa.or_(queued, abandoned_claim))
    ).scalars())


def _closed_rows(conn: sa.Connection, campaign_id: int, is_open: dict[str, bool], rules, now) -> list:
    """Unclaimed rows whose zone group is closed now, or whose prospect is no longer due.

    "Due" is the same SQL the candidates are chosen with: a prospect that
    expired, reached max calls, left READY/CALLBACK or joined a DNC list
    since it was queued leaves the hopper.
    """
    h, p = t.hopper, t.prospects
    due = sa.and_(sa.or_(ready_due_clause(p, rules, now), callback_due_clause(p, rules, now)),
                  registry_clause(p, rules))
    dnc_lists = _dnc_lists(conn, campaign_id)
    if dnc_lists:
        d = t.dnc_numbers
        due = sa.and_(due, ~sa.exists().where(d.c.phone_e164 == p.c.phone_e164,
                                             d.c.dnc_list_id.in_(dnc_lists)))
    rows = conn.execute(
        sa.select(h.c.id, p.c.zone_group, due.label("due"))
        .join(p, p.c.id == h.c.prospect_id)
        .where(h.c.campaign_id == campaign_id, h.c.status == str(HopperStatus.QUEUED))
    ).all()
    for group in {r.zone_group for r in rows} - is_open.keys():
        is_open[group] = window_open(Place.from_group(group), rules, now)
    return [r.id for r in rows if not is_open[r.zone_group] or not r.due]


def _return_rows(conn: sa.Connection, hopper_ids: list[int], *, only_queued: bool = True) -> int:
    """Delete hopper rows no daemon is dialing: their prospects are READY or CALLBACK again."""
    h = t.hopper
    for chunk in _chunks(hopper_ids):
        guard = [h.c.status == str(HopperStatus.QUEUED)] if only_queued else []
        conn.execute(sa.delete(h).where(h.c.id.in_(chunk), *guard))
    return len(hopper_ids)


def _chunks(items: list, size: int = IN_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


_COLUMNS = ("id", "priority", "attempts", "last_attempt_at", "phone_e164", "zone_group", "status")


def _dial_order(cols):
    return (cols.priority.desc(), cols.attempts, cols.last_attempt_at, cols.id)


def _ready_candidates(conn, campaign_id, rules, groups, limit, skip, now) -> list:
    """The first `limit` due READY prospects of the open groups in dial order, minus `skip`.

    With many groups open, the campaign's due prospects are read in dial order
    (`ix_prospects_dial_order`) and the open groups' rows kept, reading at most
    SCAN_BUDGET × `limit` entries. With few open, or when that budget runs out,
    each open group's range of `ix_prospects_fill` is merged instead. `skip`
    (queued prospects, and candidates already turned down by this fill) is
    dropped here rather than in SQL: each read asks for that many more rows,
    which keeps the queries plain index walks PostgreSQL plans well.
    """
    wanted = limit + len(skip)
    if len(groups) > FEW_GROUPS:
        rows = [r for r in _scan_dial_order(conn, campaign_id, rules, groups, wanted, now)
                if r.id not in skip]
        if len(rows) >= limit:
            return rows[:limit]
    rows = _merge_group_ranges(conn, campaign_id, rules, groups, wanted, now)
    return [r for r in rows if r.id not in skip][:limit]


def _due_ready(p, campaign_id, rules, now):
    return (p.c.campaign_id == campaign_id, ready_due_clause(p, rules, now), registry_clause(p, rules))


def _scan_dial_order(conn, campaign_id, rules, groups, limit, now) -> list:
    p = t.prospects
    head = (
        sa.select(*(p.c[c] for c in _COLUMNS))
        .where(*_due_ready(p, campaign_id, rules, now))
        .order_by(*_dial_order(p.c))
        .limit(limit * SCAN_BUDGET)
        .subquery()
    )
    return conn.execute(
        sa.select(head)
        .where(head.c.zone_group.in_(sorted(groups)))
        .order_by(*_dial_order(head.c))
        .limit(limit)
    ).all()


def _merge_group_ranges(conn, campaign_id, rules, groups, limit, now) -> list:
    p = t.prospects
    due = _due_ready(p, campaign_id, rules, now)
    rows: list = []
    for arms in _chunks(sorted(groups), UNION_ARMS):
        # Each arm is limited on its own, so no plan reads a whole group to sort it.
        selects = [
            sa.select(
                sa.select(*(p.c[c] for c in _COLUMNS))
                .where(*due, p.c.zone_group == group)
                .order_by(*_dial_order(p.c))
                .limit(limit)
                .subquery()
            )
            for group in arms
        ]
        merged = sa.union_all(*selects).subquery()
        rows.extend(conn.execute(
            sa.select(merged).order_by(*_dial_order(merged.c)).limit(limit)
        ).all())
    if len(groups) > UNION_ARMS:
        rows.sort(key=_python_order)
    return rows[:limit]


def _python_order(row):
    # Same order as the SQL: NULL last attempts only occur with zero attempts, so their place is moot.
    last = row.last_attempt_at.timestamp() if row.last_attempt_at is not None else float("-inf")
    return (-row.priority, row.attempts, last, row.id)


def _callback_candidates(conn, campaign_id, rules, groups, limit, skip, now) -> list:
    p = t.prospects
    due_at = sa.func.coalesce(p.c.callback_at, p.c.next_dial_at)
    rows: list = []
    for chunk in _chunks(sorted(groups)):
        rows.extend(conn.execute(
            sa.select(*(p.c[c] for c in _COLUMNS), due_at.label("due_at"))
            .where(p.c.campaign_id == campaign_id, p.c.zone_group.in_(chunk),
                   callback_due_clause(p, rules, now), registry_clause(p, rules))
            .order_by(due_at, p.c.id)
            .limit(limit + len(skip))
        ).all())
    rows.sort(key=lambda r: (r.due_at, r.id))
    return [r for r in rows if r.id not in skip][:limit]


def _queue(conn, campaign: Campaign, rules: DialRules, open_groups: set[str], need: int, now, result) -> None:
    dnc_lists = _dnc_lists(conn, campaign.id)
    capped = {g for g in open_groups if frequency_cap(Place.from_group(g).rule_states)}
    h = t.hopper
    skip = set(conn.execute(
        sa.select(h.c.prospect_id).where(h.c.campaign_id == campaign.id)
    ).scalars())
    accepted: list = []
    for fetch in (_callback_candidates, _ready_candidates):
        for _ in range(MAX_ROUNDS):
            want = need - len(accepted)
            if want <= 0:
                break
            rows = fetch(conn, campaign.id, rules, open_groups, want, skip, now)
            listed = _on_dnc(conn, rows, dnc_lists, now)
            capped_out = _at_cap(conn, [r for r in rows if r.id not in listed], accepted, capped, now)
            accepted.extend(r for r in rows if r.id not in listed and r.id not in capped_out)
            skip.update(r.id for r in rows)
            result.marked_dnc += len(listed)
            result.skipped_cap += len(capped_out)
            if len(rows) < want or not (listed or capped_out):
                break
    if not accepted:
        return
    conn.execute(sa.insert(t.hopper), [
        {
            "campaign_id": campaign.id,
            "prospect_id": r.id,
            "priority": CALLBACK_RANK + r.priority if r.status == ProspectStatus.CALLBACK else r.priority,
            "status": str(HopperStatus.QUEUED),
            "queued_at": now,
        }
        for r in accepted
    ])
    result.queued = len(accepted)
    result.queued_callbacks = sum(1 for r in accepted if r.status == ProspectStatus.CALLBACK)
    result.queued_ids = [r.id for r in accepted]


def _dnc_lists(conn: sa.Connection, campaign_id: int) -> list[int]:
    link = t.campaign_dnc_lists
    return list(conn.execute(
        sa.select(link.c.dnc_list_id).where(link.c.campaign_id == campaign_id)
    ).scalars())


def _on_dnc(conn, rows, dnc_lists: list[int], now) -> set[int]:
    """Candidates whose number is on one of the campaign's DNC lists: marked DNC, never dialed.

    As VICIdial marks such leads DNCL: the number will not become dialable by
    waiting, so the prospect leaves the open states (and the campaign can
    complete) instead of being read and skipped by every fill.
    """
    if not dnc_lists or not rows:
        return set()
    d, p = t.dnc_numbers, t.prospects
    listed: set[str] = set()
    for chunk in _chunks(sorted({r.phone_e164 for r in rows})):
        listed.update(conn.execute(
            sa.select(d.c.phone_e164).distinct()
            .where(d.c.dnc_list_id.in_(dnc_lists), d.c.phone_e164.in_(chunk))
        ).scalars())
    hits = [r.id for r in rows if r.phone_e164 in listed]
    for chunk in _chunks(hits):
        conn.execute(
            sa.update(p).where(p.c.id.in_(chunk), p.c.status.in_(ProspectStatus.waiting_states()))
            .values(status=str(ProspectStatus.DNC), updated_at=now)
        )
    return set(hits)


def _at_cap(conn, rows, accepted, capped_groups, now) -> set[int]:
    """Candidates whose number would pass its states' calls-per-24-hours cap.

    A number's count is its calls in the last 24 h (any campaign), its rows
    already in any hopper, and the candidates accepted before it in this fill.
    A candidate at the cap gets `next_dial_at` moved to when its oldest counted
    call leaves the window, so later fills do not keep re-reading it.
    """
    capped = [r for r in rows if r.zone_group in capped_groups]
    if not capped:
        return set()
    a, h, p = t.call_attempts, t.hopper, t.prospects
    phones = sorted({r.phone_e164 for r in capped})
    calls: dict[str, list] = {}
    queued: dict[str, int] = {}
    for chunk in _chunks(phones):
        for phone, at in conn.execute(
            sa.select(a.c.phone_e164, a.c.created_at)
            .where(a.c.phone_e164.in_(chunk), a.c.created_at > now - CAP_WINDOW, a.c.created_at <= now,
                   dialed_clause(a))
        ):
            calls.setdefault(phone, []).append(at)

    # Hopper rows of these numbers, in any campaign: from the (small) hopper to prospects by
    # primary key, since no index leads with the phone number alone.
    wanted = set(phones)
    in_hopper = list(conn.execute(sa.select(h.c.prospect_id)).scalars())
    for chunk in _chunks(in_hopper):
        for phone in conn.execute(sa.select(p.c.phone_e164).where(p.c.id.in_(chunk))).scalars():
            if phone in wanted:
                queued[phone] = queued.get(phone, 0) + 1
    for r in accepted:
        queued[r.phone_e164] = queued.get(r.phone_e164, 0) + 1
    skipped: dict[int, object] = {}
    for r in capped:
        count = len(calls.get(r.phone_e164, ())) + queued.get(r.phone_e164, 0)
        if cap_reached(Place.from_group(r.zone_group), count):
            recent = sorted(calls.get(r.phone_e164, ()))
            skipped[r.id] = recent[0] + CAP_WINDOW if recent else None
        else:
            queued[r.phone_e164] = queued.get(r.phone_e164, 0) + 1
    for prospect_id, until in skipped.items():
        if until is not None:
            conn.execute(
                sa.update(p).where(p.c.id == prospect_id, p.c.next_dial_at < until)
                .values(next_dial_at=until, updated_at=now)
            )
    return set(skipped)
