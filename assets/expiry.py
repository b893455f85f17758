"""Daily expiry of prospects that outlived their upload's expire days."""


from datetime import UTC, datetime

import dagster as dg

from campaigns.ingestion.expiry import expire_prospects
from resources.database import DatabaseResource


@dg.asset(group_name="prospects", kinds={"sql"})
def expired_prospects(context: dg.AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    """Prospects marked EXPIRED today because they were neither resolved nor called back within their expire days."""
    with database.engine.begin() as conn:
        counts = expire_prospects(conn, datetime.now(UTC))
    return dg.MaterializeResult(
        metadata={
            "expired": sum(counts.values()),
            "by_campaign_id": dg.MetadataValue.json({str(k): v for k, v in counts.items()}),
        }
    )
