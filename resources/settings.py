"""How a resource field is filled from the dialer's configuration, so the Dagster UI shows its source."""

from typing import overload

import dagster as dg

from campaigns.core.config import DialerConfig


@overload
def from_environment(cfg: DialerConfig, variable: str, default: str) -> str: ...
@overload
def from_environment(cfg: DialerConfig, variable: str, default: str | None) -> str | None: ...
def from_environment(cfg: DialerConfig, variable: str, default: str | None) -> str | None:
    """`dg.EnvVar(variable)` when the environment set it, else the configuration's resolved `default`.

    An EnvVar is read when a run starts, and the UI shows the variable's name rather
    than its value; the default (e.g. the embedded SQLite file under `DIALER_HOME`)
    needs no variable at all.
    """
    return dg.EnvVar(variable) if cfg.is_set(variable) else default


def resolved(value: str | None) -> str | None:
    """A field's value: a run resolves an EnvVar field itself; outside one (a resource built by
    hand and used directly), its variable is read now."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value
