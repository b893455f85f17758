"""The campaign file format: defaults, ranges and one clear sentence per bad value."""

from __future__ import annotations

import pytest

from campaigns.setup.settings import (
    CampaignSettings,
    SettingsError,
    load_settings_file,
    parse_settings,
    slugify,
)
from tests.helpers import EXAMPLES, MINIMAL, campaign_file


def test_defaults_are_the_products():
    s = parse_settings(MINIMAL)
    assert s.slug == "spring-renewals"
    assert s.state == "active"
    assert (s.dial_window.earliest, s.dial_window.latest) == ("09:00", "21:00")
    assert s.blocked_states == [] and s.holiday_filtering is True
    d = s.dialing
    assert (d.call_ratio, d.dialer_interval_s, d.max_active_calls, d.max_calls_per_prospect) == (1.0, 10, 0, 10)
    assert (d.min_minutes_between_calls, d.wrap_up_s, d.hopper_expiry_min, d.fill_interval_min) == (30, 3, 30, 5)
    assert d.damper.mode == "disabled"
    assert (d.pacing, d.target_abandon_rate) == ("ratio", 0.02)
    assert (s.uploads.dupe_days, s.uploads.expire_days) == (90, 90)
    assert s.dnc.check_on_dial is True and s.dnc.dnc_disposition is None
    assert (s.reports.schedule, s.reports.format, s.reports.compression) == ("end_of_dialing", "csv", "none")


def test_example_file_parses_with_every_key():
    settings, keys = load_settings_file(EXAMPLES / "campaign.yaml")
    assert settings.slug == "feb-reminders"
    assert settings.dnc.dnc_disposition == "Do Not Call"
    assert [d.title for d in settings.dispositions] == ["Interested", "Not Home", "Call Back", "Do Not Call"]
    assert settings.reports.compression == "zip"
    assert keys == set(CampaignSettings.model_fields)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("February Appointment Reminders", "february-appointment-reminders"),
        ("  Q3 — Renewals (West)!  ", "q3-renewals-west"),
        ("###", "campaign"),
    ],
)
def test_slug_is_derived_from_name(name, slug):
    assert slugify(name) == slug


def test_locale_is_case_insensitive_and_blocked_states_normalised():
    s = parse_settings({**MINIMAL, "locale": "ca", "blocked_states": ["qc", "ON", "qc"]})
    assert s.locale == "CA" and s.blocked_states == ["ON", "QC"]


def test_unquoted_yaml_time_is_read_as_a_time(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: x\nworkspace: acme\nlocale: US\nagent: a\ndial_window: {earliest: 10:30, latest: 20:00}\n"
    )
    settings, _ = load_settings_file(path)
    assert (settings.dial_window.earliest, settings.dial_window.latest) == ("10:30", "20:00")


BAD_VALUES = [
    ({"bogus": 1}, "unknown key `bogus`"),
    ({"dialing": {"ratio": 2}}, "unknown key `dialing.ratio`"),
    ({"dispositions": [{"title": "A", "final": True}]}, "unknown key `dispositions[0].final`"),
    ({"locale": "MX"}, "`locale` must be 'US' or 'CA' (got 'MX')"),
    ({"state": "running"}, "`state` must be 'active', 'paused', 'inactive' or 'archived'"),
    ({"dial_window": {"earliest": "9am"}}, "`dial_window.earliest` must be a time HH:MM"),
    ({"dial_window": {"earliest": "21:00", "latest": "09:00"}}, "earliest (21:00) must be before latest (09:00)"),
    ({"blocked_states": ["ZZ"]}, "ZZ is not a state, province or territory of locale US"),
    ({"locale": "CA", "blocked_states": ["TX"]}, "TX is not a state, province or territory of locale CA"),
    ({"holiday_filtering": "sometimes"}, "`holiday_filtering` must be a valid boolean"),
    ({"dialing": {"call_ratio": 0.5}}, "`dialing.call_ratio` must be between 1.0 and 10.0 (got 0.5)"),
    ({"dialing": {"dialer_interval_s": 1}}, "`dialing.dialer_interval_s` must be between 2 and 15 (got 1)"),
    ({"dialing": {"dialer_interval_s": 16}}, "`dialing.dialer_interval_s` must be between 2 and 15 (got 16)"),
    ({"dialing": {"max_active_calls": -1}}, "`dialing.max_active_calls` must be between 0"),
    ({"dialing": {"max_calls_per_prospect": 0}}, "`dialing.max_calls_per_prospect` must be between 1"),
    ({"dialing": {"min_minutes_between_calls": -5}}, "`dialing.min_minutes_between_calls` must be between 0"),
    ({"dialing": {"wrap_up_s": -1}}, "`dialing.wrap_up_s` must be between 0"),
    ({"dialing": {"hopper_expiry_min": 0}}, "`dialing.hopper_expiry_min` must be between 1"),
    ({"dialing": {"fill_interval_min": 0}}, "`dialing.fill_interval_min` must be between 1"),
    ({"dialing": {"hopper_min_level": 0}}, "`dialing.hopper_min_level` must be between 1 and 100000 (got 0)"),
    ({"dialing": {"damper": {"mode": "predictive"}}}, "`dialing.damper.mode` must be 'disabled' or 'waiting_stations'"),
    ({"dialing": {"damper": {"mode": "waiting_stations", "threshold": 1.5}}}, "`dialing.damper.threshold` must be above 0 and at most 1"),
    ({"dialing": {"pacing": "fast"}}, "`dialing.pacing` must be 'ratio' or 'predictive' (got 'fast')"),
    ({"dialing": {"target_abandon_rate": 0.05}}, "`dialing.target_abandon_rate` must be above 0 and at most 0.03 (got 0.05)"),
    ({"dialing": {"target_abandon_rate": 0}}, "`dialing.target_abandon_rate` must be above 0 and at most 0.03 (got 0)"),
    ({"dialing": {"target_abandon_rate": "2%"}}, "`dialing.target_abandon_rate` must be a valid number"),
    ({"uploads": {"dupe_days": -2}}, "`uploads.dupe_days` must be between -1 and 3650 (got -2)"),
    ({"uploads": {"expire_days": 0}}, "`uploads.expire_days` must be between 1 and 3650 (got 0)"),
    ({"uploads": {"priority": 101}}, "`uploads.priority` must be between 0 and 100 (got 101)"),
    ({"uploads": {"priority": -1}}, "`uploads.priority` must be between 0 and 100 (got -1)"),
    ({"dnc": {"lists": ["Not A Slug"]}}, "`dnc.lists[0]` must be lowercase letters"),
    ({"dnc": {"dnc_disposition": "Do Not Call"}}, "dnc.dnc_disposition 'Do Not Call' is not among the campaign's dispositions"),
    (
        {"dnc": {"dnc_disposition": "Stop"}, "dispositions": [{"title": "Stop"}]},
        "dnc.dnc_disposition 'Stop' must be a disposition with dnc: true",
    ),
    ({"dispositions": [{"title": "A"}, {"title": "a"}]}, "title 'a' appears twice"),
    ({"dispositions": [{"title": ""}]}, "`dispositions[0].title`"),
    ({"reports": {"schedule": "hourly"}}, "`reports.schedule` must be 'end_of_dialing', 'midnight' or 'disabled'"),
    ({"reports": {"format": "xlsx"}}, "`reports.format` must be 'csv'"),
    ({"reports": {"compression": "rar"}}, "`reports.compression` must be 'none', 'zip' or 'gz'"),
    ({"reports": {"recipients": ["ops-at-example"]}}, "'ops-at-example' is not an email address"),
    ({"reports": {"timezone": "Mars/Olympus"}}, "'Mars/Olympus' is not an IANA time zone"),
    ({"workspace": "Acme Inc"}, "`workspace` must be lowercase letters"),
    ({"slug": "../etc"}, "`slug` must be lowercase letters"),
]


@pytest.mark.parametrize(("change", "sentence"), BAD_VALUES, ids=[s for _, s in BAD_VALUES])
def test_bad_values_are_refused_with_one_sentence_naming_the_key(tmp_path, change, sentence):
    path = campaign_file(tmp_path, {**MINIMAL, **change})
    with pytest.raises(SettingsError) as info:
        load_settings_file(path)
    message = str(info.value)
    assert sentence in message
    assert message.startswith(str(path))
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("missing", ["name", "workspace", "locale", "agent"])
def test_required_keys(missing):
    data = {k: v for k, v in MINIMAL.items() if k != missing}
    with pytest.raises(SettingsError, match=f"`{missing}` is required"):
        parse_settings(data, "f.yaml")


def test_not_yaml_not_a_mapping_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SettingsError, match=r"broken.yaml: is not valid YAML at line \d+"):
        load_settings_file(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="expected a mapping of campaign settings"):
        load_settings_file(listing)
    with pytest.raises(SettingsError, match="nope.yaml: no such file"):
        load_settings_file(tmp_path / "nope.yaml")
