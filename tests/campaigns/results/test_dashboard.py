"""Each KPI of the goal dashboard against a history small enough to count by hand."""

from datetime import timedelta
from decimal import Decimal

import pytest

from campaigns.results import selectors
from campaigns.results.periods import Period, period_from
from campaigns.results.rollups import results_rollups_refresh
from customers.models import ConsentEvidence, Customer
from loyalty.models import LedgerEntry
from tests.campaigns.results.world import PERIOD, buy, deliver, march, redeem, refund, sent_campaign
from tests.factories import ClerkFactory, CustomerFactory, StoreFactory
from tests.factories.loyalty import CouponCodeFactory, LoyaltyAccountFactory, TierFactory

pytestmark = pytest.mark.django_db


def _rows(table):
    return {row[0]: row[1:] for row in table.rows}


def test_revenue_is_net_of_refunds_split_online_and_in_store_against_the_previous_period():
    store = StoreFactory()
    alice, bob = CustomerFactory(), CustomerFactory()
    buy(alice, march(2), "100.00")
    buy(alice, march(3), "50.00", channel="store", store=store)
    refunded = buy(bob, march(4), "30.00")
    refund(refunded, LoyaltyAccountFactory(customer=bob))
    buy(bob, march(1) - timedelta(days=3), "60.00")  # previous period
    buy(None, march(5), "20.00", channel="store", store=store)  # walk-in, no profile

    results_rollups_refresh()
    table = selectors.revenue(PERIOD)

    rows = _rows(table)
    assert rows["Online"] == [1, Decimal("100.00"), Decimal("60.00"), "+66.7 %", Decimal("30.00")]
    assert rows["In store"] == [2, Decimal("70.00"), Decimal("0"), "new", Decimal("0")]
    assert rows["Both"] == [3, Decimal("170.00"), Decimal("60.00"), "+183.3 %", Decimal("30.00")]


def test_a_period_with_no_data_gives_empty_tables_not_errors():
    empty = Period(PERIOD.first_day.replace(year=2019), PERIOD.last_day.replace(year=2019))

    results_rollups_refresh()
    tables = selectors.goal_dashboard(empty)

    assert _rows(tables["conversion"][0])["Both"][:2] == [0, Decimal("0")]
    health = tables["health"][0]
    assert len(health.rows) == 10
    assert all(row[2] is None for row in health.rows)
    assert tables["loyalty"][1].rows == []  # no cohorts


def test_new_profiles_leave_out_merged_duplicates_and_keep_erased_profiles():
    store = StoreFactory(name="Lincoln Road")
    kept = CustomerFactory(source="store", source_store=store)
    erased = CustomerFactory(source="web")
    duplicate = CustomerFactory(source="web")
    Customer.objects.filter(pk=duplicate.pk).update(merged_into=kept)
    Customer.objects.filter(pk=erased.pk).update(erased_at=march(5))
    old = CustomerFactory(source="import")
    Customer.objects.filter(pk__in=[kept.pk, erased.pk, duplicate.pk]).update(created_at=march(3))
    Customer.objects.filter(pk=old.pk).update(created_at=march(1) - timedelta(days=2))

    results_rollups_refresh()
    by_source, by_store = selectors.new_profiles(PERIOD)

    assert _rows(by_source) == {
        "In store": ["In store", 1, 0, "new"],
        "Web form": ["Online", 1, 0, "new"],
        "Import": ["No place recorded", 0, 1, "-100.0 %"],
    }
    assert _rows(by_store)["Lincoln Road"] == [1, 0, "new"]


def test_last_touch_credits_each_purchase_once_to_the_latest_message_in_the_window():
    spring = sent_campaign("Spring", started=march(2, 9))
    summer = sent_campaign("Summer", started=march(4, 9))
    person = CustomerFactory()
    old_profile = CustomerFactory()
    Customer.objects.filter(pk=old_profile.pk).update(merged_into=person)  # the delivery went to the duplicate
    deliver(spring, old_profile)
    deliver(summer, person)
    buy(person, march(3), "10.00")  # after spring only
    buy(person, march(5), "20.00")  # after both: summer is the last touch
    buy(person, march(9, 10), "40.00")  # outside a 3-day window of anything
    refunded = buy(person, march(5, 13), "99.00")
    refund(refunded, LoyaltyAccountFactory(customer=person))

    results_rollups_refresh()
    ids = selectors.campaign_ids_touching(PERIOD.previous.start, PERIOD.end)
    table, places = selectors.message_conversion(PERIOD, ids, window=timedelta(days=3))

    rows = {(row[0], row[1]): row[2:] for row in table.rows}
    assert rows[("Spring", "Email")] == ["Default", 1, 1, 1, 100.0, Decimal("10.00")]
    assert rows[("Summer", "Email")] == ["Default", 1, 1, 1, 100.0, Decimal("20.00")]
    assert _rows(places)["Both"] == [2, Decimal("30.00")]
    assert "Last touch" in table.note


def test_repeat_purchase_rate_by_place_and_lifetime_value_count_people_with_no_purchase():
    store = StoreFactory()
    twice_online, mixed, once_store = CustomerFactory(), CustomerFactory(), CustomerFactory()
    CustomerFactory()  # never bought
    buy(twice_online, march(2), "10.00")
    buy(twice_online, march(3), "30.00")
    buy(mixed, march(2), "5.00")
    buy(mixed, march(6), "15.00", channel="store", store=store)
    buy(once_store, march(7), "40.00", channel="store", store=store)
    refunded = buy(once_store, march(8), "100.00", channel="store", store=store)
    refund(refunded, LoyaltyAccountFactory(customer=once_store))
    Customer.objects.update(created_at=march(1))

    results_rollups_refresh()
    repeat = _rows(selectors.repeat_purchase(PERIOD))
    value = _rows(selectors.customer_value(PERIOD))

    assert repeat["Online only"] == [1, 1, 100.0, None]
    assert repeat["In store only"] == [1, 0, 0.0, None]
    assert repeat["Both (bought in each)"] == [1, 1, 100.0, None]
    assert repeat["All buyers"] == [3, 2, 66.7, None]
    assert value["All buyers"] == [3, Decimal("100.00"), Decimal("33.33")]
    assert value["Profiles with no purchase"][0] == 1
    assert value["All profiles"] == [4, Decimal("100.00"), Decimal("25.00")]


def test_cohort_retention_by_first_purchase_month():
    first, second, late = CustomerFactory(), CustomerFactory(), CustomerFactory()
    buy(first, march(1) - timedelta(days=20), "10.00")  # February cohort
    buy(first, march(3), "10.00")  # back in March
    buy(second, march(1) - timedelta(days=25), "10.00")  # February cohort, not back
    buy(late, march(4), "10.00")  # March cohort

    results_rollups_refresh()
    table = selectors.cohort_retention(PERIOD, months=3)

    assert table.rows == [["2026-02", 2, 50.0, None], ["2026-03", 1, None, None]]


def test_checkout_opt_in_rate_per_store_and_clerk():
    store = StoreFactory(name="Fifth Avenue")
    clerk = ClerkFactory(username="sam")
    yes = CustomerFactory(source="store", source_store=store, source_clerk=clerk)
    CustomerFactory(source="store", source_store=store, source_clerk=clerk)
    Customer.objects.update(created_at=march(2))
    ConsentEvidence.objects.create(
        customer=yes,
        channel="email",
        action="grant",
        method="checkout",
        occurred_at=march(2),
        store=store,
        collected_by=clerk,
    )

    results_rollups_refresh()
    by_store, by_clerk = selectors.checkout_opt_in(PERIOD)

    assert _rows(by_store)["Fifth Avenue"] == [2, 1, 50.0]
    assert _rows(by_clerk)["sam"] == [2, 1, 50.0]
    signups = selectors.signups(PERIOD)
    assert signups.rows == [["Email", "Store checkout", "In store", 1, 0, "new"]]


def test_open_click_and_coupon_redemption_rates():
    campaign = sent_campaign()
    code_a, code_b = CouponCodeFactory(), CouponCodeFactory()
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    deliver(campaign, a, coupon_code=code_a, opened_at=march(2, 10), clicked_at=march(2, 11))
    deliver(campaign, b, coupon_code=code_b, opened_at=march(2, 10))
    deliver(campaign, c)
    deliver(campaign, CustomerFactory(), status="skipped", reason="no_consent")
    store = StoreFactory()
    redeem(a, code_a, march(3), channel="store", store=store)
    redeem(c, code_b, march(3))  # someone else's code: not this message's redemption

    results_rollups_refresh()
    ids = selectors.campaign_ids_touching(PERIOD.previous.start, PERIOD.end)
    opens = selectors.open_click_rates(PERIOD, ids)
    coupons = _rows(selectors.coupon_redemption_rate(PERIOD, ids))
    code_revenue = _rows(selectors.code_attributed_revenue(PERIOD, ids))

    assert opens.rows == [["Email", 3, 66.7, 33.3, None, None]]
    assert coupons["In store"] == [2, 1, 50.0]
    assert coupons["Online"] == [2, 0, 0.0]
    assert coupons["Both"] == [2, 1, 50.0]
    assert code_revenue["In store"] == [1, Decimal("40.00"), 0, Decimal("0")]
    assert code_revenue["Both"][0] == 1


def test_points_issued_redeemed_and_the_outstanding_liability():
    gold = TierFactory(name="Gold")
    account = LoyaltyAccountFactory(tier=gold)
    LoyaltyAccountFactory(tier=gold)  # a member with no activity
    LedgerEntry.objects.create(
        account=account, kind="earn", points=500, balance_after=500, occurred_at=march(2), idempotency_key="e1"
    )
    LedgerEntry.objects.create(
        account=account, kind="redeem", points=-200, balance_after=300, occurred_at=march(3), idempotency_key="r1"
    )
    LedgerEntry.objects.create(
        account=account,
        kind="earn",
        points=100,
        balance_after=400,
        occurred_at=march(1) - timedelta(days=1),
        idempotency_key="e0",
    )
    type(account).objects.filter(pk=account.pk).update(points_balance=400)

    points = _rows(selectors.points(PERIOD))
    members = _rows(selectors.loyalty_members(PERIOD))

    assert points["Issued (earned)"] == [500, 100, "+400.0 %", None]
    assert points["Redeemed"] == [200, 0, "new", None]
    assert points["Outstanding now (liability)"] == [400, None, "-", Decimal("4.00")]
    assert members["Gold"] == [2, 1, 50.0, 1]


def test_channel_health_rates_per_day():
    from campaigns.models import DeliveryEvent

    campaign = sent_campaign()
    for _ in range(4):
        deliver(campaign, CustomerFactory(), sent_at=march(2, 10))
    DeliveryEvent.objects.create(provider="esp", provider_event_id="c1", kind="complained", occurred_at=march(2, 12))
    DeliveryEvent.objects.create(provider="esp", provider_event_id="b1", kind="bounced", occurred_at=march(2, 12))
    DeliveryEvent.objects.create(provider="esp", provider_event_id="b2", kind="bounced", occurred_at=march(2, 13))

    results_rollups_refresh()
    health = selectors.channel_health(PERIOD, [campaign.pk])

    day = {row[0]: row[1:] for row in health.rows}
    assert day["2026-03-02"] == [4, 50.0, 25.0, 0.0, 0, None]
    assert day["2026-03-03"] == [0, None, None, None, 0, None]


def test_period_input_is_checked():
    period, problem = period_from("2026-03-10", "2026-03-01")
    assert "ends before" in problem
    assert period.days == 30
    period, problem = period_from("2026-03-01", "2026-03-10")
    assert problem == ""
    assert period == PERIOD


def test_nps_counts_promoters_minus_detractors_of_the_answers_in_each_period():
    from customers.models import SurveyResponse

    def answer(score, when, source):
        SurveyResponse.objects.create(
            customer=CustomerFactory(), source=source, score=score, answered_at=when, first_answered_at=when
        )

    for n, score in enumerate([10, 9, 9, 8, 7, 6, 0, 10]):  # 4 promoters, 2 passives, 2 detractors
        answer(score, march(2 + n % 5), f"campaign:1 delivery:{n}")
    for n, score in enumerate([10, 3, 2, 5]):  # previous period: 1 promoter, 3 detractors
        answer(score, march(1) - timedelta(days=2), f"campaign:0 delivery:{n}")
    answer(10, march(11, 1), "after the period")

    results_rollups_refresh()
    rows = _rows(selectors.nps(PERIOD))

    assert rows["Answers"][:2] == [8, 4]
    assert rows["Promoters (9-10)"][:2] == [4, 1]
    assert rows["Passives (7-8)"][:2] == [2, 0]
    assert rows["Detractors (0-6)"][:2] == [2, 3]
    assert rows["NPS"] == [25.0, -50.0, "+75.0 pts"]


def test_nps_without_answers_is_blank_not_zero():
    results_rollups_refresh()
    rows = _rows(selectors.nps(PERIOD))

    assert rows["NPS"] == [None, None, "-"]
    assert rows["Answers"] == [0, 0, "-"]


def _journey(name):
    from campaigns.models import Journey, JourneyVersion

    journey = Journey.objects.create(name=name, trigger="consent_confirmed")
    journey.live_version = JourneyVersion.objects.create(
        journey=journey, number=1, published_at=march(1), steps=[{"key": "hello", "kind": "send", "message": 1}]
    )
    journey.save()
    return journey


def _enrol(journey, entered, converted=None, sent_at=None, customer=None):
    from campaigns.models import Delivery, Enrolment, JourneyStepRun
    from tests.factories.campaigns import MessageFactory

    enrolment = Enrolment.objects.create(
        journey=journey,
        version=journey.live_version,
        customer=customer or CustomerFactory(),
        entered_at=entered,
        converted_at=converted,
    )
    if sent_at is not None:
        run = JourneyStepRun.objects.create(
            enrolment=enrolment, step_key="hello", kind="send", version=journey.live_version, ran_at=entered
        )
        for channel in ("email", "sms"):
            Delivery.objects.create(
                cause_type="journey_step",
                cause_id=run.pk,
                customer=enrolment.customer,
                channel=channel,
                message=MessageFactory(),
                status="sent" if channel == "email" else "skipped",
                created_at=entered,
                updated_at=entered,
                sent_at=sent_at if channel == "email" else None,
            )
    return enrolment


def test_journey_conversion_counts_entries_goals_and_sends_per_journey_in_each_period():
    welcome, winback = _journey("Welcome"), _journey("Win-back")
    _enrol(welcome, march(2), converted=march(4), sent_at=march(2))
    _enrol(welcome, march(3), sent_at=march(3))
    _enrol(welcome, march(5), sent_at=march(11, 1))  # sent after the period
    _enrol(welcome, march(1) - timedelta(days=1), converted=march(2), sent_at=march(1) - timedelta(hours=20))
    _enrol(winback, march(1) - timedelta(days=3), sent_at=march(1) - timedelta(days=3))
    _enrol(winback, march(9), converted=march(12))  # converts after the period

    results_rollups_refresh()
    table = selectors.journey_conversion(PERIOD)

    rows = _rows(table)
    assert rows["Welcome"] == [3, 2, 33.3, 2, 1, 0, 100.0, 1]
    assert rows["Win-back"] == [1, 0, 100.0, 0, 1, 0, 0.0, 1]


def test_journey_conversion_takes_three_queries_whatever_the_number_of_journeys(django_assert_num_queries):
    for n in range(4):
        _enrol(_journey(f"J{n}"), march(2), converted=march(3), sent_at=march(2))
    results_rollups_refresh()

    with django_assert_num_queries(3):
        table = selectors.journey_conversion(PERIOD)

    assert len(table.rows) == 4
