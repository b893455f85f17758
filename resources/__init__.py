"""Dagster resources: the database, the bucket and the mailer."""
