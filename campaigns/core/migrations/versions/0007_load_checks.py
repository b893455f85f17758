"""Cheaper list loads: fewer row triggers and indexes, and a load counter per campaign.

- `prospects` had two foreign keys, `campaign_id` → campaigns and `list_id` →
  prospect_lists, so PostgreSQL ran two row triggers per loaded prospect
  (about a fifth of the load's INSERT in `bench/ingest.py --explain-insert`).
  They become one, `(list_id, campaign_id)` → `prospect_lists (id, campaign_id)`:
  the list is checked as before and the campaign through the list's own foreign
  key, and a prospect can no longer name a campaign other than its list's.
- `upload_rows` loses its foreign key to `prospect_lists`: only the staging step
  writes it, for the upload it has just read, uploads are never deleted, and the
  row trigger was the larger part of the staging COPY's work.
- `upload_rows` loses `ix_upload_rows_phone` and, on PostgreSQL, keeps 15% of
  each page free: dedupe and the DNC scrub now find rows with hash joins over
  the whole upload and update them by row number, so the index only cost every
  staged row a random insert, and flagging a row becomes a HOT update.
- `campaigns.list_loads` counts the uploads loaded into the campaign and
  `prospect_lists.deduped_at_loads` records its value when the upload's
  cross-campaign dedupe ran. The load repeats that dedupe (under the campaign
  lock) only when another upload loaded in between.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Indexes with a DESC column: SQLite's batch mode rebuilds `prospects` and reflects them
# without the DESC, so they are created again afterwards.
DESC_INDEXES = {
    "ix_prospects_fill": ["campaign_id", "status", "zone_group", "priority", "attempts",
                          "last_attempt_at", "id"],
    "ix_prospects_dial_order": ["campaign_id", "status", "priority", "attempts",
                                "last_attempt_at", "id"],
}


def _restore_desc_indexes() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, columns in DESC_INDEXES.items():
        op.drop_index(name, table_name="prospects")
        op.create_index(
            name, "prospects",
            [sa.literal_column(c).desc() if c == "priority" else c for c in columns],
        )


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("list_loads", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("prospect_lists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deduped_at_loads", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_prospect_lists_id_campaign_id"), ["id", "campaign_id"])
    if op.get_bind().dialect.name == "postgresql":
        # NOT VALID, then VALIDATE: existing prospects are checked under a lock that
        # lets the daemons keep reading and updating them.
        op.drop_constraint("fk_prospects_campaign_id_campaigns", "prospects", type_="foreignkey")
        op.drop_constraint("fk_prospects_list_id_prospect_lists", "prospects", type_="foreignkey")
        op.execute(
            "ALTER TABLE prospects ADD CONSTRAINT fk_prospects_list_campaign FOREIGN KEY "
            "(list_id, campaign_id) REFERENCES prospect_lists (id, campaign_id) NOT VALID"
        )
        op.execute("ALTER TABLE prospects VALIDATE CONSTRAINT fk_prospects_list_campaign")
    else:
        with op.batch_alter_table("prospects", schema=None) as batch_op:
            batch_op.drop_constraint("fk_prospects_campaign_id_campaigns", type_="foreignkey")
            batch_op.drop_constraint("fk_prospects_list_id_prospect_lists", type_="foreignkey")
            batch_op.create_foreign_key(
                "fk_prospects_list_campaign", "prospect_lists",
                ["list_id", "campaign_id"], ["id", "campaign_id"],
            )
        _restore_desc_indexes()
    with op.batch_alter_table("upload_rows", schema=None) as batch_op:
        batch_op.drop_constraint("fk_upload_rows_upload_id_prospect_lists", type_="foreignkey")
    op.drop_index("ix_upload_rows_phone", table_name="upload_rows")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE upload_rows SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE upload_rows RESET (fillfactor)")
    op.create_index("ix_upload_rows_phone", "upload_rows", ["upload_id", "phone_e164"])
    with op.batch_alter_table("upload_rows", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_upload_rows_upload_id_prospect_lists", "prospect_lists", ["upload_id"], ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_constraint("fk_prospects_list_campaign", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_prospects_list_id_prospect_lists", "prospect_lists", ["list_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_prospects_campaign_id_campaigns", "campaigns", ["campaign_id"], ["id"]
        )
    _restore_desc_indexes()
    with op.batch_alter_table("prospect_lists", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_prospect_lists_id_campaign_id"), type_="unique")
        batch_op.drop_column("deduped_at_loads")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("list_loads")
