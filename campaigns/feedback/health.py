"""Sender health: a campaign pauses itself when complaints or hard bounces pass their limits.

Judged when a complaint or hard bounce arrives, from running counts: the complaints or bounces are
counted per (campaign, channel), and the sent deliveries only as a lower bound (``sent_seen``) that is
refreshed by a bounded count when, and only when, the rate might have passed its limit. A healthy
campaign therefore costs one count upsert per event; the refresh reads at most
``max(MIN_SENDS, count / limit + 1)`` rows through the unique key's prefix.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from campaigns.exceptions import TransitionError
from campaigns.feedback.records import DeliveryRef, feedback_count_raise
from campaigns.models import Campaign, Delivery, DeliveryEvent, FeedbackCount

logger = logging.getLogger(__name__)

DEFAULTS = {
    # Gmail and Yahoo: keep complaints below 0.1 %, never reach 0.3 %.
    "MAX_COMPLAINT_RATE": 0.003,
    "MAX_HARD_BOUNCE_RATE": 0.05,
    # Below this many sends of a channel a rate says too little to act on.
    "MIN_SENDS": 200,
}
_LIMITS = {DeliveryEvent.Kind.COMPLAINED: "MAX_COMPLAINT_RATE", DeliveryEvent.Kind.BOUNCED: "MAX_HARD_BOUNCE_RATE"}
_LABELS = {DeliveryEvent.Kind.COMPLAINED: "complaint", DeliveryEvent.Kind.BOUNCED: "hard-bounce"}


def health_conf(name: str):
    return {**DEFAULTS, **getattr(settings, "SENDER_HEALTH", {})}[name]


def _sent_at_most(ref: DeliveryRef, limit: int) -> int:
    """How many of the channel's deliveries were sent, counting no further than ``limit``."""
    sent = Delivery.objects.filter(
        cause_type=ref.cause_type, cause_id=ref.cause_id, channel=ref.channel, status=Delivery.Status.SENT
    ).values("pk")[:limit]
    return Delivery.objects.filter(pk__in=sent).count()


def sender_health_check(*, ref: DeliveryRef, kind: str, count: int) -> bool:
    """Pause the delivery's campaign when ``count`` complaints (or hard bounces) of its channel pass the limit.

    ``count`` is the running count just after this event. Pauses through ``campaign_transition`` (which
    locks the campaign row and writes the reason to the audit trail); a campaign no longer sending is
    left alone. Returns True when it paused the campaign.
    """
    if kind not in _LIMITS or ref.cause_type != Delivery.Cause.CAMPAIGN:
        return False
    limit_rate = float(health_conf(_LIMITS[kind]))
    min_sends = int(health_conf("MIN_SENDS"))
    seen = (
        FeedbackCount.objects.filter(
            cause_type=ref.cause_type, cause_id=ref.cause_id, channel=ref.channel, kind=FeedbackCount.SENT_SEEN
        )
        .values_list("count", flat=True)
        .first()
        or 0
    )
    if seen >= min_sends and count <= limit_rate * seen:
        return False  # at least ``seen`` were sent, so the rate is at most count / seen: healthy
    status = Campaign.objects.filter(pk=ref.cause_id).values_list("status", flat=True).first()
    if status != Campaign.Status.SENDING:
        return False
    enough = max(min_sends, int(count / limit_rate) + 1) if limit_rate > 0 else min_sends
    sent = _sent_at_most(ref, enough)
    feedback_count_raise(
        cause_type=ref.cause_type,
        cause_id=ref.cause_id,
        channel=ref.channel,
        kind=FeedbackCount.SENT_SEEN,
        at_least=sent,
    )
    if sent < min_sends or count <= limit_rate * sent:
        return False
    reason = (
        f"{ref.channel} {_LABELS[kind]} rate {count / sent:.2%} ({count} of {sent} sent) "
        f"passed the {limit_rate:.2%} limit"
    )
    return _pause(campaign_id=ref.cause_id, reason=reason)


def _pause(*, campaign_id: int, reason: str) -> bool:
    from campaigns.services.campaigns import campaign_transition

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return False
    try:
        with transaction.atomic():
            campaign_transition(campaign=campaign, to=Campaign.Status.PAUSED, actor=None, note=f"Paused: {reason}")
    except TransitionError:
        return False  # finished, cancelled or paused meanwhile
    logger.warning("campaign %s paused: %s", campaign_id, reason)
    return True
