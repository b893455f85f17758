"""Interrupted uploads: which run is loading an upload, its last sign of life, how often it restarted.

- `prospect_lists.claimed_by`: the run (its Dagster run id) working on a
  `processing` upload; NULL before the first stage and after a stage failed
  (the run handed it back).
- `prospect_lists.heartbeat_at`: the last time a run working on the upload
  showed progress (each stage's start, and every few seconds while staging).
  An upload still `processing` with no progress for a while was left by a run
  that was killed (`campaigns/ingestion/upload_claims.py`).
- `prospect_lists.resumes`: how many times a run started the upload over;
  the inbox sensor stops resuming it after a few (`interrupted.MAX_RESUMES`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prospect_lists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", UTCDateTime, nullable=True))
        batch_op.add_column(sa.Column("resumes", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("prospect_lists", schema=None) as batch_op:
        for column in ("resumes", "heartbeat_at", "claimed_by"):
            batch_op.drop_column(column)
