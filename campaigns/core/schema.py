"""The database: one SQLAlchemy Core schema for PostgreSQL and SQLite.

The database is the contract between the Dagster half (ingestion, hopper fill,
reports) and the daemon half (claims, calls, dispositions). Alembic migrations
under `campaigns/migrations/` create exactly these tables; a test compares the
two so they cannot drift.

Indexes follow the two hot paths of DESIGN.md §1:
- hopper fill: `prospects` by (campaign, status, zone group, next dial time,
  priority), so the fill reads only the open zone groups' due rows and never
  scans a campaign;
- hopper claim: `hopper` by (campaign, status, priority, id), so a daemon's
  `FOR UPDATE SKIP LOCKED` takes the best queued rows from the index head.
"""

from __future__ import annotations

import sqlalchemy as sa

from campaigns.core.lifecycle import (
    AttemptStatus,
    CampaignState,
    DaemonState,
    HopperStatus,
    PacingMode,
    ProspectStatus,
    RowOutcome,
    UploadStatus,
)
from campaigns.core.types import BigId, JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def _pk() -> sa.Column:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def _now() -> sa.sql.functions.Function:
    return sa.func.current_timestamp()


workspaces = sa.Table(
    "workspaces",
    metadata,
    _pk(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    _pk(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("slug", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("locale", sa.String(8), nullable=False),
    sa.Column("agent", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    # Dial window in the prospect's local time, as minutes after midnight.
    sa.Column("dial_earliest_min", sa.Integer, nullable=False),
    sa.Column("dial_latest_min", sa.Integer, nullable=False),
    sa.Column("blocked_states", JSONType, nullable=False),
    sa.Column("holiday_filtering", sa.Boolean, nullable=False),
    # Dialing controls.
    sa.Column("call_ratio", sa.Float, nullable=False),
    sa.Column("dialer_interval_s", sa.Integer, nullable=False),
    sa.Column("max_active_calls", sa.Integer, nullable=False),
    sa.Column("max_calls_per_prospect", sa.Integer, nullable=False),
    sa.Column("min_minutes_between_calls", sa.Integer, nullable=False),
    sa.Column("wrap_up_s", sa.Integer, nullable=False),
    sa.Column("hopper_expiry_min", sa.Integer, nullable=False),
    sa.Column("fill_interval_min", sa.Integer, nullable=False),
    # The hopper is never topped up to fewer rows than this.
    sa.Column("hopper_min_level", sa.Integer, nullable=False, server_default="100"),
    sa.Column("callback_delay_min", sa.Integer, nullable=False, server_default="1440"),
    sa.Column("damper_mode", sa.String(32), nullable=False),
    sa.Column("damper_threshold", sa.Float, nullable=False),
    # Pacing: `ratio` (call ratio and damper) or `predictive` (holds the abandon rate to a target).
    sa.Column("pacing_mode", sa.String(16), nullable=False, server_default="ratio"),
    sa.Column("target_abandon_rate", sa.Float, nullable=False, server_default="0.02"),
    # Upload defaults, overridable per file.
    sa.Column("dupe_days", sa.Integer, nullable=False),
    sa.Column("expire_days", sa.Integer, nullable=False),
    sa.Column("list_priority", sa.Integer, nullable=False),
    # Upload limits (uploads.max_rows, uploads.max_uncompressed_bytes): a larger file is refused whole.
    sa.Column("max_upload_rows", sa.BigInteger, nullable=False, server_default="5000000"),
    sa.Column("max_upload_bytes", sa.BigInteger, nullable=False, server_default=str(2 * 1024**3)),
    # Uploads loaded into the campaign so far. A load compares it with the value its
    # cross-campaign dedupe saw, and repeats the dedupe only if another load came between.
    sa.Column("list_loads", sa.Integer, nullable=False, server_default="0"),
    # DNC: the lists are in campaign_dnc_lists.
    sa.Column("dnc_disposition", sa.String(100), nullable=True),
    sa.Column("check_on_dial", sa.Boolean, nullable=False),
    # dnc.national_registry: the campaign is scrubbed and dialed against the National DNC Registry.
    sa.Column("dnc_national_registry", sa.Boolean, nullable=False, server_default=sa.false()),
    # Reports.
    sa.Column("report_schedule", sa.String(32), nullable=False),
    sa.Column("report_format", sa.String(8), nullable=False),
    sa.Column("report_compression", sa.String(8), nullable=False),
    sa.Column("report_recipients", JSONType, nullable=False),
    sa.Column("report_timezone", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "slug"),
    sa.CheckConstraint(_one_of("state", CampaignState), name="state"),
    sa.CheckConstraint("dial_earliest_min < dial_latest_min", name="dial_window"),
    sa.CheckConstraint(_one_of("pacing_mode", PacingMode), name="pacing_mode"),
    sa.CheckConstraint("target_abandon_rate > 0 AND target_abandon_rate <= 0.03", name="target_abandon_rate"),
)

dispositions = sa.Table(
    "dispositions",
    metadata,
    _pk(),
    sa.Column(
        "campaign_id", BigId, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("qualified", sa.Boolean, nullable=False),
    sa.Column("contacted", sa.Boolean, nullable=False),
    sa.Column("callback", sa.Boolean, nullable=False),
    sa.Column("dnc", sa.Boolean, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("campaign_id", "title"),
)

dnc_lists = sa.Table(
    "dnc_lists",
    metadata,
    _pk(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

dnc_numbers = sa.Table(
    "dnc_numbers",
    metadata,
    sa.Column(
        "dnc_list_id",
        BigId,
        sa.ForeignKey("dnc_lists.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # E.164; the primary key serves "is this number on any of these lists?".
    sa.Column("phone_e164", sa.String(20), primary_key=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(200), nullable=True),
)

# The National DNC Registry: one per deployment, versioned. Each version is a manifest of the
# area codes it covers, each an exact set of the area code's listed 7-digit numbers (a
# serialised roaring bitmap) stored once by its SHA-256, so versions share the area codes an
# import did not change. `campaigns.registry` reads and writes them.
dnc_registry_versions = sa.Table(
    "dnc_registry_versions",
    metadata,
    _pk(),
    sa.Column("kind", sa.String(8), nullable=False),  # full | changes
    # When the registry data was obtained from the FTC (the 31-day rule counts from here).
    sa.Column("obtained_at", UTCDateTime, nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    # The version a change list or a partial full import was applied to.
    sa.Column("based_on_id", BigId, sa.ForeignKey("dnc_registry_versions.id"), nullable=True),
    sa.Column("source", sa.Text, nullable=False),  # the imported files' names
    sa.Column("area_codes", sa.Integer, nullable=False),
    sa.Column("numbers", sa.BigInteger, nullable=False),
    sa.Column("added", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.BigInteger, nullable=False),
    # SHA-256 of the manifest (area code, set checksum, count, obtained-at): names the exact set.
    sa.Column("checksum", sa.String(64), nullable=False),
    # Whether the area codes' sets are still stored (old versions keep their record, not their sets).
    sa.Column("sets_kept", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.CheckConstraint("kind IN ('full', 'changes')", name="kind"),
)

dnc_registry_sets = sa.Table(
    "dnc_registry_sets",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),  # of `data`
    sa.Column("area_code", sa.Integer, nullable=False),
    sa.Column("numbers", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # pyroaring BitMap.serialize() of NXX-XXXX
    sa.Column("created_at", UTCDateTime, nullable=False),
)

dnc_registry_areas = sa.Table(
    "dnc_registry_areas",
    metadata,
    sa.Column("version_id", BigId, sa.ForeignKey("dnc_registry_versions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("area_code", sa.Integer, primary_key=True),
    # No foreign key: a pruned version keeps its manifest (evidence) after its sets are gone.
    sa.Column("set_sha256", sa.String(64), nullable=False),
    sa.Column("numbers", sa.Integer, nullable=False),
    # When this area code's data was obtained: a partial import refreshes only its own.
    sa.Column("obtained_at", UTCDateTime, nullable=False),
    sa.Index("ix_dnc_registry_areas_set_sha256", "set_sha256"),
)

campaign_dnc_lists = sa.Table(
    "campaign_dnc_lists",
    metadata,
    sa.Column(
        "campaign_id",
        BigId,
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("dnc_list_id", BigId, sa.ForeignKey("dnc_lists.id"), primary_key=True),
)

prospect_lists = sa.Table(
    "prospect_lists",
    metadata,
    _pk(),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    # The bucket key and its version (etag or mtime+size) make an upload idempotent.
    sa.Column("source_key", sa.String(1024), nullable=False),
    sa.Column("source_version", sa.String(200), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("dupe_days", sa.Integer, nullable=False),
    sa.Column("expire_days", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("loaded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("invalid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dnc", sa.Integer, nullable=False, server_default="0"),
    sa.Column("warnings", JSONType, nullable=False),
    sa.Column("rejects_file", sa.String(1024), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # How the file was read (encoding, delimiter, header mapping) and its sidecar, for the UI.
    sa.Column("file_format", JSONType, nullable=True),
    sa.Column("sidecar_key", sa.String(1024), nullable=True),
    # Where the file went once loaded (processed/…, numbered if the name was taken).
    sa.Column("archived_key", sa.String(1024), nullable=True),
    # The campaign's `list_loads` when this upload's cross-campaign dedupe ran.
    sa.Column("deduped_at_loads", sa.Integer, nullable=True),
    # The run loading a processing upload, its last sign of life and how often the upload
    # was started over: a killed run's upload is found and resumed (upload_claims, migration 0009).
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("heartbeat_at", UTCDateTime, nullable=True),
    sa.Column("resumes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("campaign_id", "source_key", "source_version"),
    # Target of prospects' (list, campaign) key: a prospect's campaign is its list's.
    sa.UniqueConstraint("id", "campaign_id"),
    sa.CheckConstraint(_one_of("status", UploadStatus), name="status"),
)

upload_rows = sa.Table(
    "upload_rows",
    metadata,
    # The staging table: every row of an upload, keyed by upload and row number,
    # so dedupe, DNC scrub and load run as set-based SQL and a re-run starts clean.
    # No foreign key: only `stage_rows` writes here, for an upload it has just read, and
    # a row trigger per staged row would be most of the COPY's work (migration 0007).
    sa.Column("upload_id", BigId, primary_key=True),
    sa.Column("row_number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("phone_raw", sa.Text, nullable=True),
    sa.Column("phone_e164", sa.String(20), nullable=True),
    sa.Column("phone_ext", sa.String(20), nullable=True),
    sa.Column("first_name", sa.String(200), nullable=True),
    sa.Column("last_name", sa.String(200), nullable=True),
    sa.Column("address_state", sa.String(2), nullable=True),
    sa.Column("zip_code", sa.String(10), nullable=True),
    sa.Column("area_code_state", sa.String(2), nullable=True),
    sa.Column("candidate_zones", sa.Text, nullable=True),
    sa.Column("zone_group", sa.Text, nullable=True),
    sa.Column("custom_fields", sa.Text, nullable=True),  # JSON text, copied as is
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("duplicate_of", sa.String(200), nullable=True),
    sa.Column("on_dnc", sa.Boolean, nullable=False, server_default=sa.false()),
    # On the National DNC Registry (campaigns that opted in): loaded READY, held while listed.
    sa.Column("on_registry", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint(_one_of("outcome", RowOutcome), name="outcome"),
    # No index on the phone: dedupe and DNC scrub read a whole upload (hash joins), and
    # every staged row would pay for a random index insert. PostgreSQL keeps 15% of each
    # page free, so flagging a row (outcome, reason) is a HOT update (migration 0007).
)

prospects = sa.Table(
    "prospects",
    metadata,
    _pk(),
    # One foreign key, (list_id, campaign_id) → the list, ties a prospect to its upload
    # and, through the list, to its campaign: one check per loaded row instead of two.
    sa.Column("campaign_id", BigId, nullable=False),
    sa.Column("list_id", BigId, nullable=False),
    sa.Column("source_row", sa.Integer, nullable=False),
    sa.Column("phone_e164", sa.String(20), nullable=False),
    sa.Column("phone_ext", sa.String(20), nullable=True),
    sa.Column("first_name", sa.String(200), nullable=True),
    sa.Column("last_name", sa.String(200), nullable=True),
    sa.Column("address_state", sa.String(2), nullable=True),
    sa.Column("zip_code", sa.String(10), nullable=True),
    # The state of the number's area code: FL, OK and CT apply their rules to it.
    sa.Column("area_code_state", sa.String(2), nullable=True),
    # Every IANA zone the prospect may be in, sorted, comma-separated.
    # Unbounded: a number with no zone data falls back to every zone of its locale.
    sa.Column("candidate_zones", sa.Text, nullable=False),
    # Key of the rule group (zones + states) the hopper fill filters on.
    sa.Column("zone_group", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("disposition", sa.String(100), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_attempt_at", UTCDateTime, nullable=True),
    # When the prospect may next be dialed; for a callback, the time asked for.
    sa.Column("next_dial_at", UTCDateTime, nullable=False),
    sa.Column("callback_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("loaded_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("custom_fields", JSONType, nullable=False),
    # The National DNC Registry version in which the number was last found listed (by the
    # upload's scrub or a re-check after a new version); NULL: not listed when last checked.
    # Not a status: a registry deletion makes the prospect dialable again.
    sa.Column("registry_version_id", BigId, nullable=True),
    sa.UniqueConstraint("list_id", "source_row"),
    sa.ForeignKeyConstraint(
        ["list_id", "campaign_id"],
        ["prospect_lists.id", "prospect_lists.campaign_id"],
        name="fk_prospects_list_campaign",
    ),
    sa.CheckConstraint(_one_of("status", ProspectStatus), name="status"),
    # Cross-upload dedupe: "was this number loaded into the campaign within dupe days?"
    sa.Index("ix_prospects_dedupe", "campaign_id", "phone_e164", "loaded_at"),
)

# Hopper fill, two ways (campaigns/hopper.py): when few zone groups are open,
# one range per open group, each already in dial order (list priority high
# first, fewest attempts, oldest last attempt, upload order), merged; when many
# are open, the campaign's prospects in dial order, keeping the open groups'.
# Either way a fill reads about as many entries as it queues. (The daily expiry
# scans instead: one pass a day does not earn an index every load must update.)
sa.Index(
    "ix_prospects_fill",
    prospects.c.campaign_id,
    prospects.c.status,
    prospects.c.zone_group,
    prospects.c.priority.desc(),
    prospects.c.attempts,
    prospects.c.last_attempt_at,
    prospects.c.id,
)
sa.Index(
    "ix_prospects_dial_order",
    prospects.c.campaign_id,
    prospects.c.status,
    prospects.c.priority.desc(),
    prospects.c.attempts,
    prospects.c.last_attempt_at,
    prospects.c.id,
)

hopper = sa.Table(
    "hopper",
    metadata,
    _pk(),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    # Unique: a prospect is never queued twice. A queued prospect keeps its
    # READY or CALLBACK status; this row is what makes it "queued".
    sa.Column(
        "prospect_id",
        BigId,
        sa.ForeignKey("prospects.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.CheckConstraint(_one_of("status", HopperStatus), name="status"),
    # Hopper expiry reads a campaign's queued rows through the claim index (a few thousand at most).
    sa.Index("ix_hopper_claim", "campaign_id", "status", "priority", "id"),
)

call_attempts = sa.Table(
    "call_attempts",
    metadata,
    _pk(),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("prospect_id", BigId, sa.ForeignKey("prospects.id"), nullable=False),
    sa.Column("attempt_number", sa.Integer, nullable=False),
    # Sent with the request so a retry after a timeout never dials twice.
    sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),
    sa.Column("phone_e164", sa.String(20), nullable=False),
    sa.Column("platform_call_id", sa.String(100), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("disposition", sa.String(100), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("placed_at", UTCDateTime, nullable=True),
    sa.Column("answered_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("callback_at", UTCDateTime, nullable=True),
    sa.Column("failure_cause", sa.String(200), nullable=True),
    sa.Column("daemon_id", sa.String(100), nullable=True),
    # Wall clock of the last request sent for this attempt: until every request of ours can
    # have been answered, an attempt the platform does not know may still reach it.
    sa.Column("sent_at", UTCDateTime, nullable=True),
    # Requests sent for the attempt, and when (platform clock) it may be sent again if the
    # platform never confirms it: the wait doubles with each send (`calls.resend_wait`).
    sa.Column("sends", sa.Integer, nullable=False, server_default="1"),
    sa.Column("next_send_at", UTCDateTime, nullable=True),
    # Evidence (16 CFR 310.4(b)(3)(iv)): the National DNC Registry version the number was
    # checked against before the call, for a campaign that opted in; NULL otherwise.
    sa.Column("registry_version_id", BigId, sa.ForeignKey("dnc_registry_versions.id"), nullable=True),
    sa.Index("ix_call_attempts_campaign_time", "campaign_id", "created_at"),
    # Frequency caps: "calls to this prospect in the last 24 h".
    sa.Index("ix_call_attempts_prospect_time", "prospect_id", "created_at"),
    sa.Index("ix_call_attempts_live", "campaign_id", "ended_at"),
    # State frequency caps count calls to a number, from any campaign.
    sa.Index("ix_call_attempts_phone_time", "phone_e164", "created_at"),
    # Events name the platform's call id.
    sa.Index("ix_call_attempts_platform_call_id", "platform_call_id", unique=True),
    # At most one live call per prospect, whatever any daemon does: the last line of
    # defence behind start_attempt's conditional update.
    sa.Index(
        "ux_call_attempts_live_prospect",
        "prospect_id",
        unique=True,
        postgresql_where=sa.text(f"status <> '{AttemptStatus.ENDED}'"),
        sqlite_where=sa.text(f"status <> '{AttemptStatus.ENDED}'"),
    ),
)

campaign_runtime = sa.Table(
    "campaign_runtime",
    metadata,
    # What the dialing side last learned about a campaign, as opposed to what an operator set.
    sa.Column(
        "campaign_id",
        BigId,
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Agent sessions the voice platform reported; sizes the hopper level.
    sa.Column("agent_sessions", sa.Integer, nullable=True),
    sa.Column("sessions_reported_at", UTCDateTime, nullable=True),
    # The platform's event cursor: events up to here have been applied.
    sa.Column("events_cursor", sa.BigInteger, nullable=False, server_default="0"),
    # The predictive pacer's state, so a daemon taking over the lease continues where the last
    # one was: the safety margin's multiplier, the 30-day guard, the instant up to which
    # answers and abandons have fed the margin, and the last tick's estimates (for status).
    sa.Column("pacing_margin", sa.Float, nullable=True),
    sa.Column("pacing_guard", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("pacing_counted_to", UTCDateTime, nullable=True),
    sa.Column("pacing_estimates", JSONType, nullable=True),
    sa.Column("pacing_updated_at", UTCDateTime, nullable=True),
    # The National DNC Registry version the campaign's prospects were last re-checked against.
    sa.Column("registry_checked_version_id", BigId, nullable=True),
)

hopper_fills = sa.Table(
    "hopper_fills",
    metadata,
    _pk(),
    # One row per fill: when the fill interval has passed, and what each fill did.
    sa.Column(
        "campaign_id", BigId, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("filled_at", UTCDateTime, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("depth_before", sa.Integer, nullable=False),
    sa.Column("queued", sa.Integer, nullable=False),
    sa.Column("returned_expired", sa.Integer, nullable=False),
    sa.Column("returned_closed", sa.Integer, nullable=False),
    sa.Column("marked_dnc", sa.Integer, nullable=False),
    sa.Column("skipped_cap", sa.Integer, nullable=False),
    sa.Column("open_groups", sa.Integer, nullable=False),
    sa.Column("closed_groups", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    # The dial rate the level was sized from (NULL: a cold start, sized from the sessions).
    sa.Column("dials_per_min", sa.Float, nullable=True),
    # Who filled (FillOrigin) and which daemon or Dagster run it was (NULL: recorded before 0013).
    sa.Column("filled_by", sa.Text, nullable=True),
    sa.Column("filler_id", sa.Text, nullable=True),
    sa.Index("ix_hopper_fills_campaign_time", "campaign_id", "filled_at"),
)

campaign_leases = sa.Table(
    "campaign_leases",
    metadata,
    # One daemon paces a campaign at a time: the holder renews its lease every loop; a
    # lease past `expires_at` (its holder died or stalled) may be taken by another daemon.
    sa.Column(
        "campaign_id",
        BigId,
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("holder", sa.String(100), nullable=False),
    # Fencing token: + 1 each time the lease changes hands, checked when claiming rows.
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("renewed_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

daemons = sa.Table(
    "daemons",
    metadata,
    # Running daemons, by heartbeat: how many share the campaigns, and what `dialer daemon
    # status` shows. A clean exit deletes its row; a killed daemon's row goes stale.
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_one_of("state", DaemonState.stored()), name="state"),
)

reports_sent = sa.Table(
    "reports_sent",
    metadata,
    _pk(),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("report_date", sa.Date, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("recipients", JSONType, nullable=False),
    sa.Column("attachment", sa.String(1024), nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("campaign_id", "report_date", "kind"),
)
