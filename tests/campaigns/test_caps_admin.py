"""Frequency rules are listed and edited in the admin; bad limits are refused there."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign, FrequencyRule
from tests.factories import MarketingUserFactory
from tests.factories.campaigns import CampaignFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory(email="caps@staff.example.com")
    client.login(username=user.username, password=PASSWORD)
    return user


def _form(**values):
    data = {
        "name": "2 pushes a day",
        "is_active": "on",
        "channel": "push",
        "category": "",
        "window": "calendar_day",
        "limit_source": "rule",
        "limit": "2",
        "days": "7",
        "gap_hours": "24",
    }
    return data | values


def test_rules_are_listed_with_their_limits(client, marketer):
    FrequencyRule.objects.all().delete()
    FrequencyRule.objects.create(name="3 emails", channel="email", window="rolling_days", limit=3, days=7)
    FrequencyRule.objects.create(name="<b>spaced</b>", window="min_gap", gap_hours=12)
    response = client.get(reverse("admin:campaigns_frequencyrule_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "3 in 7 days (rolling)" in body
    assert "At least 12 h apart" in body
    assert "&lt;b&gt;spaced&lt;/b&gt;" in body


def test_a_rule_is_added_and_edited(client, marketer):
    FrequencyRule.objects.all().delete()
    response = client.post(reverse("admin:campaigns_frequencyrule_add"), _form())
    assert response.status_code == 302
    rule = FrequencyRule.objects.get()
    assert (rule.channel, rule.window, rule.limit) == ("push", "calendar_day", 2)
    page = client.get(reverse("admin:campaigns_frequencyrule_change", args=[rule.pk]))
    assert "Leave empty to count messages on every channel together." in page.content.decode()
    client.post(reverse("admin:campaigns_frequencyrule_change", args=[rule.pk]), _form(limit="1"))
    rule.refresh_from_db()
    assert rule.limit == 1


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"window": "rolling_days", "days": "40"}, "days"),
        ({"window": "min_gap", "gap_hours": "0"}, "gap_hours"),
        ({"window": "min_gap", "limit_source": "customer"}, "limit_source"),
    ],
)
def test_a_bad_rule_is_refused_and_nothing_saved(client, marketer, values, field):
    FrequencyRule.objects.all().delete()
    response = client.post(reverse("admin:campaigns_frequencyrule_add"), _form(**values))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not FrequencyRule.objects.exists()


def test_campaign_form_offers_the_capped_choice(client, marketer):
    campaign = CampaignFactory()
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    body = page.content.decode()
    assert 'name="when_capped"' in body
    assert "As the category suggests" in body
    assert Campaign.objects.get(pk=campaign.pk).when_capped == ""
