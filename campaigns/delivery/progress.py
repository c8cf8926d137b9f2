"""Reads for operating a running campaign: its progress counts and why one person was or was not sent it.

``campaign_progress`` is one aggregate statement over the campaign's deliveries (grouped by status and
reason, with the last minute's sends counted in the same pass), served by the unique key's leading
columns. ``campaign_why`` answers "why was this person not sent this" from their delivery rows, or, when
they have none, from the same audience checks launching applies.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone

from campaigns.audience import checks_for, segment_member_q
from campaigns.models import Campaign, Delivery
from customers.exceptions import InvalidContact
from customers.models import Customer
from customers.normalization import normalize_email, normalize_phone
from customers.selectors import customer_name_words_q, customer_profile_ids

Status = Delivery.Status
CAMPAIGN = Delivery.Cause.CAMPAIGN
RATE_WINDOW = timedelta(minutes=1)
# Statuses that will not change any more (unknown and deferred aside: deferred is sent later).
DONE_STATUSES = (Status.SENT, Status.SKIPPED, Status.FAILED, Status.UNKNOWN, Status.CANCELLED)

# What each reason means to someone reading the admin, in plain words.
REASON_TEXT = {
    Delivery.Reason.NO_CONSENT: "They have not consented to this channel (or withdrew before the send).",
    Delivery.Reason.MISSING_ADDRESS: "There is no address for this channel on their profile.",
    Delivery.Reason.SUPPRESSED: "Their address is on the suppression list (bounce, complaint, STOP or manual).",
    Delivery.Reason.FREQUENCY_CAP: "They had already received as many messages as the frequency cap allows.",
    Delivery.Reason.QUIET_HOURS: "It was quiet hours where they live; the message waits until morning.",
    Delivery.Reason.INVALID_ADDRESS: "The address on their profile is not valid for this channel.",
    Delivery.Reason.PROVIDER_REFUSED: "The provider refused the message.",
    Delivery.Reason.PROVIDER_UNAVAILABLE: "The provider could not be reached, and every retry was used up.",
    Delivery.Reason.RENDER_FAILED: "The message could not be rendered for them.",
    Delivery.Reason.NO_VARIANT: "The message has no variant for this channel.",
    Delivery.Reason.LEASE_EXPIRED: (
        "A worker was lost while handing it to the provider; it may have arrived, so it is never sent again."
    ),
    Delivery.Reason.CANCELLED: "The campaign was cancelled before it was sent.",
    Delivery.Reason.MERGED: "Their profile was merged into another one.",
    Delivery.Reason.ERASED: "Their profile was erased.",
    Delivery.Reason.LOCAL_TIME: "The campaign sends at a local time; it waits for that time in their zone.",
    Delivery.Reason.HOLDOUT: "They were drawn into the campaign's holdout (control group), to measure its lift.",
}
STATUS_TEXT = {
    Status.QUEUED: "Waiting to be sent.",
    Status.SENDING: "Being handed to the provider right now.",
    Status.SENT: "Sent.",
    Status.DEFERRED: "Held back; it is sent once its time comes.",
    Status.SKIPPED: "Not sent.",
    Status.FAILED: "Sending failed.",
    Status.UNKNOWN: "Outcome unknown.",
    Status.CANCELLED: "Cancelled.",
}


@dataclasses.dataclass
class Progress:
    total: int = 0
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_by_reason: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    failed_by_reason: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    sent_last_minute: int = 0
    sent_by_channel: dict[str, int] = dataclasses.field(default_factory=dict)
    # Of the deferred rows: those of a local-time campaign waiting for the send time in their zone.
    waiting_local_time: int = 0

    @property
    def done(self) -> int:
        return sum(self.statuses.get(status, 0) for status in DONE_STATUSES)

    @property
    def percent(self) -> int:
        """Share of rows that reached a final outcome, rounded down (100 only when all have)."""
        return 100 * self.done // self.total if self.total else 0

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "statuses": {status: self.statuses.get(status, 0) for status in Status.values},
            "skipped_by_reason": [{"reason": r, "label": label, "count": n} for r, label, n in self.skipped_by_reason],
            "failed_by_reason": [{"reason": r, "label": label, "count": n} for r, label, n in self.failed_by_reason],
            "done": self.done,
            "percent": self.percent,
            "sent_last_minute": self.sent_last_minute,
            "waiting_local_time": self.waiting_local_time,
        }


def _reason_label(reason: str) -> str:
    return Delivery.Reason(reason).label if reason in Delivery.Reason.values else (reason or "no reason recorded")


def campaign_progress(*, campaign: Campaign, now: datetime | None = None) -> Progress:
    """Counts of the campaign's deliveries by status (and by reason for skipped and failed rows), and the
    messages sent in the last minute; ONE aggregate query. Reads only; safe at any time.
    """
    now = now or timezone.now()
    rows = (
        Delivery.objects.filter(cause_type=CAMPAIGN, cause_id=campaign.pk)
        .order_by()
        .values("status", "reason", "channel")
        .annotate(
            count=Count("id"),
            recent=Count("id", filter=Q(status=Status.SENT, sent_at__gt=now - RATE_WINDOW)),
            # Deferred rows (quiet hours, a transient error's backoff) wait queued with a later not_before.
            waiting=Count("id", filter=Q(status=Status.QUEUED, not_before__gt=now)),
        )
    )
    progress = Progress(statuses=dict.fromkeys(Status.values, 0))
    skipped: dict[str, int] = {}
    failed: dict[str, int] = {}
    for row in rows:
        progress.total += row["count"]
        progress.statuses[row["status"]] = progress.statuses.get(row["status"], 0) + row["count"] - row["waiting"]
        progress.statuses[Status.DEFERRED] += row["waiting"]
        if row["reason"] == Delivery.Reason.LOCAL_TIME:
            progress.waiting_local_time += row["waiting"]
        progress.sent_last_minute += row["recent"]
        if row["status"] == Status.SENT:
            progress.sent_by_channel[row["channel"]] = progress.sent_by_channel.get(row["channel"], 0) + row["count"]
        if row["status"] == Status.SKIPPED:
            skipped[row["reason"]] = skipped.get(row["reason"], 0) + row["count"]
        elif row["status"] == Status.FAILED:
            failed[row["reason"]] = failed.get(row["reason"], 0) + row["count"]
    progress.skipped_by_reason = sorted(((r, _reason_label(r), n) for r, n in skipped.items()), key=lambda i: -i[2])
    progress.failed_by_reason = sorted(((r, _reason_label(r), n) for r, n in failed.items()), key=lambda i: -i[2])
    return progress


def campaigns_progress(*, campaign_ids: list[int]) -> dict[int, Progress]:
    """Status counts for several campaigns at once (the campaign list's column); ONE aggregate query."""
    rows = (
        Delivery.objects.filter(cause_type=CAMPAIGN, cause_id__in=campaign_ids)
        .order_by()
        .values("cause_id", "status")
        .annotate(count=Count("id"))
    )
    result: dict[int, Progress] = {}
    for row in rows:
        progress = result.setdefault(row["cause_id"], Progress(statuses=dict.fromkeys(Status.values, 0)))
        progress.total += row["count"]
        progress.statuses[row["status"]] += row["count"]
    return result


def progress_bar(progress: Progress, *, width: int = 30) -> str:
    """A text bar such as ``[#########.....]  60% 600/1000`` for terminals."""
    filled = width * progress.done // progress.total if progress.total else 0
    return f"[{'#' * filled}{'.' * (width - filled)}] {progress.percent:3d}% {progress.done}/{progress.total}"


# --- Why was this person not sent this ------------------------------------------------------------


def customers_matching(*, query: str, limit: int = 10) -> list[Customer]:
    """Profiles whose email or phone is ``query`` (any spelling), or whose names hold every word of it.

    Never matches internal ids: staff look people up by what the person tells them.
    """
    term = (query or "").strip()
    if not term:
        return []
    wanted = Q()
    with contextlib.suppress(InvalidContact):
        wanted |= Q(email__iexact=normalize_email(term))
    if any(char.isdigit() for char in term):
        with contextlib.suppress(InvalidContact):
            wanted |= Q(phone=normalize_phone(term))
    wanted |= customer_name_words_q(term)
    if not wanted:
        return []
    return list(Customer.objects.filter(wanted).order_by("pk")[:limit])


@dataclasses.dataclass
class DeliveryAnswer:
    channel: str
    status: str
    status_label: str
    explanation: str
    reason: str
    address: str
    attempts: int
    error: str
    created_at: datetime | None
    sent_at: datetime | None
    updated_at: datetime | None
    not_before: datetime | None


@dataclasses.dataclass
class WhyAnswer:
    customer: Customer
    deliveries: list[DeliveryAnswer]
    # When there is no delivery row: each sentence says why they were left out, in plain words.
    not_in_audience: list[str]


def _explain(delivery: Delivery) -> str:
    if delivery.reason:
        return REASON_TEXT.get(delivery.reason, _reason_label(delivery.reason))
    return STATUS_TEXT.get(delivery.status, delivery.status)


def _audience_reasons(campaign: Campaign, customer: Customer, now: datetime) -> list[str]:
    """Why ``customer`` has no delivery for ``campaign``, from the launch's own checks; one query."""
    if customer.erased_at is not None:
        return ["Their profile was erased."]
    if customer.merged_into_id:
        return [f"This profile was merged into customer #{customer.merged_into_id}; look that profile up instead."]
    # Deliveries are written at launch, which sets started_at (a campaign paused or cancelled before it never had).
    not_started = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED, Campaign.Status.CANCELLED)
    if campaign.status in not_started and campaign.started_at is None:
        prefix = ["The campaign has not started sending: deliveries are written when it launches. As of now:"]
    else:
        prefix = []
    flags: dict[str, Q] = {}
    includes = list(campaign.include_segments.all())
    excludes = list(campaign.exclude_segments.all())
    for segment in includes:
        flags[f"in_{segment.pk}"] = segment_member_q(segment, now=now)
    for segment in excludes:
        flags[f"out_{segment.pk}"] = segment_member_q(segment, now=now)
    channels = campaign.channel_list
    for channel in channels:
        for index, check in enumerate(checks_for(channel, campaign)):
            flags[f"check_{channel}_{index}"] = check.excluded_q(channel, campaign, now)
    annotated = (
        Customer.objects.filter(pk=customer.pk)
        .annotate(**{name: ExpressionWrapper(q, output_field=BooleanField()) for name, q in flags.items()})
        .values(*flags)
        .first()
        or {}
    )
    if not includes:
        return [*prefix, "The campaign has no segment to send to."]
    if not any(annotated.get(f"in_{segment.pk}") for segment in includes):
        names = ", ".join(segment.name for segment in includes)
        return [*prefix, f"They are not in the campaign's segment ({names})."]
    excluded_by = [segment.name for segment in excludes if annotated.get(f"out_{segment.pk}")]
    if excluded_by:
        return [*prefix, f"They are in an excluded segment ({', '.join(excluded_by)})."]
    reasons, reachable = [], []
    for channel in channels:
        failing = [
            check
            for index, check in enumerate(checks_for(channel, campaign))
            if check.effect == "remove" and annotated.get(f"check_{channel}_{index}") is not False
        ]
        if failing:
            check = failing[0]
            text = REASON_TEXT.get(check.reason, check.label)
            reasons.append(f"{channel}: {text}")
        else:
            reachable.append(channel)
    if reachable and not prefix:
        reasons.append(
            f"They qualify now on {', '.join(reachable)}, but did not when the campaign launched"
            + (f" ({campaign.started_at:%Y-%m-%d %H:%M %Z})" if campaign.started_at else "")
            + ": they joined the segment, consented or gained an address since."
        )
    elif reachable:
        reasons.append(f"They would be sent it on {', '.join(reachable)}.")
    return [*prefix, *reasons]


def campaign_why(*, campaign: Campaign, customer: Customer, now: datetime | None = None) -> WhyAnswer:
    """The customer's deliveries for ``campaign`` with their status and reason in plain words, or, if they
    have none, why they were not in its audience. Reads only; a bounded number of queries.
    """
    now = now or timezone.now()
    # Profiles merged into this one keep the deliveries they had before the merge.
    profile_ids = customer_profile_ids(customer)
    rows = Delivery.objects.filter(cause_type=CAMPAIGN, cause_id=campaign.pk, customer_id__in=profile_ids).order_by(
        "channel", "id"
    )
    deliveries = [
        DeliveryAnswer(
            channel=row.channel,
            status=row.status,
            status_label=row.get_status_display(),
            explanation=_explain(row),
            reason=row.reason,
            address=row.address,
            attempts=row.attempts,
            error=row.error,
            created_at=row.created_at,
            sent_at=row.sent_at,
            updated_at=row.updated_at,
            not_before=row.not_before,
        )
        for row in rows
    ]
    reasons = [] if deliveries else _audience_reasons(campaign, customer, now)
    return WhyAnswer(customer=customer, deliveries=deliveries, not_in_audience=reasons)


def deliveries_for_customer(*, profile_ids: list[int], limit: int = 100) -> list[Delivery]:
    """The latest deliveries of these profiles, across campaigns and journeys.

    Deliveries carry no index on the customer alone (it would cost every launch a B-tree insert per row);
    naming every campaign id lets the unique key ``(cause_type, cause_id, customer_id, …)`` answer with one
    index probe per campaign instead of a scan.
    """
    from django.db.models import Q

    from campaigns.models import JourneyStepRun

    if not profile_ids:
        return []
    campaign_ids = list(Campaign.objects.exclude(started_at__isnull=True).values_list("pk", flat=True))
    # A journey's messages are caused by the person's own step runs, found through their enrolments.
    run_ids = list(JourneyStepRun.objects.filter(enrolment__customer_id__in=profile_ids).values_list("pk", flat=True))
    if not campaign_ids and not run_ids:
        return []
    causes = Q(cause_type=CAMPAIGN, cause_id__in=campaign_ids) | Q(
        cause_type=Delivery.Cause.JOURNEY_STEP, cause_id__in=run_ids
    )
    return list(Delivery.objects.filter(causes, customer_id__in=profile_ids).order_by("-created_at", "-id")[:limit])


def delivery_timeline_entries(profile_ids) -> list:
    """The customer's deliveries as entries of their 360° timeline (registered as a timeline source)."""
    from campaigns.delivery.causes import delivery_cause_label, delivery_causes
    from customers.selectors import TimelineEntry

    rows = deliveries_for_customer(profile_ids=list(profile_ids))
    causes = delivery_causes(rows)
    return [
        TimelineEntry(
            at=row.sent_at or row.updated_at or row.created_at,
            kind="delivery",
            title=f"{row.get_channel_display()} from {delivery_cause_label(causes, row)[0]}: "
            f"{row.get_status_display().lower()}",
            details={
                "Why": REASON_TEXT.get(row.reason, "") if row.reason else "",
                "Address": row.address,
                "Attempts": row.attempts,
                "Queued at": row.created_at,
                "Sent at": row.sent_at or "",
                "Provider error": row.error,
            },
        )
        for row in rows
    ]
