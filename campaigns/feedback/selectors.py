"""Reads for the campaign page: rates per channel from the running counts, and why a campaign paused itself."""

from __future__ import annotations

import dataclasses

from campaigns.models import AuditEvent, Campaign, Delivery, FeedbackCount

PAUSED_PREFIX = "Paused: "
HEALTH_KINDS = ("delivered", "bounced", "complained", "unsubscribed", FeedbackCount.STOPPED, "opened", "clicked")


@dataclasses.dataclass(frozen=True)
class ChannelHealth:
    channel: str
    label: str
    sent: int
    counts: dict[str, int]

    def rate(self, kind: str) -> float | None:
        return self.counts.get(kind, 0) / self.sent if self.sent else None

    @property
    def cells(self) -> list[tuple[str, str]]:
        """(kind, "count (rate %)") in the order the campaign page shows them."""
        cells = []
        for kind in HEALTH_KINDS:
            rate = self.rate(kind)
            count = self.counts.get(kind, 0)
            cells.append((kind, f"{count} ({rate:.2%})" if rate is not None else str(count)))
        return cells


def campaign_sender_health(*, campaign: Campaign, sent: dict[str, int]) -> list[ChannelHealth]:
    """Feedback counts (bounces, complaints, unsubscribes, STOPs, opens) per channel, as rates of ``sent``
    (the sent deliveries per channel, from ``campaign_progress``); one query over the counters."""
    cause = {"cause_type": Delivery.Cause.CAMPAIGN, "cause_id": campaign.pk}
    counts: dict[str, dict[str, int]] = {}
    for channel, kind, count in FeedbackCount.objects.filter(**cause).values_list("channel", "kind", "count"):
        if kind != FeedbackCount.SENT_SEEN:
            counts.setdefault(channel, {})[kind] = count
    labels = dict(Delivery._meta.get_field("channel").choices)
    return [
        ChannelHealth(
            channel=channel,
            label=str(labels.get(channel, channel)),
            sent=sent.get(channel, 0),
            counts=counts.get(channel, {}),
        )
        for channel in campaign.channel_list
        if channel in sent or channel in counts
    ]


def sender_health_limits() -> dict[str, str]:
    from campaigns.feedback.health import health_conf

    return {
        "complaints": f"{float(health_conf('MAX_COMPLAINT_RATE')):.2%}",
        "bounces": f"{float(health_conf('MAX_HARD_BOUNCE_RATE')):.2%}",
        "min_sends": str(health_conf("MIN_SENDS")),
    }


def campaign_pause_reason(*, campaign: Campaign) -> str:
    """Why a paused campaign paused itself (sender health), or "" when staff paused it or it is not paused."""
    if campaign.status != Campaign.Status.PAUSED:
        return ""
    event = (
        AuditEvent.objects.filter(campaign=campaign, action=AuditEvent.Action.STATUS_CHANGED)
        .order_by("-occurred_at", "-id")
        .values("actor_id", "changes")
        .first()
    )
    note = str((event or {}).get("changes", {}).get("note", ""))
    if event is None or event["actor_id"] is not None or not note.startswith(PAUSED_PREFIX):
        return ""
    return note.removeprefix(PAUSED_PREFIX)
