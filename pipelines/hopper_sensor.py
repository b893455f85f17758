"""`hopper_fills_sensor`: the daemons' hopper fills, shown in Dagster without a run.

The daemon holding a campaign's lease fills its hopper on its own clock (docs/ARCHITECTURE.md,
"The hopper fill"), so no run is launched per fill — with a run launcher that is a container
per run, 1,440 a day for a once-a-minute schedule. Every fill is a `hopper_fills` row; this
sensor reads the rows recorded since its cursor (the last fill id it reported) and reports them
as one materialization of the `hopper` asset per evaluation, with the same metadata a
materialization by a run carries. (The hopper's checks, `hopper_filled_on_time` and
`national_registry_fresh`, are `freshness_sensor`'s: they matter most when no fill comes.) A
sensor evaluation runs in the code server, not in a run. (Ids are assigned before commit: a fill that
commits after a later one the sensor already reported is left out of the UI, never out of the table.)
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.hopper import fills_metadata
from campaigns.dialing.hopper import newest_fill_id, recorded_fills
from campaigns.setup.registry import list_campaigns
from resources.database import DatabaseResource

INTERVAL_S = 30
# The first evaluation (no cursor yet) reports the fills of this last stretch only.
FIRST_LOOK_BACK = timedelta(minutes=10)
# At most this many fills per evaluation (one materialization's table); the rest wait for the next.
MAX_FILLS = 500


def _last_id(cursor: str | None) -> int | None:
    return int(cursor) if cursor and cursor.isdigit() else None


@dg.sensor(
    name="hopper_fills_sensor", minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports the hopper fills the dialer daemons recorded as materializations of `hopper` "
                "(no run is launched).",
)
def hopper_fills_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource):
    now = datetime.now(UTC)
    with database.sensor_engine.connect() as conn:
        newest = newest_fill_id(conn)
        if newest is None:
            return dg.SkipReason("No hopper fill has been recorded yet.")
        after = _last_id(context.cursor)
        if after is not None and after > newest:  # the database was restored or replaced: start over
            after = None
        fills = recorded_fills(conn, after_id=after, since=now - FIRST_LOOK_BACK, limit=MAX_FILLS)
        if not fills:
            # The cursor moves to the newest fill, so the next look is by id, not a scan by time.
            return dg.SensorResult(skip_reason="No hopper fill since the last report.", cursor=str(newest))
        slugs = {ref.id: ref.qualified_slug for ref in list_campaigns(conn)}
    first, last = fills[0].filled_at, fills[-1].filled_at
    materialization = dg.AssetMaterialization(
        asset_key="hopper",
        description=f"{len(fills)} fills recorded from {first.isoformat()} to {last.isoformat()}.",
        metadata={**fills_metadata(fills, slugs), "filled_by": "the dialer daemons",
                  "first_fill_id": fills[0].fill_id, "last_fill_id": fills[-1].fill_id},
    )
    return dg.SensorResult(asset_events=[materialization], cursor=str(fills[-1].fill_id))
