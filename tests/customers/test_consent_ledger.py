"""The consent ledger: evidence required per method, immediate withdrawal, append-only, state = fold(ledger)."""

import contextlib
import dataclasses
import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from customers.exceptions import ConsentError, InvalidToken
from customers.models import (
    ConsentConfirmation,
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
)
from customers.selectors import customer_is_reachable
from customers.services import consent_grant, consent_state_rebuild, consent_withdraw
from customers.services.consent import (
    _GRANT_REQUIREMENTS,
    Evidence,
    confirmation_token_make,
    consent_confirm,
    consent_fold,
)
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def full_evidence(method, *, store, clerk, disclosure) -> Evidence:
    """Evidence carrying every field any method may require."""
    return Evidence(
        method=method,
        store=store,
        collected_by=clerk,
        disclosure=disclosure,
        url="https://shop.example.com/signup",
        ip_address="198.51.100.7",
        user_agent="Mozilla/5.0",
        basis="Signed paper form 2024",
        source_reference="ref:1",
    )


REQUIRED_FIELDS = [(method, field) for method, fields in _GRANT_REQUIREMENTS.items() for field in fields]


@pytest.mark.parametrize(("method", "missing"), REQUIRED_FIELDS, ids=[f"{m}-{f}" for m, f in REQUIRED_FIELDS])
def test_no_grant_without_the_evidence_its_method_requires(method, missing, store, clerk, disclosures):
    customer = CustomerFactory(phone="+12125550100")
    evidence = full_evidence(method, store=store, clerk=clerk, disclosure=disclosures["email"])
    lacking = dataclasses.replace(
        evidence, **{missing: None if missing in ("store", "collected_by", "disclosure", "ip_address") else ""}
    )

    with pytest.raises(ConsentError, match=missing.replace("_", " ")):
        consent_grant(customer=customer, channel="email", evidence=lacking)

    assert not ConsentEvidence.objects.filter(customer=customer).exists()
    assert not ConsentState.objects.filter(customer=customer).exclude(status=ConsentStatus.NONE).exists()
    # The same grant with its full evidence is accepted, so the refusal was about the missing field.
    consent_grant(customer=customer, channel="email", evidence=evidence)
    assert ConsentEvidence.objects.filter(customer=customer, action="grant").count() == 1


@pytest.mark.parametrize(
    "method",
    [
        ConsentMethod.ONE_CLICK,
        ConsentMethod.BOUNCE,
        ConsentMethod.COMPLAINT,
        ConsentMethod.EMAIL_CONFIRMATION,
        ConsentMethod.ERASURE,
        "made-up",
    ],
)
def test_methods_that_only_withdraw_cannot_grant(method, store, clerk, disclosures):
    customer = CustomerFactory()
    evidence = full_evidence(method, store=store, clerk=clerk, disclosure=disclosures["email"])
    with pytest.raises(ConsentError):
        consent_grant(customer=customer, channel="email", evidence=evidence)
    assert not ConsentEvidence.objects.filter(customer=customer).exists()


def test_grant_refuses_a_disclosure_written_for_another_channel(store, clerk, disclosures):
    customer = CustomerFactory(phone="+12125550100")
    evidence = full_evidence(ConsentMethod.CHECKOUT, store=store, clerk=clerk, disclosure=disclosures["email"])
    with pytest.raises(ConsentError, match="another channel"):
        consent_grant(customer=customer, channel="sms", evidence=evidence)
    assert not ConsentEvidence.objects.exists()


def test_grant_refuses_a_channel_without_an_address(store, clerk, disclosures):
    customer = CustomerFactory(phone=None)
    evidence = full_evidence(ConsentMethod.CHECKOUT, store=store, clerk=clerk, disclosure=disclosures["sms"])
    with pytest.raises(ConsentError, match="phone"):
        consent_grant(customer=customer, channel="sms", evidence=evidence)
    assert not ConsentEvidence.objects.exists()


def test_checkout_grant_records_what_compliance_requires(store, clerk, disclosures):
    customer = CustomerFactory(phone="+12125550100")
    entry = consent_grant(
        customer=customer,
        channel="sms",
        evidence=full_evidence(ConsentMethod.CHECKOUT, store=store, clerk=clerk, disclosure=disclosures["sms"]),
    )
    entry.refresh_from_db()
    assert (entry.store, entry.collected_by, entry.disclosure) == (store, clerk, disclosures["sms"])
    assert entry.disclosure_sha256 == disclosures["sms"].sha256
    assert entry.address == "+12125550100"
    assert entry.occurred_at is not None
    assert customer_is_reachable(customer=customer, channel="sms")


def test_withdrawal_is_immediate(store, clerk, disclosures):
    customer = CustomerFactory(phone="+12125550100")
    consent_grant(
        customer=customer,
        channel="sms",
        evidence=full_evidence(ConsentMethod.CHECKOUT, store=store, clerk=clerk, disclosure=disclosures["sms"]),
    )
    assert customer_is_reachable(customer=customer, channel="sms")

    consent_withdraw(customer=customer, channel="sms", evidence=Evidence(method=ConsentMethod.SMS_KEYWORD))

    assert not customer_is_reachable(customer=customer, channel="sms")
    assert ConsentState.objects.get(customer=customer, channel="sms").status == ConsentStatus.WITHDRAWN


def test_withdrawal_needs_no_evidence_beyond_its_method_but_a_known_method():
    customer = CustomerFactory()
    consent_withdraw(customer=customer, channel="email", evidence=Evidence(method=ConsentMethod.PREFERENCE_CENTRE))
    with pytest.raises(ConsentError):
        consent_withdraw(customer=customer, channel="email", evidence=Evidence(method="telepathy"))
    assert ConsentEvidence.objects.filter(customer=customer).count() == 1


def test_evidence_refuses_update_and_delete(store, clerk, disclosures):
    customer = CustomerFactory()
    entry = consent_grant(
        customer=customer,
        channel="email",
        evidence=full_evidence(ConsentMethod.IMPORT, store=store, clerk=clerk, disclosure=disclosures["email"]),
    )
    entry.note = "rewritten history"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    entry.refresh_from_db()
    assert entry.note == ""
    assert ConsentEvidence.objects.filter(pk=entry.pk).exists()


# --- the state is the fold of the ledger ---------------------------------------------------------

_phone_numbers = itertools.count(1000)
actions = st.lists(
    st.tuples(
        st.sampled_from(
            ["grant_checkout", "grant_import", "grant_reconfirm", "confirm_latest", "confirm_oldest", "withdraw"]
        ),
        st.sampled_from(["email", "email", "sms"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=actions)
@example(
    steps=[("grant_checkout", "email"), ("confirm_latest", "email"), ("withdraw", "email"), ("grant_import", "email")]
)
@example(steps=[("grant_checkout", "email"), ("grant_checkout", "email"), ("confirm_oldest", "email")])
@example(steps=[("grant_checkout", "email"), ("grant_import", "email"), ("confirm_latest", "email")])
@example(steps=[("grant_import", "email"), ("grant_reconfirm", "email"), ("confirm_oldest", "email")])
def test_consent_state_equals_the_fold_of_the_ledger(steps, store, clerk, disclosures):
    customer = CustomerFactory(phone=f"+1212555{next(_phone_numbers):04d}")
    for action, channel in steps:
        if action == "grant_reconfirm":  # what a merge with an unconfirmed profile records
            evidence = Evidence(method=ConsentMethod.MERGE, source_reference="merge:x")
            consent_grant(customer=customer, channel=channel, evidence=evidence, reconfirm=True)
        elif action.startswith("grant"):
            method = ConsentMethod.CHECKOUT if action == "grant_checkout" else ConsentMethod.IMPORT
            evidence = full_evidence(method, store=store, clerk=clerk, disclosure=disclosures[channel])
            consent_grant(customer=customer, channel=channel, evidence=evidence)
        elif action.startswith("confirm"):
            confirmations = ConsentConfirmation.objects.filter(customer=customer).order_by("pk")
            confirmation = confirmations.last() if action == "confirm_latest" else confirmations.first()
            if confirmation is None:
                continue
            # A superseded or withdrawn grant refuses its link: that is part of the contract.
            with contextlib.suppress(InvalidToken):
                consent_confirm(token=confirmation_token_make(confirmation))
        else:
            consent_withdraw(customer=customer, channel=channel, evidence=Evidence(method=ConsentMethod.ONE_CLICK))

    fields = ("status", "granted_at", "confirmed_at", "withdrawn_at")
    stored = {}
    for state in ConsentState.objects.filter(customer=customer):
        entries = ConsentEvidence.objects.filter(customer=customer, channel=state.channel).order_by("id")
        folded = consent_fold(list(entries))
        assert {f: getattr(state, f) for f in fields} == {f: folded[f] for f in fields}, state.channel
        assert state.last_evidence_id == folded["last_evidence"].pk
        stored[state.channel] = {f: getattr(state, f) for f in fields}

    rebuilt = consent_state_rebuild(customer=customer)
    assert {channel: {f: getattr(s, f) for f in fields} for channel, s in rebuilt.items()} == stored
    reachable_email = customer_is_reachable(customer=customer, channel="email")
    assert reachable_email == (stored.get("email", {}).get("status") == ConsentStatus.GRANTED)


def test_reachable_only_when_granted_and_not_suppressed(store, clerk, disclosures):
    from customers.services import suppression_add

    customer = CustomerFactory()
    consent_grant(
        customer=customer,
        channel="email",
        evidence=full_evidence(ConsentMethod.IMPORT, store=store, clerk=clerk, disclosure=disclosures["email"]),
    )
    assert customer_is_reachable(customer=customer, channel="email")
    suppression_add(channel="email", address=customer.email.upper(), reason="hard_bounce", user=UserFactory())
    assert not customer_is_reachable(customer=customer, channel="email")


def test_a_new_grant_after_withdrawal_is_not_confirmed_by_an_old_confirmation(store, clerk, disclosures):
    customer = CustomerFactory()
    grant = consent_grant(
        customer=customer,
        channel="email",
        evidence=full_evidence(ConsentMethod.CHECKOUT, store=store, clerk=clerk, disclosure=disclosures["email"]),
    )
    consent_confirm(token=confirmation_token_make(grant.confirmation))
    consent_withdraw(customer=customer, channel="email", evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    consent_grant(
        customer=customer,
        channel="email",
        evidence=full_evidence(ConsentMethod.IMPORT, store=store, clerk=clerk, disclosure=disclosures["email"]),
    )
    state = ConsentState.objects.get(customer=customer, channel="email")
    assert state.status == ConsentStatus.GRANTED
    assert state.confirmed_at is None
    folded = consent_fold(list(ConsentEvidence.objects.filter(customer=customer, channel="email").order_by("id")))
    assert folded["confirmed_at"] is None


def test_suppression_remove_refuses_erasure_a_blank_reason_and_a_second_lift():
    from customers.exceptions import ConsentError
    from customers.models import Suppression
    from customers.services.consent import suppression_add, suppression_remove

    manual = suppression_add(channel="email", address="a@example.com", reason="manual")
    erasure = suppression_add(channel="email", address="b@example.com", reason="erasure")
    with pytest.raises(ConsentError, match="cannot be lifted"):
        suppression_remove(suppression=erasure, user=None, note="Asked again")
    with pytest.raises(ConsentError, match="Say why"):
        suppression_remove(suppression=manual, user=None, note="  ")
    assert Suppression.objects.count() == 2
    suppression_remove(suppression=manual, user=None, note="Re-subscribed")
    with pytest.raises(ConsentError, match="already lifted"):
        suppression_remove(suppression=manual, user=None, note="Re-subscribed")
    assert list(Suppression.objects.values_list("pk", flat=True)) == [erasure.pk]
