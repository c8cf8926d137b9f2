"""Finding who enters a journey: each trigger is one set-based SELECT of ``(customer_id, event_key)``
over the tables we already keep, between the journey's watermark and now, and entering is ONE
``INSERT … SELECT … ON CONFLICT DO NOTHING`` into the enrolments.

The window starts a little before the watermark (rows committed late by a slow transaction are still
seen) and ends now; a tick that did not run leaves the watermark behind, so the next one catches up.
Reading an event twice enrols nobody twice: the enrolment's unique ``(journey, customer, entry_key)``
takes the event as key when re-entry is allowed, ``""`` when it is not, and re-entry after N days
also refuses anyone entered within those days.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import CharField, Exists, F, Max, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from campaigns.models import Enrolment, Journey, JourneySegmentMark
from customers.models import (
    ConsentEvidence,
    ConsentMethod,
    Customer,
    ProductCategory,
    Purchase,
    PurchaseCategory,
    Source,
)

Trigger = Journey.Trigger
# How far before the watermark each scan starts again (events whose transaction committed after a
# later one's); re-reading them is harmless.
OVERLAP = dt.timedelta(minutes=10)
# An entry of at least this many enrolments that also grows the table by a fifth refreshes its
# statistics (smaller ones leave them close enough).
ANALYZE_AFTER = 10_000
UTC = dt.UTC


def _key(prefix: str, field: str):
    return Concat(Value(prefix), Cast(field, output_field=CharField()), output_field=CharField())


def _sql(queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def _events(queryset, who: str, event_key) -> tuple[str, list]:
    """``queryset`` as rows named ``who`` (the customer id) and ``event_key``."""
    return _sql(queryset.order_by().annotate(who=F(who), event_key=event_key).values_list("who", "event_key"))


def _events_consent_confirmed(journey: Journey, since: dt.datetime, until: dt.datetime):
    channel = (journey.trigger_params or {}).get("channel", "email")
    confirmed = ConsentEvidence.objects.filter(
        action=ConsentEvidence.Action.CONFIRM, recorded_at__gt=since, recorded_at__lte=until
    )
    if channel != "any":
        confirmed = confirmed.filter(channel=channel)
    return _events(
        confirmed,
        "customer_id",
        _key("consent:", "id"),
    )


def _events_first_capture(journey: Journey, since: dt.datetime, until: dt.datetime):
    # A profile created at a till, or an older profile's first consent given at a checkout.
    capture = Value("capture", output_field=CharField())
    stores = [int(pk) for pk in (journey.trigger_params or {}).get("store_ids") or []]
    profiles = Customer.objects.filter(source=Source.STORE, created_at__gt=since, created_at__lte=until)
    if stores:
        profiles = profiles.filter(source_store_id__in=stores)
    created = _events(profiles, "pk", capture)
    earlier = ConsentEvidence.objects.filter(
        customer_id=OuterRef("customer_id"), method=ConsentMethod.CHECKOUT, recorded_at__lte=since
    )
    checkout = _events(
        ConsentEvidence.objects.filter(
            method=ConsentMethod.CHECKOUT,
            action=ConsentEvidence.Action.GRANT,
            recorded_at__gt=since,
            recorded_at__lte=until,
        )
        .exclude(customer__source=Source.STORE, customer__created_at__gt=since)
        .filter(~Q(Exists(earlier)))
        .filter(Q(store_id__in=stores) if stores else Q()),
        "customer_id",
        capture,
    )
    return f"{created[0]} UNION ALL {checkout[0]}", [*created[1], *checkout[1]]


def _category_ids(params: dict) -> list[int]:
    return [int(pk) for pk in params.get("category_ids") or []]


def _events_purchase(journey: Journey, since: dt.datetime, until: dt.datetime):
    params = journey.trigger_params or {}
    purchases = Purchase.objects.filter(customer__isnull=False, created_at__gt=since, created_at__lte=until)
    if params.get("channel") in ("store", "online"):
        purchases = purchases.filter(channel=params["channel"])
    if params.get("store_ids"):
        purchases = purchases.filter(store_id__in=[int(pk) for pk in params["store_ids"]])
    if params.get("category_ids"):
        # Any of the chosen categories; EXISTS keeps it one event per purchase however many match.
        bought = PurchaseCategory.objects.filter(purchase_id=OuterRef("pk"), category_id__in=_category_ids(params))
        purchases = purchases.filter(Exists(bought))
    return _events(purchases, "customer_id", _key("purchase:", "id"))


def _events_inactivity(journey: Journey, since: dt.datetime, until: dt.datetime):
    days = dt.timedelta(days=int(journey.trigger_params["days"]))
    return _sql(
        Purchase.objects.filter(customer__isnull=False)
        .order_by()
        .values("customer_id")
        .annotate(last=Max("occurred_at"), last_id=Max("id"))
        .filter(last__gt=since - days, last__lte=until - days)
        .annotate(who=F("customer_id"), event_key=_key("inactive:", "last_id"))
        .values_list("who", "event_key")
    )


def _events_points_expiring(journey: Journey, since: dt.datetime, until: dt.datetime):
    from loyalty.models import LedgerEntry, LoyaltyAccount, Programme
    from loyalty.selectors import accounts_with_points_expiring

    days = int(journey.trigger_params["days"])
    horizon = dt.timedelta(days=days)
    holding = Q(pk__in=[])
    for programme in Programme.objects.filter(is_active=True):
        holding |= Q(
            account_id__in=accounts_with_points_expiring(programme=programme, now=until, days=days).values("pk")
        )
    return _events(
        LedgerEntry.objects.filter(
            holding,
            points__gt=0,
            expires_at__gt=since + horizon,
            expires_at__lte=until + horizon,
            account__status=LoyaltyAccount.Status.ACTIVE,
        ),
        "account__customer_id",
        _key("expiring:", "id"),
    )


def _events_tier_changed(journey: Journey, since: dt.datetime, until: dt.datetime):
    from loyalty.models import TierChange

    params = journey.trigger_params or {}
    changes = TierChange.objects.filter(occurred_at__gt=since, occurred_at__lte=until).exclude(
        reason=TierChange.Reason.MERGE
    )
    if params.get("direction") == "up":
        changes = changes.filter(reason__in=[TierChange.Reason.UPGRADE, TierChange.Reason.ENROL])
    elif params.get("direction") == "down":
        changes = changes.filter(reason=TierChange.Reason.DOWNGRADE)
    if params.get("to_tier"):
        changes = changes.filter(to_tier_id=int(params["to_tier"]))
    if params.get("tier_ids"):  # the editor's "into one of these tiers"
        changes = changes.filter(to_tier_id__in=[int(pk) for pk in params["tier_ids"]])
    return _events(changes, "account__customer_id", _key("tier:", "id"))


def _events_coupon_unredeemed(journey: Journey, since: dt.datetime, until: dt.datetime):
    from loyalty.models import CouponCode

    params = journey.trigger_params or {}
    days = dt.timedelta(days=int(params["days"]))
    codes = CouponCode.objects.filter(
        account__isnull=False,
        uses=0,
        is_void=False,
        issued_at__gt=since - days,
        issued_at__lte=until - days,
    )
    offer = params.get("offer_id") or params.get("offer")
    if offer:
        codes = codes.filter(offer_id=int(offer))
    return _events(codes, "account__customer_id", _key("coupon:", "id"))


def _zone_keys_of(field: str) -> dict[str, tuple[str | None, str | None]]:
    from campaigns.delivery.local_time import zone_key_sql

    customers, stores = connection.ops.quote_name("customers_customer"), connection.ops.quote_name("customers_store")
    statement = (
        f"SELECT {zone_key_sql('c', 's')}, MIN(c.phone), MAX(c.phone) FROM {customers} c "  # noqa: S608
        f"LEFT JOIN {stores} s ON s.id = c.home_store_id "
        f"WHERE c.merged_into_id IS NULL AND c.erased_at IS NULL AND c.{field} IS NOT NULL GROUP BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def _month_day_sql(column: str) -> tuple[str, str]:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(MONTH FROM {column}) AS INTEGER)", f"CAST(EXTRACT(DAY FROM {column}) AS INTEGER)"
    return f"CAST(strftime('%%m', {column}) AS INTEGER)", f"CAST(strftime('%%d', {column}) AS INTEGER)"


@functools.lru_cache(maxsize=64)
def _wall_time_instants(wall: dt.datetime) -> frozenset[dt.datetime]:
    """Every UTC instant at which some IANA zone reaches the naive ``wall``; pure, so kept per process."""
    from campaigns.delivery.quiet_hours import local_time_release

    return frozenset(local_time_release(local_dt=wall, zones=zoneinfo.available_timezones()).values())


def wall_time_reached_somewhere(*, wall_time: dt.time, since: dt.datetime, until: dt.datetime) -> bool:
    """Whether any zone reaches ``wall_time`` in ``(since, until]``. Every zone key's instant is one of
    these zones' (``release_for_keys`` takes the latest of a key's zones, or a fallback zone's), so a
    False here means ``local_dates_reached`` finds nothing, without reading the customers' zone keys:
    most minutes of the day, for a time on the hour."""
    day = since.astimezone(UTC).date() - dt.timedelta(days=1)
    last = until.astimezone(UTC).date() + dt.timedelta(days=1)
    while day <= last:
        if any(since < instant <= until for instant in _wall_time_instants(dt.datetime.combine(day, wall_time))):
            return True
        day += dt.timedelta(days=1)
    return False


def local_dates_reached(
    *, wall_time: dt.time, keys: dict, since: dt.datetime, until: dt.datetime
) -> list[tuple[str, dt.date]]:
    """Each (zone key, local date) whose wall time ``wall_time`` fell in ``(since, until]``; pure but
    for the zone of the keys (DST-correct through ``zoneinfo``, one computation per key and date)."""
    from campaigns.delivery.local_time import active_store_zones, default_schedule_zone, release_for_keys

    anywhere, schedule_zone = active_store_zones(), default_schedule_zone()
    hits = []
    day = since.astimezone(UTC).date() - dt.timedelta(days=1)
    last = until.astimezone(UTC).date() + dt.timedelta(days=1)
    while day <= last:
        releases = release_for_keys(
            wall=dt.datetime.combine(day, wall_time), keys=keys, anywhere=anywhere, schedule_zone=schedule_zone
        )
        hits.extend((key, day) for key, instant in releases.items() if since < instant <= until)
        day += dt.timedelta(days=1)
    return hits


def _events_date(journey: Journey, since: dt.datetime, until: dt.datetime):
    from campaigns.delivery.local_time import zone_key_sql

    params = journey.trigger_params or {}
    field = "created_at" if params.get("field") in ("created_at", "signup") else "birthday"
    hour, minute = (int(part) for part in str(params.get("time") or "09:00").split(":"))
    # The window without its overlap: a date's event key repeats, so re-reading is harmless, but a
    # wide window would only make work.
    if not wall_time_reached_somewhere(wall_time=dt.time(hour, minute), since=since, until=until):
        return "", []
    hits = local_dates_reached(wall_time=dt.time(hour, minute), keys=_zone_keys_of(field), since=since, until=until)
    if not hits:
        return "", []
    rows, table_params = [], []
    for key, day in hits:
        matches = [(day.month, day.day)]
        if (day.month, day.day) == (2, 28) and not _leap(day.year):
            matches.append((2, 29))  # a 29 February birthday is kept on the 28th in other years
        for month, dom in matches:
            rows.append("SELECT CAST(%s AS TEXT) AS zone_key, %s AS m, %s AS d, CAST(%s AS TEXT) AS day")
            table_params.extend([key, month, dom, day.isoformat()])
    month_sql, day_sql = _month_day_sql(f"c.{field}")
    customers, stores = connection.ops.quote_name("customers_customer"), connection.ops.quote_name("customers_store")
    statement = (
        f"SELECT c.id AS who, 'date:' || hit.day AS event_key FROM {customers} c "  # noqa: S608
        f"LEFT JOIN {stores} s ON s.id = c.home_store_id "
        f"JOIN ({' UNION ALL '.join(rows)}) hit ON hit.zone_key = {zone_key_sql('c', 's')} "
        f"AND hit.m = {month_sql} AND hit.d = {day_sql} WHERE c.{field} IS NOT NULL"
    )
    return statement, table_params


def _events_replenishment_due(journey: Journey, since: dt.datetime, until: dt.datetime):
    """A customer's latest purchase in a category that usually runs out after N days, on the day it turns N
    days old in their zone (at the journey's local time), unless they bought that category again since.

    The local day of the purchase is compared as a UTC range per zone key (its midnights through
    ``release_for_keys``, the rule the date trigger and the send window use), so the SQL needs no time
    zone arithmetic and reads purchases through their ``occurred_at`` index. One event per
    (category, purchase): the next purchase starts the next cycle.
    """
    from campaigns.delivery.local_time import active_store_zones, default_schedule_zone, release_for_keys, zone_key_sql

    params = journey.trigger_params or {}
    categories = ProductCategory.objects.filter(is_active=True, replenish_after_days__isnull=False)
    if params.get("category_ids"):
        categories = categories.filter(pk__in=_category_ids(params))
    periods = sorted(set(categories.values_list("replenish_after_days", flat=True)))
    if not periods:
        return "", []
    hour, minute = (int(part) for part in str(params.get("time") or "09:00").split(":"))
    if not wall_time_reached_somewhere(wall_time=dt.time(hour, minute), since=since, until=until):
        return "", []
    keys = _zone_keys_of("id")
    hits = local_dates_reached(wall_time=dt.time(hour, minute), keys=keys, since=since, until=until)
    if not hits:
        return "", []
    anywhere, schedule_zone = active_store_zones(), default_schedule_zone()
    midnights: dict[dt.date, dict[str, dt.datetime]] = {}

    def midnight(key: str, day: dt.date) -> dt.datetime:
        if day not in midnights:
            wall = dt.datetime.combine(day, dt.time(0, 0))
            midnights[day] = release_for_keys(wall=wall, keys=keys, anywhere=anywhere, schedule_zone=schedule_zone)
        return midnights[day][key]

    adapt = connection.ops.adapt_datetimefield_value
    stamp = "CAST(%s AS TIMESTAMP WITH TIME ZONE)" if connection.vendor == "postgresql" else "%s"
    rows, row_params = [], []
    spans: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for key, day in hits:
        for days in periods:
            bought_on = day - dt.timedelta(days=days)
            start, end = midnight(key, bought_on), midnight(key, bought_on + dt.timedelta(days=1))
            rows.append(f"SELECT CAST(%s AS TEXT) AS zone_key, %s AS days, {stamp} AS start, {stamp} AS stop")
            row_params.extend([key, days, adapt(start), adapt(end)])
            low, high = spans.get(days, (start, end))
            spans[days] = (min(low, start), max(high, end))
    q = connection.ops.quote_name
    purchases, lines, category_table = (
        q(Purchase._meta.db_table),
        q(PurchaseCategory._meta.db_table),
        q(ProductCategory._meta.db_table),
    )
    customers, stores = q("customers_customer"), q("customers_store")
    chosen, chosen_params = "", []
    if params.get("category_ids"):
        ids = _category_ids(params)
        chosen = f"AND cat.id IN ({', '.join(['%s'] * len(ids))})"
        chosen_params = ids
    # Those days' purchases first (a day or two per period, through the occurred_at index), then their
    # customers' zones: left to itself the planner would hash every customer's zone key instead.
    materialized = "MATERIALIZED " if connection.vendor == "postgresql" else ""
    span_sql = " OR ".join(["(p.occurred_at >= %s AND p.occurred_at < %s)"] * len(spans))
    period_sql = " OR ".join(
        ["(cat.replenish_after_days = %s AND p.occurred_at >= %s AND p.occurred_at < %s)"] * len(spans)
    )
    span_params = [adapt(when) for low, high in spans.values() for when in (low, high)]
    period_params = [value for days, (low, high) in spans.items() for value in (days, adapt(low), adapt(high))]
    statement = (
        f"WITH bought AS {materialized}("  # noqa: S608
        "SELECT p.id AS purchase_id, p.customer_id, p.occurred_at, cat.id AS category_id, "
        f"cat.replenish_after_days AS days FROM {purchases} p "
        f"JOIN {lines} line ON line.purchase_id = p.id JOIN {category_table} cat ON cat.id = line.category_id "
        f"WHERE ({span_sql}) AND ({period_sql}) AND p.customer_id IS NOT NULL AND cat.is_active {chosen}) "
        "SELECT b.customer_id AS who, "
        "'replenish:' || CAST(b.category_id AS TEXT) || ':' || CAST(b.purchase_id AS TEXT) AS event_key "
        f"FROM bought b JOIN {customers} c ON c.id = b.customer_id LEFT JOIN {stores} s ON s.id = c.home_store_id "
        f"JOIN ({' UNION ALL '.join(rows)}) hit ON hit.zone_key = {zone_key_sql('c', 's')} "
        "AND hit.days = b.days AND b.occurred_at >= hit.start AND b.occurred_at < hit.stop "
        f"WHERE NOT EXISTS (SELECT 1 FROM {purchases} later JOIN {lines} again ON again.purchase_id = later.id "
        "AND again.category_id = b.category_id WHERE later.customer_id = b.customer_id "
        "AND (later.occurred_at > b.occurred_at OR (later.occurred_at = b.occurred_at AND later.id > b.purchase_id)))"
    )
    return statement, [*span_params, *period_params, *chosen_params, *row_params]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _events_segment_joined(journey: Journey, since: dt.datetime, until: dt.datetime):
    """Members now who were not at the last tick; the marks are brought up to date by the caller."""
    marked = JourneySegmentMark.objects.filter(journey_id=journey.pk, customer_id=OuterRef("pk"))
    members = _segment_members(journey).filter(~Q(Exists(marked)))
    return _events(members, "pk", Value(f"joined:{until.isoformat()[:16]}", output_field=CharField()))


def _segment_members(journey: Journey):
    from campaigns.audience import segment_member_q
    from campaigns.models import Segment

    segment = Segment.objects.get(pk=int(journey.trigger_params["segment"]))
    return Customer.objects.filter(segment_member_q(segment, now=timezone.now()))


def _segment_marks_refresh(journey: Journey) -> None:
    """Marks := the segment's members now; two statements."""
    members = _segment_members(journey).values("pk")
    JourneySegmentMark.objects.filter(journey_id=journey.pk).exclude(customer_id__in=members).delete()
    marked = JourneySegmentMark.objects.filter(journey_id=journey.pk, customer_id=OuterRef("pk"))
    sql, params = _sql(
        _segment_members(journey).filter(~Q(Exists(marked))).order_by().values_list(Value(journey.pk), "pk")
    )
    table = connection.ops.quote_name(JourneySegmentMark._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (journey_id, customer_id) SELECT * FROM ({sql}) fresh WHERE true "  # noqa: S608
            "ON CONFLICT DO NOTHING",
            params,
        )


EVENTS: dict[str, Callable[[Journey, dt.datetime, dt.datetime], tuple[str, list]]] = {
    Trigger.CONSENT_CONFIRMED: _events_consent_confirmed,
    Trigger.FIRST_CAPTURE: _events_first_capture,
    Trigger.PURCHASE: _events_purchase,
    Trigger.DATE: _events_date,
    Trigger.INACTIVITY: _events_inactivity,
    Trigger.POINTS_EXPIRING: _events_points_expiring,
    Trigger.TIER_CHANGED: _events_tier_changed,
    Trigger.COUPON_UNREDEEMED: _events_coupon_unredeemed,
    Trigger.SEGMENT_JOINED: _events_segment_joined,
    Trigger.REPLENISHMENT_DUE: _events_replenishment_due,
}
# Triggers whose events are wall times reached in the window (keys repeat on re-reading): read from the
# watermark exactly, as a wider window would only make work.
EXACT_WINDOW = {Trigger.DATE, Trigger.REPLENISHMENT_DUE}


def enrolments_insert(*, journey: Journey, events_sql: str, events_params: list, now: dt.datetime) -> int:
    """Enrol the customers of ``events_sql`` (rows ``customer_id, event_key``) in ONE statement.

    Applies the entry segment, the re-entry rule and skips merged or erased profiles; ON CONFLICT DO
    NOTHING on the enrolment's unique entry. Returns the number enrolled.
    """
    from campaigns.audience import segment_member_q

    version = journey.live_version
    first_step = version.steps[0]["key"]
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    customers = connection.ops.quote_name("customers_customer")
    params: list = []
    source = f"SELECT ev.who AS customer_id, ev.event_key AS event_key FROM ({events_sql}) ev"  # noqa: S608
    if journey.reentry == Journey.Reentry.EACH_TIME:
        entry_key = "events.event_key"
    else:
        entry_key = "''" if journey.reentry == Journey.Reentry.NEVER else "events.event_key"
        source = f"SELECT customer_id, MIN(event_key) AS event_key FROM ({source}) once GROUP BY customer_id"  # noqa: S608
    where = ["c.merged_into_id IS NULL", "c.erased_at IS NULL"]
    extra_params: list = []
    if journey.entry_segment_id:
        members_sql, members_params = _sql(
            Customer.objects.filter(segment_member_q(journey.entry_segment, now=now)).order_by().values("pk")
        )
        where.append(f"c.id IN ({members_sql})")
        extra_params.extend(members_params)
    if journey.reentry == Journey.Reentry.AFTER_DAYS:
        where.append(
            f"NOT EXISTS (SELECT 1 FROM {table} earlier WHERE earlier.journey_id = %s "  # noqa: S608
            "AND earlier.customer_id = c.id AND earlier.entered_at > %s)"
        )
        extra_params.extend([journey.pk, adapt(now - dt.timedelta(days=journey.reentry_days or 0))])
    statement = (
        f"INSERT INTO {table} (journey_id, version_id, customer_id, entry_key, step_key, status, exit_reason, "  # noqa: S608
        "due_at, entered_at, finished_at, converted_at) "
        f"SELECT %s, %s, events.customer_id, SUBSTR({entry_key}, 1, 64), %s, %s, '', %s, %s, NULL, NULL "
        f"FROM ({source}) events JOIN {customers} c ON c.id = events.customer_id WHERE {' AND '.join(where)} "
        "ON CONFLICT DO NOTHING"
    )
    head = [journey.pk, version.pk, first_step, Enrolment.Status.ACTIVE, adapt(now), adapt(now)]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*head, *params, *events_params, *extra_params])
        enrolled = max(cursor.rowcount, 0)
    if enrolled >= ANALYZE_AFTER:
        _statistics_refresh(enrolled)
    return enrolled


def _statistics_refresh(added: int) -> None:
    """ANALYZE the enrolments after a bulk entry that changed the table's size by a fifth or more.

    The tick steps these enrolments next, possibly within the minute: with the statistics of the
    table before (or none, after a first bulk entry) the planner expects a handful of active enrolments
    and answers each batch's updates by reading all of them. Autovacuum analyzes too, but later, and
    not at all where it is turned off. Rows inserted by this transaction are sampled as live.
    """
    if connection.vendor != "postgresql":
        return
    table = Enrolment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = CAST(%s AS regclass)", [table])
        known = max(cursor.fetchone()[0], 0)  # -1 when never analyzed
        if added * 5 >= known:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def journey_enrol_triggered(*, journey: Journey, now: dt.datetime) -> int:
    """Scan ``journey``'s trigger from its watermark to ``now`` and enrol who it finds; moves the watermark.

    Run inside a transaction holding the journey's row lock (the tick takes it with SKIP LOCKED, so two
    ticks never scan one journey at once). A few statements whatever the number of events.
    """
    mark = (journey.trigger_watermark or {}).get("at")
    watermark = dt.datetime.fromisoformat(mark) if mark else now
    enrolled = 0
    if journey.trigger == Trigger.SEGMENT_JOINED and not (journey.trigger_watermark or {}).get("seeded"):
        # Who is in the segment when the journey starts has not joined it: they are marked, not enrolled.
        _segment_marks_refresh(journey)
    elif watermark < now:
        since = watermark if journey.trigger in EXACT_WINDOW else watermark - OVERLAP
        events_sql, events_params = EVENTS[journey.trigger](journey, since, now)
        if events_sql:
            enrolled = enrolments_insert(journey=journey, events_sql=events_sql, events_params=events_params, now=now)
        if journey.trigger == Trigger.SEGMENT_JOINED:
            _segment_marks_refresh(journey)
    watermark_new = {"at": max(watermark, now).isoformat()}
    if journey.trigger == Trigger.SEGMENT_JOINED:
        watermark_new["seeded"] = True
    Journey.objects.filter(pk=journey.pk).update(trigger_watermark=watermark_new)
    journey.trigger_watermark = watermark_new
    return enrolled


def journeys_enrol_due(*, now: dt.datetime | None = None) -> dict[int, int]:
    """Enrol from the triggers of every live journey, each in its own transaction; {journey id: enrolled}."""
    now = now or timezone.now()
    done: dict[int, int] = {}
    for journey_id in Journey.objects.filter(status=Journey.Status.LIVE).values_list("pk", flat=True):
        with transaction.atomic():
            journey = (
                Journey.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("live_version", "entry_segment")
                .filter(pk=journey_id, status=Journey.Status.LIVE)
                .first()
            )
            if journey is None or journey.live_version is None:
                continue
            done[journey.pk] = journey_enrol_triggered(journey=journey, now=now)
    return done
