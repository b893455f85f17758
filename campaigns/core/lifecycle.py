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


class PacingMode(StrEnum):
    """How the daemon decides how many calls to place each tick (`campaigns.pacing_mode`)."""

    RATIO = "ratio"  # ⌊idle sessions × call ratio (after the damper)⌋ − calls ringing
    PREDICTIVE = "predictive"  # as many calls as expected free sessions absorb at the target abandon rate


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


class FillOrigin(StrEnum):
    """Who filled a hopper (`hopper_fills.filled_by`): the daemon holding the campaign, on its
    tick; a Dagster run of the `hopper` asset (which materializes its own fills); `dialer hopper
    fill`; the demo."""

    DAEMON = "daemon"
    RUN = "run"
    CLI = "cli"
    DEMO = "demo"


class HopperStatus(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"


class AttemptStatus(StrEnum):
    """Where one call attempt is (`call_attempts.status`)."""

    PLACING = "placing"  # recorded and counted; the platform has not confirmed the request yet
    PLACED = "placed"  # the platform accepted the request
    RINGING = "ringing"
    ANSWERED = "answered"  # a person (or a machine) picked up
    ENDED = "ended"  # settled: `outcome` says how

    @classmethod
    def live(cls) -> tuple[AttemptStatus, ...]:
        """Attempts not yet ended: the calls in flight."""
        return (cls.PLACING, cls.PLACED, cls.RINGING, cls.ANSWERED)

    @classmethod
    def not_answered(cls) -> tuple[AttemptStatus, ...]:
        """Live attempts nobody has answered yet: the calls still ringing, for pacing."""
        return (cls.PLACING, cls.PLACED, cls.RINGING)

    @classmethod
    def placed_states(cls) -> tuple[AttemptStatus, ...]:
        """Live attempts the platform confirmed: the ones to ask the platform about when quiet."""
        return (cls.PLACED, cls.RINGING, cls.ANSWERED)


class CallOutcome(StrEnum):
    """How an ended attempt ended (`call_attempts.outcome`).

    `completed` is a call a person resolved with a disposition; the others are system
    outcomes for calls no person resolved, plus `not_placed` (the platform never dialed: the
    attempt's count is given back) and `placed_late` (the platform placed a request recorded
    as never placed: it counts as a call again, its result is not applied).
    """

    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    MACHINE = "machine"
    ABANDONED = "abandoned"  # answered, but no agent session was free in time
    FAILED = "failed"
    INVALID_NUMBER = "invalid_number"
    NOT_PLACED = "not_placed"
    PLACED_LATE = "placed_late"

    @classmethod
    def platform_outcomes(cls) -> tuple[CallOutcome, ...]:
        """Outcomes the voice platform may report; `not_placed` and `placed_late` only the dialer records."""
        return tuple(o for o in cls if o not in (cls.NOT_PLACED, cls.PLACED_LATE))



class DaemonState(StrEnum):
    """What a dialer daemon is doing (`daemons.state`, and its health endpoint's `state`)."""

    STARTING = "starting"  # health endpoint only: its heartbeat row is first written as running
    RUNNING = "running"
    DRAINING = "draining"  # stopping: finishes its calls, claims no new ones

    @classmethod
    def stored(cls) -> tuple[DaemonState, ...]:
        """States a daemon's heartbeat row may hold."""
        return (cls.RUNNING, cls.DRAINING)


class CallEventType(StrEnum):
    """The kinds of event the voice platform reports for a call (docs/voice-api.yaml)."""

    RINGING = "ringing"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    FAILED = "failed"
    ENDED = "ended"
