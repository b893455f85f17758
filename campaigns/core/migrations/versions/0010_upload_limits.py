"""Upload limits per campaign: a file past either is refused whole.

- `campaigns.max_upload_rows` (`uploads.max_rows`, default 5,000,000) and
  `campaigns.max_upload_bytes` (`uploads.max_uncompressed_bytes`, default 2 GiB,
  counted after decompression), so a small gzip cannot expand into hours of
  staging and a full disk.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_upload_rows", sa.BigInteger(), server_default="5000000", nullable=False))
        batch_op.add_column(
            sa.Column("max_upload_bytes", sa.BigInteger(), server_default=str(2 * 1024**3), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("max_upload_bytes")
        batch_op.drop_column("max_upload_rows")
