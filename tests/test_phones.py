"""Phone normalisation: the accepted shapes, every rejection reason, and the fast path's exactness."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.ingestion.phones import normalize_many, normalize_one


def _row(frame: pd.DataFrame, i: int) -> tuple:
    return tuple(None if pd.isna(v) else v for v in frame.iloc[i][["e164", "extension", "region", "reason", "detail"]])


def _one(value: str, locale: str) -> tuple:
    r = normalize_one(value, locale)
    return (r.e164, r.extension, r.region, r.reason, r.detail)


@pytest.mark.parametrize(
    ("raw", "e164", "ext"),
    [
        ("+14155551234", "+14155551234", None),
        ("(415) 555-1234", "+14155551234", None),
        ("415.555.1234", "+14155551234", None),
        ("1-415-555-1234", "+14155551234", None),
        ("415 555 1234 ext 12", "+14155551234", "12"),
        ("415-555-1234 x99", "+14155551234", "99"),
        ("  4155551234  ", "+14155551234", None),
        ("+1 (787) 555-1234", "+17875551234", None),  # Puerto Rico
        ("340-555-1234", "+13405551234", None),  # US Virgin Islands
        ("671 555 1234", "+16715551234", None),  # Guam
        ("684 622 1234", "+16846221234", None),  # American Samoa
        ("670 555 1234", "+16705551234", None),  # Northern Mariana Islands
        ("(416) 555-1234", "+14165551234", None),  # Toronto, Canada is in the US locale
    ],
)
def test_accepted_shapes_in_the_us_locale(raw, e164, ext):
    frame = normalize_many(pd.Series([raw]), "US")
    assert _row(frame, 0)[:2] == (e164, ext)
    assert _row(frame, 0) == _one(raw, "US")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "missing_phone"),
        ("   ", "missing_phone"),
        ("415555123", "too_short"),
        ("555-1234", "too_short"),
        ("41555512345", "too_long"),
        ("4155551234567890123", "too_long"),
        ("1-800-FLOWERS", "letters"),
        ("call me maybe", "letters"),
        ("415-555-CALL", "letters"),
        ("212-055-1234", "invalid_number"),  # exchange cannot start with 0
        ("112-555-1234", "invalid_number"),  # area code cannot start with 1
        ("876-555-1234", "outside_locale"),  # Jamaica
        ("+1 242 345 6789", "outside_locale"),  # Bahamas
        ("+44 20 7946 0958", "outside_locale"),
        ("4.15555E+09", "spreadsheet_mangled"),
        ("4.155551234e9", "spreadsheet_mangled"),
        ("---", "not_a_number"),
    ],
)
def test_rejections_carry_a_reason(raw, reason):
    frame = normalize_many(pd.Series([raw]), "US")
    assert _row(frame, 0)[3] == reason
    assert _row(frame, 0) == _one(raw, "US")
    assert normalize_one(raw, "US").message


def test_canada_locale_takes_only_canada():
    frame = normalize_many(pd.Series(["(416) 555-1234", "+14155551234", "787 555 1234"]), "CA")
    assert [_row(frame, i)[3] for i in range(3)] == [None, "outside_locale", "outside_locale"]


DIGIT = st.sampled_from("0123456789")
SEPARATOR = st.sampled_from(["", " ", "-", ".", "  ", "/", "--"])


@st.composite
def phone_like(draw) -> str:
    area = "".join(draw(st.lists(DIGIT, min_size=3, max_size=3)))
    exchange = "".join(draw(st.lists(DIGIT, min_size=3, max_size=3)))
    line = "".join(draw(st.lists(DIGIT, min_size=draw(st.integers(2, 5)), max_size=5)))
    prefix = draw(st.sampled_from(["", "1", "+1", "1 ", "+1 ", "+1-", "1-", "+", "+44 ", "0"]))
    if draw(st.booleans()):
        area = f"({area})"
    body = prefix + area + draw(SEPARATOR) + exchange + draw(SEPARATOR) + line
    if draw(st.integers(0, 3)) == 0:
        marker = draw(st.sampled_from([" ext ", " ext. ", "x", " x ", " #", " extension ", "EXT", " X"]))
        body += marker + "".join(draw(st.lists(DIGIT, min_size=0, max_size=8)))
    return draw(st.sampled_from(["", " ", "\t"])) + body + draw(st.sampled_from(["", " "]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(phone_like(), st.text(alphabet="0123456789 +-().xXet#", max_size=22), st.text(max_size=12)), min_size=1, max_size=40),
       st.sampled_from(["US", "CA"]))
def test_fast_path_gives_exactly_phonenumbers_answer(values, locale):
    frame = normalize_many(pd.Series(values), locale)
    for i, value in enumerate(values):
        assert _row(frame, i) == _one(value, locale), value


def test_fast_path_agrees_on_every_area_code():
    """Every NPA with a valid-looking exchange, through both paths."""
    values = [f"({npa}) 555-01{npa % 100:02d}" for npa in range(200, 1000)]
    values += [f"1{npa}2{npa % 89 + 10}4567" for npa in range(200, 1000)]
    for locale in ("US", "CA"):
        frame = normalize_many(pd.Series(values), locale)
        assert [_row(frame, i) for i in range(len(values))] == [_one(v, locale) for v in values]


@pytest.mark.parametrize("raw", ["2125551234\nx12", "2125551234x\r12", "2125551234 ext.\f5", "\n4155551234", "4155551234\t"])
def test_control_whitespace_goes_the_reference_way(raw):
    frame = normalize_many(pd.Series([raw]), "US")
    assert _row(frame, 0) == _one(raw, "US")
