"""B8: four campaigns sending to the same customers at the same moment under a cap of one a day.

Usage (PostgreSQL only; its own database, whose name must end in _bench):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_b8_bench REDIS_URL=redis://127.0.0.1:6379/14 \
        python -m bench.b8_concurrent_caps --customers 10000

B1's fixture (everyone has an email; 80 % consented, some suppressed). One frequency rule replaces the
seeded ones: at most 1 marketing message a day across channels. Four email campaigns to everyone are
launched, then sent at once by four forked processes, one per campaign, chunk after chunk (the counting
null channel stands in for the ESP). Prints the messages sent in all against the reachable customers:
the cap holds when each reachable customer got exactly one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

CAMPAIGNS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    from bench.b1_segment_count import _setup_django, fixture_build
    from bench.campaign_runs import campaign_launch_for_bench, deliveries_reset, null_channels_use

    _setup_django()
    from django.conf import settings
    from django.db import connections

    from campaigns.channels.null import null_sent_count
    from campaigns.delivery.sending import delivery_chunk_send
    from campaigns.models import Campaign, Delivery, FrequencyRule, Message, QuietHoursRule, Segment, Variant

    fixture_build(customers=args.customers, reuse=True)
    deliveries_reset("B8")
    FrequencyRule.objects.all().delete()
    QuietHoursRule.objects.all().delete()
    FrequencyRule.objects.create(name="At most 1 message a day", window="calendar_day", limit=1)
    message = Message.objects.create(name="B8")
    Variant.objects.create(message=message, channel="email", subject="Hi {{ first_name }}", html_body="<p>Hello</p>")
    everyone = Segment.objects.create(name="B8 everyone", rules={})
    settings.DEBUG = False
    settings.DELIVERY_CHUNK_SIZE = args.chunk
    null_channels_use(settings)

    plans: list[tuple[int, list[tuple[int, int]]]] = []
    for number in range(1, CAMPAIGNS + 1):
        campaign = Campaign.objects.create(
            name=f"B8 {number}",
            goal="engagement",
            kpi="click_rate",
            message=message,
            channels=["email"],
            status="scheduled",
            when_capped="skip",
        )
        campaign.include_segments.set([everyone])
        _, published = campaign_launch_for_bench(campaign)
        plans.append((campaign.pk, published))
    reachable = Delivery.objects.filter(cause_id=plans[0][0]).count()

    def send_all(campaign_id: int, ranges) -> None:
        for first_id, last_id in ranges:
            delivery_chunk_send(cause_type="campaign", cause_id=campaign_id, first_id=first_id, last_id=last_id)

    connections.close_all()
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    processes = [context.Process(target=send_all, args=plan) for plan in plans]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started

    sent = Delivery.objects.filter(cause_id__in=[pk for pk, _ in plans], status="sent")
    capped = Delivery.objects.filter(cause_id__in=[pk for pk, _ in plans], reason="frequency_cap").count()
    per_customer = sent.values("customer_id").distinct().count()
    print(
        f"B8: {CAMPAIGNS} campaigns x {reachable:,} reachable customers sent at once by {CAMPAIGNS} processes "
        f"in {seconds:.1f} s: {sent.count():,} sent ({per_customer:,} distinct customers), {capped:,} held back "
        f"by the cap, null channel counted {null_sent_count('email'):,}; exactly one each: "
        f"{sent.count() == per_customer == reachable}"
    )


if __name__ == "__main__":
    main()
