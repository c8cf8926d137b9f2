"""A chunk's emails of one variant leave in one ESP request where the ESP fills in each recipient's values.

Through anymail's real SendGrid and Mailgun backends, only HTTP answered: the request is read back and
each recipient's values are put into its content as the ESP would, and the result must be, byte for byte,
the email rendered for that recipient alone.
"""

from __future__ import annotations

import json
from email.utils import parseaddr

import pytest
from django.utils import timezone

from campaigns.channels.email_batch import EspMerge, merge_form, recipient_merge
from campaigns.channels.registry import channel_get
from campaigns.composer import variant_compiled
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.exceptions import TransientChannelError
from campaigns.models import Delivery, Variant
from campaigns.rendering import placeholder_context
from tests.campaigns.delivery.conftest import granted
from tests.campaigns.esp import ESPS, _form_fields
from tests.factories import CustomerFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status

NAMES = ["Ann", 'Bo "the boss" <b>', "Cé & Dee", "O'Brien", "  spaced  out ", ""]


def _variant(**fields) -> Variant:
    defaults = {
        "subject": "Hello {{ first_name }}, {{ coupon_code }}",
        "preheader": "Spring at {{ store_name }}",
        "html_body": '<h1 style="color:#333">Hi {{ first_name }}</h1><p>Code {{ coupon_code }}.</p>'
        '<p><a href="{{ unsubscribe_url }}">leave</a></p>',
    }
    return EmailVariantFactory(**{**defaults, **fields})


def _payloads(backend, variant, names, *, links=None):
    """One payload per name as a chunk builds them: rendered alone, then offered to a batch."""
    compiled = variant_compiled(variant)
    payloads = []
    for n, name in enumerate(names):
        customer = CustomerFactory.build(first_name=name, email=f"c{n}@example.com")
        row_links = links or {"unsubscribe_url": f"https://t.example/u/{n}?a=1&b=2", "preferences_url": "https://p"}
        context = placeholder_context(customer=customer, links=row_links, extra={"coupon_code": f"CODE-{n}"})
        rendered = compiled.render(context)
        payload = backend.build_payload(
            rendered=rendered, to=customer.email, metadata={"delivery_id": 100 + n, "campaign_id": 7}, links=row_links
        )
        backend.batch_prepare(payload, compiled=compiled, context=context, rendered=rendered)
        payload.rendered = rendered
        payloads.append(payload)
    return payloads


def _sendgrid_emails(seen) -> dict[str, dict]:
    """Each recipient's subject, HTML, text, headers and custom args, substituted as SendGrid does."""
    data = seen.json()
    content = {part["type"]: part["value"] for part in data["content"]}
    emails = {}
    for personalization in data["personalizations"]:
        [to] = personalization["to"]
        subject, html, text = data["subject"], content["text/html"], content["text/plain"]
        for key, value in personalization.get("substitutions", {}).items():
            subject, html, text = subject.replace(key, value), html.replace(key, value), text.replace(key, value)
        emails[to["email"]] = {
            "subject": subject,
            "html": html,
            "text": text,
            "headers": {**data.get("headers", {}), **personalization.get("headers", {})},
            "custom_args": personalization.get("custom_args", {}),
        }
    return emails


def _mailgun_emails(seen) -> dict[str, dict]:
    fields = _form_fields(seen)
    variables = json.loads(dict(fields)["recipient-variables"])
    single = {name: value for name, value in fields if name in ("subject", "html", "text") or name.startswith("h:")}
    emails = {}
    for _name, to in ((name, value) for name, value in fields if name == "to"):
        address = parseaddr(to)[1]
        own = dict(single)
        for key, value in variables[address].items():
            for part in own:
                own[part] = own[part].replace(f"%recipient.{key}%", value)
        emails[address] = {**own, "variables": variables[address]}
    return emails


@pytest.fixture
def sendgrid(settings, http_stub):
    ESPS["sendgrid"].configure(settings, http_stub)
    return http_stub


@pytest.mark.parametrize("esp", ["sendgrid", "mailgun"])
def test_one_request_carries_every_recipient_and_each_gets_exactly_their_own_email(esp, settings, http_stub):
    ESPS[esp].configure(settings, http_stub)
    backend = channel_get("email")
    payloads = _payloads(backend, _variant(), NAMES)
    assert all(payload.tandem_merge is not None for payload in payloads[:4])
    assert payloads[4].tandem_merge is None  # the subject folds the name's spaces: the form cannot say so

    outcomes = backend.send_many(payloads)

    assert len(http_stub.seen) == 2  # five together, the fifth alone
    assert all(not isinstance(outcome, Exception) for outcome in outcomes)
    emails = (_sendgrid_emails if esp == "sendgrid" else _mailgun_emails)(http_stub.seen[0])
    batched = [payload for payload in payloads if payload.tandem_merge is not None]
    assert len(batched) == 5
    assert set(emails) == {payload.to[0] for payload in batched}
    for payload in batched:
        email = emails[payload.to[0]]
        assert email["subject"] == payload.rendered.subject
        assert email["html"] == payload.rendered.html  # escaped exactly as the template escapes
        assert email["text"] == payload.rendered.text
        if esp == "sendgrid":
            assert email["headers"]["List-Unsubscribe"] == payload.extra_headers["List-Unsubscribe"]
            assert email["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert email["custom_args"]["delivery_id"] == str(payload.metadata["delivery_id"])
        else:
            # Mailgun fills recipient variables into headers too: the text part's link field serves both.
            assert email["h:List-Unsubscribe"] == payload.extra_headers["List-Unsubscribe"]
            assert "h:List-Unsubscribe" not in email["variables"]
            assert email["variables"]["v:delivery_id"] == str(payload.metadata["delivery_id"])
    if esp == "sendgrid":
        # What everyone shares (the brand, the campaign) is written once, not per recipient.
        personalizations = http_stub.seen[0].json()["personalizations"]
        assert not [key for p in personalizations for key in p["substitutions"] if "brand_name" in key]
        assert all(set(p["custom_args"]) == {"delivery_id", "anymail_id"} for p in personalizations)
        assert http_stub.seen[0].json()["custom_args"] == {"campaign_id": "7"}
    if esp == "sendgrid":  # anymail gives each recipient its own message id
        ids = [outcome.provider_id for outcome in outcomes]
        assert len(set(ids)) == len(ids)
        assert all(ids)


def test_a_recipient_whose_email_is_not_the_form_filled_in_leaves_alone(sendgrid):
    backend = channel_get("email")
    variant = _variant(html_body="<p>Hi {{ first_name }}{% if first_name == 'Ann' %}, our VIP{% endif %}</p>")
    payloads = _payloads(backend, variant, ["Ann", "Bob", "Cy"])

    assert [payload.tandem_merge is None for payload in payloads] == [True, False, False]
    outcomes = backend.send_many(payloads)

    assert len(sendgrid.seen) == 2  # Bob and Cy together, Ann alone
    assert all(not isinstance(outcome, Exception) for outcome in outcomes)
    alone = [seen for seen in sendgrid.seen if len(seen.json()["personalizations"]) == 1]
    [content] = [part["value"] for part in alone[0].json()["content"] if part["type"] == "text/html"]
    assert "Hi Ann, our VIP" in content


def test_text_that_the_esp_would_substitute_never_goes_in_a_batch(sendgrid):
    backend = channel_get("email")
    payloads = _payloads(backend, _variant(), ["Ann", "-tandem_t_coupon_code-", "Cy"])

    assert payloads[1].tandem_merge is None
    backend.send_many(payloads)

    assert sorted(len(seen.json()["personalizations"]) for seen in sendgrid.seen) == [1, 2]


def test_one_address_twice_goes_in_two_requests(sendgrid):
    backend = channel_get("email")
    payloads = _payloads(backend, _variant(), ["Ann", "Bob", "Cy"])
    payloads[2].to = ["C0@Example.com"]  # the first one's address, cased differently

    outcomes = backend.send_many(payloads)

    assert all(not isinstance(outcome, Exception) for outcome in outcomes)
    assert sorted(len(seen.json()["personalizations"]) for seen in sendgrid.seen) == [1, 2]


def test_a_batch_the_esp_fails_with_a_5xx_is_each_recipients_transient_error(sendgrid):
    sendgrid.add("POST", ESPS["sendgrid"].url, 500, {"errors": [{"message": "down"}]})
    backend = channel_get("email")

    outcomes = backend.send_many(_payloads(backend, _variant(), ["Ann", "Bob", "Cy"]))

    assert len(sendgrid.seen) == 1  # it may have been taken: retried later as a whole, never split now
    assert [type(outcome) for outcome in outcomes] == [TransientChannelError] * 3


def test_a_batch_refused_as_a_whole_goes_one_by_one_so_only_a_bad_email_fails(sendgrid):
    def answer(seen):
        personalizations = seen.json()["personalizations"]
        if len(personalizations) > 1:
            return 400, {"errors": [{"message": "one of the recipients is invalid"}]}
        if personalizations[0]["to"][0]["email"] == "c1@example.com":
            return 400, {"errors": [{"message": "invalid email"}]}
        return 202, None

    sendgrid.add("POST", ESPS["sendgrid"].url, answer=answer)
    backend = channel_get("email")

    outcomes = backend.send_many(_payloads(backend, _variant(), ["Ann", "Bob", "Cy"]))

    assert len(sendgrid.seen) == 4  # the refused batch, then each alone
    assert [type(outcome).__name__ for outcome in outcomes] == ["SendResult", "PermanentChannelError", "SendResult"]


def test_a_batch_that_cannot_be_built_costs_no_email(sendgrid, monkeypatch):
    from campaigns.channels import email_batch

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(email_batch, "batch_message", broken)
    backend = channel_get("email")

    outcomes = backend.send_many(_payloads(backend, _variant(), ["Ann", "Bob"]))

    assert len(sendgrid.seen) == 2
    assert all(not isinstance(outcome, Exception) for outcome in outcomes)


def test_postmark_and_a_switched_off_batch_send_one_request_per_email(settings, http_stub):
    ESPS["postmark"].configure(settings, http_stub)
    backend = channel_get("email")
    backend.send_many(_payloads(backend, _variant(), ["Ann", "Bob"]))
    assert len(http_stub.seen) == 2

    ESPS["sendgrid"].configure(settings, http_stub)
    settings.DELIVERY_EMAIL_BATCH = False
    backend = channel_get("email")
    backend.send_many(_payloads(backend, _variant(), ["Ann", "Bob"]))
    assert len(http_stub.to("sendgrid")) == 2


def test_a_form_marks_every_bare_placeholder_and_a_filtered_one_makes_recipients_go_alone():
    variant = _variant(subject="{{ first_name|upper }} hello")
    form = merge_form(variant_compiled(variant))
    context = placeholder_context(customer=CustomerFactory.build(first_name="ann"), links={}, extra={})
    rendered = variant_compiled(variant).render(context)
    style = EspMerge("-{}-", True, ("tandem_h_",), 1000)

    assert {"first_name", "coupon_code", "unsubscribe_url"} <= form.html_names
    assert form.subject == ("TANDEMMERGE9FIRST_NAME9 hello",)  # the filter changed the marker: no field
    assert recipient_merge(form, context=context, rendered=rendered, reserved=style.reserved) is None
    assert recipient_merge(None, context=context, rendered=rendered, reserved=()) is None


def test_a_campaign_chunk_sends_its_emails_in_one_request_and_records_each(
    sendgrid, settings, django_assert_max_num_queries
):
    settings.DELIVERY_OUTBOX_CHANNELS = []
    settings.DELIVERY_RATE_LIMITS = {"email:sendgrid": {"rate": 1000, "burst": 1000}}
    customers = [granted(CustomerFactory(first_name=name), "email") for name in ("Ann", "Bob", "Cé", "Dee", "Eve")]
    campaign = CampaignFactory(channels="email", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    campaign.status = "scheduled"
    campaign.save()
    ranges = campaign_launch(campaign=campaign).ranges

    with django_assert_max_num_queries(30):
        result = delivery_chunk_send(
            cause_type="campaign",
            cause_id=campaign.pk,
            first_id=ranges[0][0],
            last_id=ranges[-1][1],
            now=timezone.now(),
        )

    assert result.statuses == {S.SENT: len(customers)}
    [request] = sendgrid.seen
    emails = _sendgrid_emails(request)
    deliveries = Delivery.objects.filter(cause_id=campaign.pk)
    assert {d.address for d in deliveries} == set(emails)
    for delivery in deliveries:
        assert emails[delivery.address]["custom_args"]["delivery_id"] == str(delivery.pk)
        assert delivery.customer.first_name in emails[delivery.address]["html"]
        assert delivery.provider_message_id
    assert len({d.provider_message_id for d in deliveries}) == len(customers)
