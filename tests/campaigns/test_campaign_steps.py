"""The campaign page in steps: the customer search behind the pickers, the plain-form fallbacks, the
test send from the review step, and "save and continue" coming back to the step it was pressed on."""

import pytest
from django.urls import reverse

from campaigns.models import AuditEvent
from tests.factories import CustomerFactory, MarketingUserFactory, UserFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory, SmsVariantFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db

SEARCH = "admin:campaigns_customer_search"


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory(email="marketer@staff.example.com")
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.fixture
def campaign():
    campaign = CampaignFactory(channels="email,sms", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    SmsVariantFactory(message=campaign.message)
    return campaign


def _labels(response) -> list[str]:
    return [row["label"] for row in response.json()["results"]]


def test_customer_search_finds_by_name_email_or_phone(client, marketer):
    ann = CustomerFactory(first_name="Ann", last_name="Lee", email="ann.lee@example.com", phone="+14155550150")
    CustomerFactory(first_name="Bob", last_name="Stone", email="bob@example.com", phone="+14155550999")

    by_name = client.get(reverse(SEARCH), {"q": "ann lee"})
    by_email = client.get(reverse(SEARCH), {"q": "ANN.LEE@"})
    by_phone = client.get(reverse(SEARCH), {"q": "555 0150"})

    for response in (by_name, by_email, by_phone):
        assert response.status_code == 200
        assert response.json()["results"] == [{"id": ann.pk, "label": "Ann Lee — ann.lee@example.com · +14155550150"}]
    assert client.get(reverse(SEARCH), {"q": "a"}).json()["results"] == []  # too short to search
    assert client.get(reverse(SEARCH), {"q": str(ann.pk)}).json()["results"] == []  # never by internal id


def test_customer_search_leaves_out_merged_and_erased_profiles(client, marketer):
    kept = CustomerFactory(first_name="Cleo", last_name="Park")
    CustomerFactory(first_name="Cleo", last_name="Park", merged_into=kept)
    assert _labels(client.get(reverse(SEARCH), {"q": "cleo"})) == [f"Cleo Park — {kept.email}"]


def test_customer_search_escapes_what_customers_typed(client, marketer):
    CustomerFactory(first_name="<script>alert(1)</script>", last_name="&Co", email="x@example.com")

    response = client.get(reverse(SEARCH), {"q": "alert"})

    body = response.content.decode()
    assert response["Content-Type"] == "application/json"
    assert "<" not in body
    assert ">" not in body
    assert "&" not in body
    assert _labels(response) == ["<script>alert(1)</script> &Co — x@example.com"]  # the data itself intact


def test_customer_search_is_for_staff_who_may_see_customers_only(client):
    CustomerFactory(first_name="Ann")
    url = reverse(SEARCH) + "?q=ann"
    assert client.get(url).status_code == 302  # anonymous: to the login page
    outsider = UserFactory(is_staff=False)
    client.login(username=outsider.username, password=PASSWORD)
    assert client.get(url).status_code == 302
    staff_without_permissions = UserFactory(is_staff=True)
    client.login(username=staff_without_permissions.username, password=PASSWORD)
    assert client.get(url).status_code == 403


def test_previews_pick_a_customer_by_typed_text_without_javascript(client, marketer, campaign):
    CustomerFactory(first_name="Ann", last_name="Lee", email="ann@example.com")
    CustomerFactory(first_name="Anna", last_name="Berg", email="anna@example.com")
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    page = client.get(url, {"preview_q": "ann", "step": "message"}).content.decode()

    assert 'id="step-message" class="step-panel is-current"' in page
    assert "Previews for Ann Lee — ann@example.com" in page
    assert 'id="preview-matches"' in page
    assert "Anna Berg — anna@example.com" in page
    nobody = client.get(url, {"preview_q": "zz-nobody"}).content.decode()
    assert 'id="preview-no-match"' in nobody


def test_a_test_send_from_the_review_step_is_rendered_for_the_customer_found(client, marketer, campaign):
    from django.core import mail

    customer = CustomerFactory(first_name="Ann", last_name="Lee")
    variant = campaign.message.variants.get(channel="email")
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])

    response = client.post(url, {"variant": variant.pk, "customer_q": "ann lee"})

    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert response["Location"] == f"{change}?preview_customer={customer.pk}#step-review"
    assert mail.outbox[0].to == ["marketer@staff.example.com"]
    assert "Ann" in mail.outbox[0].subject
    event = AuditEvent.objects.get(action="test_sent")
    assert event.campaign_id == campaign.pk


def test_a_test_send_needs_a_variant_of_this_campaign(client, marketer, campaign):
    from django.core import mail

    other = EmailVariantFactory()
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    response = client.post(url, {"variant": other.pk}, follow=True)
    assert "Choose which variant to test." in [str(m) for m in response.context["messages"]]
    assert mail.outbox == []
    assert client.get(url).status_code == 403


def test_save_and_continue_comes_back_to_the_step_it_was_pressed_on(client, marketer, campaign):
    from tests.campaigns.test_admin import _campaign_form

    data = _campaign_form(campaign.include_segments.get(), name="Renamed", message=campaign.message.pk)
    data.update({"variants-TOTAL_FORMS": "0", "_continue": "schedule"})
    response = client.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"].endswith("#step-schedule")


def test_the_page_opens_on_audience_and_on_results_once_sent(client, marketer, campaign):
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert 'id="step-audience" class="step-panel is-current"' in page
    assert 'id="tab-review"' in page
    assert 'id="summary-problems"' not in page or "blocking launch" in page
    campaign.status = "sent"
    campaign.save(update_fields=["status"])
    page = client.get(url).content.decode()
    assert 'id="step-results" class="step-panel is-current"' in page
    assert 'id="campaign-progress"' in page
    assert 'id="campaign-launch"' not in page


def test_reach_counts_the_choice_being_edited_before_it_is_saved(client, marketer, campaign):
    from customers.models import ConsentState

    everyone = SegmentFactory(name="Everyone")
    ann = CustomerFactory(first_name="Ann", phone="+14155550150")
    CustomerFactory(first_name="Bob")
    ConsentState.objects.create(customer=ann, channel="sms", status="granted")
    url = reverse("admin:campaigns_campaign_reach")

    response = client.post(
        url, {"campaign": campaign.pk, "include_segments": [everyone.pk], "channels_0": "sms", "mode": "all"}
    )

    assert response.json() == {"audience": 2, "channels": [{"channel": "sms", "reachable": 1, "left_out": 1}]}
    campaign.refresh_from_db()
    assert campaign.channel_list == ["email", "sms"]  # nothing stored
    unsaved = client.post(url, {"include_segments": [everyone.pk], "channels_0": "email"})
    assert unsaved.json()["audience"] == 2
    assert client.post(url, {"channels_0": "sms", "channels_1": "sms"}).status_code == 400
    assert client.get(url).status_code == 403


def test_the_variant_preview_page_finds_its_customer_by_phone(client, marketer, campaign):
    CustomerFactory(first_name="Ann", last_name="Lee", email="ann@example.com", phone="+14155550150")
    variant = campaign.message.variants.get(channel="sms")
    url = reverse("admin:campaigns_variant_preview", args=[variant.pk])

    page = client.get(url, {"customer_q": "(415) 555-0150"}).content.decode()

    assert "Previewing as\n    <strong>Ann Lee — ann@example.com · +14155550150</strong>" in page
    assert 'type="number"' not in page  # no internal id to type
