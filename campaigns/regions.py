"""The states, provinces and territories a locale covers.

A campaign's locale decides which numbers it may dial and which region codes
its settings (blocked states) may name. US covers the United States with its
territories and Canada, since they share the North American numbering plan;
CA covers Canada alone.
"""

from __future__ import annotations

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
US_TERRITORIES = frozenset("PR VI GU AS MP".split())
CA_PROVINCES = frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split())

LOCALES: dict[str, dict] = {
    "US": {
        "regions": US_STATES | US_TERRITORIES | CA_PROVINCES,
        "countries": ("US", "PR", "VI", "GU", "AS", "MP", "CA"),
    },
    "CA": {
        "regions": CA_PROVINCES,
        "countries": ("CA",),
    },
}


def regions_for(locale: str) -> frozenset[str]:
    return LOCALES[locale]["regions"]
