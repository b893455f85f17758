"""Which daemon paces which campaign: leases, heartbeats and a fair share.

Several daemons may run against one database (DESIGN.md §7). Each campaign is
paced by one of them at a time, the holder of its row in `campaign_leases`:

- a daemon renews the leases it holds every loop; a lease not renewed for one
  lease period (its holder was killed, lost the database or stalled) expires,
  and any daemon may then take it;
- each change of holder increments the lease's `token`; the daemon checks its
  token inside the transaction that claims hopper rows (`still_held`), so a
  daemon that stalled past its lease can no longer start calls for that
  campaign once another holds it;
- daemons announce themselves in `daemons` with a heartbeat; each aims at
  `fair_share` = ceil(campaigns / live daemons) leases, takes free or expired
  leases up to it, and hands back leases above it, so a new replica gets work
  and a dead one's campaigns are spread over the rest.

Time is the database server's (`db_now`) on PostgreSQL, so daemons on hosts
with different clocks agree on when a lease expires; SQLite runs on one host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import insert_for
from campaigns.core.lifecycle import DaemonState, HopperStatus


@dataclass(frozen=True)
class Lease:
    campaign_id: int
    token: int
    expires_at: datetime


def db_now(conn: sa.Connection) -> datetime:
    """The database server's clock (the local one for SQLite, which has no server)."""
    if conn.dialect.name == "postgresql":
        return conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one().astimezone(UTC)
    return datetime.now(UTC)


def heartbeat(conn: sa.Connection, daemon_id: str, host: str, pid: int, state: DaemonState, now: datetime) -> None:
    d = t.daemons
    stmt = insert_for(conn, d).values(id=daemon_id, host=host, pid=pid, state=str(state), started_at=now,
                                      heartbeat_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"],
                                            set_={"state": str(state), "heartbeat_at": now}))


def forget_daemon(conn: sa.Connection, daemon_id: str) -> None:
    conn.execute(sa.delete(t.daemons).where(t.daemons.c.id == daemon_id))


def live_daemons(conn: sa.Connection, now: datetime, period: timedelta) -> list:
    """Daemons whose heartbeat is younger than one lease period, draining ones included."""
    d = t.daemons
    return list(conn.execute(sa.select(d).where(d.c.heartbeat_at > now - period).order_by(d.c.id)))


def fair_share(campaigns: int, running_daemons: int) -> int:
    """Leases one daemon aims to hold: the campaigns spread evenly, rounded up."""
    return math.ceil(campaigns / max(running_daemons, 1)) if campaigns else 0


def acquire(conn: sa.Connection, campaign_id: int, holder: str, now: datetime, period: timedelta) -> Lease | None:
    """Take the campaign's lease if it is free, expired or in our name; None when another holds it.

    Every acquisition gets a new token, even in our own name (a restarted process with the
    same id), so whatever an earlier holder still has in flight is fenced off. Renewing an
    unbroken lease is `renew`.
    """
    lease = t.campaign_leases
    expires = now + period
    inserted = conn.execute(
        insert_for(conn, lease).values(campaign_id=campaign_id, holder=holder, token=1, acquired_at=now,
                                       renewed_at=now, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["campaign_id"]).returning(lease.c.campaign_id)
    ).first()
    if inserted is None:
        mine = lease.c.holder == holder
        taken = conn.execute(
            sa.update(lease)
            .where(lease.c.campaign_id == campaign_id, sa.or_(mine, lease.c.expires_at <= now))
            .values(token=lease.c.token + 1, acquired_at=now, holder=holder, renewed_at=now, expires_at=expires)
        ).rowcount
        if taken != 1:
            return None
    token = conn.execute(sa.select(lease.c.token).where(lease.c.campaign_id == campaign_id)).scalar_one()
    return Lease(campaign_id, token, expires)


def renew(conn: sa.Connection, holder: str, held: dict[int, Lease], now: datetime,
          period: timedelta) -> dict[int, Lease]:
    """Extend the leases still ours (same token, not expired); returns them with their new expiry."""
    if not held:
        return {}
    lease = t.campaign_leases
    expires = now + period
    kept = {}
    for campaign_id, mine in held.items():
        renewed = conn.execute(
            sa.update(lease)
            .where(lease.c.campaign_id == campaign_id, lease.c.holder == holder, lease.c.token == mine.token,
                   lease.c.expires_at > now)
            .values(renewed_at=now, expires_at=expires)
        ).rowcount
        if renewed == 1:
            kept[campaign_id] = Lease(campaign_id, mine.token, expires)
    return kept


def release(conn: sa.Connection, holder: str, campaign_ids) -> None:
    """Hand leases back at once (a draining daemon, or one above its fair share)."""
    ids = list(campaign_ids)
    if ids:
        lease = t.campaign_leases
        conn.execute(sa.delete(lease).where(lease.c.holder == holder, lease.c.campaign_id.in_(ids)))


def still_held(conn: sa.Connection, mine: Lease, holder: str) -> bool:
    """Is the lease still ours right now? Called in the transaction that claims hopper rows.

    On PostgreSQL the lease row is share-locked until that transaction ends, so a
    takeover waits for the claim to commit and the new holder sees the claimed rows.
    """
    lease = t.campaign_leases
    query = sa.select(lease.c.campaign_id).where(
        lease.c.campaign_id == mine.campaign_id, lease.c.holder == holder, lease.c.token == mine.token,
        lease.c.expires_at > db_now(conn),
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return conn.execute(query).first() is not None


def holders(conn: sa.Connection) -> dict[int, tuple[str, datetime]]:
    """campaign id → (holder, expires_at), for status displays."""
    lease = t.campaign_leases
    return {r.campaign_id: (r.holder, r.expires_at) for r in conn.execute(sa.select(lease))}


def release_claims(conn: sa.Connection, campaign_id: int) -> int:
    """On taking a campaign over: its claimed hopper rows belong to the daemon that lost the lease.

    The new holder has claimed nothing yet (claims happen in ticks, after this). Such a row was
    claimed but never dialed (starting an attempt deletes the row in the same transaction), so
    it goes back to the fill's pool at once: its prospect is still READY or CALLBACK. Should the
    old holder wake up, starting an attempt finds its row gone and does not dial.
    """
    h = t.hopper
    return conn.execute(
        sa.delete(h).where(h.c.campaign_id == campaign_id, h.c.status == str(HopperStatus.CLAIMED))
    ).rowcount


def forget_dead_daemons(conn: sa.Connection, now: datetime, older_than: timedelta) -> int:
    """Heartbeat rows of daemons gone without a clean exit (SIGKILL), once long stale."""
    d = t.daemons
    return conn.execute(sa.delete(d).where(d.c.heartbeat_at < now - older_than)).rowcount
