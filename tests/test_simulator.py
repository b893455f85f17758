"""The voice simulator in-process: fates fixed per call, profile changes at simulated instants.

Paired runs of two pacers against simulators with the same seed must meet the same calls:
the k-th call of a campaign has one fate whatever was placed before it and when.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from campaigns.core.errors import DialerError
from dialer_cli.daemon import simulator_profiles
from dialer_cli.main import app
from dialer_daemon.simulator import Fate, FateKind, Profile, ProfileChange, Simulator

START = datetime(2026, 10, 21, 14, 0, tzinfo=UTC)  # 10:00 in New York
TITLES = ["Interested", "Not Interested", "Call Back"]
MIX = Profile(sessions=25, answer_rate=0.35, machine_rate=0.15, busy_rate=0.10, fail_rate=0.05,
              dispositions={"Interested": 1.0, "Not Interested": 3.0, "Call Back": 1.0})


class SteppedClock:
    """Monotonic seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def place(sim: Simulator, campaign: str, key: str) -> dict:
    body = {"campaign": campaign, "to": "+12125550100", "agent": "a", "prospect_id": 1,
            "metadata": {"dispositions": TITLES, "callback_dispositions": ["Call Back"]}}
    status, call = sim.place_call(body, key)
    assert status in (200, 201)
    return call


def paced_run(per_tick: int, ticks: int, *, other_campaign: bool = False) -> Simulator:
    """A pacer placing `per_tick` calls every 5 simulated seconds, then everything played out."""
    clock = SteppedClock()
    sim = Simulator(seed=5, start=START, default=MIX, clock=clock)
    for tick in range(ticks):
        for n in range(per_tick):
            place(sim, "acme/spring", f"spring-{tick}-{n}")
            if other_campaign:  # another campaign's calls between this one's must not shift its fates
                place(sim, "acme/fall", f"fall-{tick}-{n}")
        clock.value += 5
    clock.value += 6 * 3600
    sim.advance()
    return sim


def by_index(sim: Simulator, campaign: str) -> dict[int, list[dict]]:
    events: dict[int, list[dict]] = defaultdict(list)
    for event in sim.events(campaign, 0, 100_000)["events"]:
        index = sim.call_index(event["call_id"])
        assert index is not None
        events[index].append(event)
    return events


def offsets(sim: Simulator, events: list[dict]) -> list[tuple]:
    """The call's events as (type, seconds after placement, outcome, duration)."""
    placed = datetime.fromisoformat(sim.call(events[0]["call_id"])["created_at"])
    return [(e["type"], (datetime.fromisoformat(e["at"]) - placed).total_seconds(), e.get("outcome"),
             e.get("duration_s")) for e in events]


def test_paired_pacers_meet_the_same_calls():
    slow, fast = paced_run(3, 40), paced_run(7, 40, other_campaign=True)
    common = 3 * 40
    # The same call went out at different instants, under different session loads.
    assert slow.calls("acme/spring")[common - 1]["created_at"] != fast.calls("acme/spring")[common - 1]["created_at"]
    fates = [slow.fate("acme/spring", k) for k in range(1, common + 1)]
    assert fates == [fast.fate("acme/spring", k) for k in range(1, common + 1)]
    assert {f.kind for f in fates} == set(FateKind)  # every kind of call is among them
    assert all(f.disposition in TITLES for f in fates)

    slow_events, fast_events = by_index(slow, "acme/spring"), by_index(fast, "acme/spring")
    connected_in_both = 0
    for k, fate in enumerate(fates, start=1):
        mine, theirs = offsets(slow, slow_events[k]), offsets(fast, fast_events[k])
        if fate.kind is not FateKind.PERSON:  # no session comes into it: the same events at the same offsets
            assert mine == theirs
            continue
        s, t = (next((e for e in run[k] if e["type"] == "ended"), None) for run in (slow_events, fast_events))
        if s and t:  # connected in both runs (perhaps after different waits): the same talk and disposition
            connected_in_both += 1
            assert s["duration_s"] == t["duration_s"] == pytest.approx(fate.talk_s, abs=0.001)
            assert s["disposition"] == t["disposition"] == fate.disposition
            assert ("callback_at" in s) == ("callback_at" in t) == (fate.disposition == "Call Back")
    abandoned = sum(e["type"] == "abandoned" for events in fast_events.values() for e in events)
    assert connected_in_both > 20 and abandoned > 0  # the fast pacer's extra calls crowd the sessions


def test_a_resent_request_keeps_its_index_and_fate():
    sim = Simulator(seed=5, start=START, default=MIX, clock=SteppedClock())
    first = place(sim, "acme/spring", "k1")
    again = place(sim, "acme/spring", "k1")
    second = place(sim, "acme/spring", "k2")
    assert first["call_id"] == again["call_id"]
    assert (sim.call_index(first["call_id"]), sim.call_index(second["call_id"])) == (1, 2)
    assert sim.call_index("call-nope") is None


def test_a_fate_can_be_drawn_before_the_call_is_placed():
    sim = Simulator(seed=5, start=START, default=MIX, clock=SteppedClock())
    ahead = [sim.fate("acme/spring", k, titles=TITLES) for k in (1, 2, 3)]
    for key in ("a", "b", "c"):
        place(sim, "acme/spring", key)
    assert [sim.fate("acme/spring", k) for k in (1, 2, 3)] == ahead
    assert isinstance(ahead[0], Fate)
    with pytest.raises(ValueError, match="start at 1"):
        sim.fate("acme/spring", 0)


def test_other_seeds_and_other_campaigns_give_other_fates():
    one, two = Simulator(seed=1, start=START, default=MIX), Simulator(seed=2, start=START, default=MIX)
    fates = [one.fate("acme/spring", k, at=START) for k in range(1, 101)]
    assert fates == [Simulator(seed=1, start=START, default=MIX).fate("acme/spring", k, at=START)
                     for k in range(1, 101)]
    assert len({f.ring_s for f in fates} & {two.fate("acme/spring", k, at=START).ring_s for k in range(1, 101)}) == 0
    assert [f.kind for f in fates] != [two.fate("acme/spring", k, at=START).kind for k in range(1, 101)]
    assert [f.talk_s for f in fates] != [one.fate("acme/fall", k, at=START).talk_s for k in range(1, 101)]


def test_a_profile_change_applies_to_the_calls_placed_from_its_instant():
    base = Profile(sessions=10, answer_rate=0.2, talk_s_mean=120.0)
    at = START + timedelta(minutes=30)
    sim = Simulator(seed=3, start=START, default=base,
                    changes=[ProfileChange(at=at, values={"answer_rate": 0.35, "talk_s_mean": 300})])
    before = [sim.fate("acme/spring", k, at=at - timedelta(seconds=1)) for k in range(1, 4001)]
    after = [sim.fate("acme/spring", k, at=at) for k in range(1, 4001)]

    def answered(fates: list[Fate]) -> float:
        return sum(f.kind is FateKind.PERSON for f in fates) / len(fates)

    assert answered(before) == pytest.approx(0.20, abs=0.025)
    assert answered(after) == pytest.approx(0.35, abs=0.025)
    assert statistics.mean(f.talk_s for f in before) == pytest.approx(120, rel=0.08)
    assert statistics.mean(f.talk_s for f in after) == pytest.approx(300, rel=0.08)
    # The same uniforms under both profiles: whoever answered before still answers, for longer.
    assert all(a.kind is FateKind.PERSON and a.talk_s >= b.talk_s
               for b, a in zip(before, after, strict=True) if b.kind is FateKind.PERSON)


def test_placed_calls_follow_the_profile_of_their_placement_instant():
    nobody = Profile(sessions=2, answer_rate=0, machine_rate=0, busy_rate=0, fail_rate=0)
    at = START + timedelta(seconds=60)
    clock = SteppedClock()
    sim = Simulator(seed=3, start=START, default=nobody, clock=clock, profiles={"acme/own": nobody}, changes=[
        ProfileChange(at=at, values={"answer_rate": 1.0, "ring_s": [2, 2]}),  # the default
        ProfileChange(at=at + timedelta(seconds=60), values={"busy_rate": 1.0}, campaign="acme/spring"),
    ])
    kinds: dict[str, list[FateKind]] = defaultdict(list)
    for step in range(6):  # placements at 0, 30, 60, 90, 120 and 150 s
        for name in ("acme/spring", "acme/fall", "acme/own"):
            call = place(sim, name, f"{name}-{step}")
            kinds[name].append(sim.fate(name, sim.call_index(call["call_id"]) or 0).kind)
        clock.value += 30
    person, no_answer, busy = FateKind.PERSON, FateKind.NO_ANSWER, FateKind.BUSY
    assert kinds["acme/fall"] == [no_answer] * 2 + [person] * 4
    assert kinds["acme/spring"] == [no_answer] * 2 + [person] * 2 + [busy] * 2  # busy first in the roll
    assert kinds["acme/own"] == [no_answer] * 6  # a profile of its own: the default's changes do not reach it
    assert sim.profile_at("acme/fall", at).ring_s == (2.0, 2.0)
    assert sim.profile_at("acme/fall", at - timedelta(microseconds=1)).answer_rate == 0


def test_sessions_cannot_change_and_changes_come_in_time_order():
    with pytest.raises(ValueError, match="'sessions'"):
        ProfileChange(at=START, values={"sessions": 3})
    with pytest.raises(ValueError, match="unknown simulator profile key 'answer'"):
        ProfileChange(at=START, values={"answer": 0.3})
    with pytest.raises(ValueError, match="probability"):
        ProfileChange(at=START, values={"answer_rate": 1.5})
    with pytest.raises(ValueError, match="UTC offset"):
        ProfileChange(at=datetime(2026, 10, 21, 10, 30), values={"answer_rate": 0.3})
    later = ProfileChange(at=START + timedelta(hours=1), values={"answer_rate": 0.3})
    earlier = ProfileChange(at=START, values={"answer_rate": 0.2}, campaign="acme/spring")
    with pytest.raises(ValueError, match="time order"):
        Simulator(seed=1, start=START, changes=[later, earlier])
    Simulator(seed=1, start=START, changes=[earlier, later, later])  # equal instants apply in list order


PROFILE_YAML = """
default: {answer_rate: 0.2, talk_s_mean: 120}
campaigns:
  acme/spring: {sessions: 4, ring_s: [2, 8]}
changes:
  - at: 2026-10-21T10:30:00-04:00
    answer_rate: 0.35
    talk_s_mean: 300
  - {at: "2026-10-21T15:00Z", campaign: acme/spring, dispositions: {Interested: 2, Call Back: 1}}
"""


def test_dialer_simulator_reads_changes_from_the_profile_file(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE_YAML, encoding="utf-8")
    default, campaigns, changes = simulator_profiles(path, 6)
    assert (default.sessions, default.answer_rate, default.talk_s_mean) == (6, 0.2, 120.0)
    assert (campaigns["acme/spring"].sessions, campaigns["acme/spring"].ring_s) == (4, (2.0, 8.0))
    assert changes == [
        ProfileChange(at=datetime(2026, 10, 21, 14, 30, tzinfo=UTC),
                      values={"answer_rate": 0.35, "talk_s_mean": 300}),
        ProfileChange(at=datetime(2026, 10, 21, 15, 0, tzinfo=UTC),
                      values={"dispositions": {"Interested": 2, "Call Back": 1}}, campaign="acme/spring"),
    ]
    sim = Simulator(seed=1, start=START, default=default, profiles=campaigns, changes=changes)
    assert sim.profile_at("acme/fall", datetime(2026, 10, 21, 14, 30, tzinfo=UTC)).answer_rate == 0.35
    assert sim.profile_at("acme/spring", datetime(2026, 10, 21, 14, 30, tzinfo=UTC)).answer_rate == 0.2
    assert sim.profile_at("acme/spring", datetime(2026, 10, 21, 15, 0, tzinfo=UTC)).dispositions == \
        {"Interested": 2, "Call Back": 1}
    assert simulator_profiles(None, 6) == (Profile(sessions=6), {}, [])


@pytest.mark.parametrize(("text", "message"), [
    ("changes:\n  - {at: 2026-10-21T10:30:00Z, sessions: 4}\n",
     "change 1: a profile change at 2026-10-21T10:30:00+00:00 sets 'sessions'"),
    ("changes:\n  - {at: 2026-10-21T11:00Z, answer_rate: 0.3}\n  - {at: 2026-10-21T10:00Z, answer_rate: 0.2}\n",
     "changes must be in time order, and change 2 (2026-10-21T10:00:00+00:00) comes before change 1"),
    ("changes:\n  - {answer_rate: 0.3}\n", "change 1 has no `at:`"),
    ("changes:\n  - {at: 10:30, answer_rate: 0.3}\n", "change 1: `at:` 630 is not an ISO-8601 instant"),
    ("changes:\n  - {at: 2026-10-21 10:30:00, answer_rate: 0.3}\n",
     "change 1: `at:` 2026-10-21T10:30:00 is not an ISO-8601 instant with a UTC offset"),
    ("changes:\n  - {at: 'half past ten', answer_rate: 0.3}\n", "`at:` 'half past ten' is not an ISO-8601 instant"),
    ("changes:\n  - {at: 2026-10-21T10:30Z, answr_rate: 0.3}\n",
     "change 1: unknown simulator profile key 'answr_rate'"),
    ("changes:\n  - {at: 2026-10-21T10:30Z, talk_s_mean: lots}\n",
     "'talk_s_mean': expected a number of seconds above 0"),
    ("changes: {at: 2026-10-21T10:30Z}\n", "`changes:` is a list of mappings"),
    ("default: {answer_rate: 0.2}\nchanged: []\n", "`default:` and `campaigns:` mappings and a `changes:` list only"),
    ("campaigns: [acme/spring]\n", "`campaigns:` a mapping of campaign name"),
])
def test_a_bad_profile_file_is_refused_in_one_sentence(tmp_path, text, message):
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DialerError) as raised:
        simulator_profiles(path, 10)
    sentence = str(raised.value)
    assert message in sentence and sentence.startswith(str(path)) and sentence.endswith(".") and "\n" not in sentence


def test_dialer_simulator_prints_the_profile_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DIALER_HOME", str(tmp_path / "home"))
    path = tmp_path / "profile.yaml"
    path.write_text("changes:\n  - {at: 2026-10-21T10:30:00Z, sessions: 4}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["simulator", "--profile", str(path)])
    assert result.exit_code == 2
    assert "sets 'sessions'" in result.output and "Traceback" not in result.output
