"""Sending at the same wall time in every recipient's zone ("10:00 on 5 Dec, wherever they are").

The campaign launches once, at the first instant any zone on Earth reaches the wall time (UTC+14), and
each delivery is written with ``not_before`` = that wall time in its recipient's zone. The claim and the
sweeper leave a row alone until its ``not_before``, so each zone's rows go out when its time comes,
picked up by the minutely sweeper (nothing is scheduled ahead with a countdown).

Set-based: the launch reads the distinct zone keys of the customers (one grouped query), this module
turns each key into its UTC instant in Python (DST-correct, through ``zoneinfo``), and the launch's own
INSERT joins that small table, so no per-customer Python runs whatever the audience size.

Which zone counts, per customer, in order:

1. a zone set explicitly on the profile;
2. the home store's zone (as the store is now) for a zone taken from the store;
3. for a zone taken from the phone: the latest-arriving of the zones the number's area may be in (a
   geographic number has one; a toll-free or mobile range may span a country);
4. no zone of their own but a phone: the latest-arriving zone of the phone's country (a US number with
   no zone gets it at 10:00 in the westernmost US zone, so nobody gets it early);
5. no zone and no phone but a home store: the store's zone;
6. nothing known: the latest-arriving of the retailer's active store zones (the places they could be
   in, as quiet hours reads them), else the zone the campaign was scheduled in.

Rules 3 and 4 read each phone's leading five characters (``+1415``: the NANP area code; elsewhere the
country code and the first digits of the area), parsing the lowest and highest number of each prefix
and taking the later answer.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable

from django.conf import settings
from django.db import connection

from campaigns.delivery.quiet_hours import _is_zone, _phone_place, country_zones, local_time_release

UTC = dt.UTC
ANYWHERE = "anywhere"
_PREFIX = 5


def zone_key_sql(customer: str, store: str) -> str:
    """SQL giving each customer's zone key: an IANA name, ``area:<prefix>``, ``country:<prefix>`` or ``anywhere``.

    ``customer`` and ``store`` are the aliases of the customer row and its (left-joined) home store.
    """
    c, s = customer, store
    return (
        "CASE "
        f"WHEN {c}.time_zone_source = 'explicit' AND {c}.time_zone <> '' THEN {c}.time_zone "
        f"WHEN {c}.time_zone_source = 'store' AND COALESCE({s}.time_zone, '') <> '' THEN {s}.time_zone "
        f"WHEN {c}.time_zone_source = 'store' AND {c}.time_zone <> '' THEN {c}.time_zone "
        f"WHEN {c}.time_zone_source = 'phone' AND COALESCE({c}.phone, '') <> '' "
        f"THEN 'area:' || SUBSTR({c}.phone, 1, {_PREFIX}) "
        f"WHEN {c}.time_zone_source = 'phone' AND {c}.time_zone <> '' THEN {c}.time_zone "
        f"WHEN COALESCE({c}.phone, '') <> '' THEN 'country:' || SUBSTR({c}.phone, 1, {_PREFIX}) "
        f"WHEN COALESCE({s}.time_zone, '') <> '' THEN {s}.time_zone "
        f"ELSE '{ANYWHERE}' END"
    )


def _latest(instants: Iterable[dt.datetime]) -> dt.datetime | None:
    return max(instants, default=None)


def _release_in(zones: Iterable[str], wall: dt.datetime) -> dt.datetime | None:
    valid = sorted({zone for zone in zones if _is_zone(zone)})
    return _latest(local_time_release(local_dt=wall, zones=valid).values()) if valid else None


def earliest_release(wall: dt.datetime) -> dt.datetime:
    """The first UTC instant at which any zone reaches the wall time ``wall`` (naive): the launch time."""
    return min(local_time_release(local_dt=wall, zones=zoneinfo.available_timezones()).values())


def latest_release(wall: dt.datetime) -> dt.datetime:
    """The last UTC instant at which any zone reaches ``wall``: after it, everyone has had it."""
    return max(local_time_release(local_dt=wall, zones=zoneinfo.available_timezones()).values())


def release_for_keys(
    *, wall: dt.datetime, keys: dict[str, tuple[str | None, str | None]], anywhere: Iterable[str], schedule_zone: str
) -> dict[str, dt.datetime]:
    """Each zone key's UTC release instant for the wall time ``wall``; pure.

    ``keys`` maps each key to the lowest and highest phone of its group (for the phone keys).
    ``anywhere`` are the zones someone with no zone at all could be in; ``schedule_zone`` is the last
    resort. A key that names no zone (a mistyped one) gets the ``anywhere`` instant, never an earlier one.
    """
    fallback = _release_in(anywhere, wall) or _release_in([schedule_zone], wall) or _release_in(["UTC"], wall)
    result = {ANYWHERE: fallback}
    for key, phones in keys.items():
        kind, _, prefix = key.partition(":")
        places = [place for place in (_phone_place(phone) for phone in phones if phone) if place is not None]
        if kind == "area" and prefix:
            instant = _release_in([zone for place in places for zone in place.zones], wall)
        elif kind == "country" and prefix:
            instant = _release_in([zone for place in places for zone in country_zones(place.country)], wall)
        else:
            instant = _release_in([key], wall)
        result[key] = instant or fallback
    return result


def zone_keys() -> dict[str, tuple[str | None, str | None]]:
    """The distinct zone keys of the active profiles, with each group's lowest and highest phone.

    ONE grouped query over the customers (cheaper than running the audience twice; keys of people
    outside it only add rows to a table of a few hundred: zones and phone prefixes). Reads only.
    """
    customers = connection.ops.quote_name("customers_customer")
    stores = connection.ops.quote_name("customers_store")
    statement = (
        f"SELECT {zone_key_sql('c', 's')} AS zone_key, MIN(c.phone), MAX(c.phone) FROM {customers} c "  # noqa: S608
        f"LEFT JOIN {stores} s ON s.id = c.home_store_id "
        "WHERE c.merged_into_id IS NULL AND c.erased_at IS NULL GROUP BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def release_table_sql(releases: dict[str, dt.datetime]) -> tuple[str, list]:
    """``releases`` as a row source ``(zone_key, release_at)`` for a join, portable to SQLite; its params."""
    adapt = connection.ops.adapt_datetimefield_value
    cast = "CAST(%s AS timestamp with time zone)" if connection.vendor == "postgresql" else "%s"
    rows, params = [], []
    for key, instant in sorted(releases.items()):
        rows.append(f"SELECT CAST(%s AS TEXT) AS zone_key, {cast} AS release_at")
        params.extend([key, adapt(instant)])
    return " UNION ALL ".join(rows), params


def active_store_zones() -> list[str]:
    from customers.models import Store

    return sorted(set(Store.objects.filter(is_active=True).values_list("time_zone", flat=True)))


def default_schedule_zone() -> str:
    return settings.TIME_ZONE
