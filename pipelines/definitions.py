"""The one `Definitions` of the campaign dialer's Dagster code location.

It only assembles: each stage contributes its assets, checks, sensors and
schedules, and the resources are built here. Nothing is computed at import.
"""

import dagster as dg

from resources.database import DatabaseResource

defs = dg.Definitions(
    resources={
        "database": DatabaseResource(),
    },
)
