"""Replies to our texts: opt-out keywords and their kin, signed by Twilio, acted on once."""

import pytest
from django.urls import reverse
from twilio.request_validator import RequestValidator

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.feedback.sms import opt_out_phrase, sms_keyword
from campaigns.models import Delivery, DeliveryEvent, FeedbackCount, SmsOptOutReview
from customers.models import ConsentEvidence, ConsentState, Suppression
from customers.normalization import address_hmac
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.campaigns.feedback.conftest import PUBLIC, TOKEN, launch_and_send, sid, twilio_post
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db
PATH = "/webhooks/twilio/inbound/"
PHONE = "+14155550123"


@pytest.fixture
def texter(twilio_settings):
    return granted(CustomerFactory(first_name="Bea", phone=PHONE), "sms")


def reply(client, body, n=1, sender=PHONE, **params):
    return twilio_post(
        client,
        PATH,
        {
            "MessageSid": sid(n),
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": "+14155550100",
            "Body": body,
            **params,
        },
    )


def sms_state(customer):
    return ConsentState.objects.get(customer=customer, channel="sms").status


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        " stop ",
        "Stop!",
        "sToP.",
        "STOPALL",
        "unsubscribe",
        "Cancel",
        "END",
        "quit",
        "Revoke",
        "OPTOUT",
        "\u201cstop\u201d",
        "stop\n",
    ],
)
def test_every_opt_out_keyword_withdraws_sms_consent(client, texter, body):
    response = reply(client, body)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"unsubscribed" in response.content
    assert b"<Message>" in response.content
    assert sms_state(texter) == "withdrawn"


def test_the_withdrawal_names_the_reply_and_the_last_text_sent_to_the_number(client, texter, no_send_policies):
    campaign = sending_campaign(channels="sms")
    launch_and_send(campaign)
    delivery = Delivery.objects.get(customer_id=texter.pk, channel="sms")

    reply(client, "STOP", n=7)

    entry = ConsentEvidence.objects.filter(customer=texter, channel="sms", action="withdraw").get()
    assert entry.method == "sms_keyword"
    assert entry.source_reference == f"twilio:{sid(7)} delivery:{delivery.pk}"
    event = DeliveryEvent.objects.get(provider="twilio", provider_event_id=sid(7))
    assert (event.kind, event.delivery_id, event.detail["keyword"]) == ("inbound", delivery.pk, "STOP")
    assert FeedbackCount.objects.get(cause_id=campaign.pk, channel="sms", kind="stopped").count == 1


def test_a_repeated_reply_is_answered_again_but_acted_on_once(client, texter):
    first = reply(client, "STOP", n=3)
    second = reply(client, "STOP", n=3)

    assert first.content == second.content
    assert ConsentEvidence.objects.filter(customer=texter, action="withdraw").count() == 1
    assert DeliveryEvent.objects.filter(provider_event_id=sid(3)).count() == 1


@pytest.mark.parametrize("body", ["START", "yes", " Unstop! "])
def test_an_opt_in_keyword_grants_again_with_evidence(client, texter, body):
    reply(client, "STOP", n=1)

    response = reply(client, body, n=2)

    assert sms_state(texter) == "granted"
    grant = ConsentEvidence.objects.filter(customer=texter, channel="sms", action="grant").latest("pk")
    assert (grant.method, grant.source_reference) == ("sms_keyword", f"twilio:{sid(2)}")
    assert b"subscribed to texts again" in response.content


def test_start_lifts_the_carrier_opt_out_suppression_of_the_number(client, texter):
    Suppression.objects.create(channel="sms", address_hmac=address_hmac("sms", PHONE), reason="carrier_opt_out")

    reply(client, "START")

    assert not Suppression.objects.exists()


@pytest.mark.parametrize("body", ["HELP", "info?"])
def test_help_answers_with_the_programme_and_changes_nothing(client, texter, body):
    response = reply(client, body)

    text = response.content.decode()
    assert "Tandem Stores" in text
    assert "Msg &amp; data rates may apply" in text
    assert "Reply STOP" in text
    assert "help@tandem.example" in text
    assert sms_state(texter) == "granted"


def test_the_answer_is_escaped_xml(client, texter, settings):
    settings.TANDEM = {**settings.TANDEM, "BRAND_NAME": "A&B <Shops>"}

    response = reply(client, "HELP")

    assert b"A&amp;B &lt;Shops&gt;" in response.content


def test_a_plain_request_to_stop_is_honoured_and_listed_for_review(client, texter):
    response = reply(client, "Please stop texting me, thanks")

    assert sms_state(texter) == "withdrawn"
    review = SmsOptOutReview.objects.get()
    assert (review.customer, review.status, review.matched) == (texter, "withdrawn", "stop texting")
    assert b"unsubscribed" in response.content


def test_a_mere_mention_of_stopping_is_listed_only(client, texter):
    response = reply(client, "I can't stop smiling about that sale")

    assert sms_state(texter) == "granted"
    assert SmsOptOutReview.objects.get().status == "open"
    assert b"<Message>" not in response.content


def test_other_replies_change_nothing(client, texter):
    response = reply(client, "What time do you open tomorrow?")

    assert response.status_code == 200
    assert sms_state(texter) == "granted"
    assert not SmsOptOutReview.objects.exists()
    assert DeliveryEvent.objects.get().kind == "inbound"


@pytest.mark.parametrize("sender", ["+14155550999", "not a number", ""])
def test_an_unknown_number_is_answered_without_error(client, twilio_settings, sender):
    response = reply(client, "STOP", sender=sender)

    assert response.status_code == 200
    assert b"unsubscribed" in response.content


def test_a_number_written_another_way_finds_its_customer(client, texter):
    reply(client, "STOP", sender="+1 (415) 555-0123")

    assert sms_state(texter) == "withdrawn"


def test_unsigned_or_forged_requests_are_refused_and_change_nothing(client, texter):
    params = {"MessageSid": sid(9), "From": PHONE, "Body": "STOP"}
    unsigned = client.post(PATH, params)
    wrong_token = twilio_post(client, PATH, params, token="not-the-token")
    other_url = twilio_post(client, PATH, params, signed_url="https://evil.example" + PATH)
    tampered = client.post(
        PATH,
        {**params, "From": "+14155550124"},
        HTTP_X_TWILIO_SIGNATURE=RequestValidator(TOKEN).compute_signature(PUBLIC + PATH, params),
    )

    assert [r.status_code for r in (unsigned, wrong_token, other_url, tampered)] == [403, 403, 403, 403]
    assert sms_state(texter) == "granted"
    assert not DeliveryEvent.objects.exists()


def test_without_an_auth_token_every_request_is_refused(client, texter, settings):
    settings.TWILIO_AUTH_TOKEN = ""

    response = client.post(PATH, {"MessageSid": sid(1), "From": PHONE, "Body": "STOP"}, HTTP_X_TWILIO_SIGNATURE="x")

    assert response.status_code == 403


def test_a_stop_webhook_takes_a_bounded_number_of_queries(client, texter, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        reply(client, "STOP")


def test_a_stop_during_a_running_campaign_holds_every_later_chunk(client, texter, no_send_policies):
    others = [granted(CustomerFactory(phone=f"+1415555020{i}"), "sms") for i in range(3)]
    campaign = sending_campaign(channels="sms")
    result = campaign_launch(campaign=campaign)
    ids = dict(Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", "id"))
    first_chunk = [ids[others[0].pk], ids[others[0].pk]]
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first_chunk[0], last_id=first_chunk[1])

    reply(client, "STOP")
    delivery_chunk_send(
        cause_type="campaign", cause_id=campaign.pk, first_id=result.ranges[0][0], last_id=result.ranges[-1][1]
    )

    row = Delivery.objects.get(pk=ids[texter.pk])
    assert (row.status, row.reason) == ("skipped", "no_consent")
    assert set(Delivery.objects.exclude(pk=row.pk).values_list("status", flat=True)) == {"sent"}


def test_the_review_list_shows_replies_escaped(client, texter):
    reply(client, "<script>alert(1)</script> stop texting me")
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)

    page = client.get(reverse("admin:campaigns_smsoptoutreview_changelist"))

    assert page.status_code == 200
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;" in page.content


def test_staff_withdraw_or_dismiss_a_listed_reply(client, texter):
    reply(client, "can you stop", n=1)
    review = SmsOptOutReview.objects.get()
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)

    client.post(
        reverse("admin:campaigns_smsoptoutreview_changelist"),
        {"action": "withdraw_sms_consent", "_selected_action": [review.pk]},
    )

    review.refresh_from_db()
    assert (review.status, review.reviewed_by) == ("withdrawn", user)
    assert sms_state(texter) == "withdrawn"


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("stop", "STOP"),
        ("  STOP!!! ", "STOP"),
        ("stop please", None),
        ("STOP. STOP", None),
        ("s top", None),
        ("Yes.", "YES"),
        ("", None),
    ],
)
def test_keywords_are_single_words(body, keyword):
    assert sms_keyword(body) == keyword


@pytest.mark.parametrize(
    ("body", "clear"),
    [
        ("no more messages", True),
        ("Don't text me again", True),
        ("remove me from this list", True),
        ("please unsubscribe", True),
        ("stop sending these", True),
        ("STOP please", True),
        ("Cancel my order", False),
        ("hello", None),
    ],
)
def test_opt_out_phrases(body, clear):
    found = opt_out_phrase(body)
    assert (found[1] if found else None) == clear


def test_erasing_the_person_blanks_their_listed_replies(client, texter):
    from customers.services import customer_erase

    reply(client, "please stop texting me")

    customer_erase(customer=texter, user=None)

    review = SmsOptOutReview.objects.get()
    assert (review.body, review.from_number, review.status) == ("", "", "withdrawn")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_stop_delivered_twice_at_once_is_acted_on_once(twilio_settings):
    from campaigns.feedback.sms import sms_inbound_receive
    from tests.concurrency import race

    customer = granted(CustomerFactory(phone=PHONE), "sms")

    def stop():
        return sms_inbound_receive(message_sid=sid(5), from_number=PHONE, body="STOP").duplicate

    outcomes = race(stop, stop, stop)

    assert [outcome.error for outcome in outcomes] == [None, None, None]
    assert sorted(outcome.value for outcome in outcomes) == [False, True, True]
    assert ConsentEvidence.objects.filter(customer=customer, action="withdraw").count() == 1
