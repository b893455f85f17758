"""`call_attempts_sensor`: the calls the daemons placed, shown in Dagster without a run.

The daemons write `call_attempts` as they dial; every 30 seconds this sensor counts, per
campaign, the calls placed, answered, abandoned and ended since the end of the stretch it last
reported (its cursor, an instant) and reports them as one materialization of the external
`call_attempts` asset. A materialization rather than an observation: the daemons did write new
rows to the table the reports are built from, and a materialization is what marks the
downstream `report_detail` as having newer upstream data and what the asset's "last updated"
shows. A stretch ends SETTLE before the evaluation, so a call stamped just before it but
committed just after is still counted in the next one.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.calls import calls_metadata
from campaigns.reporting.call_activity import calls_between
from resources.database import DatabaseResource

INTERVAL_S = 30
# The first evaluation (no cursor yet) reports the calls of this last stretch only.
FIRST_LOOK_BACK = timedelta(minutes=10)
SETTLE = timedelta(seconds=5)


def _since(cursor: str | None, until: datetime) -> datetime:
    try:
        since = datetime.fromisoformat(cursor) if cursor else None
    except ValueError:
        since = None
    return since if since is not None and since.tzinfo is not None else until - FIRST_LOOK_BACK


@dg.sensor(
    name="call_attempts_sensor", minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports the calls the dialer daemons placed, answered and abandoned since its last report "
                "as a materialization of `call_attempts` (no run is launched).",
)
def call_attempts_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource):
    until = datetime.now(UTC) - SETTLE
    since = _since(context.cursor, until)
    if since >= until:
        return dg.SkipReason("The last report reaches past now (the clock went back); waiting for it.")
    with database.sensor_engine.connect() as conn:
        calls = calls_between(conn, since, until)
    cursor = until.isoformat()
    if not calls:
        return dg.SensorResult(skip_reason="No call placed, answered or ended since the last report.", cursor=cursor)
    metadata = calls_metadata(calls, since, until)
    materialization = dg.AssetMaterialization(
        asset_key="call_attempts",
        description=(f"{metadata['placed']} calls placed, {metadata['answered']} answered, "
                     f"{metadata['abandoned']} abandoned from {since:%H:%M:%S} to {until:%H:%M:%S} UTC."),
        metadata={**metadata, "written_by": "the dialer daemons"},
    )
    return dg.SensorResult(asset_events=[materialization], cursor=cursor)
