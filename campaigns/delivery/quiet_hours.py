"""Recipient time zones, quiet hours and local-time release, computed for a whole sending chunk at once.

Three calls, each made once per chunk with rows already loaded (no query per recipient):

``recipient_zones(customers)``
    Where each customer may be: a ``Recipient`` with the zones they could be in (one when known) and the
    places (country, region) that pick their quiet-hours rules. At most two queries for any chunk size:
    the home stores not already loaded, and the retailer's store zones when some customer has neither a
    phone nor a store.

``quiet_hours_check(items=..., zones=..., now=...)``
    For each delivery, ``None`` (send now) or the UTC instant of the next allowed minute (defer with
    ``not_before``). Never earlier than ``now``; nothing is ever dropped. One query (the rules).

``local_time_release(local_dt=..., zones=...)``
    The UTC instant at which a local wall time happens in each zone, for "send at 10:00 in everyone's
    zone". ``recipient_release`` gives a customer's instant: the latest of their candidates' instants.

How a zone is known. ``Customer.time_zone`` counts when its source is explicit, the home store or the
phone; the "default" source never does (it is not the recipient's zone). A phone number can belong to
several zones (a toll-free US number): those are the candidates, limited to the number's own country
(phonenumbers lists every zone of the +1 plan). With neither phone nor store, the candidates are the
zones of the retailer's active stores, or else of the default phone region's country.

Unknown zone, unknown region. A message may go only at a minute that is allowed in every candidate zone,
so it is never early anywhere. When the region (state) is unknown, every region rule of the country
applies at once, and when the country is unknown every rule of the channel does: the narrowest window
wins. A customer's regions are their home store's state and their phone area's state (US numbers, from
libphonenumber's geocoding data, see ``us_phone_states``); when both are known and differ, both apply.

Empty intersections. Candidate zones far apart (stores in Paris and Sydney) may share no allowed minute on
some days; the search then simply moves on to the next day on which they do (DST shifts can open one).
When none of the next ``SEARCH_DAYS`` has one, the delivery goes at the earliest minute, within the next
two days, that is allowed in the largest number of candidate zones: never dropped, and early in as few
zones as the data allow.

In the chunk (rows claimed, customers loaded)::

    recipients = recipient_zones(customers.values())
    items = [(row.id, row.customer_id, row.channel) for row in claimed]
    deferred = quiet_hours_check(items=items, zones=recipients, now=now, category=cause.category)
    # deferred[row.id] is None: go on; else requeue the row with not_before=deferred[row.id]

Windows are ``[start, end)`` in local time, start before end on the same day. A spring-forward gap that
swallows the start of a window opens it at the first minute after the gap; a fall-back hour repeats, and
a wall time in it is allowed in both of its occurrences.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from django.conf import settings
from phonenumbers import timezone as phone_timezones

from campaigns.delivery.us_phone_states import state_from_description, us_phone_state

UTC = dt.UTC
DAY = dt.timedelta(days=1)
#: how far ahead a minute allowed in every candidate zone is looked for before the widest-coverage rule
SEARCH_DAYS = 8
_MAX_PASSES = 200

#: a known place: (country code, region code); "" is unknown
Area = tuple[str, str]


@dataclass(frozen=True)
class Recipient:
    """Where a customer may be: ``zones`` (one when ``known``), ``areas`` (country, region) for the rules."""

    zones: tuple[str, ...]
    known: bool
    areas: frozenset[Area] = frozenset({("", "")})


@dataclass(frozen=True)
class Window:
    """An allowed local window ``[start, end)`` in minutes after local midnight (``start < end``)."""

    start: int
    end: int

    @classmethod
    def of(cls, start: dt.time, end: dt.time) -> Window:
        return cls(start.hour * 60 + start.minute, end.hour * 60 + end.minute)


# --- Zones -----------------------------------------------------------------------------------------


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@functools.cache
def _valid_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _is_zone(name: str | None) -> bool:
    return bool(name) and name in _valid_zones()


@functools.cache
def _zone_tab() -> dict[str, tuple[str, ...]]:
    """Country code -> its zones, from the IANA ``zone.tab`` (the tzdata package's, else the system's)."""
    try:
        text = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        system = Path("/usr/share/zoneinfo/zone.tab")
        text = system.read_text() if system.exists() else ""
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3 and _is_zone(parts[2]):
            zones.setdefault(parts[0], []).append(parts[2])
    return {country: tuple(sorted(names)) for country, names in zones.items()}


def country_zones(country: str) -> tuple[str, ...]:
    """The IANA zones of a country (ISO 3166 code), empty when unknown."""
    return _zone_tab().get((country or "").upper(), ())


def _region_code(country: str, value: str) -> str:
    """A state as rules write it (FL) from a store's state field; "" if unsure."""
    value = (value or "").strip()
    if not value:
        return ""
    if country == "US":
        return state_from_description(value)
    return value.upper() if len(value) <= 3 and value.isalnum() else ""


@dataclass(frozen=True)
class _PhonePlace:
    zones: tuple[str, ...]
    country: str
    region: str


# What a +1 number points at is decided by its first six digits (area code and exchange): the plan's
# countries by area code, phonenumbers' zone prefixes by at most those six digits (a test samples every
# area code to hold it). One parse per exchange, not per number: a campaign's numbers share exchanges.
_NANP_PREFIX = 8  # "+1" and six digits
_NANP_PLACES_MAX = 200_000
_nanp_places: dict[str, _PhonePlace | None] = {}


def _phone_place(e164: str) -> _PhonePlace | None:
    """Zones, country and region a phone number points at (cached: parsing costs more than a lookup)."""
    if len(e164) == 12 and e164.startswith("+1") and e164[1:].isdigit():
        prefix = e164[:_NANP_PREFIX]
        try:
            return _nanp_places[prefix]
        except KeyError:
            if len(_nanp_places) >= _NANP_PLACES_MAX:
                _nanp_places.clear()
            place = _nanp_places[prefix] = _phone_place_parsed(e164)
            return place
    return _phone_place_parsed(e164)


def _phone_place_cache_clear() -> None:
    _nanp_places.clear()
    _phone_place_parsed.cache_clear()


# Large enough that a customer's email and SMS rows, in different chunks, parse the number once (~20 MB).
@functools.lru_cache(maxsize=65_536)
def _phone_place_parsed(e164: str) -> _PhonePlace | None:
    """What ``_phone_place`` answers, from parsing the whole number."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    country = phonenumbers.region_code_for_number(number) or ""
    zones = tuple(z for z in phone_timezones.time_zones_for_number(number) if _is_zone(z))
    own = country_zones(country)
    if own:
        # The +1 plan lists every zone from Guam to Bermuda for a non-geographic number: keep the country's.
        zones = tuple(z for z in zones if z in own) or own
    region = us_phone_state(str(number.national_number)) if country == "US" else ""
    if not zones and not country:
        return None
    return _PhonePlace(zones=tuple(sorted(set(zones))), country=country, region=region)


def recipient_zones(customers: Iterable, *, store_zones: Iterable[str] | None = None) -> dict[int, Recipient]:
    """Where each of ``customers`` (loaded ``Customer`` rows) may be, keyed by customer id.

    Reads ``id, phone, time_zone, time_zone_source, home_store_id``; a home store already loaded with
    ``select_related("home_store")`` is used as is, the others are fetched in one query. The retailer's
    store zones (for customers with neither phone nor store) cost one more query, only when needed, unless
    given as ``store_zones``. Read only; no locks.
    """
    from customers.models import Customer, Store

    customers = list(customers)
    stores: dict[int, Store] = {}
    missing = set()
    for customer in customers:
        if customer.home_store_id is None:
            continue
        if Customer.home_store.is_cached(customer) and customer.home_store is not None:
            stores[customer.home_store_id] = customer.home_store
        else:
            missing.add(customer.home_store_id)
    if missing - stores.keys():
        fields = ("id", "country", "state", "time_zone")
        stores.update((s.pk, s) for s in Store.objects.filter(pk__in=missing - stores.keys()).only(*fields))

    fallback: tuple[str, ...] | None = None

    def everywhere() -> tuple[str, ...]:
        nonlocal fallback
        if fallback is None:
            names = store_zones
            if names is None:
                names = Store.objects.filter(is_active=True).values_list("time_zone", flat=True).distinct()
            fallback = tuple(sorted({z for z in names if _is_zone(z)}))
            fallback = fallback or country_zones(settings.TANDEM["DEFAULT_PHONE_REGION"]) or ("UTC",)
        return fallback

    source = Customer.TimeZoneSource
    result: dict[int, Recipient] = {}
    for customer in customers:
        store = stores.get(customer.home_store_id)
        phone = _phone_place(customer.phone) if customer.phone else None
        areas = set()
        if store is not None:
            country = (store.country or "").upper()
            areas.add((country, _region_code(country, store.state)))
        if phone is not None:
            areas.add((phone.country, phone.region))
        # A known region makes the "region unknown" entry of the same country redundant.
        areas = {a for a in areas if a[1] or not any(b[0] == a[0] and b[1] for b in areas)} or {("", "")}

        own = customer.time_zone if _is_zone(customer.time_zone) else ""
        if customer.time_zone_source == source.STORE and store is not None and _is_zone(store.time_zone):
            zones, known = (store.time_zone,), True  # the store's zone as it is now, even mid-propagation
        elif customer.time_zone_source in (source.EXPLICIT, source.STORE) and own:
            zones, known = (own,), True
        elif customer.time_zone_source == source.PHONE and phone is not None and phone.zones:
            zones, known = phone.zones, len(phone.zones) == 1
        elif customer.time_zone_source == source.PHONE and own:
            zones, known = (own,), True
        elif phone is not None and phone.zones:
            zones, known = phone.zones, len(phone.zones) == 1
        elif store is not None and _is_zone(store.time_zone):
            zones, known = (store.time_zone,), True
        else:
            zones, known = everywhere(), False
        result[customer.pk] = Recipient(zones=zones, known=known, areas=frozenset(areas))
    return result


# --- Instants and windows --------------------------------------------------------------------------


def _offset(zone: zoneinfo.ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    return instant.astimezone(zone).utcoffset()


def _segment_end(zone: zoneinfo.ZoneInfo, t: dt.datetime) -> dt.datetime:
    """The next change of the zone's UTC offset after ``t``, or ``t + 1 day`` when none comes within a day.

    Assumes no two changes within a day (true of every zone since the 1940s).
    """
    offset = _offset(zone, t)
    if _offset(zone, t + DAY) == offset:
        return t + DAY
    lo = int(t.timestamp())  # offset(lo) == offset: changes happen on whole seconds
    hi = lo + 86400 + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(zone, dt.datetime.fromtimestamp(mid, UTC)) == offset:
            lo = mid
        else:
            hi = mid
    return dt.datetime.fromtimestamp(hi, UTC)


def _first_inside(zone: zoneinfo.ZoneInfo, start: int, end: int, t: dt.datetime) -> dt.datetime:
    """The earliest instant ``>= t`` whose local time of day is in ``[start, end)`` (minutes; wraps if start > end)."""
    for _ in range(16):
        boundary = _segment_end(zone, t)
        offset = _offset(zone, t)
        local = t.replace(tzinfo=None) + offset
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        minutes = (local - midnight) / dt.timedelta(minutes=1)
        inside = start <= minutes < end if start < end else (minutes >= start or minutes < end)
        if inside:
            return t
        opening = midnight + dt.timedelta(minutes=start) + (DAY if minutes >= start else dt.timedelta(0))
        candidate = (opening - offset).replace(tzinfo=UTC)
        if candidate < boundary:
            return candidate
        t = boundary  # the offset changes first: the local clock may jump into the window there
    raise RuntimeError(f"No allowed minute found in {zone.key}")  # pragma: no cover (a window opens every day)


def _allowed_everywhere(zones: tuple[str, ...], window: Window, now: dt.datetime) -> dt.datetime | None:
    """The earliest instant ``>= now`` allowed in every zone within ``SEARCH_DAYS``, else None."""
    t = now
    limit = now + SEARCH_DAYS * DAY
    for _ in range(_MAX_PASSES):
        moved = False
        for name in zones:
            later = _first_inside(_zone(name), window.start, window.end, t)
            if later > t:
                t, moved = later, True
        if not moved:
            return t
        if t > limit:
            return None
    return None


def _widest_coverage(zones: tuple[str, ...], window: Window, now: dt.datetime) -> dt.datetime:
    """The earliest instant within two days allowed in the most zones (when no instant suits all of them)."""
    points = {now}
    for name in zones:
        zone = _zone(name)
        opens = _first_inside(zone, window.start, window.end, now)
        closes = _first_inside(zone, window.end, window.start, opens)
        points.update((opens, _first_inside(zone, window.start, window.end, closes)))

    def covered(point: dt.datetime) -> int:
        return sum(_first_inside(_zone(n), window.start, window.end, point) == point for n in zones)

    return max(sorted(points), key=covered)  # max keeps the first (earliest) of equals


def next_allowed(zones: tuple[str, ...], window: Window, now: dt.datetime) -> tuple[dt.datetime, bool]:
    """The earliest instant ``>= now`` allowed in every zone, and True; or the widest-coverage one and False."""
    found = _allowed_everywhere(zones, window, now)
    if found is not None:
        return found, True
    return _widest_coverage(zones, window, now), False


# --- Rules -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    channel: str
    country: str
    region: str
    category: str
    window: Window


def _rules_load(channels: set[str]) -> list[_Rule]:
    from campaigns.models import QuietHoursRule

    rows = QuietHoursRule.objects.filter(channel__in=channels).values_list(
        "channel", "country", "region", "category", "start", "end"
    )
    return [_Rule(ch, co.upper(), rg.upper(), ca, Window.of(s, e)) for ch, co, rg, ca, s, e in rows]


def _window_for(rules: list[_Rule], channel: str, category: str, areas: frozenset[Area]) -> Window | None:
    """The narrowest window over every place the recipient may be; None when nothing restricts the channel."""
    relevant = [r for r in rules if r.channel == channel and r.category in ("", category)]
    if not relevant:
        return None
    places: set[Area] = set()
    for country, region in areas:
        countries = {country} if country else {r.country for r in relevant} | {""}
        for c in countries:
            if region and c == country:
                places.add((c, region))
            else:
                places.update((c, r.region) for r in relevant if r.country == c and r.region)
                places.add((c, ""))
    windows = []
    for country, region in places:
        matching = [
            r
            for r in relevant
            if r.country in ("", country) and r.region in ("", region) and (r.country or not r.region)
        ]
        if matching:
            best = max(matching, key=lambda r: (bool(r.region), bool(r.country), bool(r.category)))
            windows.append(best.window)
    if not windows:
        return None
    start, end = max(w.start for w in windows), min(w.end for w in windows)
    if start < end:
        return Window(start, end)
    # Disjoint windows (rules that cannot all hold on one day): the narrowest single rule stands.
    return min(windows, key=lambda w: w.end - w.start)


def quiet_hours_check(
    *,
    items: Iterable[tuple[int, int, str]],
    zones: Mapping[int, Recipient | tuple[str, ...]],
    now: dt.datetime,
    category: str = "",
) -> dict[int, dt.datetime | None]:
    """For each ``(delivery_id, customer_id, channel)``: None to send now, or the UTC minute to defer to.

    ``zones`` comes from ``recipient_zones`` (a bare tuple of zones is accepted, its place then unknown).
    ``category`` is the cause's campaign category, for rules limited to one. One query (the rules);
    reads only. A deferral is the earliest minute after ``now`` allowed in every candidate zone (see the
    module notes for the widest-coverage fallback), never earlier than ``now``.

    Raises ValueError for a naive ``now`` or a customer missing from ``zones``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    items = list(items)
    missing = {customer_id for _, customer_id, _ in items if customer_id not in zones}
    if missing:
        raise ValueError(f"No zones given for customers {sorted(missing)[:10]}")
    channels = {channel for _, _, channel in items}
    rules = _rules_load(channels) if channels else []
    windows: dict[tuple, Window | None] = {}
    answers: dict[tuple, dt.datetime | None] = {}
    result: dict[int, dt.datetime | None] = {}
    for delivery_id, customer_id, channel in items:
        recipient = zones[customer_id]
        if not isinstance(recipient, Recipient):
            recipient = Recipient(zones=tuple(recipient), known=len(recipient) == 1)
        key = (channel, recipient.areas)
        if key not in windows:
            windows[key] = _window_for(rules, channel, category, recipient.areas)
        window = windows[key]
        if window is None or not recipient.zones:
            result[delivery_id] = None
            continue
        answer_key = (recipient.zones, window)
        if answer_key not in answers:
            instant, _ = next_allowed(recipient.zones, window, now)
            answers[answer_key] = None if instant <= now else instant
        result[delivery_id] = answers[answer_key]
    return result


# --- Local-time release ----------------------------------------------------------------------------


def _local_instant(naive: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The UTC instant of a wall time: first occurrence when repeated, first minute after a gap when skipped."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _segment_end(zone, min(first, second))


def local_time_release(*, local_dt: dt.datetime, zones: Iterable[str]) -> dict[str, dt.datetime]:
    """The UTC instant at which the wall time ``local_dt`` (naive: a date and a time) happens in each zone.

    DST-correct: a wall time skipped by a spring-forward gap moves to the first minute after the gap; one
    repeated by a fall-back happens at its first occurrence. Pure; raises ValueError for an aware
    ``local_dt`` or a name that is not an IANA zone.
    """
    if local_dt.tzinfo is not None:
        raise ValueError("local_dt is a wall time: pass it without tzinfo")
    result = {}
    for name in zones:
        if not _is_zone(name):
            raise ValueError(f"{name!r} is not an IANA time zone")
        result[name] = _local_instant(local_dt, _zone(name))
    return result


def recipient_release(*, local_dt: dt.datetime, zones: Mapping[int, Recipient]) -> dict[int, dt.datetime]:
    """Each customer's release instant for ``local_dt``: the latest over their candidate zones, so that an
    unknown-zone customer is never reached before that wall time in any zone they could be in. Pure."""
    names = {name for recipient in zones.values() for name in recipient.zones}
    instants = local_time_release(local_dt=local_dt, zones=names)
    return {cid: max(instants[n] for n in r.zones) for cid, r in zones.items() if r.zones}


def release_groups(*, local_dt: dt.datetime, zones: Mapping[int, Recipient]) -> dict[dt.datetime, list[int]]:
    """Customers grouped by release instant, earliest first: one group per zone (or candidate set). Pure."""
    groups: dict[dt.datetime, list[int]] = {}
    for customer_id, instant in recipient_release(local_dt=local_dt, zones=zones).items():
        groups.setdefault(instant, []).append(customer_id)
    return {instant: sorted(groups[instant]) for instant in sorted(groups)}
