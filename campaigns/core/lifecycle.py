"""The names of every state a campaign, a prospect, a hopper row or a call can be in.

See DESIGN.md §4: every uploaded row ends in exactly one state. Rows that are
invalid or duplicates never become prospects; they are counted on their
upload (`prospect_lists`) and written to its rejects file.
"""

from __future__ import annotations

from enum import StrEnum


class CampaignState(StrEnum):
    """What an operator set the campaign to."""

    ACTIVE = "active"
    PAUSED = "paused"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


class CampaignStatus(StrEnum):
    """What the campaign is doing, derived from its state, prospects and calls."""

    RUNNING = "Running"  # active and calls are in flight
    STOPPED = "Stopped"  # active, prospects remain, no call in flight
    COMPLETED = "Completed"  # active, every prospect resolved
    INACTIVE = "Inactive"  # paused, inactive or archived


class ProspectStatus(StrEnum):
    READY = "ready"  # may be queued once its rules allow
    # In the hopper, waiting for a daemon. Reported, not stored: the hopper row
    # is the state and the prospect row keeps READY or CALLBACK (campaigns/hopper.py).
    QUEUED = "queued"
    DIALING = "dialing"  # claimed; a call is being placed or is live
    CALLBACK = "callback"  # a person asked to be called back at a time
    DNC = "dnc"  # on a do-not-call list or given the DNC disposition
    DONE = "done"  # contacted, final disposition
    EXHAUSTED = "exhausted"  # reached max calls per prospect without a contact
    EXPIRED = "expired"  # older than the upload's expire days

    @classmethod
    def open_states(cls) -> tuple[ProspectStatus, ...]:
        """States from which a prospect may still be called."""
        return (cls.READY, cls.QUEUED, cls.DIALING, cls.CALLBACK)

    @classmethod
    def waiting_states(cls) -> tuple[str, ...]:
        """Stored states of a prospect waiting for its next call (the hopper queues from these)."""
        return (str(cls.READY), str(cls.CALLBACK))

    @classmethod
    def final_states(cls) -> tuple[ProspectStatus, ...]:
        return (cls.DNC, cls.DONE, cls.EXHAUSTED, cls.EXPIRED)


class UploadStatus(StrEnum):
    PROCESSING = "processing"
    LOADED = "loaded"
    REJECTED = "rejected"


class RowOutcome(StrEnum):
    """Where each row of an upload ended up (the staging table's view)."""

    VALID = "valid"  # normalised; a prospect once its upload is loaded
    INVALID = "invalid"  # rejected, with its reason
    DUPLICATE = "duplicate"  # same number earlier in the file or loaded within dupe days
    DNC = "dnc"  # on a DNC list; loaded with the campaign's DNC disposition


class HopperStatus(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"


class CallOutcome(StrEnum):
    """System outcomes for calls no person resolved, plus `disposition` for those a person did."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    MACHINE = "machine"
    FAILED = "failed"
    ABANDONED = "abandoned"
    INVALID_NUMBER = "invalid_number"
    DISPOSITION = "disposition"
