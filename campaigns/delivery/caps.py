"""Frequency caps for one chunk of deliveries: reserve set-based, release what ends up not sent.

API (called once per chunk by the sender, outside any long transaction):

    decisions = caps_reserve(items=[CapRequest(delivery_id, customer_id, channel, category, zone), ...], now=now)
    decisions[delivery_id] -> CapDecision(allowed, reason, retry_at, action, rule, reservations)
    caps_release(reservations=[...])   # the reservations of a delivery that was finally not sent

A granted delivery holds one slot under every active rule that applies to it (its channel, its
marketing category; transactional messages are never capped). A refused one holds none: what it
reserved under earlier rules is released in the same transaction, so a delivery passing rule A and
failing rule B leaves A untouched. The refusal names the rule, and ``retry_at`` is the next time at
which every applicable rule would have room again (the sender defers to it or skips, per campaign).

Counters (``FrequencyCounter``, unique (rule, customer, bucket)):

* Calendar day / week: one row per local day (or local Monday) in the recipient's zone. A reservation
  is ONE ``INSERT … SELECT … ON CONFLICT DO UPDATE SET used = used + 1 WHERE used < allowance
  RETURNING`` per rule for the whole chunk: PostgreSQL locks the conflicting row and re-evaluates the
  condition on its latest version, so concurrent workers can never push ``used`` past the limit. Windows
  do not overlap, so a worker whose clock is a second behind another's only writes to an older bucket.
* Rolling window of N days: one row per UTC day; the window is today and the N-1 days before. The day
  row is reserved with the same conditional upsert, its allowance being the limit minus what the other
  days of the window hold (computed in the same statement). Those other rows only change under a
  reservation for the same (rule, customer), so the statement first locks that pair's head row
  (``HEAD_BUCKET``, ordered by customer): reservations for one pair are then serialised, and each sees
  every earlier one (days after today are counted too, for a worker a moment behind across midnight).
  Day buckets keep the rows few (at most N per pair) at the price of day granularity.
* Minimum gap: the head row holds the time of the last reservation; the conditional upsert grants only
  when it is at least the gap old. A rolling "one per G hours" is the same thing.
* The customer's own weekly choice is a rule whose limit comes from ``Customer.max_messages_per_week``.

Several deliveries of one customer in a chunk (one per channel) that share a counter row are reserved
in rounds (a statement may touch a row once), by delivery id; the rounds of a rule only revisit rows the
first round already locked. Rules run in id order and rows within a statement in customer order, so
workers take locks in one global order and do not deadlock. Statements per chunk: 2 reads, then per
rule one per round (two for a rolling window), one release, one read for ``retry_at`` — bounded by the
number of rules and channels, not by the size of the chunk. SQLite runs the same SQL (one writer at a
time makes it trivially atomic there).
"""

from __future__ import annotations

import datetime
import json
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction

from campaigns.models.campaigns import capped_action_default
from campaigns.models.caps import HEAD_BUCKET, FrequencyCounter, FrequencyRule
from customers.models import Channel, Customer

#: the reason a held-back delivery records (``Delivery.Reason.FREQUENCY_CAP``)
REASON = "frequency_cap"
CAPPED_CATEGORIES = frozenset({"promotional", "loyalty", "event"})
CATEGORIES = CAPPED_CATEGORIES | {"transactional"}
CHANNELS = frozenset(Channel.values)

Window = FrequencyRule.Window
UTC = datetime.UTC


class CapRequest(NamedTuple):
    delivery_id: int
    customer_id: int
    channel: str
    #: the campaign category: promotional, loyalty, event or transactional
    category: str
    #: the recipient's IANA zone for calendar windows; empty: the site's ``TIME_ZONE``
    zone: str = ""
    #: the campaign's choice, ``"skip"`` or ``"defer"``; empty: the default for the category
    when_capped: str = ""


class Reservation(NamedTuple):
    """One slot held under one rule; give it back with ``caps_release`` if the message is not sent."""

    rule_id: int
    customer_id: int
    bucket: datetime.date
    at: datetime.datetime


class CapDecision(NamedTuple):
    allowed: bool
    #: ``""`` when allowed, else ``REASON``
    reason: str = ""
    #: when every applicable rule has room again (refused deliveries only)
    retry_at: datetime.datetime | None = None
    #: ``"send"``, or for a refused delivery ``"skip"`` or ``"defer"`` (to ``retry_at``)
    action: str = "send"
    #: the name of the rule that refused it, for the admin
    rule: str = ""
    reservations: tuple[Reservation, ...] = ()


@lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _validate(items: list[CapRequest]) -> None:
    seen = set()
    zones = set()
    for item in items:
        if item.delivery_id in seen:
            raise ValueError(f"Delivery {item.delivery_id} is listed twice.")
        seen.add(item.delivery_id)
        if item.category not in CATEGORIES:
            raise ValueError(f"Unknown category {item.category!r} for delivery {item.delivery_id}.")
        if item.channel not in CHANNELS:
            raise ValueError(f"Unknown channel {item.channel!r} for delivery {item.delivery_id}.")
        if item.when_capped not in ("", "skip", "defer"):
            raise ValueError(f"when_capped must be 'skip' or 'defer', not {item.when_capped!r}.")
        if item.zone in zones:
            continue
        zones.add(item.zone)
        try:
            _zone(item.zone or settings.TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"Unknown time zone {item.zone!r} for delivery {item.delivery_id}.") from exc


def _applies(rule: FrequencyRule, item: CapRequest) -> bool:
    return (not rule.channel or rule.channel == item.channel) and (not rule.category or rule.category == item.category)


def _local_now(item: CapRequest, now: datetime.datetime) -> datetime.datetime:
    return now.astimezone(_zone(item.zone or settings.TIME_ZONE))


class _LocalDays(dict):
    """The local date at ``now`` per zone name, computed once per zone for a chunk."""

    def __init__(self, now: datetime.datetime):
        super().__init__()
        self.now = now

    def __missing__(self, zone: str) -> datetime.date:
        day = self[zone] = self.now.astimezone(_zone(zone or settings.TIME_ZONE)).date()
        return day


def _bucket(rule: FrequencyRule, item: CapRequest, now: datetime.datetime, local_days: _LocalDays) -> datetime.date:
    if rule.window == Window.CALENDAR_DAY:
        return local_days[item.zone]
    if rule.window == Window.CALENDAR_WEEK:
        day = local_days[item.zone]
        return day - datetime.timedelta(days=day.weekday())
    if rule.window == Window.ROLLING_DAYS:
        return now.astimezone(UTC).date()
    return HEAD_BUCKET


def _table() -> str:
    return connection.ops.quote_name(FrequencyCounter._meta.db_table)


def _source(columns: dict[str, str]) -> str:
    """SQL reading the one JSON parameter as rows ``v`` with the given (name → PostgreSQL type) columns.

    One parameter whatever the chunk size: the statement text and the driver's work stay constant.
    """
    if connection.vendor == "postgresql":
        spec = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        return f"jsonb_to_recordset(%s::jsonb) AS v({spec})"
    picked = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in columns)
    return f"(SELECT {picked} FROM json_each(%s)) AS v"  # noqa: S608 (fixed column names)


def _date_param(value: datetime.date):
    return value if connection.vendor == "postgresql" else connection.ops.adapt_datefield_value(value)


def _datetime_param(value: datetime.datetime):
    return value if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(value)


def _datetime_json(value: datetime.datetime) -> str:
    return value.isoformat() if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(value)


_COLUMNS = "(rule_id, customer_id, bucket, used, allowance, last_at, previous_at)"
_ON_CONFLICT = (
    "ON CONFLICT (rule_id, customer_id, bucket) DO UPDATE SET used = {t}.used + 1, allowance = excluded.allowance, "
    "previous_at = {t}.last_at, last_at = excluded.last_at "
)


def _reserve_statement(
    rule: FrequencyRule, rows: list[dict], bucket_today: datetime.date, now: datetime.datetime
) -> set[tuple[int, str]]:
    """Reserve one slot per row (distinct keys) under ``rule``; returns the (customer, ISO bucket) keys granted."""
    t = _table()
    payload = json.dumps(rows)
    on_conflict = _ON_CONFLICT.format(t=t)
    if rule.window == Window.MIN_GAP:
        source = _source({"c": "bigint", "b": "date"})
        sql = (
            f"INSERT INTO {t} {_COLUMNS} SELECT %s, v.c, v.b, 1, 1, %s, NULL FROM {source} WHERE true "  # noqa: S608
            f"ORDER BY v.c {on_conflict}WHERE {t}.last_at IS NULL OR {t}.last_at <= %s "
            "RETURNING customer_id, CAST(bucket AS text)"
        )
        threshold = now - datetime.timedelta(hours=rule.gap_hours)
        params = [rule.id, _datetime_param(now), payload, _datetime_param(threshold)]
    elif rule.window == Window.ROLLING_DAYS:
        source = _source({"c": "bigint", "b": "date", "l": "integer"})
        start = bucket_today - datetime.timedelta(days=rule.days - 1)
        sql = (
            f"INSERT INTO {t} {_COLUMNS} SELECT %s, s.c, s.b, 1, s.a, %s, NULL FROM ("  # noqa: S608
            f"SELECT v.c AS c, v.b AS b, v.l - COALESCE((SELECT SUM(o.used) FROM {t} o WHERE o.rule_id = %s "
            f"AND o.customer_id = v.c AND o.bucket >= %s AND o.bucket <> v.b), 0) AS a FROM {source}"
            f") s WHERE s.a >= 1 ORDER BY s.c {on_conflict}WHERE {t}.used < excluded.allowance "
            "RETURNING customer_id, CAST(bucket AS text)"
        )
        params = [rule.id, _datetime_param(now), rule.id, _date_param(start), payload]
    else:
        source = _source({"c": "bigint", "b": "date", "l": "integer"})
        sql = (
            f"INSERT INTO {t} {_COLUMNS} SELECT %s, v.c, v.b, 1, v.l, %s, NULL FROM {source} "  # noqa: S608
            f"WHERE v.l >= 1 ORDER BY v.c {on_conflict}WHERE {t}.used < excluded.allowance "
            "RETURNING customer_id, CAST(bucket AS text)"
        )
        params = [rule.id, _datetime_param(now), payload]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return set(cursor.fetchall())


def _lock_heads(rule: FrequencyRule, customer_ids: list[int]) -> None:
    """Lock the head row of each (rule, customer), creating it if needed, in customer order."""
    t = _table()
    source = _source({"c": "bigint"})
    sql = (
        f"INSERT INTO {t} {_COLUMNS} SELECT %s, v.c, %s, 0, 0, NULL, NULL FROM {source} WHERE true "  # noqa: S608
        f"ORDER BY v.c ON CONFLICT (rule_id, customer_id, bucket) DO UPDATE SET used = {t}.used"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [rule.id, _date_param(HEAD_BUCKET), json.dumps([{"c": c} for c in sorted(customer_ids)])])


def caps_reserve(*, items: list[CapRequest], now: datetime.datetime) -> dict[int, CapDecision]:
    """Decide every delivery of a chunk against the active frequency rules, reserving slots for the allowed.

    Set-based: a bounded number of statements whatever the number of items (see the module docstring),
    in one transaction of its own (or a savepoint of the caller's: call it outside long transactions,
    since the counter rows it touches stay locked until commit). Atomic across workers: the counters
    never exceed a limit however many chunks reserve for the same customers at once.

    Not idempotent: calling it twice for a delivery reserves twice; release what is not sent.
    Raises ``ValueError`` (changing nothing) for a repeated delivery id, an unknown category, channel,
    ``when_capped`` or time zone.
    """
    _validate(items)
    decisions: dict[int, CapDecision] = {
        item.delivery_id: CapDecision(allowed=True) for item in items if item.category not in CAPPED_CATEGORIES
    }
    capped = sorted((item for item in items if item.category in CAPPED_CATEGORIES), key=lambda i: i.delivery_id)
    if not capped:
        return decisions
    rules = list(FrequencyRule.objects.filter(is_active=True).order_by("id"))
    if not rules:
        decisions.update({item.delivery_id: CapDecision(allowed=True) for item in capped})
        return decisions
    own_limits: dict[int, int] = {}
    if any(rule.limit_source == FrequencyRule.LimitSource.CUSTOMER for rule in rules):
        own_limits = dict(
            Customer.objects.filter(
                id__in={item.customer_id for item in capped}, max_messages_per_week__isnull=False
            ).values_list("id", "max_messages_per_week")
        )
    reserved: dict[int, list[Reservation]] = defaultdict(list)
    refused: dict[int, FrequencyRule] = {}
    today = now.astimezone(UTC).date()
    local_days = _LocalDays(now)
    with transaction.atomic():
        for rule in rules:
            _reserve_rule(rule, capped, refused, reserved, own_limits, now, today, local_days)
        to_release = [res for delivery_id in refused for res in reserved.pop(delivery_id, ())]
        if to_release:
            _release(to_release)
    retry = _retry_times([item for item in capped if item.delivery_id in refused], rules, own_limits, now)
    for item in capped:
        rule = refused.get(item.delivery_id)
        if rule is None:
            decisions[item.delivery_id] = CapDecision(
                allowed=True, reservations=tuple(reserved.get(item.delivery_id, ()))
            )
        else:
            decisions[item.delivery_id] = CapDecision(
                allowed=False,
                reason=REASON,
                retry_at=retry[item.delivery_id],
                action=item.when_capped or capped_action_default(item.category),
                rule=rule.name,
            )
    return decisions


def _limit(rule: FrequencyRule, item: CapRequest, own_limits: dict[int, int]) -> int | None:
    if rule.window == Window.MIN_GAP:
        return 1
    if rule.limit_source == FrequencyRule.LimitSource.CUSTOMER:
        return own_limits.get(item.customer_id)
    return rule.limit


def _reserve_rule(rule, capped, refused, reserved, own_limits, now, today, local_days) -> None:
    # Keys are (customer, bucket as ISO text), as the JSON rows and the RETURNING clause spell them.
    groups: dict[tuple[int, str], list[tuple[CapRequest, int]]] = defaultdict(list)
    dates: dict[str, datetime.date] = {}
    iso: dict[datetime.date, str] = {}
    for item in capped:
        if item.delivery_id in refused or not _applies(rule, item):
            continue
        limit = _limit(rule, item, own_limits)
        if limit is None:
            continue
        bucket = _bucket(rule, item, now, local_days)
        text = iso.get(bucket)
        if text is None:
            text = iso[bucket] = bucket.isoformat()
            dates[text] = bucket
        groups[(item.customer_id, text)].append((item, limit))
    if not groups:
        return
    if rule.window == Window.ROLLING_DAYS:
        _lock_heads(rule, sorted({customer_id for customer_id, _bucket in groups}))
    # Round r reserves the r-th delivery (by id) of every key; a key refused once stays refused.
    closed: set[tuple[int, str]] = set()
    for round_ in range(max(len(group) for group in groups.values())):
        batch = [(key, group[round_]) for key, group in groups.items() if len(group) > round_]
        rows = sorted(
            ({"c": key[0], "b": key[1], "l": limit} for key, (_item, limit) in batch if key not in closed),
            key=lambda row: row["c"],
        )
        granted = _reserve_statement(rule, rows, today, now) if rows else set()
        for key, (item, _limit_value) in batch:
            if key in granted and key not in closed:
                reserved[item.delivery_id].append(Reservation(rule.id, item.customer_id, dates[key[1]], now))
            else:
                closed.add(key)
                refused[item.delivery_id] = rule


def _release(reservations: Iterable[Reservation]) -> int:
    """Give back reservations in ONE ``UPDATE … FROM`` a JSON row set (after locking them in order on PostgreSQL)."""
    grouped: dict[tuple[int, int, datetime.date], list[Reservation]] = defaultdict(list)
    for res in reservations:
        grouped[(res.rule_id, res.customer_id, res.bucket)].append(res)
    if not grouped:
        return 0
    rows = [
        {
            "r": rule_id,
            "c": customer_id,
            "b": bucket.isoformat(),
            "n": len(group),
            "t": _datetime_json(max(res.at for res in group)),
        }
        for (rule_id, customer_id, bucket), group in sorted(grouped.items())
    ]
    t = _table()
    payload = json.dumps(rows)
    source = _source({"r": "bigint", "c": "bigint", "b": "date", "n": "integer", "t": "timestamptz"})
    match = f"{t}.rule_id = v.r AND {t}.customer_id = v.c AND {t}.bucket = v.b"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The same (rule, customer) order as reservations take, so a release never deadlocks with them.
            cursor.execute(
                f"SELECT {t}.id FROM {t} JOIN {source} ON {match} "  # noqa: S608
                f"ORDER BY {t}.rule_id, {t}.customer_id, {t}.bucket FOR UPDATE OF {t}",
                [payload],
            )
        cursor.execute(
            f"UPDATE {t} SET used = CASE WHEN {t}.used > v.n THEN {t}.used - v.n ELSE 0 END, "  # noqa: S608
            f"last_at = CASE WHEN {t}.last_at = v.t THEN {t}.previous_at ELSE {t}.last_at END "
            f"FROM {source} WHERE {match}",
            [payload],
        )
        return cursor.rowcount


def caps_release(*, reservations: Iterable[Reservation]) -> int:
    """Free the slots of deliveries that were reserved but not sent (provider refusal, consent gone).

    Pass the ``reservations`` of their ``CapDecision``. Counts go down by one per reservation (never
    below zero); a minimum-gap rule gets back its previous last-sent time if nothing was reserved
    after. Locks the counter rows in (rule, customer) order for one short transaction. Releasing the
    same reservation twice frees two slots: release once. Returns the number of counter rows changed.
    """
    with transaction.atomic():
        return _release(reservations)


def _next_local_midnight(item: CapRequest, now: datetime.datetime, days_ahead: int) -> datetime.datetime:
    local = _local_now(item, now)
    day = local.date() + datetime.timedelta(days=days_ahead)
    return datetime.datetime.combine(day, datetime.time(), tzinfo=local.tzinfo).astimezone(UTC)


def _retry_times(
    refused_items: list[CapRequest], rules: list[FrequencyRule], own_limits: dict[int, int], now: datetime.datetime
) -> dict[int, datetime.datetime]:
    """The earliest time every applicable rule has room for each refused delivery, from ONE read.

    Assumes nothing else is sent meanwhile; the deferred delivery is checked again when it comes back.
    """
    if not refused_items:
        return {}
    today = now.astimezone(UTC).date()
    oldest = today - datetime.timedelta(days=40)
    counters: dict[tuple[int, int], dict[datetime.date, tuple[int, datetime.datetime | None]]] = defaultdict(dict)
    rows = FrequencyCounter.objects.filter(
        customer_id__in={item.customer_id for item in refused_items},
        rule_id__in=[rule.id for rule in rules],
        bucket__gte=HEAD_BUCKET,
    ).exclude(bucket__gt=HEAD_BUCKET, bucket__lt=oldest)
    for rule_id, customer_id, bucket, used, last_at in rows.values_list(
        "rule_id", "customer_id", "bucket", "used", "last_at"
    ):
        counters[(rule_id, customer_id)][bucket] = (used, last_at)
    result = {}
    for item in refused_items:
        free_at = now
        for rule in rules:
            limit = _limit(rule, item, own_limits) if _applies(rule, item) else None
            if limit is None:
                continue
            buckets = counters.get((rule.id, item.customer_id), {})
            free_at = max(free_at, _rule_free_at(rule, item, limit, buckets, now, today))
        result[item.delivery_id] = free_at
    return result


def _rule_free_at(rule, item, limit, buckets, now, today) -> datetime.datetime:
    if rule.window == Window.MIN_GAP:
        _used, last_at = buckets.get(HEAD_BUCKET, (0, None))
        return last_at + datetime.timedelta(hours=rule.gap_hours) if last_at else now
    if rule.window in (Window.CALENDAR_DAY, Window.CALENDAR_WEEK):
        used, _last = buckets.get(_bucket(rule, item, now, _LocalDays(now)), (0, None))
        if used < limit:
            return now
        if rule.window == Window.CALENDAR_DAY:
            return _next_local_midnight(item, now, 1)
        return _next_local_midnight(item, now, 7 - _local_now(item, now).weekday())
    start = today - datetime.timedelta(days=rule.days - 1)
    window = sorted((day, used) for day, (used, _last) in buckets.items() if day >= start and used)
    total = sum(used for _day, used in window)
    for day, used in window:
        if total < limit:
            break
        total -= used
        free_day = day + datetime.timedelta(days=rule.days)
        if total < limit:
            return datetime.datetime.combine(free_day, datetime.time(), tzinfo=UTC)
    return now


def caps_counters_prune(*, now: datetime.datetime) -> int:
    """Delete day and week counters too old to count in any window (beat, daily). Idempotent.

    Keeps 40 days (more than the longest rolling window, a calendar week and any zone's offset) and
    the minimum-gap head rows. Returns the number of rows deleted.
    """
    oldest = now.astimezone(UTC).date() - datetime.timedelta(days=40)
    deleted, _by_model = FrequencyCounter.objects.filter(bucket__gt=HEAD_BUCKET, bucket__lt=oldest).delete()
    return deleted
