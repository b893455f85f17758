"""Answers to "why is this prospect (or my hopper) not being dialed?".

`explain_phone` gathers one prospect's facts — a loaded prospect of the
campaign, or a hypothetical one from a number, state and ZIP — and asks
`dialability.explain`. `not_dialable_summary` counts, per reason, the
campaign's READY and CALLBACK prospects that may not be dialed right now,
deciding each zone group once. Neither restates a rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import count_if
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import HopperStatus, ProspectStatus
from campaigns.dialing import hopper, national_registry
from campaigns.dialing.dialability import (
    Code,
    DialRules,
    Place,
    ProspectFacts,
    Verdict,
    callback_due_clause,
    calls_left_clause,
    explain,
    in_area_codes_clause,
    next_dialable_at,
    ready_due_clause,
    registry_clause,
    unexpired_clause,
    window_reasons,
)
from campaigns.dialing.dnc import dnc_lists_holding
from campaigns.dialing.facts import prospect_facts, recent_calls
from campaigns.ingestion import staging
from campaigns.ingestion.csvfile import Batch
from campaigns.registry import rules as registry_rules


@dataclass(frozen=True)
class Explanation:
    campaign: str
    phone_e164: str
    source: str  # "loaded" or "hypothetical"
    prospect_id: int | None
    status: str
    place: Place
    verdict: Verdict

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "phone": self.phone_e164,
            "source": self.source,
            "prospect_id": self.prospect_id,
            "status": self.status,
            "address_state": self.place.address_state,
            "area_code_state": self.place.area_code_state,
            **self.verdict.as_dict(),
        }


def _campaign(conn: sa.Connection, campaign_id: int):
    return conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)).one()


def locate_hypothetical(phone: str, state: str | None, zip_code: str | None, locale: str) -> dict:
    """Normalise and place a number exactly as an uploaded row with these cells would be."""
    batch = Batch(row_numbers=[1], phone=[phone], first_name=[""], last_name=[""],
                  state=[state or ""], zip=[zip_code or ""], problem=[None])
    staged = staging.normalize_batch(batch, locale, upload_id=0)
    if staged["reason"][0] is not None:
        raise DialerError(f"cannot place this prospect: {staged['reason'][0]}.")
    return {k: staged[k][0] for k in ("phone_e164", "address_state", "area_code_state", "zone_group")}


def explain_phone(
    conn: sa.Connection, campaign_id: int, qualified_slug: str, phone: str, now: datetime,
    state: str | None = None, zip_code: str | None = None,
) -> Explanation:
    """The verdict for `phone` in the campaign at `now`.

    Without `state`/`zip_code`, a prospect of the campaign with that number
    (the most recently loaded) is explained as stored. With them, or when the
    number was never loaded, a hypothetical new prospect is placed from the flags.
    """
    campaign = _campaign(conn, campaign_id)
    rules = DialRules.from_campaign(campaign)
    located = locate_hypothetical(phone, state, zip_code, campaign.locale)
    e164 = located["phone_e164"]
    p = t.prospects
    row = None
    if state is None and zip_code is None:
        row = conn.execute(
            sa.select(p).where(p.c.campaign_id == campaign_id, p.c.phone_e164 == e164)
            .order_by(p.c.loaded_at.desc(), p.c.id.desc()).limit(1)
        ).one_or_none()
    objections = tuple(national_registry.objections_at_call(
        campaign, national_registry.open_current(conn) if campaign.dnc_national_registry else None, e164, now))
    if row is not None:
        facts = prospect_facts(conn, campaign_id, row, now, registry=objections)
    else:
        facts = ProspectFacts(
            place=Place.from_group(located["zone_group"]), phone_e164=e164,
            dnc_lists=dnc_lists_holding(conn, campaign_id, e164), recent_calls=recent_calls(conn, e164, now),
            registry=objections,
        )
    place = facts.place
    status = row.status if row is not None else str(ProspectStatus.READY)
    if row is not None and conn.execute(
        sa.select(t.hopper.c.status).where(t.hopper.c.prospect_id == row.id)
    ).scalar_one_or_none() == HopperStatus.QUEUED:
        status = str(ProspectStatus.QUEUED)
    return Explanation(
        campaign=qualified_slug,
        phone_e164=e164,
        source="loaded" if row is not None else "hypothetical",
        prospect_id=row.id if row is not None else None,
        status=status,
        place=place,
        verdict=explain(facts, rules, now),
    )


def not_dialable_summary(conn: sa.Connection, campaign_id: int, now: datetime, top: int = 5) -> dict:
    """How many READY/CALLBACK prospects may be dialed now, and the top reasons the rest may not.

    A prospect held back by several rules counts under each of them.
    `dialable_now` counts due prospects in open zone groups; DNC-listed numbers
    among them are counted under `on_dnc_list` but not subtracted, and the
    24-hour caps are left to the fill.
    """
    campaign = _campaign(conn, campaign_id)
    rules = DialRules.from_campaign(campaign)
    p = t.prospects
    registry_counts, registry_rules_now, registry_sentences = _registry_columns(conn, campaign, rules, now)
    due = sa.or_(ready_due_clause(p, rules, now), callback_due_clause(p, rules, now))
    calls_left, unexpired = calls_left_clause(p, rules), unexpired_clause(p, now)

    per_group = conn.execute(
        sa.select(
            p.c.zone_group,
            sa.func.count().label("prospects"),
            count_if(due).label("due"),
            # One column per reason a waiting prospect may not be dialed, named by its code.
            count_if(sa.not_(calls_left)).label(str(Code.MAX_ATTEMPTS)),
            count_if(sa.not_(unexpired)).label(str(Code.EXPIRED)),
            count_if(sa.and_(p.c.status == str(ProspectStatus.READY), unexpired, calls_left,
                             sa.not_(due))).label(str(Code.TOO_SOON)),
            count_if(sa.and_(p.c.status == str(ProspectStatus.CALLBACK), unexpired, calls_left,
                             sa.not_(due))).label(str(Code.CALLBACK_NOT_DUE)),
            count_if(sa.and_(due, registry_clause(p, registry_rules_now))).label("dialable"),
            *registry_counts,
        )
        .where(p.c.campaign_id == campaign_id,
               p.c.status.in_(ProspectStatus.waiting_states()))
        .group_by(p.c.zone_group)
    ).all()
    counts: Counter = Counter()
    examples: dict[str, str] = {}
    total = dialable = 0
    for g in per_group:
        total += g.prospects
        reasons = window_reasons(Place.from_group(g.zone_group), rules, now)
        for code in dict.fromkeys(r.code for r in reasons):
            counts[code] += g.prospects
            examples.setdefault(code, next(r.message for r in reasons if r.code == code))
        if not reasons:
            dialable += g.dialable or 0
        for code in (Code.MAX_ATTEMPTS, Code.EXPIRED, Code.TOO_SOON, Code.CALLBACK_NOT_DUE, *REGISTRY_CODES):
            counts[code] += g._mapping.get(str(code)) or 0
    link, numbers = t.campaign_dnc_lists, t.dnc_numbers
    counts[Code.ON_DNC_LIST] += conn.execute(
        sa.select(sa.func.count()).select_from(p).where(
            p.c.campaign_id == campaign_id,
            p.c.status.in_(ProspectStatus.waiting_states()),
            sa.exists().where(
                numbers.c.phone_e164 == p.c.phone_e164,
                numbers.c.dnc_list_id.in_(
                    sa.select(link.c.dnc_list_id).where(link.c.campaign_id == campaign_id)
                ),
            ),
        )
    ).scalar_one()
    generic = {
        Code.ON_DNC_LIST: "the number is on one of the campaign's DNC lists",
        Code.MAX_ATTEMPTS: f"reached the campaign's {rules.max_calls_per_prospect} calls per prospect",
        Code.EXPIRED: "past their expiry date (the daily expiry run will mark them)",
        Code.TOO_SOON: (f"not due yet: called within the last {rules.min_minutes_between_calls} min, "
                        "or loaded after this instant"),
        Code.CALLBACK_NOT_DUE: "callback time not reached",
        **registry_sentences,
    }
    top_reasons = [
        {"code": code, "prospects": n, "message": examples.get(code) or generic.get(code, code)}
        for code, n in counts.most_common() if n
    ][:top]
    return {"as_of": now.isoformat(), "open_prospects": total, "dialable_now": dialable,
            "top_reasons": top_reasons}



REGISTRY_CODES = (Code.ON_NATIONAL_REGISTRY, Code.DNC_REGISTRY_STALE, Code.AREA_CODE_NOT_COVERED)


def _registry_columns(conn: sa.Connection, campaign, rules: DialRules,
                      now: datetime) -> tuple[list, DialRules, dict[str, str]]:
    """For a campaign checked against the National DNC Registry: a count column per registry reason,
    the rules with the area codes allowed now (`registry_clause`) and a sentence per reason naming
    the version; nothing for any other campaign."""
    if not campaign.dnc_national_registry:
        return [], rules, {}
    p = t.prospects
    registry = national_registry.open_current(conn)
    fresh = registry_rules.fresh_area_codes(registry, now)
    covered = [f"{a:03d}" for a in registry.areas] if registry else []
    version = f"version {registry.version.id}" if registry else "no version imported"
    columns = [
        count_if(p.c.registry_version_id.is_not(None)).label(str(Code.ON_NATIONAL_REGISTRY)),
        count_if(sa.and_(in_area_codes_clause(p, covered), sa.not_(in_area_codes_clause(p, fresh))))
        .label(str(Code.DNC_REGISTRY_STALE)),
        count_if(sa.not_(in_area_codes_clause(p, covered))).label(str(Code.AREA_CODE_NOT_COVERED)),
    ]
    sentences = {
        Code.ON_NATIONAL_REGISTRY: f"the number is on the National DNC Registry ({version})",
        Code.DNC_REGISTRY_STALE: (f"the National DNC Registry data of the number's area code ({version}) is more "
                                  f"than {registry_rules.MAX_AGE.days} days old: import a newer version"),
        Code.AREA_CODE_NOT_COVERED: f"the National DNC Registry ({version}) does not cover the number's area code",
    }
    return columns, replace(rules, registry_areas=tuple(fresh)), sentences


def remaining_today(conn: sa.Connection, campaign_id: int, now: datetime, day_of: datetime | None = None) -> int:
    """Queued rows plus READY/CALLBACK prospects that may still be dialed on the day of `day_of`.

    The day is each prospect's local date at `day_of` (default `now`): a run
    started in the afternoon ends when the evening's windows have closed, not
    the next morning. Decided per zone group, for the group's earliest due
    prospect; the daemon's `--exit-when-done` stops once this is 0 and no call
    is in flight.
    """
    day_of = day_of or now

    queued = hopper.queued_depth(conn, campaign_id)
    if queued:
        return queued
    campaign = _campaign(conn, campaign_id)
    rules = DialRules.from_campaign(campaign)
    p = t.prospects
    due_at = sa.case((p.c.status == str(ProspectStatus.CALLBACK),
                      sa.func.coalesce(p.c.callback_at, p.c.next_dial_at)), else_=p.c.next_dial_at)
    total = 0
    for group, count, first_due in conn.execute(
        sa.select(p.c.zone_group, sa.func.count(), sa.func.min(due_at))
        .where(p.c.campaign_id == campaign_id,
               p.c.status.in_(ProspectStatus.waiting_states()),
               calls_left_clause(p, rules), unexpired_clause(p, now))
        .group_by(p.c.zone_group)
    ):
        place = Place.from_group(group)
        facts = ProspectFacts(place=place, phone_e164="", next_dial_at=first_due)
        when = next_dialable_at(facts, rules, now, horizon_days=2)
        if when is None or not place.zones:
            continue
        local = ZoneInfo(place.zones[0])
        if when.astimezone(local).date() == day_of.astimezone(local).date():
            total += count
    return total
