"""Who a campaign reaches, per channel, and why the others are left out; all of it set-based SQL.

This is the module sending uses: the launch step selects ``reachable_q`` for each channel, and the
forecast counts the very same conditions before anything is scheduled. Each reason a customer is
left out is a ``Check`` in ``CHECKS``, applied in order, so the first failing check is the reason
reported; later steps of the product (frequency caps, quiet hours) register their own checks with
``check_register`` and both the forecast and sending pick them up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign, CustomerPushDevice, CustomerWebPushDevice, Segment, SegmentMember
from campaigns.segments import consent_granted_q, segment_q
from customers.models import CategoryOptOut, Channel, Customer, Suppression


@dataclasses.dataclass(frozen=True)
class Check:
    """One reason a customer is not messaged on a channel now.

    ``excluded_q(channel, campaign, now)`` returns the customers this check leaves out. ``effect`` is
    ``remove`` (not sent at all) or ``defer`` (sent later, e.g. quiet hours).
    """

    reason: str
    label: str
    excluded_q: Callable[[str, Campaign | None, datetime], Q]
    effect: str = "remove"
    applies: Callable[[str, Campaign | None], bool] = lambda channel, campaign: True


def address_present_q(channel: str) -> Q:
    if channel == Channel.EMAIL:
        return Q(email__isnull=False) & ~Q(email="")
    if channel == Channel.SMS:
        return Q(phone__isnull=False) & ~Q(phone="")
    # Any active device counts: an app registered for FCM or a browser subscribed to web push.
    return Q(Exists(CustomerPushDevice.objects.filter(customer_id=OuterRef("pk"), device__active=True))) | Q(
        Exists(CustomerWebPushDevice.objects.filter(customer_id=OuterRef("pk"), device__active=True))
    )


def suppressed_q(channel: str) -> Q:
    column = {Channel.EMAIL: "email_hmac", Channel.SMS: "phone_hmac"}.get(channel)
    if column is None:
        return Q(pk__isnull=True)  # no suppression list for this channel: nobody (and valid SQL)
    listed = Suppression.objects.filter(channel=channel, address_hmac=OuterRef(column))
    return ~Q(**{column: ""}) & Q(Exists(listed))


def _marketing(channel: str, campaign: Campaign | None) -> bool:
    return campaign is not None and campaign.category in Campaign.MARKETING_CATEGORIES


def paused_q(channel: str, campaign: Campaign | None, now: datetime) -> Q:
    # IS NOT NULL spelled out: as a bare comparison a NULL would read as "excluded" at send time.
    return Q(messages_paused_until__isnull=False, messages_paused_until__gt=now)


def category_left_q(channel: str, campaign: Campaign | None, now: datetime) -> Q:
    left = CategoryOptOut.objects.filter(customer_id=OuterRef("pk"), category=campaign.category)
    return Q(Exists(left))


CHECKS: list[Check] = [
    Check("no_consent", "No consent", lambda channel, campaign, now: ~Q(consent_granted_q(channel))),
    Check("missing_address", "Missing address", lambda channel, campaign, now: ~address_present_q(channel)),
    Check("suppressed", "Suppressed address", lambda channel, campaign, now: suppressed_q(channel)),
    # The customer's own choices in the preference centre; marketing only (transactional mail still goes).
    Check("paused", "Paused by the customer", paused_q, applies=_marketing),
    Check("category_left", "Left this kind of message", category_left_q, applies=_marketing),
]
PREFERRED_ELSEWHERE = ("preferred_elsewhere", "Reached on an earlier preferred channel")


def check_register(check: Check, *, before: str | None = None) -> None:
    """Add a check (idempotent by reason); ``before`` places it ahead of an existing reason."""
    CHECKS[:] = [item for item in CHECKS if item.reason != check.reason]
    position = next((i for i, item in enumerate(CHECKS) if item.reason == before), len(CHECKS))
    CHECKS.insert(position, check)


def checks_for(channel: str, campaign: Campaign | None) -> list[Check]:
    return [check for check in CHECKS if check.applies(channel, campaign)]


def segment_member_q(segment: Segment, *, now: datetime) -> Q:
    if segment.kind == Segment.Kind.STATIC:
        return Q(merged_into__isnull=True, erased_at__isnull=True) & Q(
            Exists(SegmentMember.objects.filter(segment_id=segment.pk, customer_id=OuterRef("pk")))
        )
    return segment_q(segment.rules or {}, now=now)


def audience_q(campaign: Campaign, *, now: datetime, include=None, exclude=None) -> Q:
    """Customers in any included segment and in no excluded one (``include``/``exclude``, when given,
    stand in for the campaign's stored segments: a choice being edited, not yet saved)."""
    include = campaign.include_segments.all() if include is None else include
    exclude = campaign.exclude_segments.all() if exclude is None else exclude
    included = [segment_member_q(s, now=now) for s in include]
    if not included:
        return Q(pk__in=[])
    q = included[0]
    for part in included[1:]:
        q |= part
    excluded = [segment_member_q(s, now=now) for s in exclude]
    for part in excluded:
        # As a subquery, so SQL NULLs inside the excluded segment's rules cannot let anyone through.
        q &= ~Q(pk__in=Customer.objects.filter(part).values("pk"))
    return q


def sendable_q(channel: str, campaign: Campaign | None, *, now: datetime) -> Q:
    """Customers that no removing check leaves out on ``channel`` (deferral still sends later)."""
    q = Q()
    for check in checks_for(channel, campaign):
        if check.effect == "remove":
            q &= ~check.excluded_q(channel, campaign, now)
    return q


def reachable_q(channel: str, campaign: Campaign, *, now: datetime) -> Q:
    """Who gets ``channel`` in ``campaign`` (before deferral): what launching selects."""
    q = sendable_q(channel, campaign, now=now)
    if campaign.mode == Campaign.Mode.PREFERRED:
        order = campaign.channel_list
        for earlier in order[: order.index(channel)]:
            q &= ~sendable_q(earlier, campaign, now=now)
    return q


@dataclasses.dataclass
class ChannelForecast:
    channel: str
    audience: int
    reachable: int
    deferred: int
    removed: list[tuple[str, str, int]]  # (reason, label, count) in check order

    @property
    def removed_total(self) -> int:
        return sum(count for _, _, count in self.removed)


@dataclasses.dataclass
class Forecast:
    audience: int
    channels: list[ChannelForecast]
    checks_applied: list[str]
    unique_codes_available: int | None = None  # for a unique-code offer: codes left to hand out

    @property
    def messages_total(self) -> int:
        return sum(row.reachable for row in self.channels)


def _flag_counts(queryset, flags: dict[str, Q], counts: dict[str, str]) -> dict[str, int]:
    """Evaluate each flag once per row, then count boolean combinations of them; one SQL statement.

    ``flags`` name customers a check excludes; ``counts`` are SQL conditions over the flag names
    (generated here, never user text). ``OFFSET 0`` keeps PostgreSQL from inlining the inner query,
    which would evaluate every EXISTS once per condition that mentions it instead of once per row.
    A NULL flag counts as excluded, as ``WHERE NOT flag`` treats it when sending.
    """
    from django.core.exceptions import EmptyResultSet
    from django.db import connection
    from django.db.models import BooleanField, ExpressionWrapper

    names = {name: f"f{index}" for index, name in enumerate(flags)}
    inner = queryset.order_by().annotate(
        **{names[name]: ExpressionWrapper(q, output_field=BooleanField()) for name, q in flags.items()}
    )
    inner = inner.values("pk", *names.values())
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:
        return dict.fromkeys(counts, 0)
    columns = ", ".join(
        f"COUNT(*) FILTER (WHERE {condition.format(**names)}) AS c{index}"
        for index, condition in enumerate(counts.values())
    )
    # SQLite (the embedded demo database) accepts OFFSET only after a LIMIT; -1 means no limit.
    fence = "LIMIT -1 OFFSET 0" if connection.vendor == "sqlite" else "OFFSET 0"
    statement = f"SELECT {columns} FROM ({sql} {fence}) AS flags"  # noqa: S608 (only generated names)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    return dict(zip(counts, row, strict=True))


def _passed(flag_names: list[str]) -> str:
    return " AND ".join(f"{{{name}}} IS FALSE" for name in flag_names) or "TRUE"


def campaign_forecast(campaign: Campaign, *, now: datetime | None = None, include=None, exclude=None) -> Forecast:
    """Per channel: audience, reachable, deferred and removed by reason; one aggregate statement.

    ``include``/``exclude`` replace the stored segments (see ``audience_q``) for a choice not yet saved.

    Every audience member is counted once per channel: under the first check that removes them,
    else as reachable (and, if a deferring check applies, also as deferred).
    """
    now = now or timezone.now()
    flags: dict[str, Q] = {}
    counts: dict[str, str] = {"audience": "TRUE"}
    plan: list[tuple[str, list[tuple[str, str, str]], list[str]]] = []
    passed_by_channel: dict[str, str] = {}
    order = campaign.channel_list
    for channel in order:
        removed, passed_names = [], []
        deferred_keys = []
        for index, check in enumerate(checks_for(channel, campaign)):
            name = f"{channel}_{index}"
            flags[name] = check.excluded_q(channel, campaign, now)
            if check.effect == "remove":
                key = f"{channel}__{index}"
                counts[key] = f"{_passed(passed_names)} AND {{{name}}} IS NOT FALSE"
                removed.append((key, check.reason, check.label))
                passed_names.append(name)
        passed = _passed(passed_names)
        passed_by_channel[channel] = passed
        if campaign.mode == Campaign.Mode.PREFERRED and order.index(channel) > 0:
            elsewhere = " OR ".join(f"({passed_by_channel[e]})" for e in order[: order.index(channel)])
            key = f"{channel}__elsewhere"
            counts[key] = f"({passed}) AND ({elsewhere})"
            removed.append((key, *PREFERRED_ELSEWHERE))
            passed = f"({passed}) AND NOT ({elsewhere})"
        counts[f"{channel}__reachable"] = passed
        for index, check in enumerate(checks_for(channel, campaign)):
            if check.effect == "defer":
                key = f"{channel}__defer{index}"
                counts[key] = f"({passed}) AND {{{channel}_{index}}} IS NOT FALSE"
                deferred_keys.append(key)
        plan.append((channel, removed, deferred_keys))
    audience = audience_q(campaign, now=now, include=include, exclude=exclude)
    row = _flag_counts(Customer.objects.filter(audience), flags, counts)
    channels = [
        ChannelForecast(
            channel=channel,
            audience=row["audience"],
            reachable=row[f"{channel}__reachable"],
            deferred=sum(row[key] for key in deferred_keys),
            removed=[(reason, label, row[key]) for key, reason, label in removed],
        )
        for channel, removed, deferred_keys in plan
    ]
    applied = sorted({check.label for channel in campaign.channel_list for check in checks_for(channel, campaign)})
    codes = None
    if campaign.offer_id and campaign.coupon_mode == Campaign.CouponMode.UNIQUE:
        from campaigns.personalisation import unique_codes_available

        codes = unique_codes_available(campaign.offer)
    return Forecast(audience=row["audience"], channels=channels, checks_applied=applied, unique_codes_available=codes)


def message_variants(message) -> list:
    """All variants of ``message`` with their personas, in the order ``variant_choice`` tries them; one query."""
    return list(message.variants.select_related("persona").order_by("persona__name", "persona_id"))


def variant_choice(message, channel: str, *, now: datetime, variants: list | None = None):
    """A SQL expression giving, per customer, the id of the variant of ``message`` they get on ``channel``.

    The first persona (by name, then id) whose segment holds the customer wins; everyone else gets the
    default column. ``None`` when the message has no variant at all for the channel. Launching
    annotates the audience with this, so the choice is made in the same statement that selects it.
    ``variants`` (from ``message_variants``) saves the query when several channels are chosen at once.
    """
    from django.db.models import BigIntegerField, Case, Value, When

    if variants is None:
        variants = message_variants(message)
    variants = [v for v in variants if v.channel == channel]
    default = next((v for v in variants if v.persona_id is None), None)
    whens = [
        When(segment_member_q(v.persona, now=now), then=Value(v.pk))
        for v in variants
        if v.persona_id is not None and v.persona.is_active
    ]
    fallback = Value(default.pk if default else None, output_field=BigIntegerField())
    if not whens:
        return fallback
    return Case(*whens, default=fallback, output_field=BigIntegerField())


def segment_counts(segment: Segment, *, now: datetime | None = None) -> dict[str, int]:
    """Members and, per channel, members reachable (consented, address present, not suppressed); one query."""
    now = now or timezone.now()
    flags: dict[str, Q] = {}
    counts = {"total": "TRUE"}
    for channel in Channel.values:
        names = []
        for index, check in enumerate(checks_for(channel, None)):
            if check.effect == "remove":
                flags[f"{channel}_{index}"] = check.excluded_q(channel, None, now)
                names.append(f"{channel}_{index}")
        counts[channel] = _passed(names)
    return _flag_counts(Customer.objects.filter(segment_member_q(segment, now=now)), flags, counts)
