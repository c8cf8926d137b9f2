"""The campaign page while it sends: progress panel, live JSON, pause/resume/cancel at hand, "why not sent"."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery
from customers.models import Customer
from tests.campaigns.delivery.conftest import sending_campaign
from tests.factories import MarketingUserFactory
from tests.factories.campaigns import CampaignFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.fixture
def half_sent(audience, settings, django_capture_on_commit_callbacks):
    """Three deliveries in chunks of one: the first chunk sent, two still queued."""
    settings.DELIVERY_CHUNK_SIZE = 1
    campaign = sending_campaign()
    with django_capture_on_commit_callbacks(execute=False):
        result = campaign_launch(campaign=campaign)
    first, last = result.ranges[0]
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first, last_id=last)
    return campaign


def test_the_change_page_of_a_sending_campaign_shows_progress_and_the_pause_and_cancel_buttons(
    marketer, client, half_sent
):
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("admin:campaigns_campaign_change", args=[half_sent.pk]))

    assert page.status_code == 200
    assert sum('"campaigns_delivery"' in query["sql"] for query in captured.captured_queries) == 1
    body = page.content.decode()
    assert 'id="campaign-progress"' in body
    assert '<td class="progress-sent" data-status="sent">1</td>' in body
    assert '<td class="progress-queued" data-status="queued">2</td>' in body
    assert 'value="33"' in body  # the progress bar
    assert 'id="campaign-paused-button"' in body
    assert 'id="campaign-cancelled-button"' in body
    assert 'data-live="1"' in body
    assert body.index('id="campaign-progress"') < body.index('id="campaign_form"')  # above the form, at hand


def test_the_progress_endpoint_answers_with_the_counts_in_a_bounded_number_of_queries(
    marketer, client, half_sent, django_assert_max_num_queries
):
    url = reverse("admin:campaigns_campaign_progress", args=[half_sent.pk])
    client.get(url)  # warm the session

    with django_assert_max_num_queries(8) as captured:  # session, user, permissions, campaign, the aggregate
        data = client.get(url).json()

    on_deliveries = [query["sql"] for query in captured.captured_queries if "campaigns_delivery" in query["sql"]]
    assert len(on_deliveries) == 1

    assert data["statuses"]["sent"] == 1
    assert data["statuses"]["queued"] == 2
    assert (data["total"], data["percent"], data["sent_last_minute"]) == (3, 33, 1)
    assert data["live"] is True
    assert data["status"] == "sending"


def test_pausing_from_the_panel_shows_resume_and_cancelling_marks_the_queued_rows(marketer, client, half_sent):
    status_url = reverse("admin:campaigns_campaign_status", args=[half_sent.pk])
    change_url = reverse("admin:campaigns_campaign_change", args=[half_sent.pk])

    client.post(status_url, {"to": "paused"})
    paused_page = client.get(change_url).content.decode()
    client.post(status_url, {"to": "cancelled"})
    cancelled_page = client.get(change_url).content.decode()

    assert 'id="campaign-sending-button"' in paused_page  # "Resume sending"
    assert "Resume sending" in paused_page
    assert Campaign.objects.get(pk=half_sent.pk).status == Campaign.Status.CANCELLED
    assert Delivery.objects.filter(status="cancelled", reason="cancelled").count() == 2
    assert '<td class="progress-cancelled" data-status="cancelled">2</td>' in cancelled_page
    assert 'data-live="0"' in cancelled_page
    assert 'id="campaign-paused-button"' not in cancelled_page


def test_the_campaign_list_has_a_progress_column_counted_once_for_the_page(
    marketer, client, half_sent, django_assert_max_num_queries
):
    for _ in range(5):
        CampaignFactory()
    url = reverse("admin:campaigns_campaign_changelist")
    client.get(url)

    with django_assert_max_num_queries(14) as captured:
        page = client.get(url)

    assert sum("campaigns_delivery" in query["sql"] for query in captured.captured_queries) == 1

    body = page.content.decode()
    assert '<progress max="100" value="33"' in body
    assert "1 sent · 2 queued · 0 not sent" in body


def test_why_answers_with_the_deliveries_of_a_person_found_by_email(marketer, client, half_sent):
    sent = Delivery.objects.get(status="sent")
    person = Customer.objects.get(pk=sent.customer_id)
    url = reverse("admin:campaigns_campaign_why", args=[half_sent.pk])

    page = client.get(url, {"q": person.email.upper()})

    body = page.content.decode()
    assert page.status_code == 200
    assert f'class="why-delivery status-sent"><td>{sent.channel}</td><td>Sent</td>' in body
    assert sent.address in body


def test_why_explains_in_words_someone_without_a_delivery_and_escapes_names(marketer, client, half_sent, audience):
    Customer.objects.filter(pk=audience["none"].pk).update(first_name="<b>Cat</b>")
    url = reverse("admin:campaigns_campaign_why", args=[half_sent.pk])

    page = client.get(url, {"q": audience["none"].phone})
    nobody = client.get(url, {"q": "nobody@example.org"})

    body = page.content.decode()
    assert "email: They have not consented to this channel" in body
    assert "&lt;b&gt;Cat&lt;/b&gt;" in body
    assert "<b>Cat</b>" not in body
    assert 'id="why-no-match"' in nobody.content.decode()


def test_the_customer_page_lists_their_deliveries(marketer, client, half_sent):
    sent = Delivery.objects.get(status="sent")

    page = client.get(reverse("admin:customers_customer_change", args=[sent.customer_id]))

    assert page.status_code == 200
    assert f"from campaign “{half_sent.name}”: sent" in page.content.decode()
