"""Dedupe: a number already in the file, or loaded into the campaign lately, is a duplicate.

Within the file, later occurrences of a number are duplicates of its first row.
Across the campaign, a number loaded within the upload's dupe days is a
duplicate of that prospect. Both mark staging rows; nothing is loaded here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import RowOutcome
from campaigns.core.types import UTCDateTime
from campaigns.ingestion.staging_table import (
    LIVE,
    bulk_session,
    each_row,
    int_rows,
    update_rows,
)
from campaigns.ingestion.upload_record import Upload


def mark_duplicates_within(conn: sa.Connection, upload_id: int) -> int:
    """Later occurrences of a number in the same file are duplicates of the first."""
    bulk_session(conn)
    u = t.upload_rows
    live = (
        sa.select(u.c.row_number, u.c.phone_e164)
        .where(u.c.upload_id == upload_id, u.c.outcome.in_(LIVE))
        .subquery("live")
    )
    firsts = (
        sa.select(live.c.phone_e164, sa.func.min(live.c.row_number).label("first_row"))
        .group_by(live.c.phone_e164)
        .having(sa.func.count() > 1)
        .subquery("firsts")
    )
    found = int_rows(
        conn,
        sa.select(live.c.row_number, firsts.c.first_row)
        .join(firsts, firsts.c.phone_e164 == live.c.phone_e164)
        .where(live.c.row_number > firsts.c.first_row),
    )
    return update_rows(
        conn,
        upload_id,
        (
            {
                "row_number": row,
                "outcome": str(RowOutcome.DUPLICATE),
                "duplicate_of": f"row {first}",
                "reason": f"duplicate of row {first} in this file",
            }
            for row, first in each_row(found)
        ),
    )


def mark_duplicates_across(conn: sa.Connection, upload: Upload, campaign_id: int, now: datetime) -> int:
    """Numbers loaded into the campaign within the upload's dupe days are duplicates (-1 disables).

    Records the campaign's load count as read *before* the dedupe query, so a
    load that commits in between makes `load_prospects` repeat this check.
    """
    if upload.dupe_days < 0:
        return 0
    bulk_session(conn)
    u, p = t.upload_rows, t.prospects
    loads = conn.execute(
        sa.select(t.campaigns.c.list_loads).where(t.campaigns.c.id == campaign_id)
    ).scalar_one()
    cutoff = now - timedelta(days=upload.dupe_days)
    earlier = (
        sa.select(
            p.c.phone_e164,
            sa.func.min(p.c.id).label("prospect_id"),
            sa.func.min(p.c.list_id).label("list_id"),
        )
        .where(
            p.c.campaign_id == campaign_id,
            p.c.list_id != upload.id,
            p.c.loaded_at >= sa.literal(cutoff, UTCDateTime),
            p.c.phone_e164.in_(
                sa.select(u.c.phone_e164).where(u.c.upload_id == upload.id, u.c.outcome.in_(LIVE))
            ),
        )
        .group_by(p.c.phone_e164)
        .subquery("earlier")
    )
    found = int_rows(
        conn,
        sa.select(u.c.row_number, earlier.c.prospect_id, earlier.c.list_id)
        .join(earlier, earlier.c.phone_e164 == u.c.phone_e164)
        .where(u.c.upload_id == upload.id, u.c.outcome.in_(LIVE)),
    )
    flagged = update_rows(
        conn,
        upload.id,
        (
            {
                "row_number": row,
                "outcome": str(RowOutcome.DUPLICATE),
                "duplicate_of": f"prospect {prospect}",
                "reason": f"loaded into the campaign within {upload.dupe_days} days "
                f"(upload {list_id}, prospect {prospect})",
            }
            for row, prospect, list_id in each_row(found)
        ),
    )
    conn.execute(
        sa.update(t.prospect_lists)
        .where(t.prospect_lists.c.id == upload.id)
        .values(deduped_at_loads=loads)
    )
    return flagged
