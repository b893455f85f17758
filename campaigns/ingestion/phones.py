"""Phone numbers: normalisation to E.164 for a campaign's locale, one row or a million.

`normalize_one` is the reference: libphonenumber (`phonenumbers`) parses and
validates each value, and the project's policy (no letters, no spreadsheet
mangling, only the locale's countries) is applied on top. `normalize_many`
gives exactly the same answers for a whole column: values in the common
North American shapes are parsed and validated with vectorised RE2 regexes
built from libphonenumber's own metadata (region order, leading digits,
number-type patterns); everything else goes through `normalize_one`.
A property test holds the two to the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberDesc
from phonenumbers.phonenumberutil import ValidationResult

from campaigns.core.regions import LOCALES

NANP_REGIONS: tuple[str, ...] = tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])

REASONS = {
    "missing_phone": "no phone number",
    "spreadsheet_mangled": "looks like a spreadsheet turned the number into scientific notation; "
    "export the phone column as text",
    "letters": "contains letters",
    "not_a_number": "cannot be read as a phone number",
    "too_short": "too few digits for a phone number",
    "too_long": "too many digits for a phone number",
    "invalid_number": "not a valid number (area code or exchange not in service)",
    "outside_locale": "outside the campaign's countries",
}

_SCIENTIFIC = re.compile(r"^\s*[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+\s*$")
# Extension markers libphonenumber understands and we accept; anything else
# alphabetic in the value is a letter (vanity numbers like 1-800-FLOWERS).
_EXTENSION = re.compile(
    r"(?:\s*[,;]?\s*(?:e?xt(?:ension|n)?\.?|x|#|ext\s*no\.?)\s*\d+\s*#?\s*)$", re.IGNORECASE
)
_LETTER = re.compile(r"[^\W\d_]")

# The shapes the fast path takes: an optional +1 or 1, a 3-digit area code
# (maybe in parentheses), 3 + 4 digits with single separators, an optional
# "ext"/"x" extension. RE2 syntax (pyarrow.compute), named groups required.
_FAST = (
    r"^[ \t]*(?:\+?1[ .\-]?)?(?:\((?P<a>[2-9]\d\d)\)|(?P<b>[2-9]\d\d))[ .\-]?"
    r"(?P<c>[2-9]\d\d)[ .\-]?(?P<d>\d{4})"
    r"(?:[ \t]*(?i:ext\.?|x)[ \t]*(?P<e>\d{1,6}))?[ \t]*$"
)


@dataclass(frozen=True)
class Normalized:
    e164: str | None
    extension: str | None
    region: str | None
    reason: str | None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def message(self) -> str | None:
        if self.reason is None:
            return None
        text = REASONS[self.reason]
        return f"{text} ({self.detail})" if self.detail else text


def default_region(locale: str) -> str:
    return "CA" if locale == "CA" else "US"


def normalize_one(raw: object, locale: str) -> Normalized:
    """Parse one value the way a careful person would; the reference for `normalize_many`."""
    countries = LOCALES[locale]["countries"]
    text = "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)
    if not text.strip():
        return Normalized(None, None, None, "missing_phone")
    if _SCIENTIFIC.match(text):
        return Normalized(None, None, None, "spreadsheet_mangled", text.strip())
    if _LETTER.search(_EXTENSION.sub("", text)):
        return Normalized(None, None, None, "letters")
    try:
        number = phonenumbers.parse(text, default_region(locale))
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.TOO_SHORT_NSN:
            return Normalized(None, None, None, "too_short")
        if exc.error_type == NumberParseException.TOO_LONG:
            return Normalized(None, None, None, "too_long")
        return Normalized(None, None, None, "not_a_number")
    if number.country_code != 1:
        return Normalized(None, None, None, "outside_locale", f"country code +{number.country_code}")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in (ValidationResult.TOO_SHORT, ValidationResult.INVALID_LENGTH):
        return Normalized(None, None, None, "too_short" if possible == ValidationResult.TOO_SHORT else "too_long")
    if possible == ValidationResult.TOO_LONG:
        return Normalized(None, None, None, "too_long")
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return Normalized(None, None, None, "too_short", "no area code")
    region = phonenumbers.region_code_for_number(number)
    if not phonenumbers.is_valid_number(number):
        return Normalized(None, None, None, "invalid_number")
    if region not in countries:
        return Normalized(None, None, region, "outside_locale", f"{region} is not in locale {locale}")
    if number.extension and len(number.extension) > 20:
        return Normalized(None, None, None, "too_long", "extension longer than 20 digits")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Normalized(e164, number.extension or None, region, None)


@lru_cache(maxsize=65_536)
def _normalize_cached(raw: str, locale: str) -> Normalized:
    return normalize_one(raw, locale)


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _ten_digit_pattern(desc: PhoneNumberDesc | None) -> str | None:
    """The national number pattern of a kind of number, if that kind can be 10 digits long."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and 10 not in desc.possible_length:
        return None
    return desc.national_number_pattern


@lru_cache(maxsize=None)
def _region_rules() -> tuple[tuple[str, str | None, tuple[str, ...], tuple[str, ...]], ...]:
    """Per NANP region, in libphonenumber's order: leading digits, required and alternative patterns.

    Mirrors `_region_code_for_number_from_list` and `_number_type_helper` for
    10-digit national numbers: a number is of a known type when it matches
    the general description and one of the type descriptions (mobile counts
    only when its pattern differs from fixed line's).
    """
    rules = []
    for region in NANP_REGIONS:
        md = PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue

        general_pattern = _ten_digit_pattern(md.general_desc)
        general = (_anchored(general_pattern),) if general_pattern else ()
        kinds = [
            md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
            md.pager, md.uan, md.voicemail, md.fixed_line,
        ]
        if not md.same_mobile_and_fixed_line_pattern:
            kinds.append(md.mobile)
        alternatives = tuple(_anchored(p) for p in map(_ten_digit_pattern, kinds) if p)
        leading = f"^(?:{md.leading_digits})" if md.leading_digits else None
        rules.append((region, leading, general, alternatives))
    return tuple(rules)


def _known_type(national: pa.Array, general: tuple[str, ...], alternatives: tuple[str, ...]) -> np.ndarray:
    if not general or not alternatives:
        return np.zeros(len(national), dtype=bool)
    mask = pc.match_substring_regex(national, general[0])
    any_type = pc.match_substring_regex(national, alternatives[0])
    for pattern in alternatives[1:]:
        any_type = pc.or_(any_type, pc.match_substring_regex(national, pattern))
    return pc.and_(mask, any_type).to_numpy(zero_copy_only=False)


def _classify(national: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Region (object array, None when none) and validity for 10-digit national numbers."""
    n = len(national)
    region = np.full(n, None, dtype=object)
    valid = np.zeros(n, dtype=bool)
    open_rows = np.arange(n)
    for code, leading, general, alternatives in _region_rules():
        if open_rows.size == 0:
            break
        subset = national.take(pa.array(open_rows))
        known = _known_type(subset, general, alternatives)
        if leading is not None:
            claimed = pc.match_substring_regex(subset, leading).to_numpy(zero_copy_only=False)
        else:
            claimed = known
        rows = open_rows[claimed]
        region[rows] = code
        valid[rows] = known[claimed]
        open_rows = open_rows[~claimed]
    return region, valid


def normalize_many(values: pd.Series, locale: str) -> pd.DataFrame:
    """Normalise a column; returns e164, extension, region, reason and detail per row (same index)."""
    columns = normalize_columns(values.to_numpy(dtype=object), locale)
    return pd.DataFrame({k: pd.Series(v, dtype=object, index=values.index) for k, v in columns.items()})


def normalize_columns(raw: np.ndarray, locale: str) -> dict[str, np.ndarray]:
    """`normalize_many` on an object array, returning object arrays (None where empty).

    The form the staging step uses: no DataFrame is built, so no column is
    converted to Arrow strings and back.
    """
    countries = set(LOCALES[locale]["countries"])
    n = len(raw)
    out = {
        "e164": np.full(n, None, dtype=object),
        "extension": np.full(n, None, dtype=object),
        "region": np.full(n, None, dtype=object),
        "reason": np.full(n, None, dtype=object),
        "detail": np.full(n, None, dtype=object),
    }
    if n == 0:
        return out
    raw = np.asarray(raw, dtype=object)
    missing = pd.isna(raw)
    if missing.any():
        raw = raw.copy()
        raw[missing] = ""
    array = pa.array(raw, type=pa.string(), from_pandas=True)
    parts = pc.extract_regex(array, _FAST)
    fast = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    fast_rows = np.flatnonzero(fast)
    if fast_rows.size:
        matched = parts.filter(pa.array(fast))
        area = pc.if_else(
            pc.equal(pc.struct_field(matched, "a"), ""),
            pc.struct_field(matched, "b"),
            pc.struct_field(matched, "a"),
        )
        national = pc.binary_join_element_wise(
            area, pc.struct_field(matched, "c"), pc.struct_field(matched, "d"), ""
        )
        region, valid = _classify(national)
        e164 = pc.binary_join_element_wise("+1", national, "").to_numpy(zero_copy_only=False)
        ext = pc.struct_field(matched, "e").to_numpy(zero_copy_only=False)
        in_locale = np.isin(region.astype(str), list(countries))
        ok = valid & in_locale
        out["region"][fast_rows[valid]] = region[valid]
        ok_rows = fast_rows[ok]
        out["e164"][ok_rows] = e164[ok]
        ext_ok = ext[ok]
        out["extension"][ok_rows] = np.where(ext_ok == "", None, ext_ok)
        invalid_rows = fast_rows[~valid]
        out["reason"][invalid_rows] = "invalid_number"
        outside = valid & ~in_locale
        out["reason"][fast_rows[outside]] = "outside_locale"
        out["detail"][fast_rows[outside]] = [f"{r} is not in locale {locale}" for r in region[outside]]
    slow_rows = np.flatnonzero(~fast)
    for row in slow_rows:
        # Junk repeats ("", "N/A", "unknown"): the reference answer is cached per value.
        result = _normalize_cached(str(raw[row]), locale)
        out["e164"][row] = result.e164
        out["extension"][row] = result.extension
        out["region"][row] = result.region
        out["reason"][row] = result.reason
        out["detail"][row] = result.detail
    return out


def message_for(reason: str | None, detail: str | None) -> str | None:
    if reason is None:
        return None
    text = REASONS[reason]
    return f"{text} ({detail})" if detail else text
