"""The National DNC Registry where dialing meets it: a campaign's prospects re-checked against a
new version, the fill's form of the rules, and the check at the instant of a call.

The rules themselves are `campaigns.registry.rules`. A prospect's `registry_version_id` is the
version in which its number was last found listed (NULL: not listed when last checked); it is
not a status, so a number a later version deletes becomes dialable again, while a prospect set
DNC by a disposition or an internal list stays DNC (its status says so).

The fill re-checks a campaign's READY and CALLBACK prospects once per new version
(`campaign_runtime.registry_checked_version_id` says against which one they were last checked),
vectorised over the whole campaign, read in parts of CHECK_ROWS; between versions the fill only
excludes listed numbers and area codes not covered or stale, in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import numpy as np
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import CampaignState, ProspectStatus
from campaigns.core.model import Campaign
from campaigns.dialing import runtime
from campaigns.dialing.dialability import DialRules, Reason
from campaigns.registry import rules as registry_rules
from campaigns.registry import store
from campaigns.registry.store import RegistrySet

CHECK_ROWS = 100_000  # prospects read (and checked) at a time by a re-check
IN_CHUNK = 1000


@dataclass(frozen=True)
class Recheck:
    """What re-checking a campaign against a version changed."""

    version_id: int | None
    checked: int = 0
    listed: int = 0  # prospects found listed (their registry_version_id is now the version)
    cleared: int = 0  # prospects listed before and not in this version: dialable again


def open_current(conn: sa.Connection) -> RegistrySet | None:
    """The current version, its sets read through `conn` (valid while `conn` is open)."""
    return store.open_in(conn)


def recheck_campaign(conn: sa.Connection, campaign_id: int, registry: RegistrySet | None) -> Recheck:
    """Set `registry_version_id` of the campaign's waiting prospects from `registry`: the version for
    the listed ones, NULL for the others (no version: left as they are, nothing can be called anyway)."""
    if registry is None:
        return Recheck(None)
    p = t.prospects
    version_id = registry.version.id
    query = (sa.select(p.c.id, p.c.phone_e164, p.c.registry_version_id)
             .where(p.c.campaign_id == campaign_id, p.c.status.in_(ProspectStatus.waiting_states())))
    to_list: list[np.ndarray] = []
    to_clear: list[np.ndarray] = []
    checked = 0
    # Read whole before writing (ids kept as int64 arrays): the writes never disturb the read.
    for part in conn.execute(query.execution_options(yield_per=CHECK_ROWS)).partitions(CHECK_ROWS):
        ids = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
        was = np.fromiter((r[2] if r[2] is not None else -1 for r in part), dtype=np.int64, count=len(part))
        listed = registry.listed([r[1] for r in part])
        to_list.append(ids[listed & (was != version_id)])
        to_clear.append(ids[~listed & (was != -1)])
        checked += len(part)
    listed_ids = np.concatenate(to_list) if to_list else np.empty(0, dtype=np.int64)
    cleared_ids = np.concatenate(to_clear) if to_clear else np.empty(0, dtype=np.int64)
    _set_version(conn, listed_ids, version_id)
    _set_version(conn, cleared_ids, None)
    return Recheck(version_id, checked, len(listed_ids), len(cleared_ids))


def _set_version(conn: sa.Connection, ids: np.ndarray, version_id: int | None) -> None:
    p = t.prospects
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK].tolist()
        conn.execute(sa.update(p).where(p.c.id.in_(chunk)).values(registry_version_id=version_id))


def checked_version(conn: sa.Connection, campaign_id: int) -> int | None:
    r = t.campaign_runtime
    return conn.execute(
        sa.select(r.c.registry_checked_version_id).where(r.c.campaign_id == campaign_id)
    ).scalar_one_or_none()


def fill_rules(conn: sa.Connection, campaign: Campaign, rules: DialRules, now: datetime) -> tuple[DialRules, Recheck | None]:
    """The fill's rules for an opted-in campaign: its prospects re-checked first if a new version
    came since the last check, then the area codes covered and fresh at `now` added to `rules`
    (`dialability.registry_clause`). A campaign that did not opt in gets `rules` as they are."""
    if not campaign.dnc_national_registry:
        return rules, None
    registry = open_current(conn)
    done = None
    newest = registry.version.id if registry else None
    if newest is not None and checked_version(conn, campaign.id) != newest:
        done = recheck_campaign(conn, campaign.id, registry)
        runtime.events_cursor(conn, campaign.id)  # the runtime row exists from here on
        r = t.campaign_runtime
        conn.execute(sa.update(r).where(r.c.campaign_id == campaign.id).values(registry_checked_version_id=newest))
    return replace(rules, registry_areas=tuple(registry_rules.fresh_area_codes(registry, now))), done


def objections_at_call(campaign: Campaign, registry: RegistrySet | None, phone_e164: str,
                       now: datetime) -> list[Reason]:
    """The registry's reasons not to place this call now (none for a campaign that did not opt in)."""
    if not campaign.dnc_national_registry:
        return []
    return [Reason(str(r.code), r.message) for r in registry_rules.objections(registry, phone_e164, now)]


def mark_listed(conn: sa.Connection, campaign_id: int, prospect_id: int, version_id: int) -> None:
    """The number was found listed in `version_id` at the instant of a call. Only a version at least
    as new as the one the campaign was last re-checked against marks it: a daemon whose cached
    version lags (up to 30 s) must not hold a number a newer version deleted, which no later fill
    would clear until the version after."""
    p, r = t.prospects, t.campaign_runtime
    checked = (sa.select(r.c.registry_checked_version_id).where(r.c.campaign_id == campaign_id)
               .scalar_subquery())
    conn.execute(sa.update(p).where(p.c.id == prospect_id, sa.or_(checked.is_(None), checked <= version_id))
                 .values(registry_version_id=version_id))


class Health(StrEnum):
    OK = "ok"
    AGEING = "ageing"  # older than WARN_AGE: import a newer version soon
    STALE = "stale"  # older than MAX_AGE, or no version: opted-in campaigns dial nothing


@dataclass(frozen=True)
class RegistryHealth:
    """The current version as the campaigns that use it see it at `now` (the asset check's answer)."""

    health: Health
    campaigns: tuple[str, ...]  # active campaigns checked against the registry
    version_id: int | None
    age_days: float | None  # of the version's oldest area code data
    message: str


def registry_health(conn: sa.Connection, now: datetime) -> RegistryHealth:
    """Is the current version fresh enough for the active campaigns that opted in?"""
    c, w = t.campaigns, t.workspaces
    names = tuple(conn.execute(
        sa.select(w.c.name + "/" + c.c.slug).join(w, w.c.id == c.c.workspace_id)
        .where(c.c.dnc_national_registry.is_(True), c.c.state == str(CampaignState.ACTIVE)).order_by(c.c.id)
    ).scalars())
    fresh = registry_rules.freshness(open_current(conn))
    age = fresh.age_days(now)
    if not names:
        return RegistryHealth(Health.OK, names, fresh.version_id, age,
                              "no active campaign is checked against the National DNC Registry")
    who = f"{len(names)} active campaign(s) checked against it ({', '.join(names[:5])}{', …' if len(names) > 5 else ''})"
    if fresh.version_id is None or age is None:
        return RegistryHealth(Health.STALE, names, fresh.version_id, age,
                              f"no National DNC Registry version covers any area code, and {who} dial nothing: "
                              "import one with `dialer dnc registry import`")
    limit = registry_rules.MAX_AGE.days
    if fresh.stale(now):
        health, what = Health.STALE, f"past the {limit}-day limit: calls into its oldest area codes have stopped"
    elif fresh.ageing(now):
        health, what = Health.AGEING, f"calls into its oldest area codes stop after {limit} days"
    else:
        health, what = Health.OK, "fresh"
    return RegistryHealth(health, names, fresh.version_id, age,
                          f"National DNC Registry version {fresh.version_id}: its oldest area code data is "
                          f"{age:.0f} days old, {what}; {who}")
