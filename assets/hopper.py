"""The hopper: every campaign's queue of prospects that may be dialed now.

The daemons fill it, each for the campaigns it holds, on its own clock; `hopper_fills_sensor`
(pipelines/hopper_sensor.py) reports their fills as this asset's materializations without a run.
Materializing the asset (or `dialer hopper fill`) fills every due campaign at once, on demand.
Both show the same metadata, built here.
"""


from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import dagster as dg

from assets.dnc import dnc_list_numbers, dnc_registry
from assets.expiry import expired_prospects
from assets.ingestion import loaded_prospects
from campaigns.core.lifecycle import FillOrigin
from campaigns.dialing.hopper import FillResult, campaigns_due, fill_campaign
from campaigns.dialing.national_registry import Health, RegistryHealth, registry_health
from campaigns.setup.registry import list_campaigns
from resources.database import DatabaseResource

REGISTRY_CHECK = "national_registry_fresh"


def fill_origin(fill: FillResult) -> str:
    """Who made a fill, as one table cell: "daemon dialer-1", "run 5f3c…", "cli", "not recorded"."""
    if fill.filled_by is None:
        return "not recorded"
    return f"{fill.filled_by} {fill.filler_id}" if fill.filler_id else str(fill.filled_by)


def _cell(text: str) -> str:
    """Text shown as data in a markdown table cell (a daemon id or a note cannot add a column)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def fills_metadata(results: Sequence[FillResult], slugs: Mapping[int, str]) -> dict[str, object]:
    """A materialization's metadata for `results`: totals and one table row per fill."""
    lines = ["| campaign | filled at | by | level | queued | depth | returned | marked DNC | skipped at a cap "
             "| open groups | ms | note |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| {_cell(str(slugs.get(r.campaign_id, r.campaign_id)))} | {r.filled_at:%H:%M:%S} | {_cell(fill_origin(r))} "
            f"| {r.level} | {r.queued} | {r.depth_after} | {r.returned_expired + r.returned_closed} "
            f"| {r.marked_dnc} | {r.skipped_cap} | {r.open_groups}/{r.open_groups + r.closed_groups} "
            f"| {r.duration_ms:.0f} | {_cell(r.note or '')} |"
        )
    return {
        "campaigns_filled": len({r.campaign_id for r in results}),
        "queued": sum(r.queued for r in results),
        "returned": sum(r.returned_expired + r.returned_closed for r in results),
        "fills": dg.MetadataValue.md("\n".join(lines) if results else "No campaign was due."),
    }


def registry_check_fields(registry: RegistryHealth) -> dict[str, object]:
    """The `national_registry_fresh` check's outcome for the registry's health now (for a result
    in a run, or an evaluation a sensor reports)."""
    return dict(
        check_name=REGISTRY_CHECK, passed=registry.health == Health.OK,
        severity=dg.AssetCheckSeverity.ERROR if registry.health == Health.STALE else dg.AssetCheckSeverity.WARN,
        description=registry.message,
        metadata={"version_id": registry.version_id or 0,
                  "age_days": round(registry.age_days, 1) if registry.age_days is not None else -1.0,
                  "campaigns": dg.MetadataValue.json(list(registry.campaigns))},
    )


@dg.asset(
    group_name="dialing", kinds={"sql"}, deps=[loaded_prospects, expired_prospects, dnc_list_numbers, dnc_registry],
    check_specs=[dg.AssetCheckSpec(
        REGISTRY_CHECK, asset="hopper",
        description="The National DNC Registry version the opted-in active campaigns dial against: warns "
                    "past 25 days, fails (error) past 31 days or when no version has been imported.",
    )],
)
def hopper(context: dg.AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    """Prospects queued for the daemons to dial now. Each daemon tops up the hopper of the
    campaigns it holds (their materializations here come from `hopper_fills_sensor`, not a run);
    materializing it fills every active campaign whose fill interval has passed, at once: up to its
    level with dialable prospects (callbacks first, then list priority, fewest attempts, oldest
    last attempt, upload order), and rows left unclaimed past the hopper expiry or outside their
    dial window go back to the campaign."""
    now = datetime.now(UTC)
    engine = database.engine
    with engine.connect() as conn:
        due = campaigns_due(conn, now)
        slugs = {ref.id: ref.slug for ref in list_campaigns(conn)}
        registry = registry_health(conn, now)
    results: list[FillResult] = []
    try:
        for campaign_id in due:
            results.append(fill_campaign(engine, campaign_id, now, filled_by=FillOrigin.RUN,
                                         filler_id=context.run.run_id))
    except Exception:
        # Each fill commits on its own: the ones made before the failure are shown here, since
        # hopper_fills_sensor leaves a run's fills to the run.
        if results:
            context.log_event(dg.AssetMaterialization(
                asset_key="hopper", description=f"{len(results)} fills made before the run failed.",
                metadata={**fills_metadata(results, slugs), "filled_by": "this run, before it failed"}))
        raise
    for r in results:
        context.log.info(f"{slugs.get(r.campaign_id)}: {r.as_dict()}")
    return dg.MaterializeResult(metadata={**fills_metadata(results, slugs), "filled_by": "this run"},
                                check_results=[dg.AssetCheckResult(**registry_check_fields(registry))])
