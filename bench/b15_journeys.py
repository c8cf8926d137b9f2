"""B15 benchmark: enrol a whole segment into a journey, then advance every enrolment's due step.

Usage (PostgreSQL only; builds its own database, never touches yours):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_h10_bench python -m bench.b15_journeys --customers 1000000

Prints the fixture time, the enrolment of the segment (one INSERT … SELECT), then the tick advancing
every due enrolment (a wait step, in claimed batches) and a second tick running a send step
(deliveries written through the audience checks; chunk tasks are not run), each with its rate per
enrolment and its SQL statement count. ``--workers N`` steps from N forked processes at once, as N
ticks running together share the due enrolments (a tick still running when the next minute's starts).
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from bench.b1_segment_count import _setup_django, fixture_build

_CHILD_STATEMENTS = [0]  # counted by forked workers, added to the step's count


def _timed(label: str, fn, enrolments: int):
    from django.db import connection

    counted = [0]

    def count(execute, sql, params, many, context):
        counted[0] += 1  # counted, not kept: a batch's statements carry thousands of ids
        return execute(sql, params, many, context)

    started = time.perf_counter()
    _CHILD_STATEMENTS[0] = 0
    with connection.execute_wrapper(count):
        value = fn()
    seconds = time.perf_counter() - started
    statements = counted[0] + _CHILD_STATEMENTS[0]
    rate = enrolments / seconds if seconds else float("inf")
    print(f"{label}: {seconds:.2f} s, {rate:,.0f} enrolments/s, {statements} SQL statements")
    return value


def _forked(step, processes: int):
    """Run ``step`` in ``processes`` forked children at once; their results and statements summed."""
    import multiprocessing

    from django.db import connection, connections

    from campaigns.journeys.tick import TickResult

    connections.close_all()  # each child opens its own connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child():
        counted = [0]

        def count(execute, sql, params, many, context):
            counted[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            result = step()
        results.put((result.stepped, counted[0]))

    children = [context.Process(target=child) for _ in range(processes)]
    for process in children:
        process.start()
    reports = [results.get() for _ in children]
    for process in children:
        process.join()
    _CHILD_STATEMENTS[0] += sum(statements for _, statements in reports)
    return TickResult(stepped=sum(stepped for stepped, _ in reports))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the fixture if it has that many customers")
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1, help="step from this many forked processes at once")
    args = parser.parse_args()
    _setup_django()

    from django.db import transaction
    from django.db.models import F, Value
    from django.utils import timezone

    from campaigns.journeys.services import journey_publish
    from campaigns.journeys.tick import TickResult, enrolments_step_batch
    from campaigns.journeys.triggers import enrolments_insert
    from campaigns.models import Enrolment, Journey, Message, Segment, Variant
    from customers.models import Customer

    fixture_build(customers=args.customers, reuse=args.reuse)
    from django.db import connection

    with connection.cursor() as cursor:
        # Emptied, not deleted from: a reused fixture would otherwise keep every earlier run's dead
        # index entries, and each later UPDATE would be slower than the one before.
        cursor.execute("TRUNCATE campaigns_journeysteprun, campaigns_enrolment")
    Journey.objects.filter(name__startswith="B15").update(live_version=None)  # then versions go with it
    Journey.objects.filter(name__startswith="B15").delete()
    Message.objects.filter(name="B15").delete()
    Segment.objects.filter(name="B15 everyone").delete()
    everyone = Segment.objects.create(name="B15 everyone", rules={})
    message = Message.objects.create(name="B15")
    Variant.objects.create(message=message, channel="email", subject="Hello", html_body="<p>Hello {{ first_name }}</p>")
    journey = Journey.objects.create(
        name="B15", trigger=Journey.Trigger.SEGMENT_JOINED, trigger_params={"segment": everyone.pk}
    )
    now = timezone.now()
    journey_publish(
        journey=journey,
        steps=[
            {"key": "pause", "kind": "wait", "hours": 1, "next": "hello"},
            {"key": "hello", "kind": "send", "message": message.pk},
        ],
        now=now,
    )
    journey.refresh_from_db()
    events, members_params = (
        Customer.objects.filter(merged_into__isnull=True)
        .order_by()
        .annotate(who=F("pk"), event_key=Value("bench"))
        .values_list("who", "event_key")
        .query.sql_with_params()
    )
    with transaction.atomic():
        enrolled = _timed(
            "enrol the segment",
            lambda: enrolments_insert(journey=journey, events_sql=events, events_params=list(members_params), now=now),
            args.customers,
        )
    print(f"  enrolled {enrolled:,}")

    def advance(at):
        result = TickResult()
        while enrolments_step_batch(now=at, batch_size=args.batch, result=result):
            pass
        return result

    def advance_forked(at):
        return _forked(lambda: advance(at), args.workers) if args.workers > 1 else advance(at)

    label = f" ({args.workers} workers)" if args.workers > 1 else ""
    result = _timed(f"advance every due wait step{label}", lambda: advance_forked(now), enrolled)
    print(f"  stepped {result.stepped:,} in batches of {args.batch:,}")
    result = _timed(
        f"run the send step (deliveries written){label}", lambda: advance_forked(now + timedelta(hours=2)), enrolled
    )
    completed = Enrolment.objects.filter(journey=journey, status="completed").count()
    print(f"  stepped {result.stepped:,}; completed {completed:,}")


if __name__ == "__main__":
    main()
