"""The National DNC Registry's store: versions as manifests of exact per-area-code sets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pyroaring import BitMap

from campaigns.core import schema as t
from campaigns.registry import store

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _save(engine, sets, *, base=None, kind="full", obtained_at=T0, refreshed=(), added=0, deleted=0):
    with engine.begin() as conn:
        return store.save_version(conn, kind=kind, obtained_at=obtained_at, imported_at=obtained_at, source="test",
                                  base=base, sets=sets, refreshed=refreshed, added=added, deleted=deleted)


def test_a_version_answers_exactly_and_shares_unchanged_sets(engine):
    rng = random.Random(5)
    listed = {area: {rng.randrange(2_000_000, 10_000_000) for _ in range(2000)} for area in (212, 646, 907)}
    first = _save(engine, {area: BitMap(numbers) for area, numbers in listed.items()})
    assert (first.area_codes, first.numbers, first.based_on_id) == (3, sum(map(len, listed.values())), None)
    registry = store.open_version(engine)
    assert registry is not None and registry.version == first
    phones = [f"+1{area}{n:07d}" for area, numbers in listed.items() for n in numbers]
    unlisted = [f"+1212{n:07d}" for n in range(2_000_000, 2_000_500) if n not in listed[212]]
    outside = ["+13125550100", "+442071234567", "", "+1212555010", "+1212abc0100"]
    assert all(registry.contains(p) for p in phones)
    assert not any(registry.contains(p) for p in unlisted + outside)
    assert registry.listed(phones + unlisted + outside).tolist() == [True] * len(phones) + [False] * (
        len(unlisted) + len(outside))
    assert registry.covers(907) and not registry.covers(312)

    # A second version replaces one area code: the other two sets are shared, not stored again.
    second = _save(engine, {907: BitMap([1234567])}, base=registry, obtained_at=T0 + timedelta(days=3))
    again = store.open_version(engine)
    assert again.version.id == second.id and again.version.based_on_id == first.id
    assert again.contains("+19071234567") and not again.contains(phones[-1])
    assert again.obtained_at(907) == T0 + timedelta(days=3) and again.obtained_at(212) == T0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.dnc_registry_sets)).scalar_one() == 4
    assert second.checksum != first.checksum


def test_pruned_versions_keep_their_record_and_a_tampered_set_is_refused(engine):
    base = None
    for day in range(5):
        base_version = _save(engine, {212: BitMap([day])}, base=base, obtained_at=T0 + timedelta(days=day))
        base = store.open_version(engine, base_version.id)
    with engine.begin() as conn:
        assert store.prune(conn, keep=2) == 3
        kept = {v.id: v.sets_kept for v in store.versions(conn)}
    assert list(kept.values()) == [True, True, False, False, False]
    with engine.connect() as conn:  # the evidence stays: every version's manifest, area by area
        assert all(store.manifest(conn, version_id)[212].obtained_at for version_id in kept)
    with engine.begin() as conn:
        conn.execute(sa.update(t.dnc_registry_sets).values(data=BitMap([99]).serialize()))
    registry = store.open_version(engine)
    with pytest.raises(store.RegistryCorrupt, match="does not match its checksum"):
        registry.contains("+12120000004")


def test_the_cache_notices_a_new_version(engine):
    clock = [0.0]
    cache = store.RegistryCache(engine, check_every_s=30, monotonic=lambda: clock[0])
    assert cache.get() is None
    _save(engine, {212: BitMap([5550100])})
    assert cache.get() is None  # not asked again within 30 s
    clock[0] = 31
    assert cache.get().contains("+12125550100")
    _save(engine, {212: BitMap([5550101])}, base=cache.get())
    clock[0] = 62
    assert cache.get().contains("+12125550101") and not cache.get().contains("+12125550100")
