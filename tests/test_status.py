"""Campaign status: Running / Stopped / Completed / Inactive with prospect counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import CampaignStatus, ProspectStatus
from campaigns.reporting.status import campaign_status, derive_status
from campaigns.setup import registry
from campaigns.setup.settings import parse_settings
from tests.helpers import MINIMAL

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "prospects", "in_flight", "expected"),
    [
        ("paused", {"ready": 5}, 2, CampaignStatus.INACTIVE),
        ("inactive", {}, 0, CampaignStatus.INACTIVE),
        ("archived", {"done": 3}, 0, CampaignStatus.INACTIVE),
        ("active", {"ready": 5}, 1, CampaignStatus.RUNNING),
        ("active", {"ready": 5}, 0, CampaignStatus.STOPPED),
        ("active", {"callback": 1, "done": 9}, 0, CampaignStatus.STOPPED),
        ("active", {}, 0, CampaignStatus.STOPPED),
        ("active", {"done": 7, "dnc": 1, "exhausted": 2, "expired": 1}, 0, CampaignStatus.COMPLETED),
    ],
)
def test_derive_status(state, prospects, in_flight, expected):
    assert derive_status(state, prospects, in_flight) is expected


def _seed(engine, statuses: list[str], live_calls: int) -> int:
    with engine.begin() as conn:
        campaign_id = registry.apply_campaign(conn, parse_settings(MINIMAL), NOW).campaign_id
        list_id = conn.execute(
            sa.insert(t.prospect_lists)
            .values(
                campaign_id=campaign_id, source_key="inbox/acme/spring-renewals/a.csv",
                source_version="1", filename="a.csv", status="loaded", priority=50,
                dupe_days=90, expire_days=90, warnings=[], created_at=NOW,
            )
            .returning(t.prospect_lists.c.id)
        ).scalar_one()
        ids = []
        for i, status in enumerate(statuses):
            ids.append(
                conn.execute(
                    sa.insert(t.prospects)
                    .values(
                        campaign_id=campaign_id, list_id=list_id, source_row=i + 1,
                        phone_e164=f"+1415555{i:04d}", candidate_zones="America/Los_Angeles",
                        zone_group="America/Los_Angeles|CA|CA", priority=50, status=status,
                        next_dial_at=NOW, expires_at=NOW + timedelta(days=90), loaded_at=NOW,
                        updated_at=NOW, custom_fields={},
                    )
                    .returning(t.prospects.c.id)
                ).scalar_one()
            )
        for n in range(live_calls):
            conn.execute(
                sa.insert(t.call_attempts).values(
                    campaign_id=campaign_id, prospect_id=ids[n], attempt_number=1,
                    idempotency_key=f"k{n}", phone_e164="+14155550000", status="ringing",
                    created_at=NOW,
                )
            )
    return campaign_id


def test_status_counts_every_lifecycle_state(engine):
    campaign_id = _seed(engine, ["ready", "ready", "dialing", "done", "dnc"], live_calls=1)
    with engine.connect() as conn:
        report = campaign_status(conn, campaign_id, NOW)
    assert report.status is CampaignStatus.RUNNING
    assert report.prospects == {
        **{str(s): 0 for s in ProspectStatus}, "ready": 2, "dialing": 1, "done": 1, "dnc": 1
    }
    assert report.as_dict()["prospects_total"] == 5
    assert (report.calls_in_flight, report.uploads, report.hopper_depth) == (1, 1, 0)


def test_all_final_prospects_complete_the_campaign(engine):
    campaign_id = _seed(engine, ["done", "exhausted", "expired"], live_calls=0)
    with engine.connect() as conn:
        assert campaign_status(conn, campaign_id, NOW).status is CampaignStatus.COMPLETED
