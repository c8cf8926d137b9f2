"""A campaign's funnel, its KPI against the target, the holdout drawn at launch and the lift against it."""

import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.delivery.launch import deliveries_insert_for_campaign
from campaigns.models import Campaign, Delivery
from campaigns.results.funnel import campaign_results
from campaigns.results.tables import Table, table_csv
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.campaigns.results.world import PERIOD, buy, deliver, march, redeem, sent_campaign
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import CouponCodeFactory

pytestmark = pytest.mark.django_db


def test_funnel_counts_each_step_and_compares_the_kpi_with_its_target():
    campaign = sent_campaign(kpi=Campaign.Kpi.OPEN_RATE, kpi_target=Decimal("50"))
    code = CouponCodeFactory(max_uses=None)
    people = [CustomerFactory() for _ in range(5)]
    deliver(
        campaign,
        people[0],
        coupon_code=code,
        provider_status="delivered",
        opened_at=march(2, 10),
        clicked_at=march(2, 11),
    )
    deliver(campaign, people[1], coupon_code=code, provider_status="delivered", opened_at=march(2, 10))
    deliver(campaign, people[2], coupon_code=code, provider_status="bounced")
    deliver(campaign, people[3], status="skipped", reason="no_consent")
    deliver(campaign, people[4], status="skipped", reason="frequency_cap")
    redeem(people[0], code, march(3), amount="60.00")
    buy(people[1], march(4), "25.00")

    results = campaign_results(campaign=campaign, now=march(20))

    assert results.totals["audience"] == 5
    assert results.totals["reachable"] == 4  # no consent is unreachable; a cap is not
    assert [results.totals[step] for step in ("sent", "delivered", "opened", "clicked", "redeemed")] == [3, 2, 2, 1, 1]
    assert results.totals["revenue"] == Decimal("25.00")
    assert results.kpi.rows == [["Open rate%", 66.7, Decimal("50.00"), "target met"]]
    assert dict(results.skipped.rows) == {"skipped: No consent": 1, "skipped: Frequency cap": 1}
    assert results.lift is None


def test_launch_holds_back_the_holdout_share_as_skipped_rows_on_every_channel():
    customers = [granted(CustomerFactory(phone=f"+1212555{n:04d}"), "email", "sms") for n in range(400)]
    campaign = sending_campaign(holdout_percent=Decimal("25"))
    campaign.refresh_from_db()

    deliveries_insert_for_campaign(campaign=campaign, now=march(2))
    deliveries_insert_for_campaign(campaign=campaign, now=march(2))  # a second launch draws the same people

    rows = Delivery.objects.filter(cause_id=campaign.pk)
    held = rows.filter(reason="holdout")
    assert rows.count() == 800
    assert held.filter(status="skipped", coupon_code__isnull=True).count() == held.count()
    held_people = set(held.filter(channel="email").values_list("customer_id", flat=True))
    assert held_people == set(held.filter(channel="sms").values_list("customer_id", flat=True))
    assert 60 <= len(held_people) <= 140  # 25 % of 400, drawn by hash
    assert rows.filter(status="queued").count() == 800 - held.count()
    assert len(customers) == 400


def test_lift_against_the_holdout_with_a_normal_approximation_interval():
    campaign = sent_campaign(holdout_percent=Decimal("50"))
    code = CouponCodeFactory(max_uses=None)
    Campaign.objects.filter(pk=campaign.pk).update(offer=code.offer)
    campaign.refresh_from_db()
    treated = [CustomerFactory() for _ in range(4)]
    control = [CustomerFactory() for _ in range(4)]
    for person in treated:
        deliver(campaign, person, coupon_code=code)
    for person in control:
        deliver(campaign, person, status="skipped", reason="holdout")
    redeem(treated[0], code, march(3), amount="10.00")
    redeem(treated[1], code, march(3), amount="10.00")
    buy(treated[0], march(3), "30.00")
    buy(treated[1], march(4), "10.00")
    buy(control[0], march(4), "20.00")

    lift = campaign_results(campaign=campaign, now=march(20)).lift

    redemption, spend = lift.rows
    # Redemption: 2/4 against 0/4; interval 0.5 ± 1.96 * sqrt(0.25 / 4).
    margin = 1.96 * math.sqrt(0.25 / 4) * 100
    assert redemption[1:4] == [50.0, 0.0, 50.0]
    assert redemption[4:] == [round(50 - margin, 2), round(50 + margin, 2)]
    # Revenue per person: treated [30, 10, 0, 0] mean 10, sample variance 600/3; holdout [20, 0, 0, 0] mean 5, 300/3.
    margin = 1.96 * math.sqrt(200 / 4 + 100 / 4)
    assert spend[1:4] == [10.0, 5.0, 5.0]
    assert spend[4:] == [round(5 - margin, 2), round(5 + margin, 2)]
    assert "normal approximation" in lift.note
    assert "read the interval with care" in lift.note


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted():
    table = Table(
        "t",
        "T",
        ["name", "value"],
        [['=HYPERLINK("http://x")', 1], ["+1", -5], ["@a", None], ["\tx", "plain"], ["\rcr", 2]],
    )

    text = table_csv(table)

    assert text.splitlines()[1:4] == ['"\'=HYPERLINK(""http://x"")",1', "'+1,'-5", "'@a,"]
    assert "'\tx,plain" in text
    assert '"\'\rcr",2' in text
    assert "\n=" not in text
    assert ",=" not in text


def test_campaign_page_shows_the_results_and_exports_them(client, django_assert_max_num_queries):
    campaign = sent_campaign(name="=cmd|' /C calc'!A0")
    for _ in range(3):
        deliver(campaign, CustomerFactory(), opened_at=march(2, 10))
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)

    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    export = client.get(reverse("admin:campaigns_campaign_results_csv", args=[campaign.pk]) + "?table=funnel")

    assert page.status_code == 200
    assert b'id="campaign-results"' in page.content
    assert b"<svg" in page.content
    assert export["Content-Type"].startswith("text/csv")
    assert export.content.decode().splitlines()[1].startswith("Email,Default,3,3,3")
    assert PERIOD.days == 10


def test_launch_holds_back_every_customer_of_the_chosen_stores_in_the_same_single_statement():
    from tests.factories import StoreFactory

    held_store, other_store = StoreFactory(), StoreFactory()
    held = [granted(CustomerFactory(home_store=held_store), "email") for _ in range(3)]
    others = [granted(CustomerFactory(home_store=other_store), "email") for _ in range(2)]
    nowhere = granted(CustomerFactory(home_store=None), "email")
    campaign = sending_campaign(holdout_mode="stores")
    campaign.holdout_stores.set([held_store])
    campaign.refresh_from_db()

    by_share = sending_campaign(holdout_percent=Decimal("25"))
    with CaptureQueriesContext(connection) as share_launch:
        deliveries_insert_for_campaign(campaign=by_share, now=march(2))

    with CaptureQueriesContext(connection) as store_launch:
        inserted = deliveries_insert_for_campaign(campaign=campaign, now=march(2))

    assert len(store_launch) == len(share_launch)  # the stores are read inside the one INSERT
    assert sum("INSERT" in query["sql"] for query in store_launch.captured_queries) == 1
    rows = Delivery.objects.filter(cause_id=campaign.pk)
    assert inserted == 6
    held_rows = rows.filter(status="skipped", reason="holdout", coupon_code__isnull=True)
    assert set(held_rows.values_list("customer_id", flat=True)) == {c.pk for c in held}
    queued = set(rows.filter(status="queued").values_list("customer_id", flat=True))
    assert queued == {c.pk for c in [*others, nowhere]}


def test_store_holdout_lift_compares_in_store_revenue_of_the_held_out_stores_with_the_others():
    campaign = sent_campaign(holdout_mode="stores")
    treated = [CustomerFactory() for _ in range(4)]
    held = [CustomerFactory() for _ in range(4)]
    for person in treated:
        deliver(campaign, person)
    for person in held:
        deliver(campaign, person, status="skipped", reason="holdout")
    from tests.factories import StoreFactory

    store = StoreFactory()
    buy(treated[0], march(3), "30.00", channel="store", store=store)
    buy(treated[1], march(3), "10.00", channel="store", store=store)
    buy(treated[2], march(3), "500.00")  # online: not in-store lift
    buy(held[0], march(4), "20.00", channel="store", store=store)
    buy(held[1], march(4), "900.00")  # online

    lift = campaign_results(campaign=campaign, now=march(20)).lift

    rows = {row[0]: row[1:] for row in lift.rows}
    # In store: treated [30, 10, 0, 0] mean 10, sample variance 200; held [20, 0, 0, 0] mean 5, 100.
    mean_t, mean_h = rows["In-store revenue per person"][:2]
    assert (mean_t, mean_h) == (10.0, 5.0)
    margin = 1.959964 * math.sqrt(200 / 4 + 100 / 4)
    assert rows["In-store revenue per person"][2:] == [5.0, round(5 - margin, 2), round(5 + margin, 2)]
    assert "held-out stores" in lift.note


def test_a_store_holdout_without_stores_is_refused_by_the_campaign_form():
    from django.forms import modelform_factory

    from campaigns.admin import CampaignForm

    form_class = modelform_factory(Campaign, form=CampaignForm, fields=["holdout_mode", "holdout_stores"])
    form = form_class(data={"holdout_mode": "stores"})

    assert not form.is_valid()
    assert "holdout_stores" in form.errors


def test_held_out_stores_are_saved_and_audited_and_a_store_holdout_without_stores_blocks_launch():
    from campaigns.models import AuditEvent
    from campaigns.services.campaigns import campaign_problems, campaign_save
    from tests.factories import StoreFactory
    from tests.factories.campaigns import CampaignFactory

    campaign = CampaignFactory(holdout_mode="stores")
    assert any("held back" in problem for problem in campaign_problems(campaign))

    store = StoreFactory(name="Harbour")
    campaign_save(campaign=campaign, actor=MarketingUserFactory(), holdout_stores=[store])

    assert list(campaign.holdout_stores.all()) == [store]
    assert not any("held back" in problem for problem in campaign_problems(campaign))
    changed = AuditEvent.objects.filter(campaign=campaign, action=AuditEvent.Action.CHANGED).latest("pk")
    assert "holdout_stores" in changed.changes
