"""The schedules: the hopper fill every minute and the daily expiry, both running by default."""

import dagster as dg

from pipelines.jobs import expire_prospects_job, fill_hopper_job

hopper_schedule = dg.ScheduleDefinition(
    name="hopper_schedule",
    job=fill_hopper_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

daily_expiry = dg.ScheduleDefinition(
    name="daily_expiry",
    job=expire_prospects_job,
    cron_schedule="5 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
