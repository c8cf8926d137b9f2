"""B16: time each results page (goal dashboard, a campaign's results) over N customers and their history.

Usage (PostgreSQL only; builds its own database, never touches yours):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tandem_bench python -m bench.b16_results --customers 1000000

Builds on B1's fixture (customers, consent, suppressions, purchases over 400 days), then adds four sent
campaigns with one email delivery per customer each (opens, clicks, codes, a 10 % holdout), redemptions
and provider events, a journey a third of the customers entered (one message each, a fifth converted) and
survey answers from a seventh. Then builds the dashboard's daily roll-ups from scratch and refreshes them
incrementally (what beat does every five minutes), timing each. Prints the median seconds of 3 runs
per page, its SQL statements (must not grow with N) and peak RSS; ``--direct`` times the dashboard computed
from the base tables instead of the roll-ups. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from bench.b1_segment_count import _setup_django, _timed, fixture_build

CAMPAIGNS = 4

HISTORY_SQL = """
DELETE FROM campaigns_delivery; DELETE FROM campaigns_deliveryevent;
DELETE FROM loyalty_redemption WHERE idempotency_key LIKE 'b16-%%';
INSERT INTO campaigns_delivery (cause_type, cause_id, customer_id, channel, message_id, variant_id, coupon_code_id,
       status, reason, error, address, provider_message_id, attempts, created_at, updated_at, sent_at,
       provider_status, opened_at, clicked_at)
SELECT 'campaign', c.id, cu.id, 'email', c.message_id, NULL,
       CASE WHEN (cu.id + c.id) %% 10 = 0 THEN NULL ELSE %(code)s END,
       CASE WHEN (cu.id + c.id) %% 10 = 0 THEN 'skipped' ELSE 'sent' END,
       CASE WHEN (cu.id + c.id) %% 10 = 0 THEN 'holdout' ELSE '' END, '', '', '', 1,
       c.started_at, c.started_at, CASE WHEN (cu.id + c.id) %% 10 = 0 THEN NULL ELSE c.started_at END,
       CASE WHEN (cu.id + c.id) %% 10 = 0 THEN '' ELSE 'delivered' END,
       CASE WHEN cu.id %% 3 = 0 THEN c.started_at + interval '2 hours' END,
       CASE WHEN cu.id %% 11 = 0 THEN c.started_at + interval '3 hours' END
FROM campaigns_campaign c CROSS JOIN customers_customer cu WHERE c.name LIKE 'B16 %%';
INSERT INTO campaigns_deliveryevent (provider, provider_event_id, delivery_id, kind, occurred_at, detail, created_at)
SELECT 'bench', 'b16-' || d.id, d.id, CASE WHEN d.id %% 2 = 0 THEN 'bounced' ELSE 'complained' END,
       d.sent_at + interval '1 hour', '{}', now()
FROM campaigns_delivery d WHERE d.id %% 400 = 0 AND d.status = 'sent';
INSERT INTO loyalty_redemption (kind, customer_id, offer_id, coupon_code_id, points, channel, store_id,
       order_reference, order_amount, discount_amount, description, idempotency_key, status, created_at)
SELECT 'code', cu.id, %(offer)s, %(code)s, 0, CASE WHEN cu.id %% 2 = 0 THEN 'online' ELSE 'store' END,
       CASE WHEN cu.id %% 2 = 0 THEN NULL ELSE cu.home_store_id END, '', 40, 4, '', 'b16-' || cu.id, 'confirmed',
       now() - interval '5 days'
FROM customers_customer cu WHERE cu.id %% 25 = 0;
DELETE FROM customers_surveyresponse;
INSERT INTO customers_surveyresponse (customer_id, source, score, comment, answered_at, first_answered_at)
SELECT cu.id, 'campaign:0 delivery:' || cu.id, cu.id %% 11, '', now() - (cu.id %% 60) * interval '1 day',
       now() - (cu.id %% 60) * interval '1 day'
FROM customers_customer cu WHERE cu.id %% 7 = 0;
INSERT INTO campaigns_enrolment (journey_id, version_id, customer_id, entry_key, step_key, status, exit_reason,
       due_at, entered_at, finished_at, converted_at)
SELECT %(journey)s, %(version)s, cu.id, '', '', 'completed', '', NULL, now() - (cu.id %% 60) * interval '1 day', NULL,
       CASE WHEN cu.id %% 5 = 0 THEN now() - (cu.id %% 60) * interval '1 day' + interval '2 days' END
FROM customers_customer cu WHERE cu.id %% 3 = 0;
INSERT INTO campaigns_journeysteprun (enrolment_id, step_key, kind, version_id, outcome, ran_at)
SELECT e.id, 'hello', 'send', %(version)s, 'sent', e.entered_at FROM campaigns_enrolment e;
INSERT INTO campaigns_delivery (cause_type, cause_id, customer_id, channel, message_id, variant_id, coupon_code_id,
       status, reason, error, address, provider_message_id, attempts, created_at, updated_at, sent_at,
       provider_status, opened_at, clicked_at)
SELECT 'journey_step', r.id, e.customer_id, 'email', %(message)s, NULL, NULL, 'sent', '', '', '', '', 1,
       r.ran_at, r.ran_at, r.ran_at + interval '1 hour', 'delivered', NULL, NULL
FROM campaigns_journeysteprun r JOIN campaigns_enrolment e ON e.id = r.enrolment_id;
ANALYZE;
"""


def history_build() -> None:
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Journey, JourneyVersion, Message
    from loyalty.models import CouponCode, Offer, Programme

    started = time.perf_counter()
    programme, _ = Programme.objects.get_or_create(name="B16")
    now = timezone.now()
    offer, _ = Offer.objects.get_or_create(
        programme=programme,
        name="B16",
        defaults={"kind": "amount_off", "amount_off": 5, "valid_from": now, "valid_until": now + timedelta(days=90)},
    )
    code, _ = CouponCode.objects.get_or_create(offer=offer, code="B16SHARED", defaults={"max_uses": None})
    message, _ = Message.objects.get_or_create(name="B16")
    Campaign.objects.filter(name__startswith="B16 ").delete()
    for n in range(CAMPAIGNS):
        campaign = Campaign.objects.create(
            name=f"B16 {n}",
            goal="conversion",
            kpi="revenue",
            message=message,
            offer=offer,
            shared_code=code,
            holdout_percent=10,
        )
        when = now - timedelta(days=5 + 7 * n)
        Campaign.objects.filter(pk=campaign.pk).update(status="sent", started_at=when, finished_at=when)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_journeysteprun; DELETE FROM campaigns_enrolment")
    Journey.objects.filter(name="B16 welcome").delete()
    journey = Journey.objects.create(name="B16 welcome", trigger="consent_confirmed")
    version = JourneyVersion.objects.create(
        journey=journey, number=1, published_at=now, steps=[{"key": "hello", "kind": "send", "message": message.pk}]
    )
    sql = HISTORY_SQL
    for name, value in (
        ("code", code.pk),
        ("offer", offer.pk),
        ("journey", journey.pk),
        ("version", version.pk),
        ("message", message.pk),
    ):
        sql = sql.replace(f"%({name})s", str(int(value)))
    sql = sql.replace("%%", "%")
    with connection.cursor() as cursor:
        cursor.execute(sql)
    print(f"history: {CAMPAIGNS} campaigns of deliveries in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep the fixture if it has that many customers")
    parser.add_argument("--direct", action="store_true", help="compute the pages from the base tables")
    args = parser.parse_args()
    _setup_django()

    from django.utils import timezone

    from campaigns.models import Campaign
    from campaigns.results.funnel import campaign_results
    from campaigns.results.periods import Period
    from campaigns.results.rollups import results_rollups_refresh
    from campaigns.results.selectors import campaign_ids_touching, channel_health, goal_dashboard

    fixture_build(customers=args.customers, reuse=args.reuse)
    history_build()
    # A refresh re-reads the rows written within the watermark's slack (ten minutes), here the whole history;
    # the clock moved an hour on shows the steady state: the recent days, the campaigns still sending, and
    # the passes over every purchase that lifetime value and cohorts take each run.
    later = timezone.now()
    for label, options in (
        ("roll-ups built", {"full": True}),
        ("roll-ups refreshed", {}),
        ("refreshed (clock +30 min)", {"now": later + timedelta(minutes=30)}),
        ("refreshed (clock +60 min)", {"now": later + timedelta(minutes=60)}),
    ):
        started = time.perf_counter()
        written = results_rollups_refresh(**options)
        print(f"{label + ':':<28} {time.perf_counter() - started:8.1f} s  rows {written}")
    direct = args.direct
    today = timezone.localdate()
    period = Period(today - timedelta(days=29), today)
    campaign = Campaign.objects.filter(name="B16 0").get()
    year = Period(today - timedelta(days=364), today)
    _timed("goal dashboard (30 days)", lambda: sum(len(t) for t in goal_dashboard(period, direct=direct).values()))
    _timed("goal dashboard (1 year)", lambda: sum(len(t) for t in goal_dashboard(year, direct=direct).values()))
    ids = campaign_ids_touching(period.start, period.end)
    _timed("channel health (30 days)", lambda: len(channel_health(period, ids, direct=direct).rows))
    _timed("campaign results + lift", lambda: campaign_results(campaign=campaign, direct=direct).totals["sent"])
    print(f"(period {period})")


if __name__ == "__main__":
    main()
