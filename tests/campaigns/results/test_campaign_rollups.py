"""A campaign's results read from its roll-up answer exactly what grouping its deliveries does, stay so as
redemptions, events, purchases and merges arrive, and take as many queries whatever the data."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignFunnelCount, CampaignSummary, Delivery, DeliveryEvent
from campaigns.results.funnel import campaign_results
from campaigns.results.rollups import results_rollups_refresh, summary_campaigns_dirty
from customers.models import Customer
from tests.campaigns.results.world import buy, deliver, march, redeem, refund, sent_campaign
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.campaigns import EmailVariantFactory, PersonaFactory, SmsVariantFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import CouponCodeFactory, LoyaltyAccountFactory, OfferFactory

pytestmark = pytest.mark.django_db
NOW = march(20)


def _answers(campaign: Campaign, *, direct: bool, window: timedelta = timedelta(days=7)) -> dict:
    results = campaign_results(campaign=campaign, now=NOW, window=window, direct=direct)
    tables = [results.funnel, results.skipped, results.kpi, results.lift, results.cost]
    return {
        "tables": [(t.key, t.columns, t.rows, t.note) for t in tables if t is not None],
        "totals": results.totals,
    }


def _assert_rolled_up_as_direct(*campaigns: Campaign) -> None:
    for campaign in campaigns:
        campaign.refresh_from_db()
        assert CampaignSummary.objects.filter(cause_id=campaign.pk).exists()
        for days in (7, 3):  # the default window is rolled up; another is measured now, funnel still rolled up
            window = timedelta(days=days)
            assert _answers(campaign, direct=False, window=window) == _answers(campaign, direct=True, window=window)


@pytest.fixture
def world():
    """A campaign holding out a share of customers on two channels and two personas, with skips of every kind,
    failures, codes redeemed (one by the survivor of a merge, one before the send), purchases (one refunded,
    one in store); and one holding out a store, measured on in-store purchases."""
    offer = OfferFactory()
    store, held_store = StoreFactory(), StoreFactory()
    spring = sent_campaign("Spring", holdout_percent=Decimal("30"), offer=offer, kpi=Campaign.Kpi.REDEMPTIONS)
    SmsVariantFactory(message=spring.message)
    parents = EmailVariantFactory(message=spring.message, persona=PersonaFactory(name="Parents"))
    codes = [CouponCodeFactory(offer=offer, max_uses=None) for _ in range(4)]
    people = [CustomerFactory() for _ in range(30)]
    for n, person in enumerate(people):
        if n % 5 == 0:
            deliver(spring, person, status="skipped", reason="holdout")
            deliver(spring, person, channel="sms", status="skipped", reason="holdout")
            continue
        delivery = deliver(
            spring,
            person,
            sent_at=spring.started_at + timedelta(minutes=n),
            coupon_code=codes[n % 4] if n % 3 else None,
            provider_status=["delivered", "bounced", ""][n % 3],
            opened_at=march(2, 12) if n % 2 else None,
            clicked_at=march(2, 13) if n % 4 == 1 else None,
        )
        if n % 6 == 1:
            Delivery.objects.filter(pk=delivery.pk).update(variant=parents)
        if n in (7, 11):
            deliver(spring, person, channel="sms", status="failed", reason="provider_refused")
            continue
        sms_skip = ["no_consent", "frequency_cap", "missing_address", "quiet_hours"][n % 4]
        deliver(spring, person, channel="sms", status="skipped", reason=sms_skip)
    # Redemptions: by the person the code went to, after the send; one before it (not the message's).
    redeem(people[1], codes[1], march(3), amount="25.00")
    redeem(people[2], codes[2], march(4), amount="12.50", channel="store", store=store)
    redeem(people[7], codes[3], march(1), amount="9.00")
    redeem(people[5], codes[1], march(3), amount="30.00")  # held out, a code from elsewhere
    # Purchases: treated and held out, one refunded, one after the window.
    for n, person in enumerate(people[:24]):
        purchase = buy(person, march(3 + n % 5, 10 + n % 8), f"{10 + n}.25", "store" if n % 2 else "online", store)
        if n % 7 == 3:
            refund(purchase, LoyaltyAccountFactory(customer=person))
    buy(people[3], march(15), "80.00")
    # A merge: the duplicate was sent a code; the survivor redeems it and buys.
    duplicate, survivor = people[13], people[26]
    Customer.objects.filter(pk=duplicate.pk).update(merged_into=survivor)
    redeem(survivor, codes[1], march(5), amount="44.00")
    buy(survivor, march(5), "70.00")

    stores = sent_campaign("Stores", started=march(2, 15), holdout_mode="stores")
    stores.holdout_stores.set([held_store])
    shoppers = [CustomerFactory(home_store=held_store if n % 3 == 0 else store) for n in range(12)]
    for n, person in enumerate(shoppers):
        if n % 3 == 0:
            deliver(stores, person, status="skipped", reason="holdout")
        else:
            deliver(stores, person, sent_at=stores.started_at, opened_at=march(3) if n % 2 else None)
        buy(person, march(4, 10 + n), f"{5 * (n + 1)}.00", "store" if n % 4 else "online", store)
    return {"spring": spring, "stores": stores, "people": people, "codes": codes, "store": store}


def test_the_rolled_up_results_equal_the_direct_computation(world):
    results_rollups_refresh()

    _assert_rolled_up_as_direct(world["spring"], world["stores"])
    spring = campaign_results(campaign=world["spring"], now=NOW)
    assert spring.totals["redeemed"] >= 3  # the fixture is not empty where it matters
    assert spring.lift is not None
    assert len(spring.lift.rows) == 2
    assert {row[0] for row in spring.skipped.rows} >= {"skipped: No consent", "failed: Refused by the provider"}
    assert {row[1] for row in spring.funnel.rows} == {"Default", "Parents"}
    summary = CampaignSummary.objects.get(cause_id=world["spring"].pk)
    assert summary.holdout_people == 6
    assert summary.treated_people == 23
    assert CampaignFunnelCount.objects.filter(cause_id=world["stores"].pk, reason="holdout").get().messages == 4


def test_changes_after_a_refresh_reach_the_rolled_up_results(world):
    results_rollups_refresh()
    spring, people, codes = world["spring"], world["people"], world["codes"]

    redeem(people[14], codes[2], march(6), amount="18.00")  # people[14] was sent codes[2]
    late = buy(people[0], march(4), "300.00")  # held out, imported late
    buy(people[4], march(5), "15.00", "store", world["store"])
    refund(Customer.objects.get(pk=people[1].pk).purchases.order_by("pk").first(), LoyaltyAccountFactory())
    delivery = Delivery.objects.filter(cause_id=spring.pk, customer=people[8], channel="email").get()
    DeliveryEvent.objects.create(
        provider="esp", provider_event_id="late-open", delivery_id=delivery.pk, kind="opened", occurred_at=march(3)
    )
    Delivery.objects.filter(pk=delivery.pk).update(opened_at=march(3), clicked_at=march(3, 1))
    Customer.objects.filter(pk=people[17].pk).update(merged_into=people[18], updated_at=timezone.now())
    before = campaign_results(campaign=spring, now=NOW).totals
    results_rollups_refresh()

    _assert_rolled_up_as_direct(spring, world["stores"])
    after = campaign_results(campaign=spring, now=NOW).totals
    assert after["redeemed"] == before["redeemed"] + 1
    assert after["clicked"] == before["clicked"] + 1
    assert late.amount == Decimal("300.00")


def test_a_campaign_not_rolled_up_yet_is_grouped_from_its_deliveries(world):
    results = campaign_results(campaign=world["spring"], now=NOW)

    assert not CampaignSummary.objects.exists()
    assert results.totals == campaign_results(campaign=world["spring"], now=NOW, direct=True).totals
    assert results.totals["audience"] > 0
    assert results.as_of is None  # the page says it counted them just now


def test_rolled_up_results_say_as_of_when():
    campaign = sent_campaign("Fresh")
    assert campaign_results(campaign=campaign, now=NOW).as_of is None
    results_rollups_refresh()
    summary = CampaignSummary.objects.get(cause_id=campaign.pk)
    assert campaign_results(campaign=campaign, now=NOW).as_of == summary.computed_at


def test_a_finished_campaign_is_redone_only_when_what_its_results_count_changed(world):
    spring = world["spring"]  # finished on March 2, lift measured until March 9
    later = timezone.now() + timedelta(hours=1)

    assert spring.pk not in summary_campaigns_dirty(later, set(), set())
    assert spring.pk in summary_campaigns_dirty(later, {date(2026, 3, 5)}, set())  # a purchase backdated into it
    assert spring.pk not in summary_campaigns_dirty(later, {date(2026, 4, 5)}, set())
    assert spring.pk in summary_campaigns_dirty(later, set(), {spring.pk})  # its deliveries or redemptions
    Customer.objects.filter(pk=world["people"][3].pk).update(merged_into=world["people"][4], updated_at=later)
    assert spring.pk in summary_campaigns_dirty(later, set(), set())  # two of its people became one


def _results_page_queries(client, size: int) -> int:
    offer = OfferFactory()
    campaign = sent_campaign(f"Size {size}", holdout_percent=Decimal("20"), offer=offer)
    SmsVariantFactory(message=campaign.message)
    code = CouponCodeFactory(offer=offer, max_uses=None)
    for n in range(size):
        person = CustomerFactory()
        if n % 5 == 0:
            deliver(campaign, person, status="skipped", reason="holdout")
            continue
        deliver(campaign, person, coupon_code=code, opened_at=march(2, 10) if n % 2 else None)
        deliver(campaign, person, channel="sms", status="skipped", reason=["no_consent", "frequency_cap"][n % 2])
        buy(person, march(3), "12.00")
        if n % 3 == 0:
            redeem(person, code, march(3))
    results_rollups_refresh(full=True)
    client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))  # caches (content types) filled
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    assert b'id="campaign-results"' in response.content
    return len(captured.captured_queries)


def test_the_results_page_makes_the_same_number_of_queries_whatever_the_data(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)

    small = _results_page_queries(client, 3)
    larger = _results_page_queries(client, 40)

    assert small == larger
