"""NPS over time against answers counted by hand, and the survey answers' admin list and CSV."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from campaigns.results import admin as results_admin
from campaigns.results import selectors
from campaigns.results.periods import Period
from campaigns.results.surveys import buckets, nps_over_time
from customers.models import SurveyResponse
from tests.campaigns.results.world import PERIOD, at, march, sent_campaign
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


def answer(score, when, source="campaign:1 delivery:1", customer=None, comment=""):
    return SurveyResponse.objects.create(
        customer=customer or CustomerFactory(),
        source=source,
        score=score,
        comment=comment,
        answered_at=when,
        first_answered_at=when,
    )


def test_weeks_run_monday_to_sunday_cut_at_the_period_ends():
    # 1 March 2026 is a Sunday, 10 March a Tuesday.
    assert [(b.first_day.day, b.last_day.day) for b in buckets(PERIOD, "week")] == [(1, 1), (2, 8), (9, 10)]
    months = buckets(Period(date(2026, 1, 15), date(2026, 3, 3)), "month")
    assert [(b.first_day, b.last_day) for b in months] == [
        (date(2026, 1, 15), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 3)),
    ]


def test_nps_per_week_with_a_week_without_answers():
    answer(10, march(1, 9))
    answer(0, march(1, 20))  # week 1: 1 promoter, 1 detractor → 0
    for score in (9, 9, 8, 5):  # week 3: 2 promoters, 1 passive, 1 detractor → 25
        answer(score, march(9 + score % 2))
    answer(10, march(1, 0) - timedelta(minutes=1))  # just before the period
    answer(0, march(11, 1))  # after it

    table = nps_over_time(PERIOD)

    assert table.title == "NPS per week"
    assert table.rows == [
        ["2026-03-01", "2026-03-01", 2, 1, 0, 1, 0.0],
        ["2026-03-02", "2026-03-08", 0, 0, 0, 0, None],
        ["2026-03-09", "2026-03-10", 4, 2, 1, 1, 25.0],
    ]


def test_nps_per_month_over_a_long_period_with_an_empty_month():
    period = Period(date(2026, 1, 1), date(2026, 4, 30))
    for score in (10, 10, 6):  # January: (2 - 1) / 3 → 33.3
        answer(score, at(date(2026, 1, 20)))
    answer(7, at(date(2026, 3, 31), 23))  # March: a passive only → 0
    answer(0, at(date(2026, 4, 1)))  # April: -100

    table = nps_over_time(period)

    assert table.title == "NPS per month"
    assert [(row[0], row[2], row[6]) for row in table.rows] == [
        ("2026-01-01", 3, 33.3),
        ("2026-02-01", 0, None),
        ("2026-03-01", 1, 0.0),
        ("2026-04-01", 1, -100.0),
    ]


def test_nps_over_time_takes_one_query(django_assert_num_queries):
    answer(9, march(3))
    with django_assert_num_queries(1):
        nps_over_time(PERIOD)


def test_the_dashboard_draws_nps_over_time_in_the_loyalty_section():
    answer(10, march(2))
    answer(3, march(9))
    tables = selectors.goal_dashboard(PERIOD)

    [trend] = [table for table in tables["loyalty"] if table.key == "nps_trend"]
    chart = results_admin.dashboard_charts(tables)["nps_trend"]
    assert "NPS per week" in chart
    assert "none" in chart  # the week without answers is marked, not drawn as 0
    assert ">100<" in chart
    assert ">-100<" in chart
    assert trend.column("NPS") == [None, 100.0, -100.0]


# --- the admin list ---------------------------------------------------------------------------------


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


URL = "/admin/customers/surveyresponse/"


@pytest.fixture
def answers():
    spring = sent_campaign("Spring")
    north, south = StoreFactory(name="North"), StoreFactory(name="South")
    ann = CustomerFactory(first_name="Ann", email="ann@example.com", home_store=north)
    bob = CustomerFactory(first_name="Bob", email="bob@example.com", home_store=south)
    return {
        "spring": spring,
        "north": north,
        "ann": answer(10, march(2), f"campaign:{spring.pk} delivery:7", customer=ann, comment="=HYPERLINK(1)"),
        "bob": answer(4, march(9), "journey_step:3 delivery:8", customer=bob, comment="<b>slow</b>"),
    }


def test_the_list_is_read_only_and_names_each_survey(client, marketer, answers, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = client.get(URL)

    text = page.content.decode()
    assert page.status_code == 200
    assert "Campaign “Spring”" in text
    assert "Journey message" in text
    assert "&lt;b&gt;slow&lt;/b&gt;" in text
    assert "<b>slow</b>" not in text
    assert client.get(URL + "add/").status_code == 403
    change = client.get(reverse("admin:customers_surveyresponse_change", args=[answers["ann"].pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert b'value="delete_selected"' not in page.content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("survey={spring}", {"ann"}),
        ("survey=journeys", {"bob"}),
        ("answer=detractor", {"bob"}),
        ("answer=promoter", {"ann"}),
        ("customer__home_store__id__exact={north}", {"ann"}),
        ("answered_at__year=2026&answered_at__month=3&answered_at__day=9", {"bob"}),
        ("q=ann@example.com", {"ann"}),
        ("q=Bob", {"bob"}),
    ],
)
def test_filters_and_search(client, marketer, answers, query, expected):
    page = client.get(URL + "?" + query.format(spring=answers["spring"].pk, north=answers["north"].pk))

    text = page.content.decode()
    shown = {
        name
        for name in ("ann", "bob")
        if reverse("admin:customers_surveyresponse_change", args=[answers[name].pk]) in text
    }
    assert page.status_code == 200
    assert shown == expected


def test_csv_export_of_the_selected_answers_is_formula_safe(client, marketer, answers):
    response = client.post(
        URL,
        {"action": "export_csv", "_selected_action": [answers["ann"].pk, answers["bob"].pk]},
    )

    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "answered at,score,group,survey,comment,customer id,customer email,home store"
    assert len(lines) == 3
    assert "Journey message,<b>slow</b>" in lines[1]
    assert "Detractor" in lines[1]
    assert "'=HYPERLINK(1)" in lines[2]
    assert "Campaign “Spring”" in lines[2]
    assert "ann@example.com" in lines[2]
    assert "North" in lines[2]


def test_the_list_takes_as_many_queries_for_many_answers_as_for_one(client, marketer, django_assert_max_num_queries):
    for n in range(15):
        campaign = sent_campaign(f"Campaign {n}")
        answer(n % 11, march(2), f"campaign:{campaign.pk} delivery:{n}")

    with django_assert_max_num_queries(12):
        page = client.get(URL)

    assert page.content.decode().count("Campaign “Campaign ") >= 15
