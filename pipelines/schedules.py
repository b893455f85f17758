"""The schedule: the daily expiry, running by default. (The hopper has no schedule: the daemons
fill it, and `hopper_fills_sensor` reports their fills.)"""

import dagster as dg

from pipelines.jobs import expire_prospects_job

daily_expiry = dg.ScheduleDefinition(
    name="daily_expiry",
    job=expire_prospects_job,
    cron_schedule="5 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
