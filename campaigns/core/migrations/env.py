"""Alembic environment: migrations run on a connection the caller passes in.

`campaigns.db.migrate` hands over its connection through
`config.attributes["connection"]`, so the same migrations run from
`dialer init`, from tests and from Dagster, on SQLite and PostgreSQL alike.
"""

from alembic import context

from campaigns.core.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through campaigns.db.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
context.run_migrations()
