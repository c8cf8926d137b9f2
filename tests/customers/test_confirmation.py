"""Email double opt-in: the signed link, the confirm page and the mail that carries it."""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from customers.exceptions import InvalidToken
from customers.models import ConsentConfirmation, ConsentEvidence, ConsentMethod, ConsentState, ConsentStatus
from customers.selectors import customer_is_reachable
from customers.services import consent_grant, consent_withdraw
from customers.services.confirmation import MAX_ATTEMPTS, consent_confirmation_send
from customers.services.consent import CONFIRM_PURPOSE, Evidence, confirmation_token_make, consent_confirm
from customers.tasks import consent_confirmation_send_task, consent_confirmations_sweep_task
from customers.tokens import token_make
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def checkout_grant(customer, store, clerk, disclosure):
    return consent_grant(
        customer=customer,
        channel="email",
        evidence=Evidence(method=ConsentMethod.CHECKOUT, store=store, collected_by=clerk, disclosure=disclosure),
    )


@pytest.fixture
def pending(store, clerk, disclosures):
    customer = CustomerFactory(email="ana@example.com", first_name="Ana")
    grant = checkout_grant(customer, store, clerk, disclosures["email"])
    return grant.confirmation


def assert_still_pending(confirmation):
    state = ConsentState.objects.get(customer=confirmation.customer, channel="email")
    assert state.status == ConsentStatus.PENDING
    assert not ConsentEvidence.objects.filter(customer=confirmation.customer, action="confirm").exists()
    confirmation.refresh_from_db()
    assert confirmation.status != ConsentConfirmation.Status.CONFIRMED
    assert not customer_is_reachable(customer=confirmation.customer, channel="email")


def test_a_checkout_grant_is_pending_until_confirmed(pending):
    assert_still_pending(pending)
    consent_confirm(token=confirmation_token_make(pending), ip_address="203.0.113.9", user_agent="Phone")
    assert customer_is_reachable(customer=pending.customer, channel="email")
    entry = ConsentEvidence.objects.get(customer=pending.customer, action="confirm")
    assert entry.method == ConsentMethod.EMAIL_CONFIRMATION
    assert (entry.ip_address, entry.user_agent) == ("203.0.113.9", "Phone")
    assert entry.source_reference == f"grant:{pending.grant_id}"


def _tampered(token):
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "make_bad_token",
    [
        pytest.param(_tampered, id="tampered-signature"),
        pytest.param(lambda t: "x" + t[1:], id="tampered-payload"),
        pytest.param(lambda t: t[: len(t) // 2], id="truncated"),
        pytest.param(lambda t: t.rsplit(":", 1)[0], id="signature-cut-off"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "a" * 2000, id="huge"),
    ],
)
def test_bad_tokens_fail_and_change_nothing(pending, make_bad_token):
    with pytest.raises(InvalidToken):
        consent_confirm(token=make_bad_token(confirmation_token_make(pending)))
    assert_still_pending(pending)


def test_a_token_made_for_another_purpose_with_the_same_payload_fails(pending):
    payload = {"c": str(pending.customer.public_id), "g": pending.grant_id}
    assert token_make(purpose=CONFIRM_PURPOSE, payload=payload) == confirmation_token_make(pending)
    for purpose in ("unsubscribe", "preferences", "consent-confirm2"):
        with pytest.raises(InvalidToken):
            consent_confirm(token=token_make(purpose=purpose, payload=payload))
    assert_still_pending(pending)


def test_an_expired_link_fails(pending):
    token = confirmation_token_make(pending)
    max_age = timedelta(days=settings.TANDEM["CONFIRMATION_LINK_MAX_AGE_DAYS"])
    with (
        time_machine.travel(timezone.now() + max_age + timedelta(minutes=1), tick=False),
        pytest.raises(InvalidToken, match="expired"),
    ):
        consent_confirm(token=token)
    assert_still_pending(pending)
    with time_machine.travel(timezone.now() + max_age - timedelta(minutes=1), tick=False):
        consent_confirm(token=token)
    assert customer_is_reachable(customer=pending.customer, channel="email")


def test_a_link_whose_grant_was_withdrawn_afterwards_fails(pending):
    consent_withdraw(customer=pending.customer, channel="email", evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    with pytest.raises(InvalidToken):
        consent_confirm(token=confirmation_token_make(pending))
    state = ConsentState.objects.get(customer=pending.customer, channel="email")
    assert state.status == ConsentStatus.WITHDRAWN
    assert not ConsentEvidence.objects.filter(action="confirm").exists()


def _new_address_grant(pending, store, clerk, disclosures):
    from customers.models import Customer

    Customer.objects.filter(pk=pending.customer_id).update(email="ana.new@example.com")
    return checkout_grant(Customer.objects.get(pk=pending.customer_id), store, clerk, disclosures["email"])


def test_a_link_superseded_by_a_grant_for_a_new_address_fails_and_the_newest_works(
    pending, store, clerk, disclosures
):
    newer = _new_address_grant(pending, store, clerk, disclosures).confirmation
    with pytest.raises(InvalidToken):
        consent_confirm(token=confirmation_token_make(pending))
    consent_confirm(token=confirmation_token_make(newer))
    assert customer_is_reachable(customer=pending.customer, channel="email")


def test_confirming_twice_is_a_no_op(pending):
    token = confirmation_token_make(pending)
    consent_confirm(token=token)
    consent_confirm(token=token)
    assert ConsentEvidence.objects.filter(customer=pending.customer, action="confirm").count() == 1
    assert ConsentState.objects.get(customer=pending.customer, channel="email").status == ConsentStatus.GRANTED


# --- the public page ------------------------------------------------------------------------------


def test_get_of_the_confirm_page_never_confirms_post_does(client, pending):
    url = f"/c/confirm/{confirmation_token_make(pending)}/"
    for _ in range(3):  # a mail scanner may fetch the link several times
        response = client.get(url)
        assert response.status_code == 200
        assert b"Yes, subscribe me" in response.content
    assert_still_pending(pending)

    response = client.post(url, HTTP_USER_AGENT="Mobile Safari")
    assert response.status_code == 200
    assert b"Your subscription is confirmed" in response.content
    entry = ConsentEvidence.objects.get(customer=pending.customer, action="confirm")
    assert entry.user_agent == "Mobile Safari"
    assert entry.url.endswith(url)


@pytest.mark.parametrize("token", ["nonsense", "eyJjIjoiMSJ9:1abc:xyz", "a" * 900])
def test_every_bad_link_gets_the_same_generic_page(client, pending, token):
    response = client.post(f"/c/confirm/{token}/")
    assert response.status_code == 400
    assert b"This link is not valid" in response.content
    assert_still_pending(pending)


def test_the_confirm_page_escapes_the_first_name(client, store, clerk, disclosures):
    customer = CustomerFactory(first_name="<script>alert(1)</script>")
    confirmation = checkout_grant(customer, store, clerk, disclosures["email"]).confirmation
    response = client.post(f"/c/confirm/{confirmation_token_make(confirmation)}/")
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;" in response.content


# --- the mail -------------------------------------------------------------------------------------


def test_the_confirmation_mail_is_sent_once_after_commit_from_the_transactional_address(
    client, celery_eager, django_capture_on_commit_callbacks, store, clerk, disclosures
):
    customer = CustomerFactory(email="Ana.Lopez@example.com", first_name="Ana")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        grant = checkout_grant(customer, store, clerk, disclosures["email"])
        assert mail.outbox == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    # The broker delivers the task a second time: nothing more is sent.
    consent_confirmation_send_task.delay(grant.confirmation.pk)
    consent_confirmation_send_task(grant.confirmation.pk)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.from_email == settings.TRANSACTIONAL_FROM_EMAIL
    assert message.from_email != settings.MARKETING_FROM_EMAIL
    assert message.to == ["Ana.Lopez@example.com"]
    assert "List-Unsubscribe" not in message.extra_headers  # transactional, not marketing
    grant.confirmation.refresh_from_db()
    assert grant.confirmation.status == ConsentConfirmation.Status.SENT
    assert grant.confirmation.attempts == 1

    link = next(line for line in message.body.splitlines() if "/c/confirm/" in line).strip()
    path = link.removeprefix(settings.PUBLIC_BASE_URL)
    assert client.post(path).status_code == 200
    assert customer_is_reachable(customer=customer, channel="email")


def test_the_on_commit_callback_sends_it(celery_eager, django_capture_on_commit_callbacks, store, clerk, disclosures):
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        grant = checkout_grant(customer, store, clerk, disclosures["email"])
    assert len(callbacks) == 1
    # The task is delivered twice (at-least-once broker): the second copy claims nothing.
    with django_capture_on_commit_callbacks(execute=True):
        consent_confirmation_send_task.delay(grant.confirmation.pk)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [customer.email]


def test_the_sweeper_re_drives_a_lost_confirmation(celery_eager, pending):
    # The task was never published (the process died after commit).
    consent_confirmations_sweep_task()
    assert mail.outbox == []  # too fresh: its task may still be on its way

    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        consent_confirmations_sweep_task()
        consent_confirmations_sweep_task()
    assert len(mail.outbox) == 1
    pending.refresh_from_db()
    assert pending.status == ConsentConfirmation.Status.SENT


def test_the_sweeper_re_drives_one_stuck_in_sending_past_its_lease(celery_eager, pending):
    ConsentConfirmation.objects.filter(pk=pending.pk).update(
        status=ConsentConfirmation.Status.SENDING, attempts=1, claimed_at=timezone.now()
    )
    consent_confirmations_sweep_task()
    assert mail.outbox == []  # still within its lease: a worker may be sending it right now
    with time_machine.travel(timezone.now() + timedelta(minutes=15), tick=False):
        consent_confirmations_sweep_task()
    assert len(mail.outbox) == 1


def test_a_failing_provider_is_retried_then_given_up(pending):
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=ConnectionError("ESP down")):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert consent_confirmation_send(confirmation_id=pending.pk) is False
            pending.refresh_from_db()
            assert pending.attempts == attempt
    assert pending.status == ConsentConfirmation.Status.FAILED
    assert "ESP down" in pending.last_error
    assert mail.outbox == []


def test_the_link_of_a_profile_merged_away_fails(pending):
    from customers.services import customer_merge
    from tests.factories import MarketingUserFactory

    survivor = CustomerFactory()
    customer_merge(survivor=survivor, other=pending.customer, user=MarketingUserFactory())
    with pytest.raises(InvalidToken):
        consent_confirm(token=confirmation_token_make(pending))
    assert not ConsentEvidence.objects.filter(action="confirm").exists()


def test_the_link_of_an_erased_person_fails(pending):
    from customers.services import customer_erase

    token = confirmation_token_make(pending)
    customer_erase(customer=pending.customer, user=None)
    with pytest.raises(InvalidToken):
        consent_confirm(token=token)
    assert not ConsentEvidence.objects.filter(action="confirm").exists()


def test_no_confirmation_mail_after_the_customer_withdrew(celery_eager, pending):
    consent_withdraw(customer=pending.customer, channel="email", evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    assert consent_confirmation_send(confirmation_id=pending.pk) is False
    assert mail.outbox == []
    pending.refresh_from_db()
    assert pending.status == ConsentConfirmation.Status.FAILED


def test_only_the_newest_of_two_pending_grants_is_mailed(celery_eager, pending, store, clerk, disclosures):
    newer = _new_address_grant(pending, store, clerk, disclosures).confirmation
    assert consent_confirmation_send(confirmation_id=pending.pk) is False
    assert consent_confirmation_send(confirmation_id=newer.pk) is True
    assert len(mail.outbox) == 1
    assert confirmation_token_make(newer) in mail.outbox[0].body


def test_no_confirmation_mail_for_a_profile_merged_away(pending):
    from customers.services import customer_merge
    from tests.factories import MarketingUserFactory

    customer_merge(survivor=CustomerFactory(), other=pending.customer, user=MarketingUserFactory())
    assert consent_confirmation_send(confirmation_id=pending.pk) is False
    assert mail.outbox == []


# --- the same address granted again while its confirmation is pending ------------------------------


def _grant_again(customer, store, clerk, disclosures, callbacks):
    with callbacks(execute=True):
        return checkout_grant(customer, store, clerk, disclosures["email"])


def test_the_same_address_granted_again_while_pending_keeps_the_first_link_and_sends_no_second_mail(
    celery_eager, django_capture_on_commit_callbacks, pending, store, clerk, disclosures
):
    from customers.services import consent_state_rebuild

    assert consent_confirmation_send(confirmation_id=pending.pk) is True
    # The person types the same address at a second till.
    again = _grant_again(pending.customer, store, clerk, disclosures, django_capture_on_commit_callbacks)

    assert not ConsentConfirmation.objects.filter(grant=again).exists()
    assert list(ConsentConfirmation.objects.filter(customer=pending.customer)) == [pending]
    assert len(mail.outbox) == 1
    assert ConsentEvidence.objects.filter(customer=pending.customer, action="grant").count() == 2
    assert_still_pending(pending)
    # The ledger says the same: still waiting for the first link.
    assert consent_state_rebuild(customer=pending.customer)["email"].status == ConsentStatus.PENDING

    consent_confirm(token=confirmation_token_make(pending))
    assert customer_is_reachable(customer=pending.customer, channel="email")
    assert consent_state_rebuild(customer=pending.customer)["email"].status == ConsentStatus.GRANTED


def test_a_pending_confirmation_is_mailed_again_at_most_once_a_day(
    celery_eager, django_capture_on_commit_callbacks, client, pending, store, clerk, disclosures
):
    assert consent_confirmation_send(confirmation_id=pending.pk) is True
    _grant_again(pending.customer, store, clerk, disclosures, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1

    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        _grant_again(pending.customer, store, clerk, disclosures, django_capture_on_commit_callbacks)
        _grant_again(pending.customer, store, clerk, disclosures, django_capture_on_commit_callbacks)
        assert len(mail.outbox) == 2  # the same confirmation once more, not one per grant
        assert ConsentConfirmation.objects.filter(customer=pending.customer).count() == 1
        link = next(line for line in mail.outbox[1].body.splitlines() if "/c/confirm/" in line).strip()
        assert client.post(link.removeprefix(settings.PUBLIC_BASE_URL)).status_code == 200
    assert customer_is_reachable(customer=pending.customer, channel="email")
