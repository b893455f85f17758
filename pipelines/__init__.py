"""Dagster wiring: the one Definitions, jobs, schedules, sensors and partitions."""
