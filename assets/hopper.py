"""The hopper fill: every campaign's queue of prospects that may be dialed now."""


from datetime import UTC, datetime

import dagster as dg

from assets.expiry import expired_prospects
from assets.ingestion import loaded_prospects
from campaigns.dialing.hopper import campaigns_due, fill_campaign
from campaigns.dialing.national_registry import Health, registry_health
from campaigns.setup.registry import list_campaigns
from resources.database import DatabaseResource


@dg.asset(
    group_name="dialing", kinds={"sql"}, deps=[loaded_prospects, expired_prospects],
    check_specs=[dg.AssetCheckSpec(
        "national_registry_fresh", asset="hopper",
        description="The National DNC Registry version the opted-in active campaigns dial against: warns "
                    "past 25 days, fails (error) past 31 days or when no version has been imported.",
    )],
)
def hopper(context: dg.AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    """Prospects queued for the daemon to dial now: each active campaign whose fill interval has
    passed is topped up to its hopper level with dialable prospects (callbacks first, then list
    priority, fewest attempts, oldest last attempt, upload order), and rows left unclaimed past
    the hopper expiry or outside their dial window go back to the campaign."""
    now = datetime.now(UTC)
    engine = database.engine
    with engine.connect() as conn:
        due = campaigns_due(conn, now)
        slugs = {ref.id: ref.slug for ref in list_campaigns(conn)}
        registry = registry_health(conn, now)
    results = [fill_campaign(engine, campaign_id, now) for campaign_id in due]
    lines = ["| campaign | level | queued | callbacks | depth | returned | marked DNC | skipped at a cap | open groups | ms | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| {slugs.get(r.campaign_id, r.campaign_id)} | {r.level} | {r.queued} | {r.queued_callbacks} "
            f"| {r.depth_after} | {r.returned_expired + r.returned_closed} "
            f"| {r.marked_dnc} | {r.skipped_cap} | {r.open_groups}/{r.open_groups + r.closed_groups} "
            f"| {r.duration_ms:.0f} | {r.note or ''} |"
        )
        context.log.info(f"{slugs.get(r.campaign_id)}: {r.as_dict()}")
    return dg.MaterializeResult(
        metadata={
            "campaigns_filled": len(results),
            "queued": sum(r.queued for r in results),
            "returned": sum(r.returned_expired + r.returned_closed for r in results),
            "fills": dg.MetadataValue.md("\n".join(lines) if results else "No campaign was due."),
        },
        check_results=[dg.AssetCheckResult(
            check_name="national_registry_fresh", passed=registry.health == Health.OK,
            severity=dg.AssetCheckSeverity.ERROR if registry.health == Health.STALE else dg.AssetCheckSeverity.WARN,
            description=registry.message,
            metadata={"version_id": registry.version_id or 0,
                      "age_days": round(registry.age_days, 1) if registry.age_days is not None else -1.0,
                      "campaigns": dg.MetadataValue.json(list(registry.campaigns))},
        )],
    )
