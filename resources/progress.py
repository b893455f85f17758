"""Staging progress as a Dagster resource: who hears how far `validated_rows` has read its file.

A plain callable `(rows staged so far, share of the file read)`, not configuration:
the definitions bind `no_progress`, and `dialer list upload`, which runs the job in
its own process, passes the update of its progress bar instead.
"""

import dagster as dg

from campaigns.ingestion.staging_table import OnBatch

# The type an asset declares to receive it: `progress: StagingProgress`.
StagingProgress = dg.ResourceParam[OnBatch]


def no_progress(rows: int, share_read: float) -> None:
    """Nobody is watching a progress bar (a sensor's run, `dagster dev`): the run's log says enough."""
