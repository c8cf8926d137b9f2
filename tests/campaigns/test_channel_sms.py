"""SMS through twilio's real Client; only HTTP is stubbed."""

import pytest
from twilio.rest import Client

from campaigns.channels.registry import channel_get
from campaigns.composer import RenderedSms
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError
from campaigns.sms import sms_count

ACCOUNT = "AC" + "0" * 32
MESSAGES_URL = rf"^https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT}/Messages\.json$"
BODY = "Tandem Stores: 20% off. Reply STOP to opt out"


def created(seen):
    form = seen.form()
    return 201, {"sid": "SM" + "1" * 32, "status": "queued", "to": form["To"][0], "body": form["Body"][0]}


@pytest.fixture
def twilio(settings, http_stub):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_FROM_NUMBER = "+14155550100"
    http_stub.add("POST", MESSAGES_URL, answer=created)
    return http_stub


def build(backend, body=BODY):
    return backend.build_payload(
        rendered=RenderedSms(body=body, count=sms_count(body)), to="+14155550123", metadata={}, links={}
    )


def test_a_text_goes_out_from_the_configured_number(twilio):
    backend = channel_get("sms")
    result = backend.send(build(backend))
    [seen] = twilio.seen
    form = seen.form()
    assert (form["To"], form["From"], form["Body"]) == (["+14155550123"], ["+14155550100"], [BODY])
    assert "MessagingServiceSid" not in form
    assert seen.headers["Authorization"].startswith("Basic ")
    assert result.provider_id == "SM" + "1" * 32


def test_the_messaging_service_wins_when_both_are_set(twilio, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "2" * 32
    backend = channel_get("sms")
    backend.send(build(backend))
    form = twilio.seen[-1].form()
    assert form["MessagingServiceSid"] == ["MG" + "2" * 32]
    assert "From" not in form


@pytest.mark.parametrize(("sid", "token"), [("", ""), (ACCOUNT, ""), ("", "test-token")])
def test_without_credentials_nothing_is_posted(twilio, settings, sid, token):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = sid, token
    backend = channel_get("sms")
    with pytest.raises(ChannelNotConfiguredError):
        backend.send(build(backend))
    assert twilio.seen == []


def test_without_a_sender_nothing_is_posted(twilio, settings):
    settings.TWILIO_FROM_NUMBER = ""
    backend = channel_get("sms")
    with pytest.raises(ChannelNotConfiguredError):
        backend.send(build(backend))
    assert twilio.seen == []


@pytest.mark.parametrize(
    ("status", "code", "kind", "opted_out"),
    [
        (400, 21610, PermanentChannelError, True),  # opted out at the carrier
        (400, 21211, PermanentChannelError, False),  # invalid number
        (429, 20429, TransientChannelError, False),
        (503, 20503, TransientChannelError, False),
        (500, None, TransientChannelError, False),
    ],
)
def test_twilio_errors_are_classified(twilio, status, code, kind, opted_out):
    twilio.add("POST", MESSAGES_URL, status, {"code": code, "message": "refused", "more_info": "", "status": status})
    backend = channel_get("sms", client=Client(ACCOUNT, "test-token"))
    with pytest.raises(kind) as caught:
        backend.send(build(backend))
    assert getattr(caught.value, "opted_out", False) is opted_out
    assert len(twilio.seen) == 1


def test_several_texts_go_through_one_client_and_each_gets_its_outcome(twilio):
    def answer(seen):
        if seen.form()["To"] == ["+14155550999"]:
            return 400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
        return created(seen)

    twilio.add("POST", MESSAGES_URL, answer=answer)
    backend = channel_get("sms")
    payloads = [
        backend.build_payload(rendered=RenderedSms(body=BODY, count=sms_count(BODY)), to=to, metadata={}, links={})
        for to in ("+14155550123", "+14155550999", "+14155550124")
    ]

    outcomes = backend.send_many(payloads)

    assert [type(outcome).__name__ for outcome in outcomes] == ["SendResult", "PermanentChannelError", "SendResult"]
    assert outcomes[1].opted_out is True
    assert len(twilio.seen) == 3


def test_a_429_carries_twilios_retry_after_and_is_marked_throttled(twilio):
    twilio.add(
        "POST",
        MESSAGES_URL,
        answer=lambda seen: (429, {"code": 20429, "message": "Too many", "status": 429}, {"Retry-After": "30"}),
    )
    backend = channel_get("sms")

    with pytest.raises(TransientChannelError) as caught:
        backend.send(build(backend))

    assert (caught.value.retry_after, caught.value.throttled) == (30.0, True)


def test_a_5xx_is_transient_but_not_throttled(twilio):
    twilio.add("POST", MESSAGES_URL, 503, {"code": 20503, "message": "unavailable", "status": 503})
    backend = channel_get("sms")

    with pytest.raises(TransientChannelError) as caught:
        backend.send(build(backend))

    assert (caught.value.retry_after, caught.value.throttled) == (None, False)


def test_a_sender_has_its_own_rate_bucket_and_a_text_costs_its_segments(twilio, settings):
    backend = channel_get("sms")
    long_body = "Tandem Stores: " + "spring sale on now, " * 12

    assert backend.rate_limit_key(build(backend)) == "twilio:+14155550100"
    assert backend.rate_cost(build(backend)) == 1
    assert backend.rate_cost(build(backend, long_body)) == sms_count(long_body).segments > 1
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32
    assert backend.rate_limit_key(build(backend)) == "twilio:MG" + "1" * 32
