"""The DNC scrub: an upload's numbers checked against the campaign's DNC lists.

With a DNC disposition set, a listed number is loaded with it (never dialed,
counted as dnc); without one it loads as a normal prospect and the upload
summary warns (the dialer still skips it while it is listed). Importing DNC
files into the lists is `campaigns.ingestion.dnc`.
"""

from __future__ import annotations

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
