"""B10: the send rate does not depend on the campaign's size or on the rows already in the table.

Usage (PostgreSQL only; its own database, whose name must end in _bench; builds B1's fixture once):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_b1_bench REDIS_URL=redis://127.0.0.1:6379/14 \
        python -m bench.b10_flat_throughput --customers 1000000

Three campaigns over the same fixture, launched one after the other into the same delivery table: about
1 % of the customers (one store's recent buyers), 10 % (two stores') and everyone (1.13 M rows at 1 M customers).
From each, chunks are sent at the start, the middle and the end (``--sample`` chunks per place) through
the counting null channels, and the rate of each sample is printed with its distance from the median of
all samples. The keyset claim and the bulk outcome writes keep every sample the same, whatever the
campaign's size, the chunk's place in it, or the millions of rows of earlier campaigns beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=8, help="chunks sent at each place")
    args = parser.parse_args()
    from bench.b1_segment_count import _setup_django, fixture_build
    from bench.campaign_runs import campaign_launch_for_bench, deliveries_reset, null_channels_use

    _setup_django()
    from django.conf import settings

    from campaigns.delivery.sending import delivery_chunk_send
    from campaigns.models import Campaign, Delivery, FrequencyRule, Message, QuietHoursRule, Segment, Variant
    from customers.models import Store

    fixture_build(customers=args.customers, reuse=True)
    deliveries_reset("B10")
    FrequencyRule.objects.all().delete()  # every campaign reaches the same people: caps would skip them
    QuietHoursRule.objects.all().delete()
    message = Message.objects.create(name="B10")
    Variant.objects.create(
        message=message,
        channel="email",
        subject="Hello {{ first_name }}",
        html_body="<h1>Hi {{ first_name }}</h1><p>" + "Our spring collection is in. " * 60 + "</p>",
    )
    stores = list(Store.objects.order_by("pk").values_list("pk", flat=True)[:2])  # each store has 5 %
    recent = {"type": "purchase", "metric": "recency", "op": "within", "days": 80, "channel": "any"}  # 15 %
    audiences = [
        ("1 %", {"match": "all", "rules": [recent, {"type": "store", "op": "in", "values": stores[1:]}]}),
        ("10 %", {"match": "all", "rules": [{"type": "store", "op": "in", "values": stores}]}),
        ("100 %", {}),
    ]
    settings.DEBUG = False
    null_channels_use(settings)
    # As a worker does when it starts (campaigns/delivery/preload.py): otherwise the first samples would
    # time the imports, the URL map and the phone metadata, which a worker loads once, before any chunk.
    from campaigns.delivery.preload import delivery_preload

    delivery_preload()
    rates: list[tuple[str, str, int, float]] = []
    for label, rules in audiences:
        campaign = Campaign.objects.create(
            name=f"B10 {label}",
            goal="engagement",
            kpi="click_rate",
            message=message,
            channels=["email"],
            status="scheduled",
        )
        campaign.include_segments.set([Segment.objects.create(name=f"B10 {label}", rules=rules)])
        result, published = campaign_launch_for_bench(campaign)
        size = max(1, min(args.sample, len(published) // 3))  # three samples that do not overlap
        middle = len(published) // 2 - size // 2
        places = {"start": published[:size], "middle": published[middle : middle + size], "end": published[-size:]}
        for place, ranges in places.items():
            ranges = [r for r in ranges if Delivery.objects.filter(id__range=r, status="queued").exists()]
            started = time.perf_counter()
            sent = 0
            for first_id, last_id in ranges:
                outcome = delivery_chunk_send(
                    cause_type="campaign", cause_id=campaign.pk, first_id=first_id, last_id=last_id
                )
                sent += outcome.statuses.get("sent", 0)
            seconds = time.perf_counter() - started
            rates.append((f"{label} ({result.created:,} rows)", place, sent, sent / seconds if seconds else 0))
    total = Delivery.objects.count()
    median = statistics.median(rate for *_, rate in rates)
    print(f"delivery table: {total:,} rows; median {median:,.0f} msgs/s (one process, null channels)")
    for audience, place, sent, rate in rates:
        print(f"  {audience:<24} {place:<7} {sent:>6,} sent  {rate:>7,.0f} msgs/s  {100 * (rate / median - 1):+5.1f} %")
    spread = max(abs(rate / median - 1) for *_, rate in rates)
    print(f"largest distance from the median: {100 * spread:.1f} % (flat within ±15 %: {spread <= 0.15})")


if __name__ == "__main__":
    main()
