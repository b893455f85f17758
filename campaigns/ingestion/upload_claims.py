"""Which run is loading an upload, and whether that run is still alive.

A run (the Dagster run of a partition, whoever launched it: the inbox sensor,
the UI or `dialer list upload`) claims the upload at each stage: its run id
goes to `prospect_lists.claimed_by` and the time to `heartbeat_at`, and
staging refreshes the heartbeat every few seconds (`Claim.beat`). A stage that
fails hands the claim back (`claimed_by` = NULL, the heartbeat kept); a run
that is killed cannot, so its heartbeat just stops.

So an upload still `processing` whose heartbeat is older than `STALE_AFTER`
was left by a run that is gone (`interrupted`), and may be started over.
Dagster's own run status is not used for this: a killed process leaves its run
STARTED for ever unless run monitoring is configured, and the core imports no
Dagster. Loading is all-or-nothing under the campaign lock and refuses a run
that lost its claim (`holds`), so a run taking over never loads a row twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import UploadStatus

# No sign of life for this long: the run loading the upload is gone. Every stage
# refreshes the heartbeat when it starts and staging every BEAT_EVERY, so this
# only has to outlast the longest single statement (a million-row load takes ~25 s).
STALE_AFTER = timedelta(minutes=10)
BEAT_EVERY = timedelta(seconds=15)


class UploadBusy(DialerError):
    """Another run is loading the upload (or took it over from this one)."""

    exit_code = 1  # nothing is wrong with the file: the same command works once that run ends


@dataclass(frozen=True)
class ClaimState:
    """An upload's status and who is working on it."""

    status: str
    claimed_by: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    resumes: int

    @property
    def last_sign_of_life(self) -> datetime:
        return self.heartbeat_at or self.created_at

    def interrupted(self, now: datetime) -> bool:
        """Still processing, and no run has shown progress for STALE_AFTER."""
        return self.status == UploadStatus.PROCESSING and now - self.last_sign_of_life >= STALE_AFTER

    def live_elsewhere(self, runner: str | None, now: datetime) -> bool:
        """A run other than `runner` holds the upload and showed progress lately."""
        return (
            self.status == UploadStatus.PROCESSING
            and self.claimed_by is not None
            and self.claimed_by != runner
            and not self.interrupted(now)
        )


def state(conn: sa.Connection, upload_id: int, *, lock: bool = False) -> ClaimState:
    pl = t.prospect_lists
    query = sa.select(pl.c.status, pl.c.claimed_by, pl.c.heartbeat_at, pl.c.created_at, pl.c.resumes).where(
        pl.c.id == upload_id
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return ClaimState(**conn.execute(query).one()._mapping)


def busy_message(source_key: str, held: ClaimState, now: datetime) -> str:
    age = max(0, int((now - held.last_sign_of_life).total_seconds()))
    wait = int(STALE_AFTER.total_seconds() // 60)
    return (
        f"{source_key}: is being loaded by run {held.claimed_by} (last progress {age} s ago); "
        f"let it finish, or if that run was stopped, run this again once it has shown no progress "
        f"for {wait} minutes."
    )


def claim(conn: sa.Connection, upload_id: int, runner: str, now: datetime, *, restart: bool = False) -> bool:
    """`runner` works on the upload from now on; False if the upload is no longer processing.

    A stage always takes the claim (an operator re-running a stage means it);
    the loser of two runs finds out at its next `beat` or at the load (`holds`).
    `restart`: the run starts the upload from its file, counted in `resumes`
    when some run had worked on it before.
    """
    pl = t.prospect_lists
    values: dict = {"claimed_by": runner, "heartbeat_at": now}
    if restart:
        values["resumes"] = pl.c.resumes + sa.case((pl.c.heartbeat_at.is_not(None), 1), else_=0)
    updated = conn.execute(
        sa.update(pl)
        .where(pl.c.id == upload_id, pl.c.status == str(UploadStatus.PROCESSING))
        .values(**values)
    ).rowcount
    return bool(updated)


def holds(conn: sa.Connection, upload_id: int, runner: str) -> bool:
    """`runner` still holds the upload's claim (no other run has started a stage since)."""
    pl = t.prospect_lists
    held = conn.execute(sa.select(pl.c.claimed_by).where(pl.c.id == upload_id)).scalar_one_or_none()
    return held == runner


def release(conn: sa.Connection, upload_id: int, runner: str) -> None:
    """Hand the claim back (a stage failed): the upload may be taken over at once."""
    pl = t.prospect_lists
    conn.execute(
        sa.update(pl).where(pl.c.id == upload_id, pl.c.claimed_by == runner).values(claimed_by=None)
    )


def lost_message(source_key: str, runner: str, taker: str | None) -> str:
    return (
        f"{source_key}: run {taker or '(none)'} took over this upload from run {runner}, "
        "which stops here without loading anything; see that run for the outcome."
    )


class Claim:
    """A stage's hold on an upload: `beat(now)` while working; raises UploadBusy once another run took it."""

    def __init__(self, engine: sa.Engine, upload_id: int, source_key: str, runner: str, now: datetime) -> None:
        self.engine = engine
        self.upload_id = upload_id
        self.source_key = source_key
        self.runner = runner
        self.last = now

    def beat(self, now: datetime) -> None:
        if now - self.last < BEAT_EVERY:
            return
        pl = t.prospect_lists
        with self.engine.begin() as conn:
            refreshed = conn.execute(
                sa.update(pl)
                .where(pl.c.id == self.upload_id, pl.c.claimed_by == self.runner)
                .values(heartbeat_at=now)
            ).rowcount
            if not refreshed:
                taker = state(conn, self.upload_id).claimed_by
                raise UploadBusy(lost_message(self.source_key, self.runner, taker))
        self.last = now


@contextmanager
def holding(engine: sa.Engine, upload_id: int, source_key: str, runner: str, now: datetime) -> Iterator[Claim]:
    """Claim the upload for one stage; hand it back if the stage fails or is interrupted."""
    with engine.begin() as conn:
        claim(conn, upload_id, runner, now)
    try:
        yield Claim(engine, upload_id, source_key, runner, now)
    except BaseException:
        # Also on Dagster's interruption (a BaseException): a stopped run is not a live one.
        try:
            with engine.begin() as conn:
                release(conn, upload_id, runner)
        except sa.exc.SQLAlchemyError:
            pass  # the database is what failed: the claim goes stale instead, and the first error stands
        raise
