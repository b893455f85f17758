"""Campaign settings: the typed model behind the campaign YAML file.

Defaults and ranges are the product's (DESIGN.md §3). Every key but `name`,
`workspace`, `locale` and `agent` is optional. A bad file is refused whole
with one sentence naming the key, what is allowed and what was given
(`SettingsError`); nothing is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CampaignState, PacingMode
from campaigns.core.regions import LOCALES, regions_for
from campaigns.core.yamlfile import YamlError, read_yaml_file

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_TIME = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


class SettingsError(DialerError):
    """A campaign file or setting that cannot be accepted."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def minutes_of(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def hhmm_of(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class DialWindow(_Strict):
    """Earliest and latest dialing time in the prospect's local time."""

    earliest: str = "09:00"
    latest: str = "21:00"

    @field_validator("earliest", "latest", mode="before")
    @classmethod
    def _hhmm(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540.
            value = hhmm_of(value)
        if not isinstance(value, str) or not _TIME.match(value):
            raise ValueError(f"must be a time HH:MM between 00:00 and 24:00 (got {value!r})")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DialWindow:
        if minutes_of(self.earliest) >= minutes_of(self.latest):
            raise ValueError(
                f"earliest ({self.earliest}) must be before latest ({self.latest})"
            )
        return self


class Damper(_Strict):
    """Waiting Stations lowers the call ratio toward 1.0 when this share of sessions sit idle."""

    mode: Literal["disabled", "waiting_stations"] = "disabled"
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.5


class Dialing(_Strict):
    call_ratio: Annotated[float, Field(ge=1.0, le=10.0)] = 1.0
    dialer_interval_s: Annotated[int, Field(ge=2, le=15)] = 10
    max_active_calls: Annotated[int, Field(ge=0, le=100_000)] = 0
    max_calls_per_prospect: Annotated[int, Field(ge=1, le=1000)] = 10
    min_minutes_between_calls: Annotated[int, Field(ge=0, le=60 * 24 * 30)] = 30
    wrap_up_s: Annotated[int, Field(ge=0, le=3600)] = 3
    hopper_expiry_min: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    fill_interval_min: Annotated[int, Field(ge=1, le=24 * 60)] = 5
    # The hopper is topped up to the expected dials over one fill interval, never below this.
    hopper_min_level: Annotated[int, Field(ge=1, le=100_000)] = 100
    # A callback disposition without a time asked for is called back this much later.
    callback_delay_min: Annotated[int, Field(ge=1, le=60 * 24 * 30)] = 24 * 60
    damper: Damper = Damper()
    # `ratio`: ⌊idle × call ratio (after the damper)⌋ − ringing per tick, the seed's pacing.
    # `predictive`: as many calls as the sessions expected free absorb, holding abandons to the target.
    pacing: PacingMode = PacingMode.RATIO
    # Abandoned ÷ answered by a person that predictive pacing aims at (the FTC TSR caps it at 3% over 30 days).
    target_abandon_rate: Annotated[float, Field(gt=0, le=0.03)] = 0.02


class Uploads(_Strict):
    dupe_days: Annotated[int, Field(ge=-1, le=3650)] = 90
    expire_days: Annotated[int, Field(ge=1, le=3650)] = 90
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    # A file past either limit is refused whole (to rejected/, with the sentence), so a small
    # gzip cannot expand into hours of staging and a full disk. Not a sidecar option: whoever
    # drops a file must not be able to lift the campaign's limits with it.
    max_rows: Annotated[int, Field(ge=1, le=100_000_000)] = 5_000_000
    max_uncompressed_bytes: Annotated[int, Field(ge=1024, le=1024**4)] = 2 * 1024**3


class Dnc(_Strict):
    lists: list[Annotated[str, Field(pattern=SLUG_PATTERN)]] = []
    dnc_disposition: str | None = None
    check_on_dial: bool = True
    # Scrub uploads and check every call against the National DNC Registry (telemarketing: README).
    national_registry: bool = False

    @field_validator("lists")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("national_registry", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any) -> bool:
        # A compliance switch is never inferred from "yes", 1 or an empty value.
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false (got {_abridged(value)})")
        return value


class Disposition(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=100)]
    qualified: bool = False
    contacted: bool = False
    callback: bool = False
    dnc: bool = False


class Reports(_Strict):
    schedule: Literal["end_of_dialing", "midnight", "disabled"] = "end_of_dialing"
    format: Literal["csv"] = "csv"
    compression: Literal["none", "zip", "gz"] = "none"
    recipients: list[str] = []
    # The zone whose midnight closes the report day for the `midnight` schedule.
    timezone: str = "America/New_York"

    @field_validator("recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as America/Chicago") from None
        return value


class CampaignSettings(_Strict):
    """Everything an operator sets on a campaign."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    slug: Annotated[str, Field(pattern=SLUG_PATTERN)] | None = None
    workspace: Annotated[str, Field(pattern=SLUG_PATTERN)]
    locale: Literal["US", "CA"]
    agent: Annotated[str, Field(min_length=1, max_length=200)]
    state: CampaignState = CampaignState.ACTIVE
    dial_window: DialWindow = DialWindow()
    blocked_states: list[str] = []
    holiday_filtering: bool = True
    dialing: Dialing = Dialing()
    uploads: Uploads = Uploads()
    dnc: Dnc = Dnc()
    dispositions: list[Disposition] = []
    reports: Reports = Reports()

    @field_validator("locale", mode="before")
    @classmethod
    def _upper_locale(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("blocked_states", mode="before")
    @classmethod
    def _upper_states(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v.strip().upper() if isinstance(v, str) else v for v in value]
        return value

    @property
    def resolved_slug(self) -> str:
        """The slug; validation fills it in from the name when the file gives none."""
        return self.slug or slugify(self.name)

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSettings:
        if self.slug is None:
            object.__setattr__(self, "slug", slugify(self.name))
        allowed = regions_for(self.locale)
        unknown = [s for s in self.blocked_states if s not in allowed]
        if unknown:
            raise ValueError(
                f"blocked_states: {', '.join(unknown)} is not a state, province or territory "
                f"of locale {self.locale}"
            )
        object.__setattr__(self, "blocked_states", sorted(set(self.blocked_states)))
        titles: dict[str, Disposition] = {}
        for disposition in self.dispositions:
            key = disposition.title.casefold()
            if key in titles:
                raise ValueError(f"dispositions: title {disposition.title!r} appears twice")
            titles[key] = disposition
        if self.dnc.dnc_disposition is not None:
            match = titles.get(self.dnc.dnc_disposition.casefold())
            if match is None:
                listed = ", ".join(repr(d.title) for d in self.dispositions) or "none"
                raise ValueError(
                    f"dnc.dnc_disposition {self.dnc.dnc_disposition!r} is not among the "
                    f"campaign's dispositions (listed: {listed})"
                )
            if not match.dnc:
                raise ValueError(
                    f"dnc.dnc_disposition {match.title!r} must be a disposition with dnc: true"
                )
        return self


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:64].rstrip("-")
    return slug or "campaign"


def _key_path(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _field_at(model: type[BaseModel], loc: tuple):
    """The pydantic FieldInfo at `loc` (skipping list indexes), or None."""
    current: Any = model
    field = None
    for item in loc:
        if isinstance(item, int):
            continue
        if current is None:
            return None
        field = current.model_fields.get(item)
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        for candidate in list(candidates):
            candidates.extend(getattr(candidate, "__args__", ()))
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return field


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys the mapping holding `loc` accepts, for an 'unknown key' message."""
    parent = _field_at(CampaignSettings, loc[:-1]) if loc[:-1] else None
    if not loc[:-1]:
        return list(CampaignSettings.model_fields)
    if parent is None:
        return []
    candidates = [parent.annotation, *getattr(parent.annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _range_of(loc: tuple, model: type[BaseModel] | None = None) -> str | None:
    field = _field_at(model or CampaignSettings, loc)
    if field is None:
        return None
    low = high = None
    for meta in field.metadata:
        low = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else low
        high = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else high
        if getattr(meta, "gt", None) is not None:
            low = f"above {meta.gt}"
    if low is None or high is None:
        return None
    if isinstance(low, str):
        return f"must be {low} and at most {high}"
    return f"must be between {low} and {high}"


def _abridged(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: a sentence quotes a wrong value, not a megabyte of it."""
    text = repr(value[: limit + 1] if isinstance(value, str) else value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_RANGE_ERRORS = {"less_than_equal", "greater_than_equal", "greater_than", "less_than"}


def explain(error: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """One sentence for the first problem pydantic found, naming the key."""
    first = error.errors(include_url=False)[0]
    loc = first["loc"]
    key = _key_path(loc) or "(top level)"
    key = key if len(key) <= 80 else key[:79] + "…"  # an unknown key can be any length
    kind = first["type"]
    given = first.get("input")
    shown = "" if isinstance(given, (dict, list)) else f" (got {_abridged(given)})"
    if kind == "extra_forbidden" and model is not None:
        allowed = list(model.model_fields)
        return f"{source}: unknown key `{key}`; allowed keys here are {', '.join(allowed)}."
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        return f"{source}: unknown key `{key}`; allowed keys here are {', '.join(allowed)}."
    if kind == "missing":
        return f"{source}: `{key}` is required."
    if kind in _RANGE_ERRORS and (allowed_range := _range_of(loc, model)):
        return f"{source}: `{key}` {allowed_range}{shown}."
    if kind == "string_pattern_mismatch":
        return (
            f"{source}: `{key}` must be lowercase letters, digits, '-' or '_' "
            f"(at most 64, starting with a letter or digit){shown}."
        )
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
        shown = ""
    else:
        message = re.sub(r"^(?:Input|String|List|Value) should", "must", message)
        message = message[0].lower() + message[1:]
    if not loc:
        return f"{source}: {message}{shown}."
    return f"{source}: `{key}` {message}{shown}."


def parse_settings(data: Any, source: str = "campaign settings") -> CampaignSettings:
    if data is None:
        raise SettingsError(
            f"{source}: is empty; a campaign file is a mapping of settings (name, workspace, locale, agent, …)."
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({type(data).__name__})"
        raise SettingsError(
            f"{source}: expected a mapping of campaign settings (name, workspace, locale, agent, …), "
            f"got {kind}."
        )
    try:
        return CampaignSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(explain(exc, source)) from None


def load_settings_file(path: str | Path) -> tuple[CampaignSettings, set[str]]:
    """Read a campaign YAML file; returns the settings and the top-level keys it set.

    The file is read as `yamlfile.read_yaml_file` reads what people write: bounded in size and
    nesting, with duplicate keys and control characters refused, naming the key and its line.
    """
    try:
        data = read_yaml_file(Path(path), what="campaign file")
    except YamlError as exc:
        raise SettingsError(str(exc)) from None
    settings = parse_settings(data, str(path))
    return settings, set(data)


def supported_locales() -> list[str]:
    return sorted(LOCALES)
