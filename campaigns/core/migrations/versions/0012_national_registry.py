"""The National DNC Registry: versions of one exact set per deployment, a campaign's opt-in, and
the version each call was checked against.

- `dnc_registry_versions`: one row per import (full list or change list), its obtained-at date,
  counts and the manifest's checksum; kept for good as the evidence of what a call was checked
  against, even once its sets are pruned.
- `dnc_registry_sets`: an area code's listed numbers as a serialised roaring bitmap, stored once
  by its SHA-256 and shared by every version that did not change it.
- `dnc_registry_areas`: a version's manifest: area code → set, count, obtained-at; kept when
  the version's sets are pruned (no foreign key to them), as evidence of each area code's age.
  On PostgreSQL the sets are stored uncompressed (`STORAGE EXTERNAL`): pglz takes about 280 ms a
  megabyte to compress a roaring bitmap to ~65% of its size, which cost a 250-million-number
  import ~100 s and a change list its 60 s target; the sets take a third more disk instead.
- `campaigns.dnc_national_registry` (`dnc.national_registry`), `prospects.registry_version_id`,
  `upload_rows.on_registry`, `call_attempts.registry_version_id`,
  `campaign_runtime.registry_checked_version_id`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import BigId, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dnc_registry_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("obtained_at", UTCDateTime, nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("based_on_id", BigId, nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("area_codes", sa.Integer, nullable=False),
        sa.Column("numbers", sa.BigInteger, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("sets_kept", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(["based_on_id"], ["dnc_registry_versions.id"],
                                name="fk_dnc_registry_versions_based_on_id_dnc_registry_versions"),
        sa.CheckConstraint("kind IN ('full', 'changes')", name="ck_dnc_registry_versions_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_dnc_registry_versions"),
    )
    op.create_table(
        "dnc_registry_sets",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("area_code", sa.Integer, nullable=False),
        sa.Column("numbers", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_dnc_registry_sets"),
    )
    op.create_table(
        "dnc_registry_areas",
        sa.Column("version_id", BigId, nullable=False),
        sa.Column("area_code", sa.Integer, nullable=False),
        sa.Column("set_sha256", sa.String(64), nullable=False),
        sa.Column("numbers", sa.Integer, nullable=False),
        sa.Column("obtained_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["dnc_registry_versions.id"], ondelete="CASCADE",
                                name="fk_dnc_registry_areas_version_id_dnc_registry_versions"),
        sa.PrimaryKeyConstraint("version_id", "area_code", name="pk_dnc_registry_areas"),
    )
    op.create_index("ix_dnc_registry_areas_set_sha256", "dnc_registry_areas", ["set_sha256"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dnc_registry_sets ALTER COLUMN data SET STORAGE EXTERNAL")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dnc_national_registry", sa.Boolean, nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registry_version_id", BigId, nullable=True))
    with op.batch_alter_table("upload_rows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_registry", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registry_version_id", BigId, nullable=True))
        batch_op.create_foreign_key("fk_call_attempts_registry_version_id_dnc_registry_versions",
                                    "dnc_registry_versions", ["registry_version_id"], ["id"])
    with op.batch_alter_table("campaign_runtime", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registry_checked_version_id", BigId, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_runtime", schema=None) as batch_op:
        batch_op.drop_column("registry_checked_version_id")
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_call_attempts_registry_version_id_dnc_registry_versions", type_="foreignkey")
        batch_op.drop_column("registry_version_id")
    with op.batch_alter_table("upload_rows", schema=None) as batch_op:
        batch_op.drop_column("on_registry")
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_column("registry_version_id")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("dnc_national_registry")
    op.drop_index("ix_dnc_registry_areas_set_sha256", table_name="dnc_registry_areas")
    op.drop_table("dnc_registry_areas")
    op.drop_table("dnc_registry_sets")
    op.drop_table("dnc_registry_versions")
