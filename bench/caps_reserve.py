"""Frequency-cap reservation speed: milliseconds per 1,000 deliveries reserved in chunks.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python -m bench.caps_reserve [--customers 20000]
Creates its own database (``--database``, default ``tandem_bench_caps``) on that server, migrates it
and drops it at the end. Each scenario reserves every customer in chunks of ``--chunk`` deliveries
(one email per customer), on a fresh counter table (first send of the day: inserts) and again on the
same counters (second send: conditional updates, many refused), median of 3 runs. Prints ms per 1,000
deliveries and SQL statements per chunk. SQLite: ``--sqlite`` runs the same on a file database.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

SCENARIOS = {
    "1 rule (1 a day)": [{"name": "1 a day", "window": "calendar_day", "limit": 1}],
    "seeded defaults (4 rules)": None,
}


def _database(args) -> tuple[str | None, str | None]:
    if args.sqlite:
        path = os.path.join(tempfile.mkdtemp(), "caps.sqlite3")
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        return None, None
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (its database name is ignored), or pass --sqlite.")
    import psycopg

    base = url.rsplit("/", 1)[0]
    admin_url = f"{base}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    os.environ["DATABASE_URL"] = f"{base}/{args.database}"
    return admin_url, args.database


def _run(customer_ids: list[int], chunk: int, now: datetime.datetime) -> tuple[float, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.delivery.caps import CapRequest, caps_reserve

    items = [
        CapRequest(i + 1, customer_id, "email", "promotional", "Europe/Paris")
        for i, customer_id in enumerate(customer_ids)
    ]
    chunks = [items[start : start + chunk] for start in range(0, len(items), chunk)]
    # The statements of the first chunk are counted apart: capturing them slows every statement down.
    with CaptureQueriesContext(connection) as queries:
        caps_reserve(items=chunks[0], now=now)
    started = time.perf_counter()
    for part in chunks[1:]:
        caps_reserve(items=part, now=now)
    elapsed = time.perf_counter() - started
    return elapsed * 1000 / (sum(len(part) for part in chunks[1:]) / 1000), len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="tandem_bench_caps")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    admin_url, name = _database(args)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from campaigns.models import FrequencyCounter, FrequencyRule
        from customers.models import Customer, Source

        call_command("migrate", verbosity=0)
        seeded = [
            {k: getattr(r, k) for k in ("name", "channel", "category", "window", "limit", "days", "limit_source")}
            for r in FrequencyRule.objects.all()
        ]
        Customer.objects.bulk_create(
            (Customer(email=f"bench{i}@example.com", source=Source.WEB) for i in range(args.customers)),
            batch_size=5_000,
        )
        customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
        now = datetime.datetime(2026, 3, 4, 10, 0, tzinfo=datetime.UTC)
        print(f"{args.customers} customers, chunks of {args.chunk}, median of {args.runs} runs")
        for label, rules in SCENARIOS.items():
            FrequencyRule.objects.all().delete()
            for values in rules or seeded:
                FrequencyRule.objects.create(**values)
            first, second, statements = [], [], 0.0
            for _ in range(args.runs):
                FrequencyCounter.objects.all().delete()
                ms, statements = _run(customer_ids, args.chunk, now)
                first.append(ms)
                ms, _statements = _run(customer_ids, args.chunk, now + datetime.timedelta(hours=1))
                second.append(ms)
            print(
                f"{label:28} first send {statistics.median(first):6.1f} ms/1,000 · "
                f"second send (capped) {statistics.median(second):6.1f} ms/1,000 · {statements:.0f} statements/chunk"
            )
    finally:
        if admin_url:
            from django.db import connections

            connections.close_all()
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
