"""The studio's admin pages render and write through the services."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import AuditEvent, Campaign, Segment, SegmentMember, Variant
from customers.models import ConsentState
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.campaigns import (
    SMS_BODY,
    CampaignFactory,
    EmailVariantFactory,
    PersonaFactory,
    PushVariantFactory,
    SegmentFactory,
    SmsVariantFactory,
)
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory(email="marketer@staff.example.com")
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.fixture
def campaign():
    campaign = CampaignFactory(channels="email,sms,push", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    SmsVariantFactory(message=campaign.message)
    PushVariantFactory(message=campaign.message)
    return campaign


def test_pages_render(client, marketer, campaign):
    customer = CustomerFactory(first_name="<b>Eve</b>")
    ConsentState.objects.create(customer=customer, channel="email", status="granted")
    segment = SegmentFactory(rules={"type": "consent", "channel": "email", "op": "granted"})
    variant = campaign.message.variants.get(channel="email")
    urls = [
        reverse("admin:campaigns_campaign_changelist"),
        reverse("admin:campaigns_campaign_changelist") + "?status__exact=draft&goal__exact=engagement&channel=sms",
        reverse("admin:campaigns_campaign_add"),
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]) + f"?preview_customer={customer.pk}",
        reverse("admin:campaigns_segment_changelist"),
        reverse("admin:campaigns_segment_add"),
        reverse("admin:campaigns_segment_change", args=[segment.pk]),
        reverse("admin:campaigns_message_changelist"),
        reverse("admin:campaigns_message_change", args=[campaign.message.pk]),
        reverse("admin:campaigns_variant_preview", args=[variant.pk]),
        reverse("admin:campaigns_variant_preview", args=[variant.pk]) + f"?customer={customer.pk}",
        reverse("admin:campaigns_auditevent_changelist"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"<b>Eve</b>" not in response.content, url


def test_campaign_page_shows_previews_forecast_and_segment_count(client, marketer, campaign):
    customer = CustomerFactory(first_name="Ann", phone="+14155550150")
    ConsentState.objects.create(customer=customer, channel="sms", status="granted")
    response = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    page = response.content.decode()
    assert 'sandbox=""' in page
    assert "srcdoc=" in page
    assert "Hello Ann" in page
    assert "1 segment" in page
    assert 'class="push-title"' in page
    assert 'id="campaign-forecast"' in page
    assert 'id="variant-grid"' in page
    assert "No consent" in page
    segment = campaign.include_segments.get()
    page = client.get(reverse("admin:campaigns_segment_change", args=[segment.pk])).content.decode()
    assert "reachable by email 0, SMS 1, push 0" in page


def _campaign_form(segment, **extra):
    data = {
        "name": "Spring sale",
        "goal": "conversion",
        "kpi": "revenue",
        "kpi_target": "",
        "category": "promotional",
        "message": "",
        "include_segments": [segment.pk],
        "channels_0": "email",
        "channels_1": "sms",
        "channels_2": "push",
        "mode": "all",
        "offer": "",
        "coupon_mode": "shared",
        "shared_code": "",
        "variants-TOTAL_FORMS": "3",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
    }
    cells = [
        {"channel": "email", "subject": "Spring is here, {{ first_name }}", "html_body": "<p>Hi {{ first_name }}</p>"},
        {"channel": "sms", "sms_body": SMS_BODY},
        {"channel": "push", "push_title": "Spring!", "push_body": "New in store", "push_url": "tandem://spring"},
    ]
    for index, cell in enumerate(cells):
        for key, value in cell.items():
            data[f"variants-{index}-{key}"] = value
    data.update(extra)
    return data


def test_compose_a_campaign_with_three_variants(client, marketer):
    segment = SegmentFactory()
    response = client.post(reverse("admin:campaigns_campaign_add"), _campaign_form(segment))
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.message.name == "Spring sale"
    assert sorted(campaign.message.variants.values_list("channel", flat=True)) == ["email", "push", "sms"]
    assert campaign.created_by == marketer
    assert AuditEvent.objects.filter(campaign=campaign, action="created").exists()
    assert AuditEvent.objects.filter(subject_type="variant").count() == 3


def test_a_template_payload_in_a_cell_is_refused_and_nothing_is_saved(client, marketer):
    data = _campaign_form(SegmentFactory(), **{"variants-0-subject": "{{ settings.SECRET_KEY }}"})
    response = client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 200
    assert "Unknown placeholder" in response.content.decode()
    assert not Campaign.objects.exists()
    assert not Variant.objects.exists()


def test_variants_are_read_only_once_sending(client, marketer, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'name="variants-0-subject"' not in page
    assert 'name="name"' not in page


def test_status_buttons_go_through_the_service(client, marketer, campaign):
    url = reverse("admin:campaigns_campaign_status", args=[campaign.pk])
    client.post(url, {"to": "scheduled", "at": "2999-01-01T09:00"})
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    client.post(url, {"to": "sent"})  # not allowed from scheduled
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    client.post(url, {"to": "cancelled"})
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"


def test_duplicate_action(client, marketer, campaign):
    client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "duplicate_action", "_selected_action": [campaign.pk]},
    )
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert copy.message.variants.count() == 3


def test_live_count_endpoint(client, marketer):
    CustomerFactory(first_name="Ann")
    CustomerFactory(first_name="Bob")
    url = reverse("admin:campaigns_segment_count")
    rules = {"type": "profile", "field": "first_name", "op": "eq", "value": "ann"}
    response = client.post(url, {"rules": json.dumps(rules)})
    assert response.json()["total"] == 1
    bad = client.post(url, {"rules": json.dumps({"type": "nope"})})
    assert bad.status_code == 400
    assert "unknown rule type" in bad.json()["error"]


def test_static_segment_upload(client, marketer):
    known = CustomerFactory(email="known@example.com")
    by_phone = CustomerFactory(phone="+14155550177")
    upload = SimpleUploadedFile(
        "list.csv", b"email\nKNOWN@example.com\n+1 415 555 0177\nnobody@example.com\nnot-an-address\n"
    )
    response = client.post(
        reverse("admin:campaigns_segment_add"),
        {"name": "VIP list", "kind": "static", "description": "", "is_active": "on", "rules": "{}", "upload": upload},
        follow=True,
    )
    assert response.status_code == 200
    segment = Segment.objects.get(name="VIP list")
    assert set(SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)) == {
        known.pk,
        by_phone.pk,
    }
    page = response.content.decode()
    assert AuditEvent.objects.filter(subject_type="segment", subject_id=segment.pk, action="created").exists()
    assert "2 matched" in page
    assert "Line 4" in page
    assert "Line 5" in page


def test_more_than_four_personas_warns(client, marketer):
    PersonaFactory.create_batch(5)
    page = client.get(reverse("admin:campaigns_segment_changelist")).content.decode()
    assert "5 personas are active" in page


def test_test_send_from_the_preview_page(client, marketer, campaign):
    from django.core import mail

    variant = campaign.message.variants.get(channel="email")
    response = client.post(reverse("admin:campaigns_variant_preview", args=[variant.pk]), follow=True)
    assert "Test sent to marketer@staff.example.com" in response.content.decode()
    assert mail.outbox[0].to == ["marketer@staff.example.com"]


def _messages(response):
    return [str(m) for m in response.wsgi_request._messages]


def test_the_status_view_refuses_engine_moves_and_shows_why(client, marketer, campaign):
    url = reverse("admin:campaigns_campaign_status", args=[campaign.pk])
    client.post(url, {"to": "scheduled", "at": "2999-01-01T09:00"})
    response = client.post(url, {"to": "sending"}, follow=True)
    assert "A scheduled campaign cannot become sending by hand." in _messages(response)
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert list(AuditEvent.objects.filter(campaign=campaign).values_list("changes__status", flat=True)) == [
        ["draft", "scheduled"]
    ]


def test_the_status_view_asks_for_the_send_time(client, marketer, campaign):
    url = reverse("admin:campaigns_campaign_status", args=[campaign.pk])
    response = client.post(url, {"to": "scheduled", "at": "next tuesday"}, follow=True)
    assert any("Give the send time" in m for m in _messages(response))
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_saving_a_campaign_that_started_sending_meanwhile_shows_the_refusal_and_changes_nothing(
    client, marketer, campaign
):
    data = _campaign_form(SegmentFactory(), name="Changed meanwhile", message=str(campaign.message.pk))
    data.update({"variants-TOTAL_FORMS": "0", "variants-INITIAL_FORMS": "0"})
    for key in [k for k in data if k.startswith(("variants-0", "variants-1", "variants-2"))]:
        del data[key]
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = client.get(url)
    assert page.status_code == 200
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    # The page was open before sending started; its form still posts every field.
    from campaigns import admin as studio

    original = studio.CampaignAdmin.get_readonly_fields
    studio.CampaignAdmin.get_readonly_fields = lambda self, request, obj=None: ["status_display"]
    try:
        response = client.post(url, data, follow=True)
    finally:
        studio.CampaignAdmin.get_readonly_fields = original
    assert any("has started sending and can no longer change" in m for m in _messages(response))
    campaign.refresh_from_db()
    assert campaign.name != "Changed meanwhile"
    assert not AuditEvent.objects.filter(campaign=campaign, action="changed").exists()


def test_editing_a_segment_in_the_admin_records_the_changed_fields(client, marketer):
    segment = SegmentFactory(name="Regulars")
    url = reverse("admin:campaigns_segment_change", args=[segment.pk])
    response = client.post(
        url,
        {"name": "Regulars", "kind": "rules", "description": "Come every week", "is_active": "on",
         "rules": json.dumps(segment.rules)},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(subject_type="segment", subject_id=segment.pk)
    assert (event.action, event.actor, event.changes) == ("changed", marketer, {"description": "Come every week"})


def test_renaming_a_message_in_the_admin_is_audited(client, marketer, campaign):
    url = reverse("admin:campaigns_message_change", args=[campaign.message.pk])
    data = {"name": "Renamed", "purpose": campaign.message.purpose, "variants-TOTAL_FORMS": "0",
            "variants-INITIAL_FORMS": "0", "variants-MIN_NUM_FORMS": "0", "variants-MAX_NUM_FORMS": "1000"}
    response = client.post(url, data)
    assert response.status_code == 302
    event = AuditEvent.objects.get(subject_type="message", subject_id=campaign.message.pk)
    assert event.changes == {"name": "Renamed"}


def test_a_deeply_nested_cell_gets_a_field_error_not_a_server_error(client, marketer):
    deep = "{% if first_name %}" * 500 + "x" + "{% endif %}" * 500
    data = _campaign_form(SegmentFactory(), **{"variants-0-html_body": deep})
    response = client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 200
    assert "nested more than 10 deep" in response.content.decode()
    assert not Campaign.objects.exists()


def test_send_test_of_a_stored_variant_that_no_longer_compiles_shows_the_error(client, marketer, campaign):
    from django.core import mail

    variant = campaign.message.variants.get(channel="email")
    Variant.objects.filter(pk=variant.pk).update(subject="{{ settings.SECRET_KEY }}")
    url = reverse("admin:campaigns_variant_preview", args=[variant.pk])
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert any(m.startswith("Test not sent: The variant has errors") for m in _messages(response))
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="test_sent").exists()


def test_staff_test_numbers_are_kept_in_the_admin_and_sms_tests_go_only_there(client, marketer, campaign, settings):
    from campaigns.models import StaffTestRecipient

    response = client.post(
        reverse("admin:campaigns_stafftestrecipient_add"),
        {"label": "Ana (work)", "channel": "sms", "address": "(415) 555-0160", "is_active": "on"},
    )
    assert response.status_code == 302
    recipient = StaffTestRecipient.objects.get()
    assert (recipient.address, recipient.created_by) == ("+14155550160", marketer)
    bad = client.post(
        reverse("admin:campaigns_stafftestrecipient_add"),
        {"label": "Typo", "channel": "sms", "address": "12", "is_active": "on"},
    )
    assert bad.status_code == 200
    assert StaffTestRecipient.objects.count() == 1
    variant = campaign.message.variants.get(channel="sms")
    url = reverse("admin:campaigns_variant_preview", args=[variant.pk])
    refused = client.post(url, {"phone": "+1 415 555 0161"}, follow=True)
    assert any("is not a staff test number" in m for m in _messages(refused))
    assert not AuditEvent.objects.filter(action="test_sent").exists()


def test_the_kpi_target_is_read_in_plain_digits_only():
    from django.contrib import admin
    from django.core.exceptions import ValidationError

    from campaigns.models import Campaign

    field = admin.site._registry[Campaign].formfield_for_dbfield(Campaign._meta.get_field("kpi_target"), request=None)
    with pytest.raises(ValidationError, match="plain digits"):
        field.clean("1e1")
    assert str(field.clean("25")) == "25"


def test_the_channel_picker_stores_the_order_chosen_and_shows_it_again(client, marketer):
    data = _campaign_form(SegmentFactory(), channels_0="sms", channels_1="email", channels_2="")
    response = client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.channels == ["sms", "email"]

    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    first = page[page.index('name="channels_0"') :].split("</select>")[0]
    second = page[page.index('name="channels_1"') :].split("</select>")[0]
    assert '<option value="sms" selected>' in first
    assert '<option value="email" selected>' in second


def test_reordering_channels_is_audited_in_order(client, marketer, campaign):
    data = _campaign_form(campaign.include_segments.get(), channels_0="push", channels_1="email", channels_2="sms")
    data.update(name=campaign.name, message=campaign.message.pk, **{"variants-TOTAL_FORMS": "0"})
    response = client.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign.refresh_from_db()
    assert campaign.channel_list == ["push", "email", "sms"]
    changed = AuditEvent.objects.get(campaign=campaign, action="changed")
    assert changed.changes["channels"] == [["email", "sms", "push"], ["push", "email", "sms"]]


def test_the_channel_picker_refuses_a_channel_twice_or_none_and_saves_nothing(client, marketer):
    twice = _campaign_form(SegmentFactory(), channels_0="email", channels_1="email", channels_2="")
    response = client.post(reverse("admin:campaigns_campaign_add"), twice)
    assert response.status_code == 200
    assert "Name each channel once" in response.content.decode()
    none = _campaign_form(SegmentFactory(), channels_0="", channels_1="", channels_2="")
    response = client.post(reverse("admin:campaigns_campaign_add"), none)
    assert response.status_code == 200
    assert not Campaign.objects.exists()


def test_the_campaign_list_filters_and_shows_channels_in_order(client, marketer):
    sms_first = CampaignFactory(name="Texts first", channels="sms,email")
    CampaignFactory(name="Mail only", channels="email")
    page = client.get(reverse("admin:campaigns_campaign_changelist"), {"channel": "sms"}).content.decode()
    assert sms_first.name in page
    assert "Mail only" not in page
    assert "SMS, Email" in page
