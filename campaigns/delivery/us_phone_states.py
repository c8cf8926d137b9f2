"""The US state a phone number's area belongs to, without loading phonenumbers' geocoder.

The geocoder holds every country's place names in every language (about 100 MB per process and 0.6 s
to import); quiet-hours rules only need a US number's state. ``us_phone_states_data`` is generated from
the geocoder's own data by ``scripts/us_phone_states.py``, and a test checks that they still agree.
"""

from __future__ import annotations

import re

from campaigns.delivery.us_phone_states_data import STATE_BY_PREFIX

US_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "district of columbia": "DC", "washington d.c.": "DC",
    "washington dc": "DC", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL",
    "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI",
    "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX",
    "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA", "washington state": "WA",
    "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
}  # fmt: skip
_STATE_SUFFIX = re.compile(r",\s*([A-Z]{2})$")
_LONGEST = max(map(len, STATE_BY_PREFIX), default=3)


def state_from_description(value: str) -> str:
    """A state as rules write it (FL) from "Florida", "Miami, FL" or "fl"; "" if unsure."""
    value = (value or "").strip()
    if match := _STATE_SUFFIX.search(value):
        return match.group(1)
    if len(value) == 2 and value.isalpha():
        return value.upper()
    return US_STATES.get(value.lower(), "")


def us_phone_state(national_number: str) -> str:
    """The state of a US number given as its 10 national digits ("3055550100" -> "FL"); "" if unknown."""
    for length in range(min(_LONGEST, len(national_number)), 2, -1):
        if state := STATE_BY_PREFIX.get(national_number[:length]):
            return state
    return ""
