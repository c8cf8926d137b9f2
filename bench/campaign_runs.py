"""What the delivery benchmarks share: a clean slate, the counting null channels, and a launch whose
chunks are handed back instead of published (each benchmark sends them itself)."""

from __future__ import annotations


def deliveries_reset(prefix: str) -> None:
    """Empty the delivery tables and the cap counters; drop the campaigns, messages and segments named ``prefix…``."""
    from django.db import connection

    from campaigns.models import Campaign, Message, Segment

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE campaigns_delivery, campaigns_outboxmessage, campaigns_frequencycounter")
    Campaign.objects.filter(name__startswith=prefix).delete()
    Message.objects.filter(name__startswith=prefix).delete()
    Segment.objects.filter(name__startswith=prefix).delete()


def null_channels_use(settings) -> None:
    """Send through the counting null channels (the real channels still build every payload)."""
    from campaigns.channels.null import null_counters_reset

    settings.DELIVERY_OUTBOX_CHANNELS = []
    settings.TANDEM_NULL_CHANNELS = ["email", "sms", "push"]
    null_counters_reset()


def campaign_launch_for_bench(campaign, *, now=None):
    """Launch ``campaign`` in a transaction; returns (the launch result, its chunk ranges, not published)."""
    from django.db import transaction
    from django.utils import timezone

    from campaigns.delivery import launch

    published: list[tuple[int, int]] = []
    publish, launch._publish = launch._publish, lambda cause_type, cause_id, ranges: published.extend(ranges)
    try:
        with transaction.atomic():
            result = launch.campaign_launch(campaign=campaign, now=now or timezone.now())
    finally:
        launch._publish = publish
    return result, published
