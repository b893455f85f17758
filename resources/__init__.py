"""Dagster resources: the database, the bucket, the mailer, the reports folder and staging progress.

Each settings resource has `from_config(cfg)`, which fills its fields from a `DialerConfig`
(an EnvVar for each variable that was set); explicit values work too.
"""
