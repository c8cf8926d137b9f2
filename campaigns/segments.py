"""Segment rules: a JSON tree compiled into one ``Q`` over customers, so a count is one SQL query.

A group is ``{"match": "all" | "any" | "none", "rules": [...]}`` and may nest (match defaults to all;
an empty all or none group is everyone, an empty any group no one). A rule is one of::

    {"type": "profile", "field": "first_name", "op": "eq", "value": "Ann"}
        fields: first_name, last_name, email, phone, locale, time_zone
        ops: eq, neq, contains, starts_with (case-insensitive, accented letters too), is_set, is_not_set
        (empty text is not set; a missing value is neither equal to, nor contains, nor starts with anything)
    {"type": "attribute", "key": "shoe_size", "op": "eq", "value": "42"}
        ops: eq, neq (JSON value, type included), is_set, is_not_set
        (the key is an object key, digits-only keys too; is_set means the key is present, even as null;
        text equals the same text only, a number any equal number, so 42 equals 42.0; JSON true, false,
        null, arrays and objects equal no rule value)
    {"type": "store", "op": "in" | "not_in", "values": [store ids]}         (home store)
    {"type": "region", "op": "in" | "not_in", "values": ["North-East"]}     (home store's region)
    {"type": "source", "op": "in" | "not_in", "values": ["web", "store"]}
    {"type": "consent", "channel": "email", "op": "granted" | "not_granted"}        (op defaults to granted)
    {"type": "purchase", "metric": "recency", "op": "within" | "not_within", "days": 30, "channel": "any"}
    {"type": "purchase", "metric": "count" | "spend", "op": "gte", "value": 3, "days": null, "channel": "online"}
        ops for count and spend: eq, gt, gte, lt, lte; days limits the window (from now minus that many
        days, inclusive); channel any/online/store (default any); spend is compared to the cent
        instead of days, "since": "2026-01-31" starts the window at the start of that day (the site's
        time zone), for a window that does not move; a rule takes days or since, never both
    {"type": "loyalty", "field": "enrolled", "op": "yes" | "no"}
    {"type": "loyalty", "field": "balance" | "tier_rank", "op": "gte", "value": 500}   (eq, gt, gte, lt, lte)
    {"type": "loyalty", "field": "tier", "op": "in" | "not_in", "values": [tier ids]}
        loyalty rules read active accounts; a customer with several programmes matches if any account does

Every negative operator (neq, not_in, not_granted, not_within, no, is_not_set) and every none group
selects exactly the active profiles its positive form leaves out: a customer without a home store, an
address, a purchase or an account is "not in" and "not equal". So each compiled rule is true or false,
never SQL NULL, whatever group it sits in. Tests compare random trees with a plain-Python reading of
this text (tests/campaigns/test_segment_properties.py).

Only active profiles (not merged away, not erased) are ever in a segment. Nothing here loads a
customer into Python.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import HasKey
from django.db.models.functions import Coalesce, Lower, Round
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)
from django.utils import timezone

from customers.models import Channel, ConsentState, ConsentStatus, Customer, Purchase, Source, Store

_PLAIN_NUMBER = re.compile(r"\d+(\.\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

MAX_DEPTH = 6
MAX_RULES = 200
PROFILE_FIELDS = ("first_name", "last_name", "email", "phone", "locale", "time_zone")
NULLABLE_PROFILE_FIELDS = frozenset({"email", "phone"})
STRING_OPS = ("eq", "neq", "contains", "starts_with", "is_set", "is_not_set")
COMPARE_OPS = {"eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class RuleError(ValueError):
    """A rule tree we cannot compile; the message says where."""


def rules_validate(tree: dict) -> None:
    """Raise ``RuleError`` unless ``tree`` compiles."""
    segment_q(tree, now=timezone.now())


def segment_q(tree: dict, *, now: datetime) -> Q:
    """The customers matching ``tree`` (active profiles only), as one ``Q``; an empty tree is everyone."""
    counter = [0]
    return Q(merged_into__isnull=True, erased_at__isnull=True) & _group(tree or {}, now, 1, "rules", counter)


def _group(group, now: datetime, depth: int, where: str, counter: list[int]) -> Q:
    if not isinstance(group, dict):
        raise RuleError(f"{where}: expected a group or a rule.")
    if "type" in group:
        counter[0] += 1
        if counter[0] > MAX_RULES:
            raise RuleError(f"A segment may hold at most {MAX_RULES} rules.")
        return _rule(group, now, where)
    if depth > MAX_DEPTH:
        raise RuleError(f"{where}: groups nest at most {MAX_DEPTH} deep.")
    match = group.get("match", "all")
    if match not in ("all", "any", "none"):
        raise RuleError(f"{where}: match must be all, any or none.")
    rules = group.get("rules", [])
    if not isinstance(rules, list):
        raise RuleError(f"{where}: rules must be a list.")
    parts = [_group(rule, now, depth + 1, f"{where}[{index}]", counter) for index, rule in enumerate(rules)]
    if not parts:
        # Explicit "everyone"/"no one": an empty Q() would survive negation as "everyone".
        return Q(pk__isnull=False) if match != "any" else Q(pk__in=[])
    combined = parts[0]
    for part in parts[1:]:
        combined = (combined & part) if match == "all" else (combined | part)
    return ~combined if match == "none" else combined


def _rule(rule: dict, now: datetime, where: str) -> Q:
    kind = rule.get("type")
    builders = {
        "profile": _profile,
        "attribute": _attribute,
        "store": _choice(lambda ids: Q(home_store_id__isnull=False, home_store_id__in=ids), _row_id),
        "region": _choice(_region_q, _text),
        "source": _choice(lambda values: Q(source__in=values), str, allowed=Source.values),
        "consent": _consent,
        "purchase": _purchase,
        "loyalty": _loyalty,
    }
    if kind not in builders:
        raise RuleError(f"{where}: unknown rule type {kind!r}.")
    return builders[kind](rule, now, where)


def _profile(rule: dict, now: datetime, where: str) -> Q:
    field, op, value = rule.get("field"), rule.get("op"), rule.get("value", "")
    if field not in PROFILE_FIELDS:
        raise RuleError(f"{where}: unknown profile field {field!r}.")
    if op not in STRING_OPS:
        raise RuleError(f"{where}: unknown operator {op!r} for a profile field.")
    if op in ("is_set", "is_not_set"):
        is_set = ~Q(**{field: ""}) & Q(**{f"{field}__isnull": False})
        return is_set if op == "is_set" else ~is_set
    if not isinstance(value, str) or not value or len(value) > 320:
        raise RuleError(f"{where}: give a text value (1 to 320 characters).")
    lookup = {"eq": Exact, "neq": Exact, "contains": Contains, "starts_with": StartsWith}[op]
    matched = Q(lookup(_Lowered(F(field)), value.lower()))
    if field in NULLABLE_PROFILE_FIELDS:
        matched = Q(**{f"{field}__isnull": False}) & matched  # so a missing address is "not equal", never NULL
    return ~matched if op == "neq" else matched


class _Lowered(Lower):
    """Text in lower case, for case-insensitive rules: the same letters fold on PostgreSQL and SQLite.

    SQLite's own LOWER, and its LIKE, fold only ASCII letters, so "ÉMILE" would not equal "émile" there;
    on SQLite this calls Python's ``str.lower``, registered on each connection by ``sqlite_functions_register``.
    """

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function=SQLITE_LOWER, **extra)


SQLITE_LOWER = "tandem_lower"


def _lower(text):
    return text.lower() if isinstance(text, str) else text


def sqlite_functions_register(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: the SQL functions segment rules need on SQLite."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)


def _attribute(rule: dict, now: datetime, where: str) -> Q:
    key, op = rule.get("key"), rule.get("op")
    if not isinstance(key, str) or not _ATTRIBUTE_KEY.match(key):
        raise RuleError(f"{where}: an attribute key is 1 to 64 letters, digits, dots, dashes or underscores.")
    has_key = Q(HasKey(F("attributes"), key))
    if op == "is_set":
        return has_key
    if op == "is_not_set":
        return ~has_key
    if op not in ("eq", "neq"):
        raise RuleError(f"{where}: unknown operator {op!r} for an attribute.")
    value = rule.get("value")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RuleError(f"{where}: an attribute value is text or a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleError(f"{where}: an attribute value is text or a finite number.")
    equal = Q(_AttributeEquals(key, value))
    return equal if op == "eq" else ~equal


class _AttributeEquals(Func):
    """True when ``attributes`` holds ``key`` with a JSON value equal to ``value`` (type included), else false.

    Never NULL, so negating it is plain "not equal" (customers without the key included). The key is
    always an object key: Django's key transform would read a digits-only key such as ``"7"`` as an
    array index. Text equals only text, a number only a number (42 equals 42.0, as JSON has one number
    type); JSON true, false, null, arrays and objects equal no rule value.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, key: str, value: str | int | float):
        super().__init__(F("attributes"), output_field=BooleanField())
        self.key, self.value = key, value

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Attribute rules are compiled for PostgreSQL and SQLite only.")

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # jsonb -> text picks an object key only; jsonb = jsonb compares type and value.
        sql = f"COALESCE(({column} -> %s::text) = %s::jsonb, false)"
        return sql, (*params, self.key, json.dumps(self.value))

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # JSON_EXTRACT gives SQL text or numbers (true becomes 1, an array its text): check the JSON type too.
        types = "('text')" if isinstance(self.value, str) else "('integer', 'real')"
        path = "$." + json.dumps(self.key)
        sql = f"COALESCE(JSON_TYPE({column}, %s) IN {types} AND JSON_EXTRACT({column}, %s) = %s, 0)"
        return sql, (*params, path, *params, path, self.value)


def _choice(matched_q, cast, allowed=None):
    """An in / not_in rule; ``matched_q(values)`` must be true or false for every customer, never NULL."""

    def build(rule: dict, now: datetime, where: str) -> Q:
        op, values = rule.get("op"), rule.get("values")
        if op not in ("in", "not_in"):
            raise RuleError(f"{where}: use in or not_in.")
        if not isinstance(values, list) or not values or len(values) > 500:
            raise RuleError(f"{where}: give 1 to 500 values.")
        try:
            values = [cast(item) for item in values]
        except (TypeError, ValueError) as exc:
            raise RuleError(f"{where}: a value has the wrong type.") from exc
        if allowed is not None and any(item not in allowed for item in values):
            raise RuleError(f"{where}: values must be among {', '.join(allowed)}.")
        matched = matched_q(values)
        return matched if op == "in" else ~matched

    return build


def _row_id(item) -> int:
    """A row id given as a whole number or its digits; ``True`` or ``2.5`` would otherwise pass as 1 and 2."""
    if isinstance(item, bool) or not isinstance(item, (int, str)) or (isinstance(item, str) and not item.isdigit()):
        raise TypeError(item)
    return int(item)


def _text(item) -> str:
    """Text as given: ``null`` or a number is refused rather than compared as "None" or "5"."""
    if not isinstance(item, str):
        raise TypeError(item)
    return item


def _region_q(regions: list[str]) -> Q:
    # A semi-join on the home store id rather than a join to the store: Django guards a negated join
    # column against NULL only while the join is still an outer one, and a sibling rule in an "all"
    # group may already have made it inner, so a customer without a home store fell out of a negation.
    stores = Store.objects.filter(region__in=regions).values("pk")
    return Q(home_store_id__isnull=False, home_store_id__in=stores)


def _consent(rule: dict, now: datetime, where: str) -> Q:
    channel, op = rule.get("channel"), rule.get("op", "granted")
    if channel not in Channel.values:
        raise RuleError(f"{where}: unknown channel {channel!r}.")
    if op not in ("granted", "not_granted"):
        raise RuleError(f"{where}: use granted or not_granted.")
    granted = Q(consent_granted_q(channel))
    return granted if op == "granted" else ~granted


def consent_granted_q(channel: str) -> Exists:
    return Exists(
        ConsentState.objects.filter(customer_id=OuterRef("pk"), channel=channel, status=ConsentStatus.GRANTED)
    )


def _purchases(rule: dict, now: datetime, where: str, *, days_required: bool):
    channel, days = rule.get("channel", "any"), rule.get("days")
    if channel not in ("any", *Purchase.Channel.values):
        raise RuleError(f"{where}: purchase channel is any, online or store.")
    purchases = Purchase.objects.filter(customer_id=OuterRef("pk"))
    if channel != "any":
        purchases = purchases.filter(channel=channel)
    since = rule.get("since")
    if since is not None:
        if days is not None:
            raise RuleError(f"{where}: give the number of days or a date, not both.")
        return purchases.filter(occurred_at__gte=_day_start(since, where))
    if days is None and days_required:
        raise RuleError(f"{where}: give the number of days.")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 36_600:
            raise RuleError(f"{where}: days is a whole number from 1 to 36600.")
        purchases = purchases.filter(occurred_at__gte=now - timedelta(days=days))
    return purchases


def _day_start(since, where: str) -> datetime:
    """The start of the day ``since`` (YYYY-MM-DD) in the site's time zone, whoever is asking."""
    try:
        if not isinstance(since, str) or not _ISO_DATE.fullmatch(since):
            raise ValueError(since)
        day = date.fromisoformat(since)
    except ValueError as exc:
        raise RuleError(f"{where}: since is a date written as YYYY-MM-DD.") from exc
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def _purchase(rule: dict, now: datetime, where: str) -> Q:
    metric, op = rule.get("metric"), rule.get("op")
    if metric == "recency":
        if op not in ("within", "not_within"):
            raise RuleError(f"{where}: use within or not_within.")
        recent = Q(Exists(_purchases(rule, now, where, days_required=True)))
        return recent if op == "within" else ~recent
    if metric not in ("count", "spend"):
        raise RuleError(f"{where}: purchase metric is recency, count or spend.")
    if op not in COMPARE_OPS:
        raise RuleError(f"{where}: use one of {', '.join(COMPARE_OPS)}.")
    purchases = _purchases(rule, now, where, days_required=False).order_by().values("customer_id")
    raw = rule.get("value")
    if metric == "count":
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise RuleError(f"{where}: the count is a whole number.")
        total = Coalesce(
            Subquery(purchases.annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
            Value(0),
            output_field=IntegerField(),
        )
        value = raw
    else:
        if isinstance(raw, str) and not _PLAIN_NUMBER.fullmatch(raw.strip()):
            # Typed text reads as plain digits only: "1e3" is refused, never read as 1000.
            raise RuleError(f"{where}: write the amount in plain digits, such as 1000 or 49.90.")
        try:
            value = Decimal(str(raw))
        except (InvalidOperation, ValueError) as exc:
            raise RuleError(f"{where}: the amount is a number.") from exc
        if not value.is_finite() or value < 0:
            raise RuleError(f"{where}: the amount is a positive number.")
        money = DecimalField(max_digits=14, decimal_places=2)
        # Rounded to cents: SQLite sums decimals as binary floats, so 0.10 + 0.20 would not equal 0.30.
        total = Coalesce(
            Subquery(purchases.annotate(s=Round(Sum("amount"), 2)).values("s"), output_field=money),
            Value(Decimal(0)),
            output_field=money,
        )
    return Q(COMPARE_OPS[op](total, value))


def _loyalty(rule: dict, now: datetime, where: str) -> Q:
    from loyalty.models import LoyaltyAccount

    field, op = rule.get("field"), rule.get("op")
    accounts = LoyaltyAccount.objects.filter(customer_id=OuterRef("pk"), status=LoyaltyAccount.Status.ACTIVE)
    if field == "enrolled":
        if op not in ("yes", "no"):
            raise RuleError(f"{where}: use yes or no.")
        enrolled = Q(Exists(accounts))
        return enrolled if op == "yes" else ~enrolled
    if field in ("balance", "tier_rank"):
        if op not in COMPARE_OPS:
            raise RuleError(f"{where}: use one of {', '.join(COMPARE_OPS)}.")
        value = rule.get("value")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2_000_000_000:
            raise RuleError(f"{where}: give a whole number.")
        column = "points_balance" if field == "balance" else "tier__rank"
        return Q(Exists(accounts.filter(**{f"{column}__{op if op != 'eq' else 'exact'}": value})))
    if field == "tier":
        if op not in ("in", "not_in"):
            raise RuleError(f"{where}: use in or not_in.")
        values = rule.get("values")
        if not isinstance(values, list) or not values or len(values) > 50:
            raise RuleError(f"{where}: choose 1 to 50 tiers.")
        try:
            ids = [_row_id(item) for item in values]
        except (TypeError, ValueError) as exc:
            raise RuleError(f"{where}: tiers are given by id.") from exc
        in_tier = Q(Exists(accounts.filter(tier_id__in=ids)))
        return in_tier if op == "in" else ~in_tier
    raise RuleError(f"{where}: loyalty field is enrolled, balance, tier_rank or tier.")


def segment_customers(tree: dict, *, now: datetime | None = None):
    """The matching customers as a lazy queryset (nothing is loaded)."""
    return Customer.objects.filter(segment_q(tree, now=now or timezone.now()))
