"""The customer's own preferences: the weekly limit, kinds of message, pause, leaving, switching, coming back."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from customers.exceptions import ConsentError, ExpiredToken, InvalidToken
from customers.models import (
    CategoryOptOut,
    ConsentConfirmation,
    ConsentEvidence,
    ConsentState,
    Customer,
    PreferenceEvidence,
)
from customers.services.consent import Evidence
from customers.services.preferences import (
    Choice,
    InvalidPreference,
    PreferenceLink,
    customer_frequency_set,
    preference_choice_apply,
    preference_link_read,
    preference_token_make,
)
from customers.tokens import token_make
from tests.factories import CustomerFactory, DisclosureFactory

pytestmark = pytest.mark.django_db


def test_weekly_choice_is_stored_and_cleared():
    customer = CustomerFactory()
    customer_frequency_set(customer=customer, max_messages_per_week=1)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week == 1
    customer_frequency_set(customer=customer, max_messages_per_week=None)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week is None


@pytest.mark.parametrize("bad", [0, -1, 22, "1", True, 1.5])
def test_bad_weekly_choice_is_refused_and_changes_nothing(bad):
    customer = CustomerFactory()
    customer_frequency_set(customer=customer, max_messages_per_week=3)
    with pytest.raises(InvalidPreference):
        customer_frequency_set(customer=customer, max_messages_per_week=bad)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week == 3


# --- the preference centre's services --------------------------------------------------------------

SOURCE = "campaign:4 delivery:123"


def _subscribed(**kwargs):
    customer = CustomerFactory(**kwargs)
    for channel in ("email", "sms") if customer.phone else ("email",):
        ConsentState.objects.create(customer=customer, channel=channel, status="granted")
    return customer


def _apply(customer, choice, **form):
    link = PreferenceLink(customer=customer, source_reference=SOURCE, category="promotional")
    return preference_choice_apply(
        link=link, choice=choice, form=form, url="https://t.example/c/p/x/", ip_address="192.0.2.7", user_agent="Phone"
    )


def _state(customer, channel):
    row = ConsentState.objects.filter(customer=customer, channel=channel).first()
    return row.status if row else "none"


def test_leaving_a_category_stores_it_with_evidence_and_twice_is_harmless():
    customer = _subscribed()
    _apply(customer, Choice.CATEGORY_LEAVE, category="promotional")
    _apply(customer, Choice.CATEGORY_LEAVE, category="promotional")
    assert list(CategoryOptOut.objects.filter(customer=customer).values_list("category", flat=True)) == ["promotional"]
    evidence = PreferenceEvidence.objects.filter(customer=customer).first()
    assert (evidence.action, evidence.value, evidence.method) == ("category_left", "promotional", "preference_centre")
    assert (evidence.source_reference, evidence.ip_address, evidence.user_agent) == (SOURCE, "192.0.2.7", "Phone")
    assert _state(customer, "email") == "granted"  # leaving a kind of message is not leaving email


def test_rejoining_a_category_removes_the_opt_out():
    customer = _subscribed()
    _apply(customer, Choice.CATEGORY_LEAVE, category="event")
    _apply(customer, Choice.CATEGORY_REJOIN, category="event")
    assert not CategoryOptOut.objects.filter(customer=customer).exists()
    assert list(PreferenceEvidence.objects.values_list("action", flat=True)) == ["category_left", "category_rejoined"]


@pytest.mark.parametrize("category", ["transactional", "", "<script>"])
def test_an_unknown_category_is_refused_and_changes_nothing(category):
    customer = _subscribed()
    with pytest.raises(InvalidPreference):
        _apply(customer, Choice.CATEGORY_LEAVE, category=category)
    assert not CategoryOptOut.objects.exists()
    assert not PreferenceEvidence.objects.exists()


def test_at_most_one_a_week_sets_the_own_limit_with_evidence():
    customer = _subscribed()
    _apply(customer, Choice.WEEKLY_ONE)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week == 1
    _apply(customer, Choice.WEEKLY_ANY)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week is None
    assert list(PreferenceEvidence.objects.values_list("action", "value")) == [
        ("frequency_set", "1"),
        ("frequency_set", ""),
    ]


def test_pause_lasts_thirty_days_and_resume_ends_it():
    customer = _subscribed()
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        _apply(customer, Choice.PAUSE)
    assert Customer.objects.get(pk=customer.pk).messages_paused_until == now + timedelta(days=30)
    _apply(customer, Choice.RESUME)
    assert Customer.objects.get(pk=customer.pk).messages_paused_until is None
    assert list(PreferenceEvidence.objects.values_list("action", flat=True)) == ["paused", "resumed"]


def test_leaving_all_email_withdraws_email_only_with_evidence_naming_the_link():
    customer = _subscribed(phone="+14155550123")
    _apply(customer, Choice.EMAIL_LEAVE)
    assert (_state(customer, "email"), _state(customer, "sms")) == ("withdrawn", "granted")
    entry = ConsentEvidence.objects.get(customer=customer, action="withdraw")
    assert (entry.method, entry.source_reference, entry.ip_address) == ("preference_centre", SOURCE, "192.0.2.7")


def test_switching_to_sms_withdraws_email_and_grants_sms_with_the_disclosure_and_phone():
    customer = _subscribed()
    Customer.objects.filter(pk=customer.pk).update(phone="+14155550123")
    customer.refresh_from_db()
    disclosure = DisclosureFactory(channel="sms", version=1, text="Texts, up to 4/month. Reply STOP to opt out.")
    _apply(customer, Choice.SWITCH_TO_SMS, agree="yes", disclosure=str(disclosure.pk))
    assert (_state(customer, "email"), _state(customer, "sms")) == ("withdrawn", "granted")
    grant = ConsentEvidence.objects.get(customer=customer, channel="sms", action="grant")
    assert (grant.method, grant.address, grant.disclosure_id) == ("preference_centre", "+14155550123", disclosure.pk)
    assert grant.disclosure_sha256 == disclosure.sha256
    assert grant.source_reference == SOURCE


@pytest.mark.parametrize(
    ("phone", "form"),
    [
        ("+14155550123", {"disclosure": "DISCLOSURE"}),  # box not ticked
        ("+14155550123", {"agree": "yes", "disclosure": "999999"}),  # unknown disclosure
        (None, {"agree": "yes", "disclosure": "DISCLOSURE"}),  # no phone
        ("+442079460000", {"agree": "yes", "disclosure": "DISCLOSURE"}),  # a London landline
    ],
)
def test_switching_to_sms_without_explicit_consent_or_a_mobile_changes_nothing(phone, form):
    customer = _subscribed()
    Customer.objects.filter(pk=customer.pk).update(phone=phone)
    customer.refresh_from_db()
    disclosure = DisclosureFactory(channel="sms", version=1, text="Texts. Reply STOP to opt out.")
    form = {key: str(disclosure.pk) if value == "DISCLOSURE" else value for key, value in form.items()}
    with pytest.raises(ConsentError):
        _apply(customer, Choice.SWITCH_TO_SMS, **form)
    assert (_state(customer, "email"), _state(customer, "sms")) == ("granted", "none")
    assert not ConsentEvidence.objects.exists()


def test_resubscribing_is_a_fresh_grant_waiting_for_double_opt_in():
    customer = _subscribed()
    _apply(customer, Choice.EMAIL_LEAVE)
    disclosure = DisclosureFactory(channel="email", version=1, text="Email me news and offers.")
    _apply(customer, Choice.EMAIL_RESUBSCRIBE, disclosure=str(disclosure.pk))
    assert _state(customer, "email") == "pending"
    grant = ConsentEvidence.objects.get(customer=customer, action="grant")
    assert (grant.method, grant.disclosure_id, grant.ip_address) == ("preference_centre", disclosure.pk, "192.0.2.7")
    assert ConsentConfirmation.objects.filter(customer=customer, grant=grant).exists()


def test_resubscribing_with_an_sms_disclosure_is_refused():
    customer = _subscribed()
    _apply(customer, Choice.EMAIL_LEAVE)
    disclosure = DisclosureFactory(channel="sms", version=1, text="Texts.")
    with pytest.raises(ConsentError):
        _apply(customer, Choice.EMAIL_RESUBSCRIBE, disclosure=str(disclosure.pk))
    assert _state(customer, "email") == "withdrawn"


def test_an_unknown_choice_is_refused():
    customer = _subscribed()
    with pytest.raises(InvalidPreference):
        _apply(customer, "delete_everything")


# --- the preference link -----------------------------------------------------------------------------


def test_a_preference_token_names_the_customer_the_source_and_the_category():
    customer = CustomerFactory()
    link = preference_link_read(token=preference_token_make(customer=customer, source=SOURCE, category="loyalty"))
    assert (link.customer, link.source_reference, link.category) == (customer, SOURCE, "loyalty")


def test_an_unsubscribe_token_is_not_a_preference_token():
    customer = CustomerFactory()
    token = token_make(purpose="unsubscribe", payload={"c": str(customer.public_id), "ch": "all", "s": ""})
    with pytest.raises(InvalidToken) as raised:
        preference_link_read(token=token)
    assert not isinstance(raised.value, ExpiredToken)


def test_a_preference_token_expires_after_sixty_days(settings):
    customer = CustomerFactory()
    token = preference_token_make(customer=customer)
    with time_machine.travel(timezone.now() + timedelta(days=59)):
        assert preference_link_read(token=token).customer == customer
    with time_machine.travel(timezone.now() + timedelta(days=61)), pytest.raises(ExpiredToken):
        preference_link_read(token=token)


def test_a_preference_token_of_a_merged_profile_is_refused():
    customer = CustomerFactory()
    token = preference_token_make(customer=customer)
    Customer.objects.filter(pk=customer.pk).update(merged_into=CustomerFactory())
    with pytest.raises(InvalidToken):
        preference_link_read(token=token)


def test_preference_evidence_is_append_only():
    customer = _subscribed()
    _apply(customer, Choice.PAUSE)
    entry = PreferenceEvidence.objects.get()
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()


def test_erasure_blanks_the_web_evidence_of_preferences():
    from customers.services import customer_erase

    customer = _subscribed()
    _apply(customer, Choice.PAUSE)
    customer_erase(customer=customer, user=None)
    entry = PreferenceEvidence.objects.get()
    assert (entry.ip_address, entry.user_agent, entry.url) == (None, "", "")


def test_frequency_set_with_evidence_refuses_a_merged_profile():
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(merged_into=CustomerFactory())
    with pytest.raises(Exception, match="merged"):
        customer_frequency_set(
            customer=customer, max_messages_per_week=1, evidence=Evidence(method="preference_centre")
        )
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week is None
