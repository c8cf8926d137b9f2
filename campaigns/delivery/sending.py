"""Sending one chunk: claim by id range, re-check in bulk, render once per variant, send, record in bulk.

The claim is one compare-and-set UPDATE over an id range (keyset, not "the next N queued rows", which
rescans claimed rows as a campaign progresses), so a second copy of the same task claims nothing. The
claim commits before any provider is called; outcomes are written in one statement afterwards. A
worker lost in between leaves rows in ``sending`` for the sweeper to resolve (never resent).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from campaigns.audience import checks_for
from campaigns.costs.pricing import PriceBook, sms_cost_make, sms_costs_stamp
from campaigns.delivery.caps import CapRequest, caps_release, caps_reserve
from campaigns.delivery.conf import conf
from campaigns.delivery.pacing import Pacer, retry_delay
from campaigns.delivery.quiet_hours import quiet_hours_check, recipient_zones
from campaigns.links import message_links
from campaigns.models import (
    Campaign,
    CustomerPushDevice,
    CustomerWebPushDevice,
    Delivery,
    OutboxMessage,
    SmsCost,
    Variant,
)
from customers.models import Channel, Customer

logger = logging.getLogger(__name__)

Status = Delivery.Status
Reason = Delivery.Reason

# The error text of a row queued again because its provider's rate limit had no room for it yet.
RATE_LIMITED = "waiting for the provider's rate limit"

# Per cause type: SQL picking the rows a chunk task may claim and true only while their cause may send
# (its parameters follow), read inside the claim itself so a pause or cancel committed before the claim
# is always honoured. ``{table}`` is the deliveries table. A campaign's chunk names the campaign; a
# journey's chunk names the journey, whose rows each carry their own step run as cause (so one chunk
# covers the runs of many enrolments, never one task per person).
_CAUSE_ACTIVE = {
    Delivery.Cause.CAMPAIGN: (
        "{table}.cause_id = %s AND "
        "EXISTS (SELECT 1 FROM campaigns_campaign cause WHERE cause.id = %s AND cause.status = %s)",
        lambda cause_id: [cause_id, cause_id, Campaign.Status.SENDING],
    ),
    Delivery.Cause.JOURNEY_STEP: (
        "EXISTS (SELECT 1 FROM campaigns_journeysteprun run "
        "JOIN campaigns_enrolment enrolment ON enrolment.id = run.enrolment_id "
        "JOIN campaigns_journey journey ON journey.id = enrolment.journey_id "
        "WHERE run.id = {table}.cause_id AND journey.id = %s AND journey.status IN (%s, %s))",
        lambda journey_id: [journey_id, "live", "draining"],
    ),
}


@dataclasses.dataclass(frozen=True)
class Claimed:
    id: int
    customer_id: int
    channel: str
    variant_id: int | None
    coupon_code_id: int | None
    attempts: int
    cause_id: int = 0


@dataclasses.dataclass
class Outcome:
    id: int
    status: str
    reason: str = ""
    error: str = ""
    address: str = ""
    provider_message_id: str = ""
    not_before: datetime | None = None
    # Queued again before reaching any provider: the claim's attempt is given back.
    uncount: bool = False


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    claimed: int
    statuses: dict[str, int]


def _table() -> str:
    return connection.ops.quote_name(Delivery._meta.db_table)


def deliveries_claim(
    *, cause_type: str, cause_id: int, first_id: int, last_id: int, now: datetime
) -> list[Claimed]:
    """Claim the due queued rows of one cause in ``[first_id, last_id]``: ONE UPDATE … RETURNING.

    Sets them ``sending`` with a lease and counts the attempt; clears the handed-over mark of an earlier
    attempt (a transient error), so a retry lost before its own provider call is sent again, not left
    unknown. Rows already claimed, not yet due, or of
    a cause that is paused or cancelled are left alone; run concurrently, each row goes to one caller.
    Commits on its own (autocommit, or the caller's transaction).
    """
    active_sql, active_params = _CAUSE_ACTIVE[cause_type]
    adapt = connection.ops.adapt_datetimefield_value
    lease = now + timedelta(seconds=conf("DELIVERY_LEASE_SECONDS"))
    statement = (
        f"UPDATE {_table()} SET status = %s, attempts = attempts + 1, lease_until = %s, updated_at = %s, "  # noqa: S608
        "handed_at = NULL "
        "WHERE id BETWEEN %s AND %s AND cause_type = %s AND status = %s "
        f"AND (not_before IS NULL OR not_before <= %s) AND {active_sql.format(table=_table())} "
        "RETURNING id, customer_id, channel, variant_id, coupon_code_id, attempts, cause_id"
    )
    params = [
        Status.SENDING,
        adapt(lease),
        adapt(now),
        first_id,
        last_id,
        cause_type,
        Status.QUEUED,
        adapt(now),
        *active_params(cause_id),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda row: row.id)


_OUTCOME_FIELDS = ("id", "status", "reason", "error", "address", "provider_message_id", "not_before", "uncount")


def _outcomes_source(outcomes: list[Outcome]) -> tuple[str, str]:
    """The outcomes as one JSON parameter and the SQL that reads it as rows ``v``.

    One parameter instead of seven per row: the driver neither scans nor quotes thousands of
    placeholders, and the statement text stays the same size whatever the chunk.
    """
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        {
            "id": item.id,
            "status": item.status,
            "reason": item.reason,
            "error": item.error[:500],
            "address": item.address[:320],
            "provider_message_id": item.provider_message_id[:200],
            "not_before": (
                (item.not_before.isoformat() if connection.vendor == "postgresql" else adapt(item.not_before))
                if item.not_before
                else None
            ),
            "uncount": item.uncount,
        }
        for item in outcomes
    ]
    if connection.vendor == "postgresql":
        source = (
            "jsonb_to_recordset(%s::jsonb) AS v(id bigint, status text, reason text, error text, address text, "
            "provider_message_id text, not_before timestamptz, uncount boolean)"
        )
    else:
        columns = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in _OUTCOME_FIELDS)
        source = f"(SELECT {columns} FROM json_each(%s)) AS v"  # noqa: S608 (fixed column names)
    return json.dumps(rows), source


def _chunk_bounds(table: str, ids: list[int], cause_type: str | None, cause_id: int | None) -> tuple[str, list]:
    """SQL (and its parameters) bounding an update of claimed rows to their cause and id range.

    Right after a large launch the table's statistics still count a handful of pending rows, so for
    ``id IN (…) AND status = 'sending'`` the planner scanned the whole pending index (760 k entries at
    1 M customers, ~30 ms a chunk, more as the campaign grows). Bounded like the claim, it is a range
    scan of the chunk's own entries whatever the statistics say.
    """
    if cause_type is None or cause_id is None or not ids:
        return "", []
    sql = f" AND {table}.cause_type = %s AND {table}.cause_id = %s AND {table}.id BETWEEN %s AND %s"
    return sql, [cause_type, cause_id, min(ids), max(ids)]


def deliveries_record(
    *,
    outcomes: list[Outcome],
    now: datetime,
    outbox: list[OutboxMessage] = (),
    costs: list[SmsCost] = (),
    cause_type: str | None = None,
    cause_id: int | None = None,
) -> int:
    """Write the outcomes of claimed rows in ONE ``UPDATE … FROM`` a JSON row set, with their outbox rows
    and the costs of the texts sent (stamped ``now``, their send time).

    Only rows still ``sending`` change (the sweeper may have resolved a row whose lease ran out), and only
    they get their outbox message and cost, so recording twice changes nothing. Returns the number of
    rows updated.
    """
    if not outcomes:
        return 0
    adapt = connection.ops.adapt_datetimefield_value
    table = _table()
    payload, source = _outcomes_source(outcomes)
    bounds, bounds_params = _chunk_bounds(table, [item.id for item in outcomes], cause_type, cause_id)
    statement = (
        f"UPDATE {table} SET status = v.status, reason = v.reason, error = v.error, address = v.address, "  # noqa: S608
        "provider_message_id = v.provider_message_id, not_before = v.not_before, lease_until = NULL, updated_at = %s, "
        # A row queued again is not at its provider (a retry sends it again), and one that never reached
        # a provider gives back the attempt its claim counted.
        f"handed_at = CASE WHEN v.status = %s THEN NULL ELSE {table}.handed_at END, "
        f"attempts = {table}.attempts - CASE WHEN v.uncount THEN 1 ELSE 0 END, "
        f"sent_at = CASE WHEN v.status = %s THEN %s ELSE {table}.sent_at END "
        f"FROM {source} WHERE {table}.id = v.id AND {table}.status = %s{bounds} RETURNING {table}.id"
    )
    params = [adapt(now), Status.QUEUED, Status.SENT, adapt(now), payload, Status.SENDING, *bounds_params]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        updated = {row[0] for row in cursor.fetchall()}
        # A row the sweeper took back meanwhile (its lease ran out) gets no outbox message from this chunk.
        outbox = [message for message in outbox if message.delivery_id in updated]
        if outbox:
            OutboxMessage.objects.bulk_create(outbox, ignore_conflicts=True)
        costs = [cost for cost in costs if cost.delivery_id in updated]
        sms_costs_stamp(costs, sent_at=now)
        if costs:
            SmsCost.objects.bulk_create(costs, ignore_conflicts=True)
    return len(updated)


# What sending reads of a customer and their home store (addresses, placeholders, links, zones, checks):
# a customer has three dozen columns, and loading them all was an eighth of a chunk's time.
CHUNK_CUSTOMER_FIELDS = (
    "id", "public_id", "email", "phone", "first_name", "last_name", "erased_at", "merged_into_id",
    "time_zone", "time_zone_source", "home_store_id",
)  # fmt: skip
CHUNK_STORE_FIELDS = tuple(
    f"home_store__{name}"
    for name in ("id", "name", "street", "city", "postal_code", "state", "country", "time_zone")
)


def _customers_with_checks(customer_ids: set[int], channels: set[str], campaign, now: datetime) -> dict[int, Customer]:
    """The chunk's customers, each flagged by every check of every channel in the chunk; one query."""
    flags = {}
    for channel in sorted(channels):
        for index, check in enumerate(checks_for(channel, campaign)):
            flags[f"check_{channel}_{index}"] = ExpressionWrapper(
                check.excluded_q(channel, campaign, now), output_field=BooleanField()
            )
    queryset = (
        Customer.objects.filter(pk__in=customer_ids)
        .select_related("home_store")
        .only(*CHUNK_CUSTOMER_FIELDS, *CHUNK_STORE_FIELDS)
        .annotate(**flags)
    )
    if connection.vendor != "postgresql":
        return {customer.pk: customer for customer in queryset}
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # With the default random_page_cost the planner answers the consent EXISTS of a chunk's 1,000
        # customers by hashing every granted consent of the channel (a sequential scan of the table, 128 ms
        # per chunk at 100 k customers, growing with the customer base) rather than 1,000 probes of the
        # cached index (13 ms). Pages here are in memory: say so for this one statement's transaction.
        cursor.execute("SELECT set_config('random_page_cost', '1.1', true)")
        return {customer.pk: customer for customer in queryset}


def _loyalty_values(customer_ids: set[int], programme_id: int | None) -> dict[int, dict[str, str]]:
    """``points_balance`` and ``tier`` per customer (the offer's programme first, then oldest); one query."""
    from loyalty.models import LoyaltyAccount

    accounts = (
        LoyaltyAccount.objects.filter(customer_id__in=customer_ids, status=LoyaltyAccount.Status.ACTIVE)
        .order_by("enrolled_at", "pk")
        .values_list("customer_id", "programme_id", "points_balance", "tier__name")
    )
    values: dict[int, dict[str, str]] = {}
    preferred: set[int] = set()
    for customer_id, account_programme, points_balance, tier_name in accounts:
        matches = programme_id is not None and account_programme == programme_id
        if customer_id in values and (customer_id in preferred or not matches):
            continue
        values[customer_id] = {"points_balance": f"{points_balance:,}", "tier": tier_name or ""}
        if matches:
            preferred.add(customer_id)
    return values


def _push_devices(customer_ids: set[int]) -> dict[int, list]:
    """Every active device per customer, FCM then web push, each oldest first (the push channel sends to
    each); one query per kind of device."""
    if not customer_ids:
        return {}
    devices: dict[int, list] = {}
    for model in (CustomerPushDevice, CustomerWebPushDevice):
        links = (
            model.objects.filter(customer_id__in=customer_ids, device__active=True)
            .select_related("device")
            .order_by("pk")
        )
        for link in links:
            devices.setdefault(link.customer_id, []).append(link.device)
    return devices


def _address(customer: Customer, channel: str, devices: dict[int, list]):
    if channel == Channel.EMAIL:
        return customer.email or None
    if channel == Channel.SMS:
        return customer.phone or None
    return devices.get(customer.pk) or None


def _address_text(channel: str, to) -> str:
    if channel == Channel.PUSH:
        from push_notifications.models import WebPushDevice

        # FCM and web push devices are numbered apart: "devices:3,4" (FCM), "webpush:7" (browsers).
        apps = ",".join(str(device.pk) for device in to if not isinstance(device, WebPushDevice))
        browsers = ",".join(str(device.pk) for device in to if isinstance(device, WebPushDevice))
        return " ".join(part for part in (apps and f"devices:{apps}", browsers and f"webpush:{browsers}") if part)
    return str(to)


def deliveries_mark_handed(
    *, ids: list[int], now: datetime, cause_type: str | None = None, cause_id: int | None = None
) -> None:
    """Record, in one statement, that these claimed rows are about to reach their provider.

    The sweeper sends a row lost in ``sending`` again only when this mark is absent, so a worker killed
    after its claim but before the provider call loses nothing, and one killed after the call sends
    nothing twice. Given the cause all the rows share, they are found by its id range (see ``_chunk_bounds``).
    """
    if ids:
        rows = Delivery.objects.filter(pk__in=ids, status=Status.SENDING)
        if cause_type is not None and cause_id is not None:
            rows = rows.filter(cause_type=cause_type, cause_id=cause_id, pk__gte=min(ids), pk__lte=max(ids))
        rows.update(handed_at=now)


def _retry_or_fail(
    row: Claimed, error: str, now: datetime, address: str, *, retry_after: float | None = None
) -> Outcome:
    """Queue a transiently failed row again after a jittered backoff (or the provider's Retry-After), or fail it.

    Fails it once it has been claimed ``DELIVERY_MAX_ATTEMPTS`` times.
    """
    if row.attempts >= conf("DELIVERY_MAX_ATTEMPTS"):
        return Outcome(row.id, Status.FAILED, Reason.PROVIDER_UNAVAILABLE, error, address)
    delay = retry_delay(attempt=row.attempts, retry_after=retry_after)
    return Outcome(row.id, Status.QUEUED, "", error, address, not_before=now + timedelta(seconds=delay))


def _outbox_message(row: Claimed, rendered, *, to: str, cause_type: str, cause_id: int, links: dict) -> OutboxMessage:
    common = {"delivery_id": row.id, "cause_type": cause_type, "cause_id": cause_id, "channel": row.channel, "to": to}
    metadata = {"delivery_id": str(row.id), "cause": f"{cause_type}:{cause_id}"}
    if row.channel == Channel.EMAIL:
        headers = {
            "List-Unsubscribe": f"<{links['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        return OutboxMessage(
            **common,
            subject=rendered.subject[:300],
            preheader=rendered.preheader[:300],
            html=rendered.html,
            text=rendered.text,
            headers=headers,
            metadata=metadata,
        )
    if row.channel == Channel.SMS:
        return OutboxMessage(**common, text=rendered.body, metadata={**metadata, "segments": rendered.count.segments})
    return OutboxMessage(
        **common,
        title=rendered.title[:300],
        text=rendered.body,
        url=rendered.url[:500],
        image_url=(rendered.image_url or "")[:500],
        metadata=metadata,
    )


def _load_cause(cause_type: str, cause_id: int):
    if cause_type == Delivery.Cause.CAMPAIGN:
        return Campaign.objects.select_related("shared_code", "offer").get(pk=cause_id)
    if cause_type == Delivery.Cause.JOURNEY_STEP:
        from campaigns.models import Journey

        return Journey.objects.get(pk=cause_id)  # its category rules caps and preferences
    raise LookupError(f"Unknown delivery cause {cause_type!r}.")


def delivery_chunk_send(
    *, cause_type: str, cause_id: int, first_id: int, last_id: int, now: datetime | None = None
) -> ChunkResult:
    """Claim, re-check, render, send and record the due deliveries of one id range.

    Idempotent: a second call (a duplicated task) claims nothing and sends nothing. Never holds a
    transaction across a provider call. A bounded number of queries whatever the chunk size.
    For journey steps ``cause_id`` is the journey; each row's own cause is its step run.
    """
    from campaigns.channels.registry import channel_get
    from campaigns.composer import variant_compiled
    from campaigns.exceptions import PermanentChannelError, TransientChannelError
    from campaigns.rendering import RenderError, placeholder_context

    now = now or timezone.now()
    claimed = deliveries_claim(cause_type=cause_type, cause_id=cause_id, first_id=first_id, last_id=last_id, now=now)
    if not claimed:
        return ChunkResult(claimed=0, statuses={})
    cause = _load_cause(cause_type, cause_id)
    # A campaign's chunk holds one cause; a journey chunk holds many step runs, so only id ranges bound it.
    one_cause = {row.cause_id for row in claimed} == {cause_id}
    bounds = {"cause_type": cause_type, "cause_id": cause_id} if one_cause else {}
    channels = {row.channel for row in claimed}
    customers = _customers_with_checks({row.customer_id for row in claimed}, channels, cause, now)
    variants = {v.pk: v for v in Variant.objects.filter(pk__in={r.variant_id for r in claimed if r.variant_id})}
    loyalty = _loyalty_values(set(customers), getattr(getattr(cause, "offer", None), "programme_id", None))
    codes = _coupon_codes({row.coupon_code_id for row in claimed if row.coupon_code_id})
    devices = _push_devices({row.customer_id for row in claimed if row.channel == Channel.PUSH})
    outbox_channels = set(conf("DELIVERY_OUTBOX_CHANNELS"))
    backends: dict[str, object] = {}
    compiled: dict[int, object] = {}
    outcomes: list[Outcome] = []
    outbox: list[OutboxMessage] = []
    opted_out: list[tuple[Customer, Claimed, str]] = []
    pending: dict[str, list[tuple[Claimed, Customer, str, object]]] = {}
    checks = {channel: list(enumerate(checks_for(channel, cause))) for channel in channels}

    held, reservations = _gate(claimed=claimed, customers=customers, checks=checks, cause=cause, now=now)
    for row in claimed:
        customer = customers.get(row.customer_id)
        if row.id in held:
            outcomes.append(held[row.id])
            continue
        variant = variants.get(row.variant_id)
        if variant is None:
            outcomes.append(Outcome(row.id, Status.SKIPPED, Reason.NO_VARIANT))
            continue
        to = _address(customer, row.channel, devices)
        if to is None:  # e.g. the last device was deactivated between the check and now
            outcomes.append(Outcome(row.id, Status.SKIPPED, Reason.MISSING_ADDRESS))
            continue
        address = _address_text(row.channel, to)
        source = f"delivery:{row.id}"
        try:
            if variant.pk not in compiled:
                compiled[variant.pk] = variant_compiled(variant)
            links = message_links(
                customer=customer,
                channel=row.channel,
                source=source,
                cause=f"{cause_type}:{row.cause_id}",
                category=getattr(cause, "category", ""),
                names=compiled[variant.pk].names,
            )
            extra = {**loyalty.get(customer.pk, {}), "coupon_code": codes.get(row.coupon_code_id, "")}
            context = placeholder_context(customer=customer, links=links, extra=extra)
            rendered = compiled[variant.pk].render(context)
        except Exception as exc:  # a template that passed its checks but cannot render this customer
            outcomes.append(Outcome(row.id, Status.FAILED, Reason.RENDER_FAILED, str(exc) or type(exc).__name__))
            continue
        if row.channel in outbox_channels:
            outbox.append(
                _outbox_message(row, rendered, to=address, cause_type=cause_type, cause_id=row.cause_id, links=links)
            )
            outcomes.append(Outcome(row.id, Status.SENT, address=address, provider_message_id=f"outbox:{row.id}"))
            continue
        if row.channel not in backends:
            backends[row.channel] = channel_get(row.channel)
        metadata = {"delivery_id": row.id, "cause": f"{cause_type}:{row.cause_id}"}
        if cause_type == Delivery.Cause.CAMPAIGN:
            metadata["campaign_id"] = cause_id  # the ESP tags the mail with its campaign
        try:
            payload = backends[row.channel].build_payload(rendered=rendered, to=to, metadata=metadata, links=links)
            batch_prepare = getattr(backends[row.channel], "batch_prepare", None)
            if batch_prepare is not None:  # email where the ESP fills in each recipient's values
                batch_prepare(payload, compiled=compiled[variant.pk], context=context, rendered=rendered)
        except (PermanentChannelError, RenderError) as exc:
            outcomes.append(Outcome(row.id, Status.FAILED, Reason.PROVIDER_REFUSED, str(exc), address))
            continue
        pending.setdefault(row.channel, []).append((row, customer, address, payload))

    # Each batch is what the provider's shared rate limit grants now; what does not fit is queued again.
    pacer = Pacer(now=now)
    costs: list[SmsCost] = []
    prices = PriceBook()
    for channel, items in pending.items():
        for batch in pacer.batches(channel, backends[channel], items):
            deliveries_mark_handed(ids=[row.id for row, *_ in batch], now=now, **bounds)
            results = _send_many(backends[channel], [payload for *_, payload in batch], channel)
            pacer.slow_down(backends[channel], batch, results)
            for (row, customer, address, _payload), result in zip(batch, results, strict=True):
                if isinstance(result, TransientChannelError):
                    outcomes.append(_retry_or_fail(row, str(result), now, address, retry_after=result.retry_after))
                elif isinstance(result, PermanentChannelError):
                    outcomes.append(Outcome(row.id, Status.FAILED, Reason.PROVIDER_REFUSED, str(result), address))
                    if result.opted_out:
                        opted_out.append((customer, row, address))
                elif isinstance(result, Exception):  # the provider may or may not have it: never resend
                    outcomes.append(
                        Outcome(row.id, Status.UNKNOWN, "", f"{type(result).__name__}: {result}", address)
                    )
                else:
                    outcomes.append(
                        Outcome(row.id, Status.SENT, address=address, provider_message_id=result.provider_id)
                    )
                    if channel == Channel.SMS:
                        costs.append(_sms_cost(row, cause_type, address, _payload, result, prices))
        outcomes.extend(
            Outcome(row.id, Status.QUEUED, "", RATE_LIMITED, address, not_before=due, uncount=True)
            for (row, _customer, address, _payload), due in pacer.deferred(channel)
        )

    deliveries_record(outcomes=outcomes, now=timezone.now(), outbox=outbox, costs=costs, **bounds)
    unsent = [item.id for item in outcomes if item.status not in (Status.SENT, Status.UNKNOWN)]
    released = [slot for delivery_id in unsent for slot in reservations.get(delivery_id, ())]
    if released:  # a slot held for a message that did not leave frees for the next one
        caps_release(reservations=released)
    for customer, row, address in opted_out:
        _carrier_opt_out(customer=customer, row=row, address=address)
    cause_finish_if_done(cause_type=cause_type, cause_id=cause_id)
    return ChunkResult(claimed=len(claimed), statuses=dict(Counter(item.status for item in outcomes)))


def _sms_cost(row: Claimed, cause_type: str, address: str, payload: dict, result, prices: PriceBook) -> SmsCost:
    return sms_cost_make(
        delivery_id=row.id,
        cause_type=cause_type,
        cause_id=row.cause_id,
        to=address,
        body=payload.get("body", ""),
        detail=result.detail,
        prices=prices,
    )


def _gate(*, claimed: list[Claimed], customers: dict[int, Customer], checks, cause, now: datetime):
    """Which claimed rows may not go now, as their outcomes, and the frequency-cap slots of those that may.

    In order: the send-time checks (consent, suppression, merged or erased profile: skip, or defer where
    the check says so), then quiet hours in the recipient's zone (defer to the next allowed minute),
    then the frequency caps, reserved for the rest in one set-based call (skip or defer per campaign).
    A handful of queries whatever the chunk size.
    """
    held: dict[int, Outcome] = {}
    for row in claimed:
        skip = _skip_reason(row, customers.get(row.customer_id), checks[row.channel])
        if skip is not None:
            reason, effect = skip
            if effect == "defer":
                held[row.id] = Outcome(
                    row.id, Status.QUEUED, reason, not_before=now + timedelta(minutes=15), uncount=True
                )
            else:
                held[row.id] = Outcome(row.id, Status.SKIPPED, reason)
    category = getattr(cause, "category", Campaign.Category.PROMOTIONAL)
    if category == Campaign.Category.TRANSACTIONAL:
        return held, {}
    open_rows = [row for row in claimed if row.id not in held]
    recipients = recipient_zones([customers[row.customer_id] for row in open_rows])
    quiet = quiet_hours_check(
        items=[(row.id, row.customer_id, row.channel) for row in open_rows],
        zones=recipients,
        now=now,
        category=category,
    )
    for row in open_rows:
        if quiet[row.id] is not None:
            held[row.id] = Outcome(row.id, Status.QUEUED, Reason.QUIET_HOURS, not_before=quiet[row.id], uncount=True)
    open_rows = [row for row in open_rows if row.id not in held]
    decisions = caps_reserve(
        items=[
            CapRequest(
                delivery_id=row.id,
                customer_id=row.customer_id,
                channel=row.channel,
                category=category,
                zone=recipients[row.customer_id].zones[0],
                when_capped=getattr(cause, "when_capped", ""),
            )
            for row in open_rows
        ],
        now=now,
    )
    reservations = {}
    for row in open_rows:
        decision = decisions[row.id]
        if decision.allowed:
            reservations[row.id] = decision.reservations
        elif decision.action == "defer":
            held[row.id] = Outcome(
                row.id, Status.QUEUED, Reason.FREQUENCY_CAP, not_before=decision.retry_at, uncount=True
            )
        else:
            held[row.id] = Outcome(row.id, Status.SKIPPED, Reason.FREQUENCY_CAP, error=decision.rule)
    return held, reservations


def _send_many(backend, payloads: list, channel: str) -> list:
    """Each payload's result or error; an unexpected failure of the whole batch marks each unknown."""
    try:
        return backend.send_many(payloads)
    except Exception as exc:  # a bug or an outage mid-batch: some may have left, so none is resent
        logger.exception("a %s batch failed unexpectedly", channel)
        return [exc] * len(payloads)


def _skip_reason(row: Claimed, customer: Customer | None, checks) -> tuple[str, str] | None:
    """Why ``row`` must not be sent now (reason, effect), or ``None``; checks in the forecast's order."""
    if customer is None or customer.erased_at is not None:
        return Reason.ERASED, "remove"
    if customer.merged_into_id is not None:
        return Reason.MERGED, "remove"
    for index, check in checks:
        # NULL counts as excluded, as in the forecast and the launch's WHERE NOT.
        if getattr(customer, f"check_{row.channel}_{index}") is not False:
            return check.reason, check.effect
    return None


def _carrier_opt_out(*, customer: Customer, row: Claimed, address: str) -> None:
    """The carrier says the recipient opted out (Twilio 21610): withdraw consent and suppress the number.

    Goes through the customers services, each change in its own short transaction, after the chunk's
    outcomes are recorded; the ledger entry names the delivery that found out.
    """
    from customers.models import ConsentMethod, Suppression
    from customers.services import consent_withdraw
    from customers.services.consent import Evidence, suppression_add

    with transaction.atomic():
        consent_withdraw(
            customer=customer,
            channel=row.channel,
            evidence=Evidence(
                method=ConsentMethod.SMS_KEYWORD,
                source_reference=f"delivery:{row.id}",
                note="Opted out at the carrier (reported when sending).",
            ),
        )
        if row.channel in (Channel.EMAIL, Channel.SMS):
            suppression_add(channel=row.channel, address=address, reason=Suppression.Reason.CARRIER_OPT_OUT)


def _coupon_codes(code_ids: set[int]) -> dict[int, str]:
    if not code_ids:
        return {}
    from loyalty.models import CouponCode

    return dict(CouponCode.objects.filter(pk__in=code_ids).values_list("pk", "code"))


def cause_finish_if_done(*, cause_type: str, cause_id: int) -> bool:
    """Mark a sending campaign sent once none of its deliveries is queued or sending; True if it did.

    Locks the campaign row; a campaign paused or cancelled meanwhile is left as it is. Idempotent.
    """
    if cause_type != Delivery.Cause.CAMPAIGN:
        return False
    pending = Delivery.objects.filter(cause_type=cause_type, cause_id=cause_id, status__in=Delivery.PENDING_STATUSES)
    if pending.exists():
        return False
    from campaigns.services.campaigns import campaign_transition

    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=cause_id, status=Campaign.Status.SENDING).first()
        if campaign is None or pending.exists():
            return False
        campaign_transition(campaign=campaign, to=Campaign.Status.SENT, actor=None, note="every delivery resolved")
    return True
