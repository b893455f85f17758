"""Dagster resources: the database now; the bucket, mailer and voice API as they arrive."""
