"""The National DNC Registry's sets are stored uncompressed on PostgreSQL.

PostgreSQL compresses a large `bytea` with pglz before storing it (TOAST). A roaring bitmap of
an area code at the registry's density compresses to about 65% of its size, but pglz takes
about 280 ms a megabyte to do it: importing the 383 sets of a 250-million-number registry spent
about 100 s compressing them, and a change list missed its 60 s target (`docs/PERFORMANCE.md`).
`STORAGE EXTERNAL` keeps the value out of line and uncompressed: the sets take a third more disk
(about 370 MB a version) and are written and read at disk speed. SQLite never compresses.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dnc_registry_sets ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dnc_registry_sets ALTER COLUMN data SET STORAGE EXTENDED")
