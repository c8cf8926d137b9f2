"""The committed US area -> state table answers exactly as phonenumbers' geocoder would."""

import os
import subprocess
import sys

import phonenumbers
import pytest
from phonenumbers import geocoder
from phonenumbers.geodata import GEOCODE_DATA

from campaigns.delivery.quiet_hours import _phone_place, _phone_place_cache_clear, _phone_place_parsed
from campaigns.delivery.us_phone_states import state_from_description, us_phone_state


def _us_prefixes():
    for key, names in GEOCODE_DATA.items():
        if key.startswith("1") and len(key) >= 4 and names.get("en"):
            number = phonenumbers.parse(f"+1{key[1:4]}2345678", None)
            if phonenumbers.region_code_for_number(number) == "US":
                yield key[1:], names["en"]


def test_every_us_geocoding_prefix_gives_the_geocoders_state():
    # Fails after a phonenumbers upgrade that moved a prefix: run scripts/us_phone_states.py.
    checked = 0
    for prefix, description in _us_prefixes():
        national = (prefix + "0000000")[:10]
        assert us_phone_state(national) == state_from_description(description), (prefix, description)
        checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    "e164",
    ["+13055550100", "+12015550100", "+12016315555", "+15645550100", "+12125550100", "+18005550100", "+19075550123"],
)
def test_a_numbers_state_is_the_geocoders(e164):
    number = phonenumbers.parse(e164, None)
    expected = state_from_description(geocoder.description_for_number(number, "en"))
    assert us_phone_state(str(number.national_number)) == expected


def test_named_states_and_odd_descriptions():
    assert us_phone_state("3055550100") == "FL"
    assert us_phone_state("2016315555") == "NY"  # an exchange that the data places across the river
    assert us_phone_state("2015550100") == "NJ"
    assert us_phone_state("5645550100") == "WA"  # "Washington State"
    assert us_phone_state("8005550100") == ""  # toll free: no state
    assert us_phone_state("") == ""
    assert state_from_description("Miami, FL") == "FL"
    assert state_from_description("new york") == "NY"
    assert state_from_description("Narnia") == ""


def test_the_quiet_hours_place_of_a_florida_number_has_its_state():
    _phone_place_cache_clear()
    assert _phone_place("+13055550100").region == "FL"
    assert _phone_place("+13055550100").country == "US"
    assert _phone_place("+442071234567").region == ""


def test_sending_does_not_load_the_geocoder_data(tmp_path):
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); "
        "import campaigns.delivery.sending, campaigns.delivery.launch, campaigns.tasks; "
        "print('phonenumbers.geodata' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"TANDEM_VAR_DIR": str(tmp_path)}
    command = [sys.executable, "-c", code]  # our own interpreter and code only
    answer = subprocess.run(command, capture_output=True, text=True, env=env, check=True)  # noqa: S603
    assert answer.stdout.strip().splitlines()[-1] == "False"


def test_a_plus_one_number_points_where_its_exchange_does_whatever_its_last_four_digits():
    """The cache answers a +1 number from the first number of its exchange: check that holds across the plan."""
    import random

    rng = random.Random(12)
    for area in range(200, 1000):
        for _ in range(3):
            exchange = f"+1{area}{rng.randrange(200, 1000)}"
            places = {_phone_place_parsed(f"{exchange}{rng.randrange(10_000):04d}") for _ in range(4)}
            assert len(places) == 1, exchange
    _phone_place_parsed.cache_clear()


def test_the_exchange_cache_gives_what_parsing_the_whole_number_gives():
    _phone_place_cache_clear()
    numbers = ["+13055550100", "+13055559999", "+14165550123", "+18095550100", "+12125550100", "+442071234567"]
    assert [_phone_place(n) for n in numbers] == [_phone_place_parsed(n) for n in numbers]
