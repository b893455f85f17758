"""The load: an upload's valid and DNC-flagged staging rows become the campaign's prospects.

One transaction per upload, under a lock on the campaign, so two uploads (or
the CLI and the sensor running the same one) can never load a number twice;
the upload is marked loaded, with its counts, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from campaigns.core import schema as t
from campaigns.core.errors import DialerError, NotFound
from campaigns.core.lifecycle import ProspectStatus, RowOutcome, UploadStatus
from campaigns.core.types import UTCDateTime
from campaigns.ingestion import upload_claims
from campaigns.ingestion.accounting import outcome_counts
from campaigns.ingestion.dedupe import mark_duplicates_across
from campaigns.ingestion.dnc_scrub import dnc_matches, mark_registry
from campaigns.ingestion.staging_table import LIVE
from campaigns.ingestion.upload_record import CampaignInfo, Summary, Upload, summary


class StagingIncomplete(DialerError):
    """The staging table does not hold the whole file (a crash or a partial re-run)."""


def _lock_campaign(conn: sa.Connection, campaign_id: int) -> int:
    """Serialise loads into one campaign, so two uploads cannot both load a number.

    PostgreSQL: a row lock on the campaign, held to commit. SQLite: every
    transaction already began with BEGIN IMMEDIATE, which admits one writer.
    Returns the campaign's `list_loads` as of the lock.
    """
    query = sa.select(t.campaigns.c.list_loads).where(t.campaigns.c.id == campaign_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).scalar_one()


def load_prospects(
    engine: sa.Engine, upload: Upload, campaign: CampaignInfo, now: datetime, *, runner: str | None = None
) -> Summary:
    """Insert the upload's valid and DNC-flagged rows as prospects, in one transaction.

    `runner`: the run loading it, which must still hold the upload's claim
    (`upload_claims`); a run that another has taken over loads nothing.
    """
    u, p = t.upload_rows, t.prospects
    with engine.begin() as conn:
        # Lock first, then read the status: a second runner of the same upload (CLI and
        # sensor) waits here and then sees the first one's load committed.
        loads = _lock_campaign(conn, campaign.id)
        current = conn.execute(
            sa.select(t.prospect_lists.c.status, t.prospect_lists.c.rows, t.prospect_lists.c.deduped_at_loads)
            .where(t.prospect_lists.c.id == upload.id)
        ).one()
        if current.status == UploadStatus.LOADED:
            return summary(conn, upload.id)
        if current.status != UploadStatus.PROCESSING:
            raise NotFound(f"{upload.source_key}: upload {upload.id} was {current.status}; it cannot be loaded.")
        if runner is not None and not upload_claims.holds(conn, upload.id, runner):
            # The taker restages the file; these staging rows may be half its, half ours.
            taker = upload_claims.state(conn, upload.id).claimed_by
            raise upload_claims.UploadBusy(upload_claims.lost_message(upload.source_key, runner, taker))
        counts = outcome_counts(conn, upload.id)
        staged = sum(counts.values())
        recorded_rows = current.rows
        if staged == 0 or staged != recorded_rows:
            # Staging is UNLOGGED and rebuilt on re-runs: never load from a partial copy.
            raise StagingIncomplete(
                f"{upload.source_key}: {staged:,} of {recorded_rows:,} rows are staged; "
                "re-run the whole upload (validated_rows onwards) to stage the file again."
            )
        # Another upload may have loaded the same numbers since this one was deduplicated:
        # if any load came between, dedupe again (under the lock, nothing else can load now).
        if current.deduped_at_loads != loads and mark_duplicates_across(conn, upload, campaign.id, now):
            counts = outcome_counts(conn, upload.id)
        registry = mark_registry(conn, upload, campaign)
        registry_version = registry.version_id if registry is not None else None
        custom: sa.ColumnElement[Any] = u.c.custom_fields
        if conn.dialect.name == "postgresql":
            custom = sa.cast(sa.func.coalesce(custom, "{}"), postgresql.JSONB)
        else:
            custom = sa.func.coalesce(custom, "{}")
        is_dnc = u.c.outcome == str(RowOutcome.DNC)
        source = sa.select(
            sa.literal(campaign.id),
            sa.literal(upload.id),
            u.c.row_number,
            u.c.phone_e164,
            u.c.phone_ext,
            u.c.first_name,
            u.c.last_name,
            u.c.address_state,
            u.c.zip_code,
            u.c.area_code_state,
            u.c.candidate_zones,
            u.c.zone_group,
            sa.literal(upload.priority),
            sa.case((is_dnc, str(ProspectStatus.DNC)), else_=str(ProspectStatus.READY)),
            sa.case((is_dnc, sa.literal(campaign.dnc_disposition)), else_=sa.null()),
            sa.literal(0),
            sa.literal(now, UTCDateTime),
            sa.literal(now + timedelta(days=upload.expire_days), UTCDateTime),
            sa.literal(now, UTCDateTime),
            sa.literal(now, UTCDateTime),
            custom,
            sa.cast(sa.case((u.c.on_registry.is_(True), sa.literal(registry_version)), else_=sa.null())
                    if registry_version is not None else sa.null(), sa.BigInteger),
        ).where(u.c.upload_id == upload.id, u.c.outcome.in_(LIVE))
        # A plain INSERT: the status check above, under the lock and in this transaction,
        # already rules out a second load, and (list_id, source_row) stays unique, so an
        # impossible repeat fails loudly instead of being skipped (ON CONFLICT slows every row).
        insert = sa.insert(p).from_select(
            [
                "campaign_id", "list_id", "source_row", "phone_e164", "phone_ext", "first_name",
                "last_name", "address_state", "zip_code", "area_code_state", "candidate_zones",
                "zone_group", "priority", "status", "disposition", "attempts", "next_dial_at",
                "expires_at", "loaded_at", "updated_at", "custom_fields", "registry_version_id",
            ],
            source,
        )
        conn.execute(insert)
        conn.execute(
            sa.update(t.campaigns)
            .where(t.campaigns.c.id == campaign.id)
            .values(list_loads=t.campaigns.c.list_loads + 1)
        )
        # Once the upload is marked loaded (below, same transaction), its valid rows are its prospects.
        warnings = []
        if not campaign.dnc_disposition:
            matched = dnc_matches(conn, upload.id)
            if matched:
                warnings.append(
                    f"{matched} number(s) are on the campaign's DNC lists but the campaign has no "
                    "DNC disposition, so they were loaded as normal prospects; the dialer still "
                    "skips them while they are listed. Set dnc.dnc_disposition to flag them at upload."
                )
        if registry is not None and (line := registry.sentence(now)):
            warnings.append(line)
        conn.execute(
            sa.update(t.prospect_lists)
            .where(t.prospect_lists.c.id == upload.id)
            .values(
                status=str(UploadStatus.LOADED),
                rows=sum(counts.values()),
                loaded=counts[RowOutcome.VALID],
                duplicates=counts[RowOutcome.DUPLICATE],
                invalid=counts[RowOutcome.INVALID],
                dnc=counts[RowOutcome.DNC],
                warnings=warnings,
                completed_at=now,
            )
        )
        return summary(conn, upload.id)
