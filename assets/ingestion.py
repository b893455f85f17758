"""Prospect list ingestion, one asset per stage, one partition per uploaded file.

upload_file → validated_rows → deduplicated_rows → dnc_scrubbed_rows → loaded_prospects
                 dnc_list_numbers, dnc_registry ↗

The stages share the staging table `upload_rows` rather than DataFrames, and
each calls one stage of `campaigns.ingestion` (`uploads`, `dedupe`,
`dnc_scrub`, `load`, `accounting`); a re-run of any partition is idempotent.
"""


from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.dnc import dnc_list_numbers, dnc_registry
from assets.partitions import uploads as uploads_partitions
from campaigns.core.errors import DialerError
from campaigns.ingestion import (
    accounting,
    csvfile,
    dedupe,
    dnc_scrub,
    load,
    upload_claims,
    upload_record,
    uploads,
)
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from resources.progress import StagingProgress

GROUP = "ingestion"


def _now() -> datetime:
    return datetime.now(UTC)


def _summary_metadata(summary: upload_record.Summary) -> dict:
    return {
        "upload_id": summary.upload_id,
        "rows": summary.rows,
        "loaded": summary.loaded,
        "duplicates": summary.duplicates,
        "invalid": summary.invalid,
        "dnc": summary.dnc,
        "warnings": dg.MetadataValue.json(summary.warnings),
        "rejects_file": summary.rejects_file or "",
        "balanced": summary.balanced,
    }


@dg.asset(partitions_def=uploads_partitions, group_name=GROUP, kinds={"csv", "s3"})
def upload_file(
    context: dg.AssetExecutionContext, database: DatabaseResource, bucket: BucketResource
) -> dg.MaterializeResult:
    """One prospect list as ops dropped it into the inbox: its campaign, version, encoding and columns.

    A file that cannot be loaded at all (no phone column, no rows, binary,
    unknown campaign) is moved to rejected/ beside an .error.txt, and the run
    fails with that sentence.
    """
    store = bucket.get()
    try:
        opened = uploads.open_upload(database.engine, store, context.partition_key, _now(), context.run.run_id)
    except csvfile.FileRejected as exc:
        raise dg.Failure(description=str(exc), metadata={"rejected": True}) from None
    metadata: dict[str, Any] = {
        "campaign": f"{opened.campaign.workspace}/{opened.campaign.slug}",
        "source": store.url_of(opened.source_key),
        "version": opened.upload.source_version,
        "upload_id": opened.upload.id,
        "priority": opened.upload.priority,
        "dupe_days": opened.upload.dupe_days,
        "expire_days": opened.upload.expire_days,
        "already_loaded": opened.already_loaded,
    }
    if opened.layout is not None:
        layout = opened.layout
        metadata.update(
            encoding=layout.encoding,
            delimiter=repr(layout.delimiter),
            size_bytes=layout.size_bytes,
            columns=dg.MetadataValue.json({k: layout.header[i] for k, i in layout.columns.items()}),
            custom_fields=dg.MetadataValue.json(list(layout.custom)),
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=uploads_partitions,
    group_name=GROUP,
    kinds={"pandas", "sql"},
    deps=[upload_file],
    check_specs=[
        dg.AssetCheckSpec(
            "staged_rows_conform",
            asset="validated_rows",
            blocking=True,
            description="The staging rows match the pandera contract (StagedRows); invalid rows are counted, not failures.",
        )
    ],
)
def validated_rows(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    bucket: BucketResource,
    progress: StagingProgress,
) -> dg.MaterializeResult:
    """Every row of the file, normalised (E.164 phone, state, ZIP, candidate zones) or rejected with its reason.

    Read in batches and written to the staging table keyed by upload and row number;
    each batch is logged and passed to the `progress` resource (the CLI's progress bar).
    """
    store = bucket.get()
    opened = uploads.current_upload(database.engine, store, context.partition_key)
    if opened.already_loaded:
        return dg.MaterializeResult(
            metadata={"upload_id": opened.upload.id, "already_loaded": True},
            check_results=[_conformance({}, {"already_loaded": True})],
        )

    try:
        with _holding(context, database, opened) as claim:

            def on_batch(rows: int, share: float) -> None:
                claim.beat(_now())  # staging is the long stage: show the run is alive
                context.log.info(f"staged {rows:,} rows ({share:.0%} of the file)")
                progress(rows, share)

            counts = uploads.stage(database.engine, store, opened, on_batch=on_batch)
    except csvfile.FileRejected as exc:
        raise dg.Failure(description=str(exc), metadata={"rejected": True}) from None
    except upload_claims.UploadBusy as exc:
        raise dg.Failure(description=str(exc)) from None
    failures = counts.pop("schema_failures")
    with database.engine.connect() as conn:
        reasons = accounting.reason_counts(conn, opened.upload.id, top=20)
    return dg.MaterializeResult(
        metadata={
            "upload_id": opened.upload.id,
            **counts,
            "invalid_by_reason": dg.MetadataValue.json(reasons),
        },
        check_results=[_conformance(failures, {"rows": counts["rows"], "invalid_rows": counts["invalid"]})],
    )


def _holding(context: dg.AssetExecutionContext, database: DatabaseResource, opened: uploads.OpenedUpload):
    """This run's claim on the upload for the stage (handed back if the stage fails)."""
    return upload_claims.holding(database.engine, opened.upload.id, opened.upload.source_key, context.run.run_id, _now())


def _conformance(failures: dict, figures: dict) -> dg.AssetCheckResult:
    """Every staged row matched the pandera contract (StagedRows); invalid rows are counted, not failures."""
    return dg.AssetCheckResult(
        check_name="staged_rows_conform",
        passed=not failures,
        metadata={
            "schema_failures": dg.MetadataValue.json(dict(failures)),
            "schema_failure_count": sum(failures.values()),
            **figures,
        },
    )


@dg.asset(partitions_def=uploads_partitions, group_name=GROUP, kinds={"sql"}, deps=[validated_rows])
def deduplicated_rows(
    context: dg.AssetExecutionContext, database: DatabaseResource, bucket: BucketResource
) -> dg.MaterializeResult:
    """Rows left once repeats within the file and numbers loaded within the dupe days are marked duplicate."""
    opened = uploads.current_upload(database.engine, bucket.get(), context.partition_key)
    if opened.already_loaded:
        return dg.MaterializeResult(metadata={"upload_id": opened.upload.id, "already_loaded": True})
    with _holding(context, database, opened), database.engine.begin() as conn:
        within = dedupe.mark_duplicates_within(conn, opened.upload.id)
        across = dedupe.mark_duplicates_across(conn, opened.upload, opened.campaign.id, _now())
    return dg.MaterializeResult(
        metadata={
            "upload_id": opened.upload.id,
            "duplicates_within_file": within,
            "duplicates_across_campaign": across,
            "dupe_days": opened.upload.dupe_days,
        }
    )


# Every DNC list file and every registry version may hold a number of any upload: the scrub
# reads the lists as a whole, not one file's partition.
_EVERY_FILE = dg.AllPartitionMapping()


@dg.asset(
    partitions_def=uploads_partitions, group_name=GROUP, kinds={"sql"},
    deps=[deduplicated_rows, dg.AssetDep(dnc_list_numbers, partition_mapping=_EVERY_FILE),
          dg.AssetDep(dnc_registry, partition_mapping=_EVERY_FILE)],
)
def dnc_scrubbed_rows(
    context: dg.AssetExecutionContext, database: DatabaseResource, bucket: BucketResource
) -> dg.MaterializeResult:
    """Rows checked against the campaign's DNC lists: flagged with the DNC disposition, or loud warnings without one.

    For a campaign checked against the National DNC Registry, the load asks the registry's current
    version about the same rows under the campaign lock (`dnc_scrub.mark_registry`).
    """
    opened = uploads.current_upload(database.engine, bucket.get(), context.partition_key)
    if opened.already_loaded:
        return dg.MaterializeResult(metadata={"upload_id": opened.upload.id, "already_loaded": True})
    with _holding(context, database, opened), database.engine.begin() as conn:
        matched, flagged = dnc_scrub.mark_dnc(conn, opened.upload, opened.campaign)
    if matched and not flagged:
        context.log.warning(
            f"{matched} number(s) are on the campaign's DNC lists but the campaign has no DNC "
            "disposition; they will load as normal prospects."
        )
    return dg.MaterializeResult(
        metadata={
            "upload_id": opened.upload.id,
            "dnc_matched": matched,
            "dnc_flagged": flagged,
            "dnc_disposition": opened.campaign.dnc_disposition or "(none)",
        }
    )


@dg.asset(
    partitions_def=uploads_partitions,
    group_name=GROUP,
    kinds={"postgres", "sqlite"},
    deps=[dnc_scrubbed_rows],
    check_specs=[
        dg.AssetCheckSpec(
            "upload_accounting",
            asset="loaded_prospects",
            blocking=True,
            description="rows == loaded + duplicates + invalid + dnc, and the prospects table holds loaded + dnc rows.",
        )
    ],
)
def loaded_prospects(
    context: dg.AssetExecutionContext, database: DatabaseResource, bucket: BucketResource
) -> dg.MaterializeResult:
    """The upload's prospects in the campaign, ready for the hopper; rejects written and the file filed in processed/.

    Metadata is the upload summary: rows = loaded + duplicates + invalid + dnc.
    """
    store = bucket.get()
    opened = uploads.current_upload(database.engine, store, context.partition_key)
    try:
        with _holding(context, database, opened):
            # Loads only if no other run has taken the upload over since this stage began.
            load.load_prospects(database.engine, opened.upload, opened.campaign, _now(), runner=context.run.run_id)
    except DialerError as exc:
        raise dg.Failure(description=str(exc)) from None
    with database.engine.connect() as conn:
        ok, recorded, detail = accounting.accounting_holds(conn, opened.upload.id)
    summary = uploads.finish_upload(database.engine, store, opened)
    for warning in summary.warnings:
        context.log.warning(warning)
    balance = dg.AssetCheckResult(
        check_name="upload_accounting",
        passed=ok,
        metadata={**_summary_metadata(recorded), "staged": dg.MetadataValue.json(detail)},
    )
    return dg.MaterializeResult(metadata=_summary_metadata(summary), check_results=[balance])


UPLOAD_ASSETS = [upload_file, validated_rows, deduplicated_rows, dnc_scrubbed_rows, loaded_prospects]
