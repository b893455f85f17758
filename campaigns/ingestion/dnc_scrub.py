"""The DNC scrub: an upload's numbers checked against the campaign's DNC lists.

With a DNC disposition set, a listed number is loaded with it (never dialed,
counted as dnc); without one it loads as a normal prospect and the upload
summary warns (the dialer still skips it while it is listed). Importing DNC
files into the lists is `campaigns.ingestion.dnc`.

For a campaign checked against the National DNC Registry, the load asks the registry's
current version about every number of the upload (`mark_registry`, vectorised, CHECK_ROWS
at a time): a listed number is not a DNC disposition — the registry may delete it later —
so its row loads READY with the version on its prospect (`registry_version_id`), which
keeps it from being dialed while it stays listed, and the upload's summary counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import RowOutcome
from campaigns.ingestion.staging_table import (
    LIVE,
    bulk_session,
    each_row,
    int_rows,
    update_rows,
)
from campaigns.ingestion.upload_record import CampaignInfo, Upload
from campaigns.registry import store
from campaigns.registry.rules import age_days

CHECK_ROWS = 100_000  # upload rows read and checked against the registry at a time


def mark_dnc(conn: sa.Connection, upload: Upload, campaign: CampaignInfo) -> tuple[int, int]:
    """Flag numbers on any of the campaign's DNC lists; returns (matched, flagged as DNC).

    With a DNC disposition, matches are loaded with it (never dialed, counted
    as dnc); without one they load as normal and the summary warns.
    """
    bulk_session(conn)
    u, d, link = t.upload_rows, t.dnc_numbers, t.campaign_dnc_lists
    # A re-run starts from the deduplicated rows: undo an earlier scrub's flags (one pass).
    was_dnc = u.c.outcome == str(RowOutcome.DNC)
    conn.execute(
        sa.update(u)
        .where(u.c.upload_id == upload.id, sa.or_(u.c.on_dnc.is_(True), was_dnc))
        .values(
            on_dnc=False,
            outcome=sa.case((was_dnc, str(RowOutcome.VALID)), else_=u.c.outcome),
            reason=sa.case((was_dnc, sa.null()), else_=u.c.reason),
        )
    )
    on_list = (
        sa.select(sa.literal(1))
        .select_from(d.join(link, link.c.dnc_list_id == d.c.dnc_list_id))
        .where(link.c.campaign_id == campaign.id, d.c.phone_e164 == u.c.phone_e164)
        .exists()
    )
    found = int_rows(
        conn, sa.select(u.c.row_number).where(u.c.upload_id == upload.id, u.c.outcome.in_(LIVE), on_list)
    )
    if campaign.dnc_disposition:
        values = {
            "on_dnc": True,
            "outcome": str(RowOutcome.DNC),
            "reason": f"on a DNC list; loaded with disposition {campaign.dnc_disposition!r}",
        }
    else:
        values = {"on_dnc": True}
    matched = update_rows(conn, upload.id, ({"row_number": row, **values} for (row,) in each_row(found)))
    return matched, (matched if campaign.dnc_disposition else 0)


def dnc_matches(conn: sa.Connection, upload_id: int) -> int:
    """How many of the upload's rows are on a DNC list (flagged or not)."""
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(t.upload_rows)
        .where(t.upload_rows.c.upload_id == upload_id, t.upload_rows.c.on_dnc.is_(True))
    ).scalar_one()


@dataclass(frozen=True)
class RegistryMatch:
    """An upload checked against the National DNC Registry: the version (None: none imported yet)
    and how many of its loading rows that version lists."""

    version_id: int | None
    obtained_at: datetime | None
    matched: int

    def sentence(self, now: datetime) -> str | None:
        """The upload summary's line about it (None when there is nothing to say)."""
        if self.version_id is None:
            return ("the campaign is checked against the National DNC Registry but no version has been "
                    "imported yet: nothing will be dialed until one is (`dialer dnc registry import`)")
        if not self.matched:
            return None
        assert self.obtained_at is not None
        return (f"on the National DNC Registry (version {self.version_id}, obtained "
                f"{age_days(self.obtained_at, now):.0f} days ago): {self.matched}, loaded and held while listed")


def mark_registry(conn: sa.Connection, upload: Upload, campaign: CampaignInfo) -> RegistryMatch | None:
    """Set `on_registry` on the upload's loading rows the current registry version lists; None for a
    campaign that is not checked against the registry. Runs in the load's transaction, so the
    version it names is the one current when the prospects appear."""
    if not campaign.dnc_national_registry:
        return None
    bulk_session(conn)
    u = t.upload_rows
    conn.execute(sa.update(u).where(u.c.upload_id == upload.id, u.c.on_registry.is_(True)).values(on_registry=False))
    registry = store.open_in(conn)
    if registry is None:
        return RegistryMatch(None, None, 0)
    query = (sa.select(u.c.row_number, u.c.phone_e164)
             .where(u.c.upload_id == upload.id, u.c.outcome.in_(LIVE)))
    hits: list[np.ndarray] = []
    # Read whole (row numbers of the hits kept as int64 arrays) before writing.
    for part in conn.execute(query.execution_options(yield_per=CHECK_ROWS)).partitions(CHECK_ROWS):
        rows = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
        hits.append(rows[registry.listed([r[1] for r in part])])
    found = np.concatenate(hits) if hits else np.empty(0, dtype=np.int64)
    matched = update_rows(conn, upload.id, ({"row_number": n, "on_registry": True} for n in found.tolist()))
    obtained = min((a.obtained_at for a in registry.areas.values()), default=registry.version.obtained_at)
    return RegistryMatch(registry.version.id, obtained, matched)
