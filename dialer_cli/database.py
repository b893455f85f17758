"""`dialer init`: create the project database or bring it to the current revision."""

from __future__ import annotations

import typer

from campaigns.core import db
from dialer_cli.common import config_of, database, out, user_errors

commands = typer.Typer()


@commands.command()
@user_errors
def init(ctx: typer.Context) -> None:
    """Create or migrate the database (DIALER_DATABASE_URL, default a SQLite file under DIALER_HOME)."""
    with database(config_of(ctx), ready=False) as engine:
        before, after = db.migrate(engine)
        where = db.describe(engine)
    if before == after:
        out.print(f"Database {where} is up to date (revision {after}).")
    else:
        out.print(f"Database {where} migrated from {before or 'empty'} to revision {after}.")
