"""B1/B4-style benchmark of the delivery engine: launch a campaign over N customers, then send every chunk.

Usage (PostgreSQL only; builds its own database whose name must end in _bench, never touches yours):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_bench python -m bench.b4_delivery --customers 100000

Reuses B1's fixture (email for everyone, 80 % email consent, a third with phone and SMS consent, 2 %
suppressed). Prints the launch time and SQL statements, then sends every chunk in this one process
(no broker) through ``--backend``: ``outbox`` (the demo default, one outbox row per message) or ``null``
(the counting null channels of ``campaigns/channels/null.py``: the real payloads are built, then
counted in Redis or the shared cache instead of sent) or ``providers`` (anymail's Postmark backend and
twilio's client, each building, signing and parsing its requests for real, with only the HTTP socket
answered in process by ``bench/http_answer.py``; FCM through firebase-admin for push). ``--channels
email`` sends email only (B4 as stated); the default sends email and SMS; ``push`` (an FCM device and push
consent for every third customer, added once) can be added to either. ``--processes N`` sends the chunks from N forked
processes at once (a worker process per core, as production runs). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backend", choices=("outbox", "null", "providers"), default="null")
    parser.add_argument(
        "--esp",
        choices=("postmark", "mailgun", "sendgrid"),
        default="postmark",
        help="--backend providers: the ESP (Mailgun and SendGrid take a chunk's emails of one variant in one request)",
    )
    parser.add_argument("--processes", type=int, default=1, help="send from this many forked processes")
    parser.add_argument("--profile", help="write a cProfile of the send (one process) to this file")
    parser.add_argument("--launch-only", action="store_true", help="B1: stop after the launch")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument(
        "--at",
        default="19:00",
        help="send as if it were this UTC time today (default 19:00: inside SMS hours in every US zone)",
    )
    parser.add_argument(
        "--channels", default="email,sms", help="the campaign's channels, comma-separated (B4 itself: email)"
    )
    parser.add_argument("--reuse", action="store_true", help="keep the fixture if it has that many customers")
    args = parser.parse_args()
    from bench.b1_segment_count import _setup_django, fixture_build
    from bench.campaign_runs import campaign_launch_for_bench, deliveries_reset, null_channels_use

    _setup_django()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from campaigns.channels.null import null_sent_count
    from campaigns.delivery.sending import delivery_chunk_send
    from campaigns.models import Campaign, Delivery, Message, OutboxMessage, Segment, Variant

    channels = [name.strip() for name in args.channels.split(",") if name.strip()]
    if not channels or set(channels) - {"email", "sms", "push"}:
        parser.error("--channels takes email, sms, push or several")
    hour, minute = (int(part) for part in args.at.split(":"))
    fixture_build(customers=args.customers, reuse=args.reuse)
    deliveries_reset("B4")
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
    Variant.objects.create(
        message=message,
        channel="push",
        push_title="Hi {{ first_name }}",
        push_body="Spring is in at {{ store_name }}: 20% off this week",
        push_url="https://shop.tandem.example/spring",
    )
    if "push" in channels:
        push_devices_ensure()
    campaign = Campaign.objects.create(
        name="B4", goal="engagement", kpi="click_rate", message=message, channels=channels, status="scheduled"
    )
    campaign.include_segments.set([Segment.objects.create(name="B4 everyone", rules={})])

    settings.DEBUG = False  # DEBUG keeps the last 9,000 statements, and the outbox's carry every email
    settings.DELIVERY_CHUNK_SIZE = args.chunk
    counted = [0]

    def count(execute, sql, params, many, context):
        counted[0] += 1  # counted, not kept: the outbox's statements carry every rendered email
        return execute(sql, params, many, context)

    # SMS quiet hours would defer every text outside 08:00-21:00 in the recipients' zones.
    now = timezone.now().replace(hour=hour, minute=minute, second=0, microsecond=0)
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result, published = campaign_launch_for_bench(campaign, now=now)
        launch_seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"launch: {result.created:,} deliveries in {launch_seconds:.2f} s, {counted[0]} SQL, "
        f"{len(published)} chunks, peak RSS {rss:.0f} MB"
    )

    if args.launch_only:
        return
    if args.backend == "null":
        # The counting null channels (TANDEM_NULL_CHANNELS): the real channels build every payload.
        null_channels_use(settings)
    elif args.backend == "providers":
        from bench.http_answer import providers_answer_in_process

        providers_answer_in_process(settings, args.esp)

    def send(ranges) -> tuple[int, float]:
        counted[0] = 0
        cpu = time.process_time()
        with connection.execute_wrapper(count):
            for first_id, last_id in ranges:
                delivery_chunk_send(
                    cause_type="campaign", cause_id=campaign.pk, first_id=first_id, last_id=last_id, now=now
                )
        return counted[0], time.process_time() - cpu

    started = time.perf_counter()
    if args.processes > 1:
        statements, cpu = _send_forked(send, published, args.processes)
    elif args.profile:
        import cProfile

        profiler = cProfile.Profile()
        statements, cpu = profiler.runcall(send, published)
        profiler.dump_stats(args.profile)
    else:
        statements, cpu = send(published)
    seconds = time.perf_counter() - started
    sent = Delivery.objects.filter(cause_id=campaign.pk, status="sent").count()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"send ({args.backend}): {sent:,} sent in {seconds:.2f} s = {sent / seconds:,.0f} msgs/s from "
        f"{args.processes} process(es), {cpu * 1e6 / max(sent, 1):.0f} us CPU/msg in them, "
        f"{statements / max(sent, 1):.4f} SQL/msg, {len(published)} chunk tasks, "
        f"outbox rows {OutboxMessage.objects.count():,}, campaign {Campaign.objects.get(pk=campaign.pk).status}, "
        f"peak RSS {rss:.0f} MB (this process), load average {os.getloadavg()[0]:.2f}"
    )
    if args.backend == "null":
        print("counted by the null channels: " + ", ".join(f"{c} {null_sent_count(c):,}" for c in channels))


def push_devices_ensure() -> None:
    """An FCM device and push consent for every third customer (once per fixture)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM campaigns_customerpushdevice)")
        if cursor.fetchone()[0]:
            return
        cursor.execute(
            "INSERT INTO push_notifications_gcmdevice (name, active, date_created, registration_id, "
            "cloud_message_type, device_id) SELECT '', true, now(), 'bench-token-' || id, 'FCM', id "
            "FROM customers_customer WHERE id % 3 = 0"
        )
        cursor.execute(
            "INSERT INTO campaigns_customerpushdevice (customer_id, device_id, created_at) "
            "SELECT d.device_id, d.id, now() FROM push_notifications_gcmdevice d"
        )
        cursor.execute(
            "INSERT INTO customers_consentstate (customer_id, channel, status, granted_at, updated_at) "
            "SELECT id, 'push', 'granted', now(), now() FROM customers_customer WHERE id % 3 = 0 "
            "ON CONFLICT (customer_id, channel) DO NOTHING"
        )
        cursor.execute("ANALYZE customers_consentstate")


def _send_forked(send, ranges, processes: int) -> tuple[int, float]:
    """Send ``ranges`` split round-robin over ``processes`` forked children; their statements and CPU summed."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # each child opens its own connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child(share):
        statements, cpu = send(share)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results.put((statements, cpu, rss))

    children = [context.Process(target=child, args=(ranges[i::processes],)) for i in range(processes)]
    for process in children:
        process.start()
    reports = [results.get() for _ in children]
    for process in children:
        process.join()
    print("child peak RSS: " + ", ".join(f"{rss:.0f} MB" for _, _, rss in reports))
    return sum(r[0] for r in reports), sum(r[1] for r in reports)


if __name__ == "__main__":
    main()
