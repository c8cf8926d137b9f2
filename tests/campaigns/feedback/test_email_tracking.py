"""ESP tracking webhooks through anymail's real views: real payloads, the secret, the ESP's signature, once."""

import base64

import pytest

from campaigns.models import Delivery, DeliveryEvent, FeedbackCount
from customers.models import ConsentEvidence, ConsentState, Suppression
from customers.normalization import address_hmac
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.campaigns.feedback import esp_payloads
from tests.campaigns.feedback.conftest import launch_and_send
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.django_db,
    # SendGrid is still an ESP anymail carries, without its maintainers testing it against the live API.
    pytest.mark.filterwarnings("ignore:django-anymail has dropped official support for SendGrid"),
]
SECRET = "tandem:webhook-secret"
AUTH = "Basic " + base64.b64encode(SECRET.encode()).decode()
EMAIL = "reader@example.com"
EVENTS = ["delivered", "hard_bounce", "soft_bounce", "complaint", "unsubscribe", "open", "click"]
CASES = [(esp, what) for esp in esp_payloads.ESPS for what in EVENTS if (esp, what) not in esp_payloads.UNSUPPORTED]


@pytest.fixture
def anymail_settings(settings):
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": [SECRET],
        "MAILGUN_WEBHOOK_SIGNING_KEY": esp_payloads.MAILGUN_SIGNING_KEY,
        "AMAZON_SES_SESSION_PARAMS": {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "not-a-secret"},
    }
    return settings


@pytest.fixture
def mailed(anymail_settings, no_send_policies):
    """One marketing email sent to EMAIL (into the outbox, carrying its delivery id as anymail would)."""
    customer = granted(CustomerFactory(email=EMAIL), "email")
    launch_and_send(sending_campaign(channels="email"))
    return Delivery.objects.get(customer_id=customer.pk)


def post(client, esp, what, delivery_id, n=1, auth=AUTH, **kwargs):
    path, body, content_type, headers = esp_payloads.ESPS[esp](what, EMAIL, delivery_id, n, **kwargs)
    if auth:
        headers = {**headers, "HTTP_AUTHORIZATION": auth}
    return client.post(path, body, content_type=content_type, **headers)


def email_state(delivery):
    return ConsentState.objects.get(customer_id=delivery.customer_id, channel="email").status


def suppression_reason():
    row = Suppression.objects.filter(channel="email", address_hmac=address_hmac("email", EMAIL)).first()
    return row.reason if row else None


def count(delivery, kind):
    row = FeedbackCount.objects.filter(cause_id=delivery.cause_id, channel="email", kind=kind).first()
    return row.count if row else 0


@pytest.mark.parametrize(("esp", "what"), CASES)
def test_each_esp_event_is_acted_on(client, mailed, esp, what):
    response = post(client, esp, what, mailed.pk)

    assert response.status_code == 200
    event = DeliveryEvent.objects.get()
    assert event.delivery_id == mailed.pk
    mailed.refresh_from_db()
    expected = {
        "delivered": lambda: mailed.provider_status == "delivered" and count(mailed, "delivered") == 1,
        "open": lambda: mailed.opened_at is not None and count(mailed, "opened") == 1,
        "click": lambda: mailed.clicked_at is not None and event.detail["click_host"] == "shop.example.com",
        "hard_bounce": lambda: suppression_reason() == "hard_bounce" and count(mailed, "bounced") == 1,
        "soft_bounce": lambda: suppression_reason() is None and event.kind in ("soft_bounced", "deferred"),
        "complaint": lambda: email_state(mailed) == "withdrawn" and suppression_reason() == "complaint",
        "unsubscribe": lambda: email_state(mailed) == "withdrawn"
        and suppression_reason() is None
        and ConsentEvidence.objects.filter(customer_id=mailed.customer_id, action="withdraw").get().method
        == "esp_unsubscribe",
    }[what]
    assert expected(), (what, event.kind, event.detail, mailed.provider_status)


@pytest.mark.parametrize(("esp", "what"), [case for case in CASES if case[1] in ("hard_bounce", "complaint", "open")])
def test_a_replayed_event_is_processed_once(client, mailed, esp, what):
    first = post(client, esp, what, mailed.pk)
    second = post(client, esp, what, mailed.pk)

    assert (first.status_code, second.status_code) == (200, 200)
    assert DeliveryEvent.objects.count() == 1
    assert ConsentEvidence.objects.filter(customer_id=mailed.customer_id, action="withdraw").count() == (
        1 if what == "complaint" else 0
    )
    kind = {"hard_bounce": "bounced", "complaint": "complained", "open": "opened"}[what]
    assert count(mailed, kind) == 1


@pytest.mark.parametrize("esp", list(esp_payloads.ESPS))
def test_a_complaint_withdraws_with_evidence_naming_the_delivery(client, mailed, esp):
    post(client, esp, "complaint", mailed.pk)

    entry = ConsentEvidence.objects.get(customer_id=mailed.customer_id, channel="email", action="withdraw")
    assert (entry.method, entry.source_reference) == ("complaint", f"delivery:{mailed.pk}")


@pytest.mark.parametrize("esp", list(esp_payloads.ESPS))
@pytest.mark.parametrize("auth", [None, "Basic " + base64.b64encode(b"tandem:wrong").decode()])
def test_without_the_secret_nothing_is_recorded(client, mailed, esp, auth):
    response = post(client, esp, "complaint", mailed.pk, auth=auth)

    assert response.status_code in (400, 401)
    assert not DeliveryEvent.objects.exists()
    assert email_state(mailed) == "granted"
    assert suppression_reason() is None


@pytest.mark.parametrize("esp", list(esp_payloads.ESPS))
def test_with_no_secret_configured_every_request_is_refused(client, mailed, settings, esp):
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}

    response = post(client, esp, "complaint", mailed.pk)

    assert response.status_code == 403
    assert not DeliveryEvent.objects.exists()


def test_a_mailgun_event_signed_with_another_key_is_refused(client, mailed):
    response = post(client, "mailgun", "complaint", mailed.pk, key="someone-else")

    assert response.status_code == 400
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("bad_id", ["1 OR 1=1", "abc", "-5", "", "٣", "99999999999999999999"])
def test_a_delivery_id_that_is_not_an_integer_matches_no_delivery(client, mailed, bad_id):
    post(client, "sendgrid", "hard_bounce", bad_id)

    assert DeliveryEvent.objects.get().delivery_id is None
    assert suppression_reason() == "hard_bounce"  # the address still bounced


def test_a_delivery_of_another_recipient_is_not_touched(client, mailed):
    other = granted(CustomerFactory(email="other@example.com"), "email")
    launch_and_send(sending_campaign(channels="email"))
    theirs = Delivery.objects.get(customer_id=other.pk)

    post(client, "postmark", "complaint", theirs.pk)

    assert DeliveryEvent.objects.get().delivery_id is None
    assert ConsentState.objects.get(customer=other, channel="email").status == "granted"
    assert email_state(mailed) == "withdrawn"  # found by the address that complained


def test_postmark_opens_without_an_event_id_are_keyed_by_their_fields(client, mailed):
    post(client, "postmark", "open", mailed.pk, n=1)
    post(client, "postmark", "open", mailed.pk, n=1)
    post(client, "postmark", "open", mailed.pk, n=2)

    assert DeliveryEvent.objects.filter(kind="opened").count() == 2
    assert count(mailed, "opened") == 1


def test_a_late_delivery_report_does_not_undo_a_bounce(client, mailed):
    post(client, "sendgrid", "hard_bounce", mailed.pk, n=1)
    post(client, "sendgrid", "delivered", mailed.pk, n=2)

    mailed.refresh_from_db()
    assert mailed.provider_status == "bounced"


def test_an_sns_subscription_confirmation_is_confirmed_through_boto(client, anymail_settings, http_stub):
    confirm = (
        '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ConfirmSubscriptionResult>'
        "<SubscriptionArn>arn:aws:sns:us-east-1:111111111111:SES_Tracking:2bcfbf39</SubscriptionArn>"
        "</ConfirmSubscriptionResult><ResponseMetadata><RequestId>075ecce8</RequestId></ResponseMetadata>"
        "</ConfirmSubscriptionResponse>"
    )
    http_stub.add("POST", r"^https://sns\.us-east-1\.amazonaws\.com", 200, confirm.encode())
    path, body, content_type, headers = esp_payloads.amazon_sns_subscription_confirmation(1)

    unsigned = client.post(path, body, content_type=content_type, **headers)
    response = client.post(path, body, content_type=content_type, HTTP_AUTHORIZATION=AUTH, **headers)

    assert unsigned.status_code == 401  # SNS sends the secret only when asked for it
    assert response.status_code == 200
    [seen] = http_stub.to("sns.us-east-1.amazonaws.com")
    assert b"ConfirmSubscription" in seen.body
    assert b"2336412f37-confirmation-token" in seen.body
    assert not DeliveryEvent.objects.exists()


def test_a_complaint_webhook_takes_a_bounded_number_of_queries(client, mailed, django_assert_max_num_queries):
    with django_assert_max_num_queries(25):
        post(client, "sendgrid", "complaint", mailed.pk)
