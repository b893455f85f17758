"""The National DNC Registry's dialing rules, as one pure function of a version, a number and `now`.

For a campaign that opted in (`dnc: {national_registry: true}`) a number may be called only when
the current version of the registry:

- covers its area code (`area_code_not_covered` otherwise — also before any version was
  imported, and for a number outside the North American plan: the registry holds only +1
  numbers, so it can say nothing about the others, and "not covered" keeps them from being
  dialed rather than letting them through unchecked);
- obtained that area code's data no more than MAX_AGE before the call (`dnc_registry_stale`:
  the FTC's safe harbor, 16 CFR 310.4(b)(3)(iv), asks for a version at most 31 days old at
  each call); ages are per area code, from the version's manifest, since a partial import
  refreshes only the area codes it carried;
- does not list it (`on_national_registry`).

The hopper fill, the daemon's check at the instant of the call, `dialer explain` and the
asset check all ask this module; `fresh_area_codes` is the same rule in the form the fill's
SQL takes (area codes as bound parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from campaigns.registry.store import RegistrySet, nanp_parts

MAX_AGE = timedelta(days=31)  # older at the instant of a call: not dialed
WARN_AGE = timedelta(days=25)  # older: the asset check warns, there is time to import a new version


class Objection(StrEnum):
    """The registry's reason codes (stable: `dialer explain` and dashboards key on them)."""

    ON_NATIONAL_REGISTRY = "on_national_registry"
    DNC_REGISTRY_STALE = "dnc_registry_stale"
    AREA_CODE_NOT_COVERED = "area_code_not_covered"


@dataclass(frozen=True)
class RegistryReason:
    code: Objection
    message: str


def area_code_of(phone_e164: str) -> int | None:
    """The area code of a +1 number in E.164, or None for any other number."""
    parts = nanp_parts(phone_e164)
    return parts[0] if parts else None


def age_days(obtained_at: datetime, now: datetime) -> float:
    return (now - obtained_at).total_seconds() / 86400


def is_stale(obtained_at: datetime, now: datetime) -> bool:
    return now - obtained_at > MAX_AGE


def objections(registry: RegistrySet | None, phone_e164: str, now: datetime) -> list[RegistryReason]:
    """Why the registry forbids calling `phone_e164` at `now` (empty: it allows the call)."""
    if registry is None:
        return [RegistryReason(Objection.AREA_CODE_NOT_COVERED,
                               "no version of the National DNC Registry has been imported yet; "
                               "import one with `dialer dnc registry import`")]
    version = registry.version
    area = area_code_of(phone_e164)
    if area is None:
        return [RegistryReason(Objection.AREA_CODE_NOT_COVERED,
                               f"{phone_e164} is not a North American (+1) number, which the National DNC "
                               "Registry does not cover")]
    obtained = registry.obtained_at(area)
    if obtained is None:
        return [RegistryReason(Objection.AREA_CODE_NOT_COVERED,
                               f"National DNC Registry version {version.id} does not cover area code {area}")]
    found: list[RegistryReason] = []
    if is_stale(obtained, now):
        found.append(RegistryReason(
            Objection.DNC_REGISTRY_STALE,
            f"area code {area}'s data in National DNC Registry version {version.id} was obtained "
            f"{age_days(obtained, now):.0f} days before this call ({obtained:%Y-%m-%d}); calls need a version "
            f"at most {MAX_AGE.days} days old: import a newer one",
        ))
    if registry.contains(phone_e164):
        found.append(RegistryReason(
            Objection.ON_NATIONAL_REGISTRY,
            f"{phone_e164} is on the National DNC Registry (version {version.id}, obtained "
            f"{age_days(obtained, now):.0f} days before {now:%Y-%m-%d})",
        ))
    return found


def fresh_area_codes(registry: RegistrySet | None, now: datetime) -> list[str]:
    """The area codes (as the 3 digits after `+1`) the version covers with data at most MAX_AGE old at `now`."""
    if registry is None:
        return []
    return sorted(f"{area.area_code:03d}" for area in registry.areas.values() if not is_stale(area.obtained_at, now))


@dataclass(frozen=True)
class Freshness:
    """How old the current version's data is at `now`: its oldest area code decides."""

    version_id: int | None
    oldest_obtained_at: datetime | None
    area_codes: int

    def age_days(self, now: datetime) -> float | None:
        return None if self.oldest_obtained_at is None else age_days(self.oldest_obtained_at, now)

    def stale(self, now: datetime) -> bool:
        return self.oldest_obtained_at is None or is_stale(self.oldest_obtained_at, now)

    def ageing(self, now: datetime) -> bool:
        return self.oldest_obtained_at is None or now - self.oldest_obtained_at > WARN_AGE


def freshness(registry: RegistrySet | None) -> Freshness:
    if registry is None or not registry.areas:
        return Freshness(registry.version.id if registry else None, None, 0)
    return Freshness(registry.version.id, min(a.obtained_at for a in registry.areas.values()), len(registry.areas))
