"""The calls the daemons place: an asset of its own, written by the daemons, reported by a sensor.

`call_attempts` is an external asset: no Dagster run writes it. The daemons record every call
they place in the `call_attempts` table as they dial, from the hopper's rows;
`call_attempts_sensor` (pipelines/call_sensor.py) reports what changed since its last report as
one materialization per evaluation, and the day's reports are built from it.
"""


from collections.abc import Sequence
from datetime import datetime

import dagster as dg

from assets.hopper import hopper
from campaigns.reporting.call_activity import CampaignCalls

call_attempts = dg.AssetSpec(
    "call_attempts", deps=[hopper], group_name="dialing", kinds={"sql"},
    description="Every call the dialer daemons placed, one row per attempt: the prospect and number, "
                "when it was placed, answered and ended, its outcome and disposition. The daemons "
                "write it as they dial from the hopper (no run); each materialization, reported by "
                "`call_attempts_sensor`, counts the calls placed, answered and abandoned since the last.",
)


def calls_metadata(calls: Sequence[CampaignCalls], since: datetime, until: datetime) -> dict[str, object]:
    """A materialization's metadata for the calls of (since, until]: totals and one table row per campaign."""
    lines = ["| campaign | placed | answered | abandoned | ended |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {c.campaign} | {n.placed} | {n.answered} | {n.abandoned} | {n.ended} |"
              for c in calls for n in [c.counts]]
    return {
        "placed": sum(c.counts.placed for c in calls),
        "answered": sum(c.counts.answered for c in calls),
        "abandoned": sum(c.counts.abandoned for c in calls),
        "ended": sum(c.counts.ended for c in calls),
        "campaigns": len(calls),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "by_campaign": dg.MetadataValue.md("\n".join(lines)),
    }
