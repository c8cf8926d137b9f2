"""The sweeper: the database, not the broker, decides what still has to happen.

Every minute it (1) resolves rows stuck in ``sending`` past their lease: a row never handed to its
provider (the worker was lost between claim and call) is queued again; a row that was handed over
becomes ``unknown`` (the provider may have accepted it: marketing policy is never to resend), (2) cancels the
queued rows of cancelled campaigns, (3) re-publishes chunk tasks for due queued rows whose task was
lost (a restart, a flushed broker, a crash between commit and publish), and (4) marks campaigns sent
once nothing of theirs is pending.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from itertools import groupby

from django.db import connection, transaction
from django.utils import timezone

from campaigns.delivery.conf import conf
from campaigns.delivery.launch import chunks_enqueue
from campaigns.delivery.sending import cause_finish_if_done
from campaigns.models import Campaign, Delivery

Status = Delivery.Status


@dataclasses.dataclass(frozen=True)
class SweepResult:
    lease_expired: int
    requeued: int
    cancelled: int
    redriven: int
    chunks: int
    finished: list[int]


def _table() -> str:
    return connection.ops.quote_name(Delivery._meta.db_table)


def _campaign_status_sql(alias: str) -> str:
    return (
        f"{alias}.cause_type = %s AND EXISTS (SELECT 1 FROM campaigns_campaign cause "  # noqa: S608 (alias is ours)
        f"WHERE cause.id = {alias}.cause_id AND cause.status = %s)"
    )


def _ranges(ids: list[int], size: int) -> list[tuple[int, int]]:
    return [(ids[start], ids[min(start + size, len(ids)) - 1]) for start in range(0, len(ids), size)]


def _journey_rows_redrive(cursor, *, lease: datetime, now: datetime) -> list[tuple[str, int, int]]:
    """Due queued rows of live or draining journeys, leased like the campaign rows above, as
    ``(cause_type, journey id, delivery id)``: a journey's chunk task names the journey (see sending)."""
    adapt = connection.ops.adapt_datetimefield_value
    table = _table()
    cursor.execute(
        f"UPDATE {table} SET lease_until = %s WHERE id IN ("  # noqa: S608
        f"SELECT due.id FROM {table} due "
        "JOIN campaigns_journeysteprun run ON run.id = due.cause_id "
        "JOIN campaigns_enrolment enrolment ON enrolment.id = run.enrolment_id "
        "JOIN campaigns_journey journey ON journey.id = enrolment.journey_id "
        "WHERE due.cause_type = %s AND due.status = %s AND journey.status IN (%s, %s) "
        "AND (due.lease_until IS NULL OR due.lease_until <= %s) "
        "AND (due.not_before IS NULL OR due.not_before <= %s) ORDER BY due.id LIMIT %s) "
        "RETURNING id, cause_id",
        [
            adapt(lease),
            Delivery.Cause.JOURNEY_STEP,
            Status.QUEUED,
            "live",
            "draining",
            adapt(now),
            adapt(now),
            conf("DELIVERY_SWEEP_LIMIT"),
        ],
    )
    rows = cursor.fetchall()
    if not rows:
        return []
    from campaigns.models import JourneyStepRun

    journeys = dict(
        JourneyStepRun.objects.filter(pk__in={run_id for _, run_id in rows}).values_list("pk", "enrolment__journey_id")
    )
    return [(Delivery.Cause.JOURNEY_STEP, journeys[run_id], delivery_id) for delivery_id, run_id in rows]


@transaction.atomic
def deliveries_sweep(*, now: datetime | None = None) -> SweepResult:
    """One sweep; a handful of statements whatever the number of rows. Safe to run concurrently.

    Re-driving moves each row's lease forward in the same UPDATE that selects it, so two sweepers do
    not both publish the same rows (and a duplicate publish would claim nothing anyway). Tasks are
    published after commit.
    """
    now = now or timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    table = _table()
    with connection.cursor() as cursor:
        # Lost before its provider call: queue it again (the re-drive below publishes it this sweep).
        cursor.execute(
            f"UPDATE {table} SET status = %s, lease_until = NULL, updated_at = %s "  # noqa: S608
            "WHERE status = %s AND lease_until < %s AND handed_at IS NULL",
            [Status.QUEUED, adapt(now), Status.SENDING, adapt(now)],
        )
        requeued = cursor.rowcount
        # Lost after it: the provider may have it, so it is never sent again (marketing policy).
        cursor.execute(
            f"UPDATE {table} SET status = %s, reason = %s, lease_until = NULL, updated_at = %s "  # noqa: S608
            "WHERE status = %s AND lease_until < %s AND handed_at IS NOT NULL",
            [Status.UNKNOWN, Delivery.Reason.LEASE_EXPIRED, adapt(now), Status.SENDING, adapt(now)],
        )
        lease_expired = cursor.rowcount
        cursor.execute(
            f"UPDATE {table} SET status = %s, reason = %s, lease_until = NULL, updated_at = %s "  # noqa: S608
            f"WHERE status = %s AND {_campaign_status_sql(table)}",
            [
                Status.CANCELLED,
                Delivery.Reason.CANCELLED,
                adapt(now),
                Status.QUEUED,
                Delivery.Cause.CAMPAIGN,
                Campaign.Status.CANCELLED,
            ],
        )
        cancelled = cursor.rowcount
        lease = now + timedelta(seconds=conf("DELIVERY_REDRIVE_AFTER_SECONDS"))
        cursor.execute(
            f"UPDATE {table} SET lease_until = %s WHERE id IN ("  # noqa: S608
            f"SELECT due.id FROM {table} due WHERE due.status = %s "
            "AND (due.lease_until IS NULL OR due.lease_until <= %s) "
            "AND (due.not_before IS NULL OR due.not_before <= %s) "
            f"AND {_campaign_status_sql('due')} ORDER BY due.id LIMIT %s) "
            "RETURNING cause_type, cause_id, id",
            [
                adapt(lease),
                Status.QUEUED,
                adapt(now),
                adapt(now),
                Delivery.Cause.CAMPAIGN,
                Campaign.Status.SENDING,
                conf("DELIVERY_SWEEP_LIMIT"),
            ],
        )
        due = cursor.fetchall()
        due = sorted([*due, *_journey_rows_redrive(cursor, lease=lease, now=now)])
    chunks = 0
    size = conf("DELIVERY_CHUNK_SIZE")
    for (cause_type, cause_id), rows in groupby(due, key=lambda row: (row[0], row[1])):
        ranges = _ranges([row[2] for row in rows], size)
        chunks += len(ranges)
        chunks_enqueue(cause_type=cause_type, cause_id=cause_id, ranges=ranges)
    finished = [
        campaign_id
        for campaign_id in Campaign.objects.filter(status=Campaign.Status.SENDING).values_list("pk", flat=True)
        if cause_finish_if_done(cause_type=Delivery.Cause.CAMPAIGN, cause_id=campaign_id)
    ]
    return SweepResult(
        lease_expired=lease_expired,
        requeued=requeued,
        cancelled=cancelled,
        redriven=len(due),
        chunks=chunks,
        finished=finished,
    )
