"""Every mail the product sends, through anymail's real SendGrid, Mailgun, Postmark and SES backends.

Only HTTP is stubbed (tests.http_stub): the backends build, sign and parse as in production, so a mail
an ESP would refuse (Postmark and a second tag) fails here too.
"""

import pytest

from campaigns.channels.registry import channel_get
from campaigns.composer import RenderedEmail
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError
from campaigns.services.messages import variant_test_send
from customers.models import ConsentConfirmation
from customers.services.confirmation import consent_confirmation_send
from tests.campaigns.esp import ESPS
from tests.factories import CustomerFactory, UserFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory

pytestmark = pytest.mark.django_db

RENDERED = RenderedEmail(subject="Spring", preheader="", html="<p>Hi</p>", text="Hi")
LINKS = {"unsubscribe_url": "https://tandem.example/m/u/tok", "preferences_url": "https://tandem.example/m/p/tok"}


@pytest.fixture(params=sorted(ESPS))
def esp(request, settings, http_stub):
    esp = ESPS[request.param]
    esp.configure(settings, http_stub)
    return esp


def test_marketing_test_send_goes_out_through_each_esp_with_campaign_tags(esp, http_stub, settings):
    settings.MARKETING_SES_CONFIGURATION_SET = "tandem-marketing"
    campaign = CampaignFactory()
    variant = EmailVariantFactory(message=campaign.message)

    variant_test_send(variant=variant, user=UserFactory(email="me@staff.example.com"), campaign=campaign)

    [seen] = http_stub.to("/")
    sent = esp.read(seen)
    assert sent.headers["List-Unsubscribe"].startswith(f"<{settings.PUBLIC_BASE_URL}/m/")
    assert sent.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.metadata["campaign_id"] == str(campaign.pk)
    assert sent.metadata["test_send"] == "1"
    if esp.name == "Postmark":
        assert sent.tags == ["test-send"]  # Postmark takes one tag
        assert sent.stream == "broadcast"
    else:
        assert sent.tags == ["test-send", f"campaign-{campaign.pk}", "marketing"]
    if esp.name == "Amazon SES":
        assert sent.configuration_set == "tandem-marketing"


def test_campaign_mail_built_by_the_channel_carries_the_campaign_tag(esp, http_stub, settings):
    settings.MARKETING_POSTMARK_STREAM = "spring-broadcasts"
    backend = channel_get("email")
    payload = backend.build_payload(
        rendered=RENDERED, to="ana@example.com", metadata={"campaign_id": 7, "delivery_id": 99}, links=LINKS
    )

    result = backend.send(payload)

    sent = esp.read(http_stub.seen[-1])
    assert sent.tags[0] == "campaign-7"
    assert sent.tags == (["campaign-7"] if esp.name == "Postmark" else ["campaign-7", "marketing"])
    assert sent.metadata["delivery_id"] == "99"
    assert sent.headers["List-Unsubscribe"] == "<https://tandem.example/m/u/tok>"
    assert sent.stream == ("spring-broadcasts" if esp.name == "Postmark" else None)
    assert sent.configuration_set is None  # none configured: the account's default applies
    assert result.provider_id


def test_ses_with_a_message_tag_name_gets_one_tag(settings, http_stub):
    ESPS["ses"].configure(settings, http_stub)
    settings.ANYMAIL["AMAZON_SES_MESSAGE_TAG_NAME"] = "campaign"
    backend = channel_get("email")

    payload = backend.build_payload(rendered=RENDERED, to="ana@example.com", metadata={"campaign_id": 7}, links=LINKS)
    backend.send(payload)

    body = http_stub.seen[-1].json()
    assert body["EmailTags"] == [{"Name": "campaign", "Value": "campaign-7"}]


def test_several_payloads_share_one_connection_and_each_gets_its_outcome(settings, http_stub, monkeypatch):
    import requests

    esp = ESPS["postmark"]
    esp.configure(settings, http_stub)
    sessions = []
    session_init = requests.Session.__init__

    def counting_init(self, *args, **kwargs):
        sessions.append(self)
        session_init(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "__init__", counting_init)

    def answer(seen):
        if seen.json()["To"] == "gone@example.com":
            message = (
                "You tried to send to recipient(s) that have been marked as inactive.\n"
                "Found inactive addresses: gone@example.com.\n"
                "Inactive recipients are ones that have generated a hard bounce or a spam complaint. "
            )
            return 422, {"ErrorCode": 406, "Message": message}
        return esp.ok(seen)

    http_stub.add("POST", esp.url, answer=answer)
    backend = channel_get("email")
    payloads = [
        backend.build_payload(rendered=RENDERED, to=to, metadata={"delivery_id": n}, links=LINKS)
        for n, to in enumerate(["ana@example.com", "gone@example.com", "bo@example.com"])
    ]

    outcomes = backend.send_many(payloads)

    assert [type(outcome).__name__ for outcome in outcomes] == ["SendResult", "PermanentChannelError", "SendResult"]
    assert len(http_stub.seen) == 3
    assert len(sessions) == 1  # one HTTP session (keep-alive) for the chunk


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"ErrorCode": 0, "Message": "Internal error"}, TransientChannelError),
        (429, {"ErrorCode": 0, "Message": "Rate limit exceeded"}, TransientChannelError),
        (422, {"ErrorCode": 300, "Message": "Invalid email request"}, PermanentChannelError),
        (401, {"ErrorCode": 10, "Message": "Bad or missing Server API token"}, PermanentChannelError),
    ],
)
def test_postmark_errors_are_classified(settings, http_stub, status, body, expected):
    ESPS["postmark"].configure(settings, http_stub)
    http_stub.add("POST", ESPS["postmark"].url, status, body)
    backend = channel_get("email")
    with pytest.raises(expected):
        backend.send(backend.build_payload(rendered=RENDERED, to="ana@example.com", metadata={}, links=LINKS))


def test_ses_throttling_is_transient(settings, http_stub):
    ESPS["ses"].configure(settings, http_stub)
    throttled = {"__type": "TooManyRequestsException", "message": "Maximum sending rate exceeded."}
    http_stub.add("POST", ESPS["ses"].url, 429, throttled)
    backend = channel_get("email")
    with pytest.raises(TransientChannelError):
        backend.send(backend.build_payload(rendered=RENDERED, to="ana@example.com", metadata={}, links=LINKS))


def test_an_esp_without_credentials_is_a_configuration_error(settings, http_stub):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {}
    backend = channel_get("email")
    with pytest.raises(ChannelNotConfiguredError):
        backend.send(backend.build_payload(rendered=RENDERED, to="ana@example.com", metadata={}, links=LINKS))
    assert http_stub.seen == []


@pytest.fixture
def pending(store, clerk, disclosures):
    from customers.models import ConsentMethod
    from customers.services import consent_grant
    from customers.services.consent import Evidence

    customer = CustomerFactory(email="ana@example.com", first_name="Ana")
    evidence = Evidence(method=ConsentMethod.CHECKOUT, store=store, collected_by=clerk, disclosure=disclosures["email"])
    grant = consent_grant(customer=customer, channel="email", evidence=evidence)
    return grant.confirmation


def test_double_opt_in_mail_goes_out_through_each_esp(esp, http_stub, pending, settings):
    settings.MARKETING_SES_CONFIGURATION_SET = "tandem-marketing"

    assert consent_confirmation_send(confirmation_id=pending.pk) is True

    pending.refresh_from_db()
    assert pending.status == ConsentConfirmation.Status.SENT
    [seen] = http_stub.seen
    sent = esp.read(seen)
    assert sent.tags == ["double-opt-in"]
    assert sent.metadata == {"consent_confirmation_id": str(pending.pk)}
    # Transactional: the default stream and configuration set, never the marketing ones.
    assert sent.stream is None
    assert sent.configuration_set is None
    assert "List-Unsubscribe" not in sent.headers


def test_a_test_send_of_html_that_would_hide_the_footer_is_refused_before_any_request(settings, http_stub):
    from campaigns.exceptions import CampaignError

    ESPS["postmark"].configure(settings, http_stub)
    variant = EmailVariantFactory()
    type(variant).objects.filter(pk=variant.pk).update(html_body="<p>Hi</p><title>Spring")
    variant.refresh_from_db()
    with pytest.raises(CampaignError, match="footer"):
        variant_test_send(variant=variant, user=UserFactory(email="me@staff.example.com"))
    assert http_stub.seen == []
