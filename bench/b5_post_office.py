"""B5: the same personalised marketing emails through Tandem's engine and through django-post_office.

Usage (PostgreSQL only; its own database, whose name must end in _bench; needs ``pip install -e .[bench]``):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_b5_bench python -m bench.b5_post_office --build 20000
    farm-bench -n 3 --timeout 1800 -- env DATABASE_URL=… python -m bench.b5_post_office --engine tandem \
        --vs "env DATABASE_URL=… python -m bench.b5_post_office --engine post_office"

The work, for each engine: from the customers with email consent (B1's fixture), one email per customer,
subject and HTML personalised with the first name, with List-Unsubscribe headers, handed to anymail's
backend for ``--esp`` (Postmark by default; Mailgun and SendGrid take Tandem's emails of one variant in
one request, which post_office cannot), which builds and serialises every request and parses every
answer (only the socket is answered in process: ``bench/http_answer.py``), and the outcome recorded.
- ``tandem``: launch (one INSERT … SELECT with consent and suppression) and every chunk through
  ``delivery_chunk_send`` (send-time re-checks, caps, quiet hours, rendering, bulk outcomes).
- ``post_office``: the same recipients selected, ``mail.send_many`` with a template and a context per
  customer (its bulk path), then ``send_queued`` until the queue is empty, with its default logging.
Each run prints its own seconds for that work, from a warm start (``campaigns.delivery.preload``, what a
worker loads as it starts, is loaded first for both engines); farm-bench times the whole process (start-up
included).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

SUBJECT = "Hello {{ first_name }}"
HTML = "<h1>Hi {{ first_name }}</h1><p>" + "Our spring collection is in. " * 60 + "</p>"


def _setup(engine: str) -> None:
    if engine == "post_office":
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_post_office"
    from bench.b1_segment_count import _setup_django

    _setup_django()


def _campaign():
    from bench.campaign_runs import deliveries_reset
    from campaigns.models import Campaign, Message, Segment, Variant

    deliveries_reset("B5")
    message = Message.objects.create(name="B5")
    Variant.objects.create(message=message, channel="email", subject=SUBJECT, html_body=HTML)
    campaign = Campaign.objects.create(
        name="B5", goal="engagement", kpi="click_rate", message=message, channels=["email"], status="scheduled"
    )
    campaign.include_segments.set([Segment.objects.create(name="B5 everyone", rules={})])
    return campaign


def run_tandem() -> int:
    from django.conf import settings

    from bench.campaign_runs import campaign_launch_for_bench
    from campaigns.delivery.sending import delivery_chunk_send
    from campaigns.models import Delivery

    campaign = _campaign()
    _, published = campaign_launch_for_bench(campaign)
    for first_id, last_id in published:
        delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first_id, last_id=last_id)
    settings.DEBUG = False
    return Delivery.objects.filter(cause_id=campaign.pk, status="sent").count()


def run_post_office() -> int:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone
    from post_office import mail
    from post_office.models import Email, EmailTemplate

    from campaigns.audience import audience_q, reachable_q
    from campaigns.links import message_links
    from customers.models import Customer

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE post_office_email, post_office_log CASCADE")
    campaign, now = _campaign(), timezone.now()
    EmailTemplate.objects.filter(name="b5").delete()
    template = EmailTemplate.objects.create(name="b5", subject=SUBJECT, html_content=HTML)
    recipients = (
        Customer.objects.filter(audience_q(campaign, now=now))
        .filter(reachable_q("email", campaign, now=now))
        .order_by()
    )
    batch = []
    for customer in recipients.only("id", "email", "first_name").iterator(chunk_size=2000):
        unsubscribe = message_links(customer=customer, channel="email")["unsubscribe_url"]
        batch.append(
            {
                "recipients": [customer.email],
                "sender": settings.MARKETING_FROM_EMAIL,
                "template": template,
                "context": {"first_name": customer.first_name},
                "headers": {
                    "List-Unsubscribe": f"<{unsubscribe}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            }
        )
        if len(batch) == 2000:
            mail.send_many(batch)
            batch = []
    if batch:
        mail.send_many(batch)
    while Email.objects.filter(status=2).exists():  # queued
        mail.send_queued(processes=1)
    return Email.objects.filter(status=0).count()  # sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("tandem", "post_office"))
    parser.add_argument(
        "--esp",
        choices=("postmark", "mailgun", "sendgrid"),
        default="postmark",
        help="the ESP both engines hand their mail to (Tandem batches a variant's emails where the ESP can)",
    )
    parser.add_argument("--build", type=int, metavar="CUSTOMERS", help="build the fixture (both engines' tables)")
    args = parser.parse_args()
    if not args.engine and not args.build:
        sys.exit("Give --build N once, then --engine tandem or --engine post_office.")
    _setup("post_office")  # migrates both engines' tables; the Tandem run ignores post_office's
    from django.conf import settings

    from bench.b1_segment_count import fixture_build
    from bench.http_answer import providers_answer_in_process

    if args.build:
        fixture_build(customers=args.build, reuse=False)
        return
    settings.DEBUG = False
    providers_answer_in_process(settings, args.esp)
    settings.POST_OFFICE = {**settings.POST_OFFICE, "BACKENDS": {"default": settings.EMAIL_BACKEND}}
    # Both engines start warm, as a worker does once it has started: the URL map, the ESP backend, the
    # phone metadata and the rest that a worker loads at start are loaded before the clock starts.
    import post_office.mail  # noqa: F401

    from campaigns.delivery.preload import delivery_preload

    delivery_preload()
    started = time.perf_counter()
    sent = run_tandem() if args.engine == "tandem" else run_post_office()
    seconds = time.perf_counter() - started
    print(f"{args.engine}: {sent:,} emails sent in {seconds:.2f} s = {sent / seconds:,.0f}/s (one process)")


if __name__ == "__main__":
    main()
