"""Storing provider events once, moving a delivery's provider status forward only, and counting feedback."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db import IntegrityError, connection, transaction

from campaigns.models import Delivery, DeliveryEvent, FeedbackCount

Kind = DeliveryEvent.Kind

# How far along a message is; a report of a lower rank than the delivery's current one is kept as an
# event but never moves the status back (callbacks arrive in any order). Failures are final, and rank
# above delivered because a bounce can follow a delivery report.
STATUS_RANK: dict[str, int] = {
    "": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "deferred": 4,
    "delivered": 5,
    "undelivered": 6,
    "failed": 6,
    "rejected": 6,
    "bounced": 6,
    "read": 7,
}
FAILURE_STATUSES = frozenset({"undelivered", "failed", "rejected", "bounced"})


@dataclasses.dataclass(frozen=True)
class DeliveryRef:
    """The few columns of a delivery a webhook needs."""

    id: int
    cause_type: str
    cause_id: int
    customer_id: int
    channel: str
    address: str
    provider_message_id: str


def delivery_ref_get(*, delivery_id: int | None, channel: str) -> DeliveryRef | None:
    """The delivery of ``channel`` with this id, or ``None`` (no id, unknown id, another channel); one query."""
    if delivery_id is None:
        return None
    row = (
        Delivery.objects.filter(pk=delivery_id, channel=channel)
        .values_list("id", "cause_type", "cause_id", "customer_id", "channel", "address", "provider_message_id")
        .first()
    )
    return DeliveryRef(*row) if row else None


def delivery_id_parse(value) -> int | None:
    """A delivery id from untrusted text (ESP metadata, a URL): a positive bigint, else ``None``."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if number > 0 else None


def delivery_event_store(
    *,
    provider: str,
    provider_event_id: str,
    kind: str,
    occurred_at: datetime,
    delivery_id: int | None,
    detail: dict | None = None,
) -> DeliveryEvent | None:
    """Store one provider event; ``None`` when it was stored before (a replay: do nothing else).

    Call inside the transaction that applies the event's effects: a concurrent copy of the same event
    waits on the unique key until that transaction ends, then finds it stored. Uses a savepoint, so a
    duplicate leaves the caller's transaction usable.
    """
    try:
        with transaction.atomic():
            return DeliveryEvent.objects.create(
                provider=provider[:32],
                provider_event_id=provider_event_id[:200],
                kind=kind,
                occurred_at=occurred_at,
                delivery_id=delivery_id,
                detail=detail or {},
            )
    except IntegrityError:
        return None


def delivery_status_advance(*, delivery_id: int, status: str, at: datetime) -> bool:
    """Move the delivery's provider status to ``status`` if that is further along; True if it moved.

    One compare-and-set UPDATE (the current status must rank lower), so two callbacks racing or
    arriving out of order leave the furthest status, and exactly one of two equal reports moves it.
    """
    rank = STATUS_RANK.get(status)
    if rank is None:
        return False
    lower = [name for name, value in STATUS_RANK.items() if value < rank]
    return bool(
        Delivery.objects.filter(pk=delivery_id, provider_status__in=lower).update(
            provider_status=status, provider_status_at=at
        )
    )


def delivery_first_mark(*, delivery_id: int, field: str, at: datetime) -> bool:
    """Set ``opened_at``, ``clicked_at`` or ``complained_at`` if still empty; True the first time only."""
    if field not in ("opened_at", "clicked_at", "complained_at"):
        raise ValueError(f"Not a first-time mark: {field}")
    return bool(Delivery.objects.filter(pk=delivery_id, **{f"{field}__isnull": True}).update(**{field: at}))


def _count_table() -> str:
    return connection.ops.quote_name(FeedbackCount._meta.db_table)


def feedback_count_add(*, ref: DeliveryRef, kind: str, amount: int = 1) -> int:
    """Add to the (cause, channel, kind) count in one upsert; returns the new count."""
    table = _count_table()
    statement = (
        f"INSERT INTO {table} (cause_type, cause_id, channel, kind, count) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (cause_type, cause_id, channel, kind) DO UPDATE SET count = {table}.count + excluded.count "
        "RETURNING count"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [ref.cause_type, ref.cause_id, ref.channel, kind, amount])
        return cursor.fetchone()[0]


def feedback_count_raise(*, cause_type: str, cause_id: int, channel: str, kind: str, at_least: int) -> None:
    """Raise a (cause, channel, kind) count to ``at_least`` (never lowers it); one upsert."""
    table = _count_table()
    statement = (
        f"INSERT INTO {table} (cause_type, cause_id, channel, kind, count) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608
        "ON CONFLICT (cause_type, cause_id, channel, kind) DO UPDATE SET count = "
        f"CASE WHEN excluded.count > {table}.count THEN excluded.count ELSE {table}.count END"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [cause_type, cause_id, channel, kind, at_least])
