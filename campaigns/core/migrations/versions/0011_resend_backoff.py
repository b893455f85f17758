"""Re-sends of an unconfirmed attempt back off from the last send, not from the attempt's creation.

- `call_attempts.sends`: requests sent for the attempt (its first, then each re-send under
  the same idempotency key); the wait before the next re-send doubles with each.
- `call_attempts.next_send_at`: the platform-clock instant from which the attempt may be
  re-sent (NULL on attempts recorded before this revision: 20 s after their creation).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sends", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("next_send_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_column("next_send_at")
        batch_op.drop_column("sends")
