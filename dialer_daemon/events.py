"""Reading the platform's events for a campaign and applying them, page by page.

Each page is applied in one transaction with the move of the campaign's events
cursor, so an event is applied once even when a lease changes hands mid-tick.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from campaigns.core.db import Engine
from campaigns.core.lifecycle import CallEventType
from campaigns.core.model import Campaign
from campaigns.dialing import calls, runtime
from dialer_daemon.report import TickReport
from dialer_daemon.voice import VoiceClient

log = logging.getLogger("dialer.daemon")


class EventReader:
    def __init__(self, engine: Engine, client: VoiceClient) -> None:
        self.engine = engine
        self.client = client

    def apply(self, campaign: Campaign, name: str, now: datetime, report: TickReport) -> None:
        """Apply every event after the campaign's cursor; counts go to `report`."""
        while True:
            with self.engine.begin() as conn:
                cursor = runtime.events_cursor(conn, campaign.id)
            events, next_cursor = self.client.events(name, cursor)
            confirmed: list[int] = []
            counts: Counter = Counter()
            with self.engine.begin() as conn:
                if not runtime.advance_events_cursor(conn, campaign.id, cursor, next_cursor):
                    log.warning("campaign %s: its events were applied by another daemon meanwhile", name,
                                extra={"event": "events_skipped", "campaign": name})
                    return
                for event in events:
                    counts[event["type"]] += 1
                    done = calls.apply_event(conn, campaign, event, now, confirmed)
                    if done is not None:
                        report.finished[done.status or "unchanged"] += 1
                        report.warnings.extend(done.warnings)
            report.answered += counts[CallEventType.ANSWERED]
            report.abandoned += counts[CallEventType.ABANDONED]
            report.events += len(events)
            report.placed += len(confirmed)  # placed after all: the answer to our request was lost
            if not events or next_cursor == cursor:
                return
