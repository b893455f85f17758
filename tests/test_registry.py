"""Applying campaign files to the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.errors import DialerError, NotFound
from campaigns.core.lifecycle import CampaignState
from campaigns.setup import registry
from campaigns.setup.settings import SettingsError, load_settings_file, parse_settings
from tests.helpers import EXAMPLES, MINIMAL, snapshot

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def _apply(engine, data, now=T0, keys=None):
    settings = parse_settings(data)
    with engine.begin() as conn:
        return registry.apply_campaign(conn, settings, now, keys_given=keys)


def test_example_file_creates_workspace_lists_and_dispositions(engine):
    settings, keys = load_settings_file(EXAMPLES / "campaign.yaml")
    with engine.begin() as conn:
        result = registry.apply_campaign(conn, settings, T0, keys_given=keys)
    assert (result.action, result.created_workspace, result.created_dnc_lists) == (
        "created", True, ["internal"]
    )
    with engine.connect() as conn:
        assert registry.load_settings(conn, result.campaign_id) == settings


def test_applying_the_same_file_twice_writes_nothing(engine):
    settings, keys = load_settings_file(EXAMPLES / "campaign.yaml")
    with engine.begin() as conn:
        registry.apply_campaign(conn, settings, T0, keys_given=keys)
    before = snapshot(engine)
    with engine.begin() as conn:
        again = registry.apply_campaign(conn, settings, T0 + timedelta(hours=1), keys_given=keys)
    assert again.action == "unchanged" and again.changes == []
    assert snapshot(engine) == before


def test_changes_are_applied_and_listed(engine):
    _apply(engine, {**MINIMAL, "dnc": {"lists": ["internal"]}})
    result = _apply(
        engine,
        {
            **MINIMAL,
            "dialing": {"call_ratio": 2.5},
            "dnc": {"lists": ["internal", "state-registry"], "dnc_disposition": "DNC"},
            "dispositions": [{"title": "DNC", "contacted": True, "dnc": True}],
        },
        now=T0 + timedelta(minutes=5),
    )
    assert result.action == "updated"
    assert any(c.startswith("call_ratio: 1.0 → 2.5") for c in result.changes)
    assert any(c.startswith("dnc.lists:") for c in result.changes)
    assert result.created_dnc_lists == ["state-registry"]
    with engine.connect() as conn:
        loaded = registry.load_settings(conn, result.campaign_id)
        updated_at = conn.execute(sa.select(t.campaigns.c.updated_at)).scalar_one()
    assert loaded.dialing.call_ratio == 2.5
    assert loaded.dnc.lists == ["internal", "state-registry"]
    assert [d.title for d in loaded.dispositions] == ["DNC"]
    assert updated_at == T0 + timedelta(minutes=5)

    # Removing a list from the file unlinks it but keeps the (shared) list itself.
    _apply(engine, {**MINIMAL, "dnc": {"lists": ["internal"]}})
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.dnc_lists)).scalar_one() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(t.campaign_dnc_lists)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(t.dispositions)).scalar_one() == 0


def test_changing_locale_is_refused_and_nothing_is_written(engine):
    _apply(engine, MINIMAL)
    before = snapshot(engine)
    with pytest.raises(SettingsError, match="`locale` is US and cannot be changed to CA"):
        _apply(engine, {**MINIMAL, "locale": "CA", "agent": "other"})
    assert snapshot(engine) == before


def test_state_is_kept_unless_the_file_names_it(engine):
    created = _apply(engine, MINIMAL, keys=set(MINIMAL))
    with engine.begin() as conn:
        ref = registry.resolve_campaign(conn, created.slug)
        assert registry.set_state(conn, ref, CampaignState.PAUSED, T0)
    assert _apply(engine, MINIMAL, keys=set(MINIMAL)).action == "unchanged"
    with engine.connect() as conn:
        assert registry.resolve_campaign(conn, created.slug).state == "paused"
    resumed = _apply(engine, {**MINIMAL, "state": "active"}, keys={*MINIMAL, "state"})
    assert resumed.changes == ["state: 'paused' → 'active'"]


def test_resolve_by_slug_or_workspace_slug(engine):
    _apply(engine, MINIMAL)
    _apply(engine, {**MINIMAL, "workspace": "globex"})
    _apply(engine, {**MINIMAL, "name": "Only Here", "workspace": "globex"})
    with engine.connect() as conn:
        assert registry.resolve_campaign(conn, "only-here").workspace == "globex"
        assert registry.resolve_campaign(conn, "acme/spring-renewals").workspace == "acme"
        with pytest.raises(DialerError, match="exists in several workspaces .*name it as WORKSPACE/SLUG"):
            registry.resolve_campaign(conn, "spring-renewals")
        with pytest.raises(NotFound, match="No campaign `nope`"):
            registry.resolve_campaign(conn, "nope")
        assert [c.qualified_slug for c in registry.list_campaigns(conn)] == [
            "acme/spring-renewals", "globex/only-here", "globex/spring-renewals"
        ]


def test_set_state_reports_no_change(engine):
    _apply(engine, MINIMAL)
    with engine.begin() as conn:
        ref = registry.resolve_campaign(conn, "spring-renewals")
        assert registry.set_state(conn, ref, CampaignState.ARCHIVED, T0) is True
    with engine.begin() as conn:
        ref = registry.resolve_campaign(conn, "spring-renewals")
        assert ref.state == "archived"
        assert registry.set_state(conn, ref, CampaignState.ARCHIVED, T0) is False
