"""DNC lists: files dropped under dnc/<workspace>/<list>/ add their numbers to that list."""


from datetime import UTC, datetime

import dagster as dg

from assets.partitions import dnc_files
from campaigns.core.errors import DialerError
from campaigns.ingestion import csvfile, dnc
from campaigns.ingestion.bucket import UnsafeKey, fitted_key
from campaigns.ingestion.inbox import BadKey, parse_dnc_key
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
