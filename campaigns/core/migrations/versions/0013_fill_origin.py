"""Who filled a hopper: `hopper_fills.filled_by` (a FillOrigin: daemon, run, cli, demo) and
`hopper_fills.filler_id` (the daemon's id or the Dagster run's). A fill a run made is
materialized by that run; `hopper_fills_sensor` reports the others, so none is shown twice.
NULL on fills recorded before this revision.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hopper_fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filled_by", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("filler_id", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hopper_fills", schema=None) as batch_op:
        batch_op.drop_column("filler_id")
        batch_op.drop_column("filled_by")
