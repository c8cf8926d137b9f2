"""B1-style benchmark: count a rich rule segment and forecast a campaign over N customers.

Usage (PostgreSQL only; builds its own database, never touches yours):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_bench python -m bench.b1_segment_count --customers 1000000

Prints fixture time, then for each step the median seconds of 3 runs, the SQL statements it issued
(must not grow with N) and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not url.rstrip("/").endswith("_bench"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database whose name ends in _bench (it is rebuilt).")
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


FIXTURE_SQL = """
TRUNCATE customers_customer, customers_store, customers_consentstate, customers_purchase,
         customers_suppression, campaigns_segment, campaigns_campaign, campaigns_message CASCADE;
INSERT INTO customers_store (code, name, street, city, postal_code, state, country, time_zone, region, is_active,
                             created_at)
SELECT 'store-' || g, 'Store ' || g, '1 Main St', 'Springfield', '12345', 'NY', 'US', 'America/New_York',
       CASE WHEN g % 2 = 0 THEN 'North' ELSE 'South' END, true, now()
FROM generate_series(1, 20) g;
INSERT INTO customers_customer (public_id, email, phone, email_hmac, phone_hmac, first_name, last_name, locale,
       time_zone, time_zone_source, home_store_id, source, attributes, created_at, updated_at)
SELECT md5(g::text)::uuid, 'c' || g || '@example.com',
       CASE WHEN g % 3 = 0 THEN '+1415' || lpad(g::text, 7, '0') END,
       md5('e' || g), CASE WHEN g % 3 = 0 THEN md5('p' || g) ELSE '' END,
       (ARRAY['Ann', 'Bob', 'Cleo', ''])[1 + g % 4], 'Doe', 'en', 'America/New_York', 'default',
       (SELECT min(id) FROM customers_store) + g % 20,
       (ARRAY['web', 'store', 'import'])[1 + g % 3],
       jsonb_build_object('vip', g % 10 = 0, 'size', (g % 5)::text), now(), now()
FROM generate_series(1, %(n)s) g;
INSERT INTO customers_consentstate (customer_id, channel, status, updated_at)
SELECT id, 'email', CASE WHEN id % 5 = 0 THEN 'withdrawn' ELSE 'granted' END, now() FROM customers_customer;
INSERT INTO customers_consentstate (customer_id, channel, status, updated_at)
SELECT id, 'sms', 'granted', now() FROM customers_customer WHERE phone IS NOT NULL;
INSERT INTO customers_suppression (channel, address_hmac, reason, note, created_at)
SELECT 'email', email_hmac, 'manual', '', now() FROM customers_customer WHERE id % 50 = 0;
INSERT INTO customers_purchase (public_id, customer_id, channel, store_id, source, external_ref, amount,
       discount_amount, currency, occurred_at, created_at)
SELECT gen_random_uuid(), id, CASE WHEN id % 2 = 0 THEN 'online' ELSE 'store' END,
       CASE WHEN id % 2 = 0 THEN NULL ELSE home_store_id END, 'import', 'B' || id, (id % 200)::numeric, 0, 'USD',
       now() - ((id % 400) || ' days')::interval, now()
FROM customers_customer WHERE id % 4 <> 3;
ANALYZE;
"""

RULES = {
    "match": "all",
    "rules": [
        {"type": "region", "op": "in", "values": ["North"]},
        {"type": "consent", "channel": "email", "op": "granted"},
        {
            "match": "any",
            "rules": [
                {"type": "purchase", "metric": "recency", "op": "within", "days": 90, "channel": "any"},
                {"type": "purchase", "metric": "spend", "op": "gte", "value": 100, "days": 365, "channel": "any"},
                {"type": "attribute", "key": "size", "op": "eq", "value": "3"},
            ],
        },
        {"match": "none", "rules": [{"type": "profile", "field": "first_name", "op": "is_not_set"}]},
    ],
}


def _timed(label: str, func) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    runs, result, statements = [], None, 0
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            result = func()
            runs.append(time.perf_counter() - started)
        statements = len(captured.captured_queries)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label:<28} {statistics.median(runs):8.3f} s  {statements:3d} SQL  peak RSS {rss_mb:6.1f} MB  -> {result}")


def fixture_build(*, customers: int, reuse: bool) -> None:
    """Build the seeded fixture of ``customers`` (kept as it is with ``reuse`` when the count matches)."""
    from django.db import connection

    from customers.models import Customer

    started = time.perf_counter()
    if not (reuse and Customer.objects.count() == customers):
        with connection.cursor() as cursor:
            cursor.execute(FIXTURE_SQL.replace("%(n)s", str(int(customers))))
    print(f"fixture: {customers:,} customers in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep the fixture if it has that many customers")
    args = parser.parse_args()
    _setup_django()

    from campaigns.audience import campaign_forecast, segment_counts
    from campaigns.models import Campaign, Message, Segment

    fixture_build(customers=args.customers, reuse=args.reuse)
    Campaign.objects.filter(name__startswith="B1").delete()
    Message.objects.filter(name="B1").delete()
    Segment.objects.filter(name__startswith="B1").delete()
    segment = Segment.objects.create(name="B1 rich rules", rules=RULES)
    everyone = Segment.objects.create(name="B1 everyone", rules={})
    campaign = Campaign.objects.create(
        name="B1",
        goal="engagement",
        kpi="click_rate",
        message=Message.objects.create(name="B1"),
        channels=["email", "sms"],
    )
    campaign.include_segments.set([segment, everyone])
    preferred = Campaign.objects.create(
        name="B1 preferred",
        goal="engagement",
        kpi="click_rate",
        message=campaign.message,
        channels=["sms", "email", "push"],
        mode="preferred",
    )
    preferred.include_segments.set([everyone])
    _timed("segment count + reachable", lambda: segment_counts(segment))
    _timed("forecast (2 channels)", lambda: [(c.channel, c.reachable) for c in campaign_forecast(campaign).channels])
    _timed(
        "forecast preferred (3 ch.)", lambda: [(c.channel, c.reachable) for c in campaign_forecast(preferred).channels]
    )


if __name__ == "__main__":
    main()
