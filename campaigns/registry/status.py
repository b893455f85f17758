"""What `dialer dnc registry status` shows: the versions, newest first, and how old the current one is.

The current version's age is its oldest area code's: a partial import refreshes only the area codes
it names, so the version's own obtained-at can be newer than some of the data it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaigns.registry import store
from campaigns.registry.rules import MAX_AGE

RULE_DAYS = MAX_AGE.days  # 16 CFR 310.4(b)(3)(iv), as the dialing rules apply it (`rules.MAX_AGE`)


@dataclass(frozen=True)
class CurrentAge:
    version_id: int
    oldest_obtained_at: datetime  # the oldest area code's data in the current version
    age_days: float
    stale_from: datetime  # the instant the oldest area code passes 31 days

    @property
    def within_rule(self) -> bool:
        return self.age_days <= RULE_DAYS

    def as_dict(self) -> dict:
        return {"id": self.version_id, "oldest_obtained_at": self.oldest_obtained_at.isoformat(),
                "age_days": round(self.age_days, 2), "within_31_days": self.within_rule,
                "stale_from": self.stale_from.isoformat()}


@dataclass(frozen=True)
class RegistryStatus:
    versions: list[store.Version]
    current: CurrentAge | None

    def as_dict(self, now: datetime) -> dict:
        return {
            "versions": [{
                "id": v.id, "kind": v.kind, "obtained_at": v.obtained_at.date().isoformat(),
                "age_days": round(v.age_days(now), 2), "imported_at": v.imported_at.isoformat(),
                "based_on_id": v.based_on_id, "source": v.source, "area_codes": v.area_codes, "numbers": v.numbers,
                "added": v.added, "deleted": v.deleted, "checksum": v.checksum, "sets_kept": v.sets_kept,
            } for v in self.versions],
            "current": self.current.as_dict() if self.current else None,
        }


def registry_status(conn: sa.Connection, now: datetime, limit: int = 50) -> RegistryStatus:
    versions = store.versions(conn, limit)
    if not versions:
        return RegistryStatus([], None)
    newest = versions[0]
    areas = store.manifest(conn, newest.id)
    oldest = min((a.obtained_at for a in areas.values()), default=newest.obtained_at)
    age = CurrentAge(newest.id, oldest, (now - oldest).total_seconds() / 86400, oldest + MAX_AGE)
    return RegistryStatus(versions, age)
