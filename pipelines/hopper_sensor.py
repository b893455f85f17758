"""`hopper_fills_sensor`: the daemons' hopper fills, shown in Dagster without a run.

The daemon holding a campaign's lease fills its hopper on its own clock (docs/ARCHITECTURE.md,
"The hopper fill"), so no run is launched per fill — with a run launcher that is a container
per run, 1,440 a day for a once-a-minute schedule. Every fill is a `hopper_fills` row; this
sensor reads the rows recorded since its cursor (the last fill id it reported) and reports them
as one materialization of the `hopper` asset per evaluation, with the same metadata a
materialization by a run carries. (The hopper's checks, `hopper_filled_on_time` and
`national_registry_fresh`, are `freshness_sensor`'s: they matter most when no fill comes.) A
sensor evaluation runs in the code server, not in a run. A fill's id is drawn before it commits, so
the cursor also carries the ids it found missing below the newest it read; a fill committing late
is reported by a later evaluation (`campaigns.dialing.hopper.fills_after`).
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.hopper import fill_origin, fills_metadata
from campaigns.core.lifecycle import FillOrigin
from campaigns.dialing.hopper import FillsRead, fills_after
from campaigns.setup.registry import list_campaigns
from resources.database import DatabaseResource

INTERVAL_S = 30
# The first evaluation (no cursor yet) reports the fills of this last stretch only.
FIRST_LOOK_BACK = timedelta(minutes=10)
# At most this many fills per evaluation (one materialization's table); the rest wait for the next.
MAX_FILLS = 500


@dg.sensor(
    name="hopper_fills_sensor", minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports the hopper fills the dialer daemons recorded as materializations of `hopper` "
                "(no run is launched).",
)
def hopper_fills_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource):
    now = datetime.now(UTC)
    with database.sensor_engine.connect() as conn:
        fills, read = fills_after(conn, FillsRead.parse(context.cursor), now, since=now - FIRST_LOOK_BACK,
                                  limit=MAX_FILLS)
        if read.last_id is None:
            return dg.SkipReason("No hopper fill has been recorded yet.")
        # A run of the `hopper` asset materialized its own fills: reported again, they would show twice.
        fills = [fill for fill in fills if fill.filled_by != FillOrigin.RUN]
        if not fills:
            return dg.SensorResult(skip_reason="No hopper fill outside a run since the last report.",
                                   cursor=read.text())
        slugs = {ref.id: ref.qualified_slug for ref in list_campaigns(conn)}
    first, last = min(f.filled_at for f in fills), max(f.filled_at for f in fills)
    materialization = dg.AssetMaterialization(
        asset_key="hopper",
        description=f"{len(fills)} fills recorded from {first.isoformat()} to {last.isoformat()}.",
        metadata={**fills_metadata(fills, slugs), "filled_by": ", ".join(sorted({fill_origin(f) for f in fills})),
                  "first_fill_id": fills[0].fill_id, "last_fill_id": fills[-1].fill_id},
    )
    return dg.SensorResult(asset_events=[materialization], cursor=read.text())
