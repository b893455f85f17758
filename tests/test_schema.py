"""The migrations create exactly the schema `campaigns/schema.py` declares, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from campaigns.core import db
from campaigns.core import schema as t


def test_migrations_match_the_declared_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, t.metadata)
    assert diff == []


def test_migrate_is_idempotent_and_reports_revisions(blank_db_url):
    engine = db.make_engine(blank_db_url)
    try:
        with pytest.raises(db.DatabaseNotReady, match="has not been initialised; run `dialer init`"):
            db.check_ready(engine)
        before, after = db.migrate(engine)
        assert (before, after) == (None, db.head_revision())
        assert db.migrate(engine) == (after, after)
        db.check_ready(engine)
    finally:
        engine.dispose()


def test_two_migrations_at_once_both_end_at_head(blank_db_url):
    """A migration job and a second `dialer init` started together: one migrates, the other
    waits for it (PostgreSQL: an advisory lock; SQLite: its write lock) and finds nothing to do."""
    import threading

    engines = [db.make_engine(blank_db_url) for _ in range(2)]
    results: list[object] = []
    start = threading.Barrier(2)

    def run(engine):
        start.wait(timeout=10)
        try:
            results.append(db.migrate(engine)[1])
        except Exception as exc:  # noqa: BLE001 - the test reports whatever either migration raised
            results.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert results == [db.head_revision()] * 2
        db.check_ready(engines[0])
    finally:
        for engine in engines:
            engine.dispose()


def test_hot_path_indexes_exist(engine):
    inspector = sa.inspect(engine)
    indexes = {i["name"]: i for i in inspector.get_indexes("prospects")}
    prospect_indexes = {name: i["column_names"] for name, i in indexes.items()}
    # The fill index is in dial order within a zone group: priority high first.
    assert prospect_indexes["ix_prospects_fill"] == [
        "campaign_id", "status", "zone_group", "priority", "attempts", "last_attempt_at", "id"
    ]
    if engine.dialect.name == "postgresql":
        assert indexes["ix_prospects_fill"]["column_sorting"] == {"priority": ("desc",)}
    else:
        with engine.connect() as conn:
            ddl = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'ix_prospects_fill'")
            ).scalar_one()
        assert "priority DESC" in ddl
    assert prospect_indexes["ix_prospects_dedupe"] == ["campaign_id", "phone_e164", "loaded_at"]
    hopper_indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("hopper")}
    assert hopper_indexes["ix_hopper_claim"] == ["campaign_id", "status", "priority", "id"]
    hopper_unique = [u["column_names"] for u in inspector.get_unique_constraints("hopper")]
    assert ["prospect_id"] in hopper_unique


def _workspace(conn, now) -> int:
    return conn.execute(
        sa.insert(t.workspaces).values(name="acme", created_at=now).returning(t.workspaces.c.id)
    ).scalar_one()


def test_instants_round_trip_as_aware_utc(engine):
    eastern = timezone(timedelta(hours=-5))
    written = datetime(2026, 3, 8, 1, 59, 30, tzinfo=eastern)
    with engine.begin() as conn:
        _workspace(conn, written)
    with engine.connect() as conn:
        read = conn.execute(sa.select(t.workspaces.c.created_at)).scalar_one()
    assert read == written and read.tzinfo is not None and read.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(engine):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        with engine.begin() as conn:
            _workspace(conn, datetime(2026, 1, 1))


def test_check_constraints_guard_lifecycle_states(engine):
    now = datetime.now(UTC)
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            ws = _workspace(conn, now)
            conn.execute(
                sa.insert(t.campaigns).values(
                    workspace_id=ws, slug="x", name="x", locale="US", agent="a", state="running",
                    dial_earliest_min=540, dial_latest_min=1260, blocked_states=[],
                    holiday_filtering=True, call_ratio=1.0, dialer_interval_s=10,
                    max_active_calls=0, max_calls_per_prospect=10, min_minutes_between_calls=30,
                    wrap_up_s=3, hopper_expiry_min=30, fill_interval_min=5, damper_mode="disabled",
                    damper_threshold=0.5, dupe_days=90, expire_days=90, list_priority=50,
                    check_on_dial=True, report_schedule="disabled", report_format="csv",
                    report_compression="none", report_recipients=[],
                    report_timezone="America/New_York", created_at=now, updated_at=now,
                )
            )


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg3():
    assert db.normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    with pytest.raises(db.DialerError, match="supports `sqlite` and `postgresql\\+psycopg` only"):
        db.normalize_url("mysql://u@h/d")
    with pytest.raises(db.DialerError, match="is not a database URL"):
        db.normalize_url("not a url")


def test_staging_skips_the_write_ahead_log_on_postgresql(engine):
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            persistence = conn.exec_driver_sql(
                "SELECT relpersistence FROM pg_class WHERE relname = ?".replace("?", "%s"), ("upload_rows",)
            ).scalar_one()
            assert persistence == "u"
        else:  # SQLite has no per-table logging: the whole file stays in WAL mode
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_migration_0007_keeps_existing_prospects_hopper_and_calls(blank_db_url):
    """0006 → head on a database in use: tables other tables point at are rebuilt (SQLite) without losing a row."""
    engine = db.make_engine(blank_db_url)
    ts = "'2026-11-27 15:00:00+00:00'"
    try:
        db.migrate(engine, "0006")
        campaign_id = 3
        with engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO workspaces (id, name, created_at) VALUES (1, 'acme', {ts})")
            conn.exec_driver_sql(
                "INSERT INTO campaigns (id, workspace_id, slug, name, locale, agent, state, dial_earliest_min, "
                "dial_latest_min, blocked_states, holiday_filtering, call_ratio, dialer_interval_s, "
                "max_active_calls, max_calls_per_prospect, min_minutes_between_calls, wrap_up_s, "
                "hopper_expiry_min, fill_interval_min, damper_mode, damper_threshold, dupe_days, expire_days, "
                "list_priority, check_on_dial, report_schedule, report_format, report_compression, "
                "report_recipients, report_timezone, created_at, updated_at) VALUES "
                f"({campaign_id}, 1, 'renewals', 'Renewals', 'US', 'agent', 'active', 540, 1260, '[]', true, "
                "1.0, 5, 10, 3, 60, 10, 30, 5, 'off', 0.5, 30, 30, 50, true, 'daily', 'csv', 'none', '[]', "
                f"'UTC', {ts}, {ts})"
            )
            conn.exec_driver_sql(
                "INSERT INTO prospect_lists (id, campaign_id, source_key, source_version, filename, status, "
                "priority, dupe_days, expire_days, warnings, created_at) "
                f"VALUES (7, {campaign_id}, 'k', '1', 'a.csv', 'loaded', 50, 30, 30, '[]', {ts})"
            )
            for i in (1, 2):
                conn.exec_driver_sql(
                    "INSERT INTO prospects (id, campaign_id, list_id, source_row, phone_e164, candidate_zones, "
                    "zone_group, priority, status, attempts, next_dial_at, expires_at, loaded_at, updated_at, "
                    f"custom_fields) VALUES ({i}, {campaign_id}, 7, {i}, '+1415555000{i}', 'America/Los_Angeles', "
                    f"'America/Los_Angeles|CA|CA', 50, 'queued', 0, {ts}, {ts}, {ts}, {ts}, '{{}}')"
                )
            conn.exec_driver_sql(
                "INSERT INTO hopper (campaign_id, prospect_id, priority, status, queued_at) "
                f"VALUES ({campaign_id}, 1, 50, 'queued', {ts})"
            )
            conn.exec_driver_sql(
                "INSERT INTO call_attempts (campaign_id, prospect_id, attempt_number, idempotency_key, "
                f"phone_e164, status, created_at) VALUES ({campaign_id}, 2, 1, 'k-2', '+14155550002', 'ended', {ts})"
            )
        assert db.migrate(engine)[1] == db.head_revision()
        with engine.connect() as conn:
            counts = [
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (t.prospect_lists, t.prospects, t.hopper, t.call_attempts)
            ]
            assert counts == [1, 2, 1, 1]
            assert conn.execute(sa.select(t.campaigns.c.list_loads)).scalar_one() == 0
        # The one foreign key now ties a prospect's campaign to its list's.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.update(t.prospects).where(t.prospects.c.id == 1).values(campaign_id=campaign_id + 1)
            )
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
