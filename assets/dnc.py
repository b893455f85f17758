"""DNC lists: files dropped under dnc/<workspace>/<list>/ add their numbers to that list; files under
dnc/_registry/ make versions of the National DNC Registry."""


from datetime import UTC, datetime

import dagster as dg

from assets.partitions import dnc_files, registry_files
from campaigns.core.errors import DialerError
from campaigns.ingestion import csvfile, dnc
from campaigns.ingestion.bucket import UnsafeKey, fitted_key
from campaigns.ingestion.inbox import BadKey, parse_dnc_key
from campaigns.ingestion.registry_bucket import (
    PREFIX,
    import_bucket_file,
    parse_registry_key,
)
from campaigns.ingestion.uploads import _error_text
from resources.bucket import BucketResource
from resources.database import DatabaseResource


@dg.asset(partitions_def=dnc_files, group_name="dnc", kinds={"csv", "sql"})
def dnc_list_numbers(
    context: dg.AssetExecutionContext, database: DatabaseResource, bucket: BucketResource
) -> dg.MaterializeResult:
    """The numbers one DNC file added to its workspace's list; campaigns linked to the list skip them."""
    now = datetime.now(UTC)
    store = bucket.get()
    try:
        target = parse_dnc_key(f"dnc/{context.partition_key}")
    except BadKey as exc:
        raise dg.Failure(description=str(exc)) from None
    source = target.key
    try:
        present = store.exists(source)
    except UnsafeKey as exc:  # a key through a symbolic link: refused, neither read nor moved
        raise dg.Failure(description=str(exc)) from None
    if not present:
        processed = target.moved_key("processed")
        if store.exists(processed):
            return dg.MaterializeResult(metadata={"already_imported": True, "source": processed})
        raise dg.Failure(description=f"{source}: is not in the bucket any more; drop it again.")
    try:
        result = dnc.import_numbers(
            database.engine, target.workspace, target.list, lambda: store.open(source), source, now
        )
    except (csvfile.FileRejected, DialerError) as exc:
        destination = store.move(source, target.moved_key("rejected"))
        store.write_text(fitted_key(destination + ".error.txt"), _error_text(source, str(exc), now))
        raise dg.Failure(description=str(exc)) from None
    store.move(source, target.moved_key("processed"))
    return dg.MaterializeResult(
        metadata={
            "workspace": target.workspace,
            "list": target.list,
            "rows": result.rows,
            "added": result.added,
            "already_listed": result.already_listed,
            "invalid": result.invalid,
            "invalid_examples": dg.MetadataValue.json(result.examples),
        }
    )


@dg.asset(partitions_def=registry_files, group_name="dnc", kinds={"sql"})
def dnc_registry(
    context: dg.AssetExecutionContext, database: DatabaseResource, bucket: BucketResource
) -> dg.MaterializeResult:
    """The National DNC Registry version one dropped file made: a full list replaces the area codes
    it names, a change list applies its adds and deletes. Opted-in campaigns check every number
    against the newest version, which must be no older than 31 days at each call."""
    try:
        target = parse_registry_key(f"{PREFIX}{context.partition_key}")
        done = import_bucket_file(database.engine, bucket.get(), target, datetime.now(UTC))
    except DialerError as exc:  # refused (and filed in rejected/), or a key through a symbolic link
        raise dg.Failure(description=str(exc)) from None
    if done.result is None:
        return dg.MaterializeResult(metadata={"already_imported": True, "source": done.filed_as})
    result = done.result.as_dict()
    for warning in done.result.warnings:
        context.log.warning(warning)
    return dg.MaterializeResult(
        metadata={
            **{k: result[k] for k in ("version_id", "kind", "obtained_at", "area_codes", "numbers", "added",
                                      "deleted", "records", "sets_pruned")},
            "checksum": result["checksum"],
            "based_on_id": result["based_on_id"] if result["based_on_id"] is not None else "",
            "area_codes_imported": dg.MetadataValue.json(result["area_codes_imported"]),
            "warnings": dg.MetadataValue.json(result["warnings"]),
            "source": done.filed_as,
        }
    )
