"""Several daemons: campaign leases, daemon heartbeats, one live call per prospect, request times.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import BigId, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Tables every daemon loop updates in place: room on each page for HOT updates, and
# autovacuum that reacts to a few hundred dead rows rather than to 20% of a small table.
CHURNED = ("hopper", "campaign_runtime", "campaign_leases", "daemons")


def upgrade() -> None:
    op.create_table(
        "campaign_leases",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", UTCDateTime, nullable=False),
        sa.Column("renewed_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"],
            name=op.f("fk_campaign_leases_campaign_id_campaigns"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_leases")),
    )
    op.create_table(
        "daemons",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("state IN ('running', 'draining')", name=op.f("ck_daemons_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daemons")),
    )
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", UTCDateTime, nullable=True))
    op.create_index(
        "ux_call_attempts_live_prospect", "call_attempts", ["prospect_id"], unique=True,
        postgresql_where=sa.text("status <> 'ended'"), sqlite_where=sa.text("status <> 'ended'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in CHURNED:
            op.execute(
                f"ALTER TABLE {table} SET (fillfactor = 70, autovacuum_vacuum_threshold = 200, "
                "autovacuum_vacuum_scale_factor = 0.05)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("hopper", "campaign_runtime"):
            op.execute(
                f"ALTER TABLE {table} RESET (fillfactor, autovacuum_vacuum_threshold, "
                "autovacuum_vacuum_scale_factor)"
            )
    op.drop_index("ux_call_attempts_live_prospect", table_name="call_attempts")
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
    op.drop_table("daemons")
    op.drop_table("campaign_leases")
