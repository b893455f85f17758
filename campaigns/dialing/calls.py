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
        unknown, an outcome the dialer
        does not know: failed)
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
from typing import Any, NamedTuple

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import count_if
from campaigns.core.lifecycle import (
    AttemptStatus,
    CallEventType,
    CallOutcome,
    HopperStatus,
    ProspectStatus,
)
from campaigns.core.model import Attempt, Campaign, ClaimedProspect, Disposition
from campaigns.dialing import dnc, national_registry
from campaigns.dialing.dialability import (
    Code,
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
from campaigns.registry.store import RegistrySet
from campaigns.setup import registry


@dataclass
class Finish:
    """What applying an ended call did to its prospect."""

    attempt_id: int
    prospect_id: int
    outcome: CallOutcome
    disposition: str | None
    status: ProspectStatus | None  # the prospect's new status (None: left as it was)
    warnings: list[str] = field(default_factory=list)


RESEND_FIRST_WAIT = timedelta(seconds=20)
RESEND_MAX_WAIT = timedelta(minutes=10)


# -- claiming and starting -------------------------------------------------------------

def claim(conn: sa.Connection, campaign_id: int, daemon_id: str, limit: int, now: datetime) -> list[ClaimedProspect]:
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
    return sorted((ClaimedProspect.from_row(r) for r in rows), key=lambda c: order[c.hopper_id])


def recheck(conn: sa.Connection, campaign: Campaign, claimed: ClaimedProspect, now: datetime,
            registry_set: RegistrySet | None = None) -> list[Reason]:
    """The same rules as the fill, at the moment of dialing (DNC lists only when check-on-dial is on).

    For a campaign checked against the National DNC Registry, `registry_set` (the daemon's current
    version) is always asked, check-on-dial or not: the 31-day rule counts at the instant of the
    call. A number found listed keeps the version on its prospect, so the fill leaves it out too.
    """
    objections = national_registry.objections_at_call(campaign, registry_set, claimed.prospect.phone_e164, now)
    facts = prospect_facts(conn, campaign.id, claimed.prospect, now, check_dnc=campaign.check_on_dial,
                           registry=tuple(objections))
    if registry_set is not None and any(r.code == Code.ON_NATIONAL_REGISTRY for r in objections):
        national_registry.mark_listed(conn, campaign.id, claimed.prospect.id, registry_set.version.id)
    return list(evaluate(facts, DialRules.from_campaign(campaign), now).reasons)


def release(conn: sa.Connection, hopper_id: int) -> None:
    """Give a claimed row up: the prospect stays READY/CALLBACK for a later fill."""
    conn.execute(sa.delete(t.hopper).where(t.hopper.c.id == hopper_id))


def give_back(conn: sa.Connection, hopper_ids: list[int]) -> None:
    """Claimed rows a daemon did not dial (it stopped, or the tick failed): back to the next fill.

    Only rows still claimed: one that became an attempt is gone already.
    """
    if hopper_ids:
        h = t.hopper
        conn.execute(sa.delete(h).where(h.c.id.in_(hopper_ids), h.c.status == str(HopperStatus.CLAIMED)))


def give_back_all(conn: sa.Connection, daemon_id: str) -> None:
    """Every row `daemon_id` still has claimed (it is stopping): back to the next fill."""
    h = t.hopper
    conn.execute(sa.delete(h).where(h.c.claimed_by == daemon_id, h.c.status == str(HopperStatus.CLAIMED)))


def start_attempt(conn: sa.Connection, campaign: Campaign, claimed: ClaimedProspect, daemon_id: str,
                  now: datetime, registry_set: RegistrySet | None = None) -> Attempt | None:
    """Record the attempt and count it before any request is sent.

    The prospect moves to DIALING with attempts + 1 in the same transaction as
    the attempt row, so a crash after this point can never let a prospect be
    called more than max calls per prospect. Returns None when the prospect
    changed since it was claimed. An attempt of a campaign checked against the National DNC
    Registry records the version `recheck` asked (`registry_set`), as evidence.
    """
    p, a, h = t.prospects, t.call_attempts, t.hopper
    prospect = claimed.prospect
    # The claimed row must still be ours: a daemon that took the campaign over returns the
    # claims of its last holder, and then this one must not dial them.
    mine = conn.execute(
        sa.delete(h).where(h.c.id == claimed.hopper_id, h.c.status == str(HopperStatus.CLAIMED),
                           h.c.claimed_by == daemon_id)
    ).rowcount
    if mine != 1:
        return None
    moved = conn.execute(
        sa.update(p)
        .where(p.c.id == prospect.id, p.c.status.in_(ProspectStatus.waiting_states()),
               p.c.attempts == prospect.attempts, calls_left_clause(p, DialRules.from_campaign(campaign)))
        .values(status=str(ProspectStatus.DIALING), attempts=p.c.attempts + 1,
                last_attempt_at=now, updated_at=now)
    ).rowcount
    if moved != 1:
        return None
    row = conn.execute(sa.insert(a).values(
        campaign_id=campaign.id, prospect_id=prospect.id, attempt_number=prospect.attempts + 1,
        idempotency_key=f"att-{uuid.uuid4().hex}", phone_e164=prospect.phone_e164,
        status=str(AttemptStatus.PLACING), created_at=now, daemon_id=daemon_id, sent_at=datetime.now(UTC),
        sends=1, next_send_at=now + resend_wait(1),
        registry_version_id=registry_set.version.id if campaign.dnc_national_registry and registry_set else None,
    ).returning(*a.c)).one()
    return Attempt.from_row(row)


def resend_wait(sends: int) -> timedelta:
    """How long after its `sends`-th request an attempt the platform never confirmed waits to be
    sent again: 20 s, then twice as long after each re-send, at most 10 minutes.

    Counted from the last send, so a platform that never answers (or answers nonsense) gets a
    few requests an hour per attempt, not one per tick."""
    return min(RESEND_MAX_WAIT, RESEND_FIRST_WAIT * 2 ** min(max(sends - 1, 0), 16))


def mark_sent(conn: sa.Connection, campaign: Campaign, attempt: Attempt, now: datetime,
              registry_set: RegistrySet | None = None) -> None:
    """A request for the attempt is about to be sent again: counted, its next re-send put off
    (`resend_wait`, platform clock) and its send time kept (wall clock, see `sent_at`). For a
    campaign checked against the National DNC Registry the attempt now records the version
    `resend_allowed` checked it against."""
    a = t.call_attempts
    values: dict = {"sent_at": datetime.now(UTC), "sends": a.c.sends + 1,
                    "next_send_at": now + resend_wait(attempt.sends + 1)}
    if campaign.dnc_national_registry and registry_set is not None:
        values["registry_version_id"] = registry_set.version.id
    conn.execute(sa.update(a).where(a.c.id == attempt.id).values(**values))


def mark_placed(conn: sa.Connection, attempt_id: int, call_id: str, now: datetime) -> bool:
    """The platform accepted the attempt's request; False when it was already confirmed."""
    a = t.call_attempts
    return conn.execute(
        sa.update(a).where(a.c.id == attempt_id, a.c.status == str(AttemptStatus.PLACING))
        .values(status=str(AttemptStatus.PLACED), platform_call_id=call_id, placed_at=now)
    ).rowcount == 1


# -- reading attempts ------------------------------------------------------------------

def read_attempt(conn: sa.Connection, attempt_id: int) -> Attempt:
    """An attempt as it is now (after another transaction or daemon may have moved it)."""
    a = t.call_attempts
    return Attempt.from_row(conn.execute(sa.select(a).where(a.c.id == attempt_id)).one())


class LiveCalls(NamedTuple):
    """A campaign's calls in flight, as pacing and the status read them."""

    ringing: int  # placed (or being placed), not yet answered or ended
    in_flight: int  # not yet ended, answered ones included (pacing's `active`)


def live_counts(conn: sa.Connection, campaign_id: int) -> LiveCalls:
    """The campaign's calls in flight: its attempts not yet ended.

    `finish` sets an attempt's status to ended and its `ended_at` in one update, so
    "status is live" and "no end time" are the same attempts; asking for both lets
    `ix_call_attempts_live` find them without reading the campaign's past calls.
    """
    a = t.call_attempts
    ringing, in_flight = conn.execute(
        sa.select(
            count_if(a.c.status.in_(AttemptStatus.not_answered())),
            sa.func.count(),
        ).where(a.c.campaign_id == campaign_id, a.c.ended_at.is_(None), a.c.status.in_(AttemptStatus.live()))
    ).one()
    return LiveCalls(int(ringing), int(in_flight))


def unconfirmed_attempts(conn: sa.Connection, campaign_id: int, now: datetime) -> list[Attempt]:
    """Attempts whose request the platform never confirmed and whose wait since their last
    send (`resend_wait`) is over at `now`."""
    a = t.call_attempts
    due = sa.or_(a.c.next_send_at <= now,
                 sa.and_(a.c.next_send_at.is_(None), a.c.created_at <= now - RESEND_FIRST_WAIT))
    return [Attempt.from_row(r) for r in conn.execute(
        sa.select(a).where(a.c.campaign_id == campaign_id, a.c.status == str(AttemptStatus.PLACING), due)
        .order_by(a.c.id).limit(200)
    )]


def stale_attempts(conn: sa.Connection, campaign_id: int, older_than: datetime) -> list[Attempt]:
    """Placed calls with no end since `older_than`: the daemon asks the platform about them."""
    a = t.call_attempts
    return [Attempt.from_row(r) for r in conn.execute(
        sa.select(a).where(a.c.campaign_id == campaign_id, a.c.status.in_(AttemptStatus.placed_states()),
                           a.c.created_at <= older_than)
        .order_by(a.c.id).limit(100)
    )]


def abandon_counts(conn: sa.Connection, campaign_id: int, since: datetime, until: datetime,
                   attempt_ids: list[int] | None = None) -> tuple[int, int]:
    """(abandoned, answered by a person) among the campaign's calls placed in [since, until),
    or only among `attempt_ids` of them.

    A person answered every abandoned call too — nobody was free to take it — so the
    rate a regulator asks for is abandoned ÷ (connected + abandoned).
    """
    a = t.call_attempts
    where = [a.c.campaign_id == campaign_id, a.c.created_at >= since, a.c.created_at < until]
    chunks: list[list[int] | None] = (
        [None] if attempt_ids is None else [attempt_ids[i:i + 10_000] for i in range(0, len(attempt_ids), 10_000)]
    )
    abandoned = answered = 0
    for chunk in chunks:
        found, connected = conn.execute(
            sa.select(
                count_if(a.c.outcome == str(CallOutcome.ABANDONED)),
                count_if(a.c.answered_at.is_not(None)),
            ).where(*where, *([] if chunk is None else [a.c.id.in_(chunk)]))
        ).one()
        abandoned += int(found)
        answered += int(connected) + int(found)
    return abandoned, answered


# -- what happened to a call -----------------------------------------------------------

def apply_event(conn: sa.Connection, campaign: Campaign, event: dict[str, Any], now: datetime,
                confirmed: list[int] | None = None) -> Finish | None:
    """Apply one platform event; returns what an ending event did, else None.

    `confirmed` collects the attempts this event showed the platform placed after all
    (its answer to our request was lost).
    """
    a = t.call_attempts
    found = conn.execute(sa.select(a).where(a.c.platform_call_id == event["call_id"])).one_or_none()
    current = Attempt.from_row(found) if found is not None else None
    if current is None and event.get("idempotency_key"):
        # The platform placed it but its answer to our request was lost: the key ties it to the attempt.
        keyed = conn.execute(
            sa.select(a).where(a.c.idempotency_key == event["idempotency_key"], a.c.platform_call_id.is_(None))
        ).one_or_none()
        current = Attempt.from_row(keyed) if keyed is not None else None
        if current is not None and current.status == AttemptStatus.ENDED:
            return _placed_late(conn, current, event)
        if current is not None:
            conn.execute(sa.update(a).where(a.c.id == current.id).values(
                platform_call_id=event["call_id"], status=str(AttemptStatus.PLACED), placed_at=current.created_at))
            current = read_attempt(conn, current.id)
            if confirmed is not None:
                confirmed.append(current.id)
    if current is None or current.status == AttemptStatus.ENDED:
        return None  # not ours (another campaign's daemon placed it), or already applied
    at = datetime.fromisoformat(event["at"])
    kind = event["type"]
    if kind == CallEventType.RINGING:
        conn.execute(sa.update(a).where(a.c.id == current.id,
                                        a.c.status.in_((AttemptStatus.PLACING, AttemptStatus.PLACED)))
                     .values(status=str(AttemptStatus.RINGING)))
        return None
    if kind == CallEventType.ANSWERED:
        conn.execute(sa.update(a).where(a.c.id == current.id)
                     .values(status=str(AttemptStatus.ANSWERED), answered_at=at))
        return None
    if kind == CallEventType.ABANDONED:
        return finish(conn, campaign, current, CallOutcome.ABANDONED, None, at, now)
    if kind == CallEventType.FAILED:
        return finish(conn, campaign, current, CallOutcome.FAILED, None, at, now, cause=event.get("cause"))
    if kind == CallEventType.ENDED:
        outcome = reported_outcome(event.get("outcome"))
        if outcome is None:
            return finish_unknown_outcome(conn, campaign, current, event["outcome"], event.get("disposition"), at,
                                          now, duration_s=event.get("duration_s"))
        callback_at = datetime.fromisoformat(event["callback_at"]) if event.get("callback_at") else None
        return finish(conn, campaign, current, outcome, event.get("disposition"), at, now,
                      duration_s=event.get("duration_s"), callback_at=callback_at)
    return None


def reported_outcome(reported: str | None) -> CallOutcome | None:
    """The outcome the platform reported for an ended call (none given: `completed`).

    None when it is not one the platform may report: see `finish_unknown_outcome`.
    """
    if not reported:
        return CallOutcome.COMPLETED
    return next((o for o in CallOutcome.platform_outcomes() if o == reported), None)


def finish_unknown_outcome(conn: sa.Connection, campaign: Campaign, attempt: Attempt, reported: str,
                           title: str | None, ended_at: datetime, now: datetime, *,
                           duration_s: float | None = None) -> Finish:
    """End an attempt whose reported outcome the dialer does not know (a newer platform's, say).

    Refusing the event would stop its campaign's event stream for good, every tick retrying
    it. Instead the call counts as failed, its cause naming what the platform said, so the
    prospect retries as after any failed call; the warning lets the operator see it.
    """
    cause = f"the platform reported outcome {reported!r}"
    done = finish(conn, campaign, attempt, CallOutcome.FAILED, title, ended_at, now, duration_s=duration_s,
                  cause=cause)
    done.warnings.append(f"call {attempt.platform_call_id}: {cause}, which the dialer does not know; "
                         "ended as failed")
    return done


def _placed_late(conn: sa.Connection, attempt: Attempt, event: dict[str, Any]) -> Finish:
    """The platform placed a call we had recorded as never placed (its request arrived very late).

    The call did happen: it counts again (the prospect's attempts and frequency caps), under
    the outcome `placed_late`. Its result is not applied — the prospect has moved on since.
    """
    a, p = t.call_attempts, t.prospects
    conn.execute(sa.update(a).where(a.c.id == attempt.id).values(
        platform_call_id=event["call_id"], outcome=str(CallOutcome.PLACED_LATE), placed_at=attempt.created_at))
    conn.execute(sa.update(p).where(p.c.id == attempt.prospect_id).values(attempts=p.c.attempts + 1))
    warning = (f"call {event['call_id']}: the platform placed attempt {attempt.id} after it was recorded as "
               "not placed; it counts as a call, its outcome is not applied")
    return Finish(attempt.id, attempt.prospect_id, CallOutcome.PLACED_LATE, None, None, warnings=[warning])


def _disposition(conn: sa.Connection, campaign_id: int, title: str | None) -> Disposition | None:
    if not title:
        return None
    return next((d for d in registry.dispositions(conn, campaign_id) if d.matches(title)), None)


def finish(conn: sa.Connection, campaign: Campaign, attempt: Attempt, outcome: CallOutcome, title: str | None,
           ended_at: datetime, now: datetime, *, duration_s: float | None = None,
           callback_at: datetime | None = None, cause: str | None = None) -> Finish:
    """End an attempt and move its prospect on (the table in the module docstring)."""
    a, p = t.call_attempts, t.prospects
    result = Finish(attempt.id, attempt.prospect_id, outcome, title, None)
    # The attempt ends once: a second ending (two daemons during a lease hand-over, an event
    # and a reconcile crossing) changes nothing.
    unsettled = a.c.status != str(AttemptStatus.ENDED)
    if outcome == CallOutcome.NOT_PLACED:  # only a request the platform never confirmed can be "never placed"
        unsettled = sa.and_(a.c.status == str(AttemptStatus.PLACING), a.c.platform_call_id.is_(None))
    ended = conn.execute(
        sa.update(a).where(a.c.id == attempt.id, unsettled).values(
            status=str(AttemptStatus.ENDED), outcome=str(outcome), disposition=title, ended_at=ended_at,
            duration_s=duration_s, callback_at=callback_at, failure_cause=cause,
        )
    ).rowcount
    if ended != 1:
        return result
    disposition = _disposition(conn, campaign.id, title) if outcome == CallOutcome.COMPLETED else None
    if outcome == CallOutcome.COMPLETED and title and disposition is None:
        result.warnings.append(
            f"call {attempt.platform_call_id}: disposition {title!r} is not one of the campaign's; "
            "treated as not contacted"
        )
    status: ProspectStatus
    values: dict[str, Any] = {}
    if outcome == CallOutcome.NOT_PLACED:
        # The platform never dialed: the count taken before the request is given back, so a
        # refusal or an outage never uses up a prospect's calls. The retry still waits the
        # campaign's spacing, so a number the platform keeps refusing is not hammered.
        status = ProspectStatus.READY
        values.update(attempts=p.c.attempts - 1, last_attempt_at=_last_dialed(conn, attempt),
                      next_dial_at=ended_at + timedelta(minutes=campaign.min_minutes_between_calls))
    elif disposition is not None and disposition.dnc:
        status = ProspectStatus.DNC
        values.update(disposition=disposition.title)
        _add_to_dnc_list(conn, campaign, attempt.phone_e164, now, result)
    elif disposition is not None and disposition.callback:
        status = ProspectStatus.CALLBACK
        due = callback_at or ended_at + timedelta(minutes=campaign.callback_delay_min)
        values.update(disposition=disposition.title, callback_at=due, next_dial_at=due)
    elif disposition is not None and (disposition.contacted or disposition.qualified):
        status = ProspectStatus.DONE
        values.update(disposition=disposition.title)
    else:
        attempts = conn.execute(sa.select(p.c.attempts).where(p.c.id == attempt.prospect_id)).scalar_one()
        if max_calls_reached(attempts, DialRules.from_campaign(campaign)):
            status = ProspectStatus.EXHAUSTED
        else:
            status = ProspectStatus.READY
            values.update(next_dial_at=ended_at + timedelta(minutes=campaign.min_minutes_between_calls))
        if disposition is not None or title:
            values["disposition"] = title
    moved = conn.execute(
        sa.update(p).where(p.c.id == attempt.prospect_id, p.c.status == str(ProspectStatus.DIALING))
        .values(status=str(status), **values, updated_at=now)
    ).rowcount
    result.status = status if moved else None
    return result


def _last_dialed(conn: sa.Connection, attempt: Attempt) -> datetime | None:
    """When the prospect was last really called, other than by `attempt`."""
    a = t.call_attempts
    return conn.execute(
        sa.select(sa.func.max(a.c.created_at))
        .where(a.c.prospect_id == attempt.prospect_id, a.c.id != attempt.id, dialed_clause(a))
    ).scalar_one()


def _add_to_dnc_list(conn: sa.Connection, campaign: Campaign, phone: str, now: datetime, result: Finish) -> None:
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


def not_placed(conn: sa.Connection, campaign: Campaign, attempt: Attempt, cause: str, now: datetime) -> Finish:
    """The platform refused the call (or never received it): the prospect retries later.

    Read afresh: an event may have confirmed the attempt since `attempt` was read, and then
    it was placed after all (`finish` leaves a confirmed attempt alone).
    """
    return finish(conn, campaign, read_attempt(conn, attempt.id), CallOutcome.NOT_PLACED, None, now, now, cause=cause)


# -- settling what the platform never confirmed -----------------------------------------

def resend_allowed(conn: sa.Connection, campaign: Campaign, attempt: Attempt, now: datetime,
                   registry_set: RegistrySet | None = None) -> bool:
    """May an attempt the platform never confirmed be sent again now?

    Its prospect is DIALING, so the full re-check does not apply; what must
    still hold is the time-and-place rules (campaign active included),
    with check-on-dial the DNC lists, and for a campaign checked against the
    National DNC Registry its rules at `now` against `registry_set` (the
    31 days may have run out, or a new version list the number, since the
    attempt was first sent).
    """
    if national_registry.objections_at_call(campaign, registry_set, attempt.phone_e164, now):
        return False

    group = conn.execute(
        sa.select(t.prospects.c.zone_group).where(t.prospects.c.id == attempt.prospect_id)
    ).scalar_one()
    if campaign.check_on_dial and dnc.dnc_lists_holding(conn, campaign.id, attempt.phone_e164):
        return False
    return not window_reasons(Place.from_group(group), DialRules.from_campaign(campaign), now)


def confirm(conn: sa.Connection, attempt: Attempt, call_id: str) -> bool:
    """The platform has the attempt's call (found by its key): record the call id; False if known."""
    a = t.call_attempts
    return conn.execute(
        sa.update(a).where(a.c.id == attempt.id, a.c.platform_call_id.is_(None))
        .values(platform_call_id=call_id,
                status=sa.case((a.c.status == str(AttemptStatus.PLACING), str(AttemptStatus.PLACED)),
                               else_=a.c.status),
                placed_at=sa.func.coalesce(a.c.placed_at, attempt.created_at))
    ).rowcount == 1
