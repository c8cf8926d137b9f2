"""B1/B4-style benchmark of the delivery engine: launch a campaign over N customers, then send every chunk.

Usage (PostgreSQL only; builds its own database whose name must end in _bench, never touches yours):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_bench python -m bench.b4_delivery --customers 100000

Reuses B1's fixture (email for everyone, 80 % email consent, a third with phone and SMS consent, 2 %
suppressed). Prints the launch time and SQL statements, then sends every chunk in this one process
(no broker) through ``--backend``: ``outbox`` (the demo default, one outbox row per message) or ``null``
(the counting null channels of ``campaigns/channels/null.py``: the real payloads are built, then
counted in Redis or the shared cache instead of sent). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backend", choices=("outbox", "null"), default="null")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="keep the fixture if it has that many customers")
    args = parser.parse_args()
    from bench.b1_segment_count import _setup_django, fixture_build

    _setup_django()
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns.channels.null import null_counters_reset, null_sent_count
    from campaigns.delivery import launch
    from campaigns.delivery.sending import delivery_chunk_send
    from campaigns.models import Campaign, Delivery, Message, OutboxMessage, Segment, Variant

    fixture_build(customers=args.customers, reuse=args.reuse)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE campaigns_delivery, campaigns_outboxmessage")
    Campaign.objects.filter(name__startswith="B4").delete()
    Message.objects.filter(name="B4").delete()
    Segment.objects.filter(name="B4 everyone").delete()
    message = Message.objects.create(name="B4")
    Variant.objects.create(
        message=message,
        channel="email",
        subject="Hello {{ first_name }}",
        preheader="Spring at {{ store_name }}",
        html_body="<h1>Hi {{ first_name }}</h1><p>" + "Our spring collection is in. " * 60 + "</p>",
    )
    sms_body = "Tandem Stores: hi {{ first_name }}, 20% off. Reply STOP to opt out"  # brand and opt-out: compliant
    Variant.objects.create(message=message, channel="sms", sms_body=sms_body)
    campaign = Campaign.objects.create(
        name="B4", goal="engagement", kpi="click_rate", message=message, channels=["email", "sms"], status="scheduled"
    )
    campaign.include_segments.set([Segment.objects.create(name="B4 everyone", rules={})])

    settings.DEBUG = False  # DEBUG keeps the last 9,000 statements, and the outbox's carry every email
    published: list[tuple[int, int]] = []
    launch._publish = lambda cause_type, cause_id, ranges: published.extend(ranges)
    settings.DELIVERY_CHUNK_SIZE = args.chunk
    counted = [0]

    def count(execute, sql, params, many, context):
        counted[0] += 1  # counted, not kept: the outbox's statements carry every rendered email
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        with transaction.atomic():
            result = launch.campaign_launch(campaign=campaign, now=timezone.now())
        launch_seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"launch: {result.created:,} deliveries in {launch_seconds:.2f} s, {counted[0]} SQL, "
        f"{len(published)} chunks, peak RSS {rss:.0f} MB"
    )

    if args.backend == "null":
        # The counting null channels (TANDEM_NULL_CHANNELS): the real channels build every payload.
        settings.DELIVERY_OUTBOX_CHANNELS = []
        settings.TANDEM_NULL_CHANNELS = ["email", "sms", "push"]
        null_counters_reset()
    counted[0] = 0
    started = time.perf_counter()
    cpu = time.process_time()
    with connection.execute_wrapper(count):
        for first_id, last_id in published:
            delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first_id, last_id=last_id)
    statements = counted[0]
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    sent = Delivery.objects.filter(cause_id=campaign.pk, status="sent").count()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"send ({args.backend}): {sent:,} sent in {seconds:.2f} s = {sent / seconds:,.0f} msgs/s in one process, "
        f"{cpu * 1e6 / max(sent, 1):.0f} us CPU/msg here, {statements / max(sent, 1):.4f} SQL/msg, "
        f"outbox rows {OutboxMessage.objects.count():,}, campaign {Campaign.objects.get(pk=campaign.pk).status}, "
        f"peak RSS {rss:.0f} MB"
    )
    if args.backend == "null":
        print("counted by the null channels: " + ", ".join(f"{c} {null_sent_count(c):,}" for c in ("email", "sms")))


if __name__ == "__main__":
    main()
