"""Errors meant for people.

A `DialerError` carries one sentence that names the file, key or value at
fault, what was expected and what to do. The CLI prints it without a
traceback and exits with status 2; Dagster shows it as the run's failure.
"""


class DialerError(Exception):
    """A problem with something a user controls: a file, a setting, a flag."""

    exit_code = 2


class ConfigurationError(DialerError):
    """A setting from the environment that cannot be used, such as a malformed database URL."""


class NotFound(DialerError):
    """A named workspace, campaign or list does not exist."""


class DatabaseNotReady(DialerError):
    """The database is unreachable or has not been migrated."""


class DatabaseRefused(DialerError):
    """The database refused an operation under way (a lock wait, a timeout, a lost connection)."""

    exit_code = 1
