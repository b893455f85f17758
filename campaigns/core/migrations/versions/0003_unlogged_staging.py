"""Staging rows skip PostgreSQL's write-ahead log.

`upload_rows` is transient: an upload's rows live there only between the
staging and the load of one run, and a crash simply re-runs the upload from
its file. Writing them without WAL saves a quarter of the staging and DNC
scrub time on a million-row file (docs/PERFORMANCE.md). SQLite has no WAL
per table; nothing changes there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE upload_rows SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE upload_rows SET LOGGED")
