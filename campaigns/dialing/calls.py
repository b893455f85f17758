"""Dial attempts: claiming hopper rows, recording attempts, applying what happened.

The daemon calls these; every transition of DESIGN.md §4 after QUEUED lives
here once:

    claim ─▶ re-check (dialability) ─▶ start_attempt (DIALING, attempts + 1,
    committed before the request) ─▶ mark_placed ─▶ events ─▶ finish:
        completed + DNC disposition       → DNC, number added to the campaign's DNC list
        completed + callback disposition  → CALLBACK at the time asked (or the campaign's delay)
        completed + contacted/qualified   → DONE
        anything else (no answer, busy,   → READY after min time between calls,
        machine, abandoned, failed, a       or EXHAUSTED at max calls per prospect
        disposition not contacted or
        unknown)
        not placed (the platform refused  → READY after min time between calls, the
        or never received the request)     attempt's count given back (it was no call)

Attempt statuses: placing (recorded, request not yet confirmed) → placed →
ringing → answered → ended. An ended attempt's `outcome` is completed,
no_answer, busy, machine, abandoned, failed or not_placed — or placed_late,
when the platform placed a request after the attempt was recorded as never
placed (the call counts again; its result is not applied).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import HopperStatus, ProspectStatus
from campaigns.dialing import dnc
from campaigns.dialing.dialability import (
    DialRules,
    Place,
    Reason,
    calls_left_clause,
    dialed_clause,
    evaluate,
    max_calls_reached,
    window_reasons,
)
from campaigns.dialing.facts import prospect_facts

LIVE = ("placing", "placed", "ringing", "answered")
NOT_ANSWERED = ("placing", "placed", "ringing")
RETRY_OUTCOMES = ("no_answer", "busy", "machine", "abandoned", "failed", "not_placed")


@dataclass
class Finish:
    """What applying an ended call did to its prospect."""

    attempt_id: int
    prospect_id: int
    outcome: str
    disposition: str | None
    status: str | None  # the prospect's new status (None: left as it was)
    warnings: list[str] = field(default_factory=list)


def claim(conn: sa.Connection, campaign_id: int, daemon_id: str, limit: int, now: datetime) -> list:
    """Take up to `limit` queued hopper rows, best first, with their prospects.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so daemons never take the same row.
    SQLite: the transaction holds the database's single write lock.
    """
    if limit <= 0:
        return []
    h, p = t.hopper, t.prospects
    pick = (
        sa.select(h.c.id)
        .where(h.c.campaign_id == campaign_id, h.c.status == str(HopperStatus.QUEUED))
        .order_by(h.c.priority.desc(), h.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(conn.execute(pick).scalars())
    if not ids:
        return []
    conn.execute(
        sa.update(h).where(h.c.id.in_(ids))
        .values(status=str(HopperStatus.CLAIMED), claimed_at=now, claimed_by=daemon_id)
    )
    rows = conn.execute(
        sa.select(h.c.id.label("hopper_id"), h.c.priority.label("hopper_priority"), p)
        .join(p, p.c.id == h.c.prospect_id)
        .where(h.c.id.in_(ids))
    ).all()
    order = {hid: i for i, hid in enumerate(ids)}
    return sorted(rows, key=lambda r: order[r.hopper_id])


def recheck(conn: sa.Connection, campaign, row, now: datetime) -> list[Reason]:
    """The same rules as the fill, at the moment of dialing (DNC only when check-on-dial is on)."""
    facts = prospect_facts(conn, campaign.id, row, now, check_dnc=bool(campaign.check_on_dial))
    return list(evaluate(facts, DialRules.from_campaign(campaign), now).reasons)


def release(conn: sa.Connection, hopper_id: int) -> None:
    """Give a claimed row up: the prospect stays READY/CALLBACK for a later fill."""
    conn.execute(sa.delete(t.hopper).where(t.hopper.c.id == hopper_id))


def start_attempt(conn: sa.Connection, campaign, row, daemon_id: str, now: datetime) -> dict | None:
    """Record the attempt and count it before any request is sent.

    The prospect moves to DIALING with attempts + 1 in the same transaction as
    the attempt row, so a crash after this point can never let a prospect be
    called more than max calls per prospect. Returns None when the prospect
    changed since it was claimed.
    """
    p, a, h = t.prospects, t.call_attempts, t.hopper
    # The claimed row must still be ours: a daemon that took the campaign over returns the
    # claims of its last holder, and then this one must not dial them.
    mine = conn.execute(
        sa.delete(h).where(h.c.id == row.hopper_id, h.c.status == str(HopperStatus.CLAIMED),
                           h.c.claimed_by == daemon_id)
    ).rowcount
    if mine != 1:
        return None
    moved = conn.execute(
        sa.update(p)
        .where(p.c.id == row.id, p.c.status.in_(ProspectStatus.waiting_states()),
               p.c.attempts == row.attempts, calls_left_clause(p, DialRules.from_campaign(campaign)))
        .values(status=str(ProspectStatus.DIALING), attempts=p.c.attempts + 1,
                last_attempt_at=now, updated_at=now)
    ).rowcount
    if moved != 1:
        return None
    attempt = {
        "campaign_id": campaign.id, "prospect_id": row.id, "attempt_number": row.attempts + 1,
        "idempotency_key": f"att-{uuid.uuid4().hex}", "phone_e164": row.phone_e164,
        "status": "placing", "created_at": now, "daemon_id": daemon_id, "sent_at": datetime.now(UTC),
    }
    attempt["id"] = conn.execute(sa.insert(a).values(**attempt).returning(a.c.id)).scalar_one()
    return attempt


def mark_sent(conn: sa.Connection, attempt_id: int) -> None:
    """A request for the attempt is about to be sent again (wall clock, see `sent_at`)."""
    a = t.call_attempts
    conn.execute(sa.update(a).where(a.c.id == attempt_id).values(sent_at=datetime.now(UTC)))


def mark_placed(conn: sa.Connection, attempt_id: int, call_id: str, now: datetime) -> bool:
    """The platform accepted the attempt's request; False when it was already confirmed."""
    a = t.call_attempts
    return conn.execute(
        sa.update(a).where(a.c.id == attempt_id, a.c.status == "placing")
        .values(status="placed", platform_call_id=call_id, placed_at=now)
    ).rowcount == 1


def live_counts(conn: sa.Connection, campaign_id: int) -> tuple[int, int]:
    """(calls not yet answered or ended, calls not yet ended) for pacing."""
    a = t.call_attempts
    ringing, active = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((a.c.status.in_(NOT_ANSWERED), 1), else_=0)), 0),
            sa.func.count(),
        ).where(a.c.campaign_id == campaign_id, a.c.status.in_(LIVE))
    ).one()
    return int(ringing), int(active)


def apply_event(conn: sa.Connection, campaign, event: dict, now: datetime,
                confirmed: list[int] | None = None) -> Finish | None:
    """Apply one platform event; returns what an ending event did, else None.

    `confirmed` collects the attempts this event showed the platform placed after all
    (its answer to our request was lost).
    """
    a = t.call_attempts
    attempt = conn.execute(sa.select(a).where(a.c.platform_call_id == event["call_id"])).one_or_none()
    if attempt is None and event.get("idempotency_key"):
        # The platform placed it but its answer to our request was lost: the key ties it to the attempt.
        attempt = conn.execute(
            sa.select(a).where(a.c.idempotency_key == event["idempotency_key"], a.c.platform_call_id.is_(None))
        ).one_or_none()
        if attempt is not None and attempt.status == "ended":
            return _placed_late(conn, attempt, event)
        if attempt is not None:
            conn.execute(sa.update(a).where(a.c.id == attempt.id).values(
                platform_call_id=event["call_id"], status="placed", placed_at=attempt.created_at))
            attempt = conn.execute(sa.select(a).where(a.c.id == attempt.id)).one()
            if confirmed is not None:
                confirmed.append(attempt.id)
    if attempt is None or attempt.status == "ended":
        return None  # not ours (another campaign's daemon placed it), or already applied
    at = datetime.fromisoformat(event["at"])
    kind = event["type"]
    if kind == "ringing":
        conn.execute(sa.update(a).where(a.c.id == attempt.id, a.c.status.in_(("placing", "placed")))
                     .values(status="ringing"))
        return None
    if kind == "answered":
        conn.execute(sa.update(a).where(a.c.id == attempt.id).values(status="answered", answered_at=at))
        return None
    if kind == "abandoned":
        return finish(conn, campaign, attempt, "abandoned", None, at, now)
    if kind == "failed":
        return finish(conn, campaign, attempt, "failed", None, at, now, cause=event.get("cause"))
    if kind == "ended":
        callback_at = datetime.fromisoformat(event["callback_at"]) if event.get("callback_at") else None
        return finish(conn, campaign, attempt, event.get("outcome") or "completed", event.get("disposition"),
                      at, now, duration_s=event.get("duration_s"), callback_at=callback_at)
    return None


def _placed_late(conn: sa.Connection, attempt, event: dict) -> Finish:
    """The platform placed a call we had recorded as never placed (its request arrived very late).

    The call did happen: it counts again (the prospect's attempts and frequency caps), under
    the outcome `placed_late`. Its result is not applied — the prospect has moved on since.
    """
    a, p = t.call_attempts, t.prospects
    conn.execute(sa.update(a).where(a.c.id == attempt.id).values(
        platform_call_id=event["call_id"], outcome="placed_late", placed_at=attempt.created_at))
    conn.execute(sa.update(p).where(p.c.id == attempt.prospect_id).values(attempts=p.c.attempts + 1))
    warning = (f"call {event['call_id']}: the platform placed attempt {attempt.id} after it was recorded as "
               "not placed; it counts as a call, its outcome is not applied")
    return Finish(attempt.id, attempt.prospect_id, "placed_late", None, None, warnings=[warning])


def _disposition(conn: sa.Connection, campaign_id: int, title: str | None):
    if not title:
        return None
    d = t.dispositions
    for row in conn.execute(sa.select(d).where(d.c.campaign_id == campaign_id)):
        if row.title.casefold() == title.casefold():
            return row
    return None


def finish(conn: sa.Connection, campaign, attempt, outcome: str, title: str | None, ended_at: datetime,
           now: datetime, *, duration_s: float | None = None, callback_at: datetime | None = None,
           cause: str | None = None) -> Finish:
    """End an attempt and move its prospect on (the table in the module docstring)."""
    a, p = t.call_attempts, t.prospects
    result = Finish(attempt.id, attempt.prospect_id, outcome, title, None)
    # The attempt ends once: a second ending (two daemons during a lease hand-over, an event
    # and a reconcile crossing) changes nothing.
    unsettled = a.c.status != "ended"
    if outcome == "not_placed":  # only a request the platform never confirmed can be "never placed"
        unsettled = sa.and_(a.c.status == "placing", a.c.platform_call_id.is_(None))
    ended = conn.execute(
        sa.update(a).where(a.c.id == attempt.id, unsettled).values(
            status="ended", outcome=outcome, disposition=title, ended_at=ended_at,
            duration_s=duration_s, callback_at=callback_at, failure_cause=cause,
        )
    ).rowcount
    if ended != 1:
        return result
    disposition = _disposition(conn, campaign.id, title) if outcome == "completed" else None
    if outcome == "completed" and title and disposition is None:
        result.warnings.append(
            f"call {attempt.platform_call_id}: disposition {title!r} is not one of the campaign's; "
            "treated as not contacted"
        )
    values: dict = {"prospect_id": attempt.prospect_id}
    if outcome == "not_placed":
        # The platform never dialed: the count taken before the request is given back, so a
        # refusal or an outage never uses up a prospect's calls. The retry still waits the
        # campaign's spacing, so a number the platform keeps refusing is not hammered.
        values.update(status=str(ProspectStatus.READY), attempts=p.c.attempts - 1,
                      last_attempt_at=_last_dialed(conn, attempt),
                      next_dial_at=ended_at + timedelta(minutes=campaign.min_minutes_between_calls))
    elif disposition is not None and disposition.dnc:
        values.update(status=str(ProspectStatus.DNC), disposition=disposition.title)
        _add_to_dnc_list(conn, campaign, attempt.phone_e164, now, result)
    elif disposition is not None and disposition.callback:
        due = callback_at or ended_at + timedelta(minutes=campaign.callback_delay_min)
        values.update(status=str(ProspectStatus.CALLBACK), disposition=disposition.title,
                      callback_at=due, next_dial_at=due)
    elif disposition is not None and (disposition.contacted or disposition.qualified):
        values.update(status=str(ProspectStatus.DONE), disposition=disposition.title)
    else:
        attempts = conn.execute(sa.select(p.c.attempts).where(p.c.id == attempt.prospect_id)).scalar_one()
        if max_calls_reached(attempts, DialRules.from_campaign(campaign)):
            values.update(status=str(ProspectStatus.EXHAUSTED))
        else:
            values.update(status=str(ProspectStatus.READY),
                          next_dial_at=ended_at + timedelta(minutes=campaign.min_minutes_between_calls))
        if disposition is not None or title:
            values["disposition"] = title
    prospect_values = {k: v for k, v in values.items() if k != "prospect_id"}
    moved = conn.execute(
        sa.update(p).where(p.c.id == attempt.prospect_id, p.c.status == str(ProspectStatus.DIALING))
        .values(**prospect_values, updated_at=now)
    ).rowcount
    result.status = prospect_values["status"] if moved else None
    return result


def _last_dialed(conn: sa.Connection, attempt) -> datetime | None:
    """When the prospect was last really called, other than by `attempt`."""
    a = t.call_attempts
    return conn.execute(
        sa.select(sa.func.max(a.c.created_at))
        .where(a.c.prospect_id == attempt.prospect_id, a.c.id != attempt.id, dialed_clause(a))
    ).scalar_one()


def _add_to_dnc_list(conn: sa.Connection, campaign, phone: str, now: datetime, result: Finish) -> None:
    """The DNC disposition adds the number to the campaign's DNC list (its first, by name)."""
    link, lists = t.campaign_dnc_lists, t.dnc_lists
    list_id = conn.execute(
        sa.select(lists.c.id).join(link, link.c.dnc_list_id == lists.c.id)
        .where(link.c.campaign_id == campaign.id).order_by(lists.c.name).limit(1)
    ).scalar_one_or_none()
    if list_id is None:
        result.warnings.append(
            f"{phone}: DNC disposition, but the campaign has no DNC list to add the number to"
        )
        return
    dnc.add_number(conn, list_id, phone, now, source=f"disposition, attempt {result.attempt_id}")


def not_placed(conn: sa.Connection, campaign, attempt: dict, cause: str, now: datetime) -> Finish:
    """The platform refused the call: the attempt counts, the prospect retries later."""
    row = conn.execute(sa.select(t.call_attempts).where(t.call_attempts.c.id == attempt["id"])).one()
    return finish(conn, campaign, row, "not_placed", None, now, now, cause=cause)


def unconfirmed_attempts(conn: sa.Connection, campaign_id: int, older_than: datetime) -> list:
    """Attempts recorded before `older_than` whose request the platform never confirmed."""
    a = t.call_attempts
    return conn.execute(
        sa.select(a).where(a.c.campaign_id == campaign_id, a.c.status == "placing", a.c.created_at <= older_than)
        .order_by(a.c.id).limit(200)
    ).all()


def resend_allowed(conn: sa.Connection, campaign, attempt, now: datetime) -> bool:
    """May an attempt the platform never confirmed be sent again now?

    Its prospect is DIALING, so the full re-check does not apply; what must
    still hold is the time-and-place rules (campaign active included) and,
    with check-on-dial, the DNC lists.
    """

    group = conn.execute(
        sa.select(t.prospects.c.zone_group).where(t.prospects.c.id == attempt.prospect_id)
    ).scalar_one()
    if campaign.check_on_dial and dnc.dnc_lists_holding(conn, campaign.id, attempt.phone_e164):
        return False
    return not window_reasons(Place.from_group(group), DialRules.from_campaign(campaign), now)


def stale_attempts(conn: sa.Connection, campaign_id: int, older_than: datetime) -> list:
    """Placed calls with no end since `older_than`: the daemon asks the platform about them."""
    a = t.call_attempts
    return conn.execute(
        sa.select(a).where(a.c.campaign_id == campaign_id, a.c.status.in_(("placed", "ringing", "answered")),
                           a.c.created_at <= older_than)
        .order_by(a.c.id).limit(100)
    ).all()


def abandon_counts(conn: sa.Connection, campaign_id: int, since: datetime, until: datetime,
                   attempt_ids: list[int] | None = None) -> tuple[int, int]:
    """(abandoned, answered by a person) among the campaign's calls placed in [since, until),
    or only among `attempt_ids` of them.

    A person answered every abandoned call too — nobody was free to take it — so the
    rate a regulator asks for is abandoned ÷ (connected + abandoned).
    """
    a = t.call_attempts
    where = [a.c.campaign_id == campaign_id, a.c.created_at >= since, a.c.created_at < until]
    chunks = [None] if attempt_ids is None else [attempt_ids[i:i + 10_000] for i in range(0, len(attempt_ids), 10_000)]
    abandoned = answered = 0
    for chunk in chunks:
        found, connected = conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(sa.case((a.c.outcome == "abandoned", 1), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((a.c.answered_at.is_not(None), 1), else_=0)), 0),
            ).where(*where, *([] if chunk is None else [a.c.id.in_(chunk)]))
        ).one()
        abandoned += int(found)
        answered += int(connected) + int(found)
    return abandoned, answered


def confirm(conn: sa.Connection, attempt, call_id: str) -> bool:
    """The platform has the attempt's call (found by its key): record the call id; False if known."""
    a = t.call_attempts
    return conn.execute(
        sa.update(a).where(a.c.id == attempt.id, a.c.platform_call_id.is_(None))
        .values(platform_call_id=call_id, status=sa.case((a.c.status == "placing", "placed"), else_=a.c.status),
                placed_at=sa.func.coalesce(a.c.placed_at, attempt.created_at))
    ).rowcount == 1
