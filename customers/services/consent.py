"""Consent: an append-only evidence ledger, the current state derived from it, and suppression."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from customers.exceptions import ConsentError, InvalidToken
from customers.lock_objects import consent_state_qs_select_for_update, customers_lock
from customers.models import (
    Channel,
    ConsentConfirmation,
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Customer,
    DisclosureText,
    Store,
    Suppression,
)
from customers.normalization import address_hmac
from customers.queue import task_enqueue_on_commit
from customers.tokens import token_make, token_read
from customers.transactions import atomic_retry

CONFIRM_PURPOSE = "consent-confirm"
MAX_TEXT = 500
#: a repeated grant while a confirmation is pending mails the same link again, at most this often
CONFIRMATION_RESEND_AFTER = timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a consent change must prove (compliance.md): how, when, where, who, what was shown."""

    method: str
    occurred_at: datetime | None = None
    store: Store | None = None
    collected_by: object | None = None
    disclosure: DisclosureText | None = None
    url: str = ""
    ip_address: str | None = None
    user_agent: str = ""
    basis: str = ""
    source_reference: str = ""
    note: str = ""


# What each method must carry for a grant to be accepted.
_GRANT_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    ConsentMethod.CHECKOUT: ("store", "collected_by", "disclosure"),
    ConsentMethod.WEB_FORM: ("disclosure", "url", "ip_address"),
    ConsentMethod.IMPORT: ("basis",),
    ConsentMethod.ADMIN: ("basis", "collected_by"),
    ConsentMethod.API: ("disclosure",),
    ConsentMethod.SMS_KEYWORD: ("source_reference",),
    ConsentMethod.PREFERENCE_CENTRE: ("disclosure", "ip_address"),
    ConsentMethod.MERGE: ("source_reference",),
}
_GRANT_METHODS_WITHOUT_DOUBLE_OPT_IN = {ConsentMethod.IMPORT, ConsentMethod.MERGE, ConsentMethod.ADMIN}


def _address_for(customer: Customer, channel: str) -> str:
    if channel == Channel.EMAIL:
        return customer.email or ""
    if channel == Channel.SMS:
        return customer.phone or ""
    return ""


def _check_grant_evidence(evidence: Evidence, channel: str) -> None:
    if evidence.method not in _GRANT_REQUIREMENTS:
        raise ConsentError(f"Consent cannot be granted by {evidence.method!r}.")
    missing = [name for name in _GRANT_REQUIREMENTS[evidence.method] if not getattr(evidence, name)]
    if missing:
        raise ConsentError(
            f"A {evidence.method} grant needs evidence: {', '.join(name.replace('_', ' ') for name in missing)}."
        )
    if evidence.disclosure is not None and evidence.disclosure.channel != channel:
        raise ConsentError("The disclosure text shown was written for another channel.")


def _ledger_append(*, customer: Customer, channel: str, action: str, evidence: Evidence) -> ConsentEvidence:
    disclosure = evidence.disclosure
    return ConsentEvidence.objects.create(
        customer=customer,
        channel=channel,
        action=action,
        method=evidence.method,
        occurred_at=evidence.occurred_at or timezone.now(),
        address=_address_for(customer, channel),
        store=evidence.store,
        collected_by=evidence.collected_by,
        disclosure=disclosure,
        disclosure_sha256=disclosure.sha256 if disclosure else "",
        url=evidence.url[:MAX_TEXT],
        ip_address=evidence.ip_address or None,
        user_agent=evidence.user_agent[:MAX_TEXT],
        basis=evidence.basis[:MAX_TEXT],
        source_reference=evidence.source_reference[:200],
        note=evidence.note[:MAX_TEXT],
    )


def _locked_state(customer: Customer, channel: str) -> ConsentState:
    """The consent state row of (customer, channel), created if absent, locked for this transaction.

    The caller holds the customer's lock (``customers.lock_objects``: customer, then consent states).
    """
    # INSERT ... ON CONFLICT DO NOTHING: one statement and no savepoint, and a concurrent creation of
    # the same row is not an error (the lock below waits for it).
    ConsentState.objects.bulk_create([ConsentState(customer=customer, channel=channel)], ignore_conflicts=True)
    return consent_state_qs_select_for_update().get(customer=customer, channel=channel)


def _customer_lock(customer: Customer) -> Customer:
    """Lock the profile (first in the lock order) and return it as it is now."""
    return customers_lock([customer.pk])[customer.pk]


def confirmation_is_current(confirmation: ConsentConfirmation, state: ConsentState | None) -> bool:
    """Whether ``confirmation`` is the one the email state waits for: the state is pending and no newer
    confirmation was asked for since (a withdrawal or a staff grant moves the state off pending)."""
    if state is None or state.status != ConsentStatus.PENDING:
        return False
    newest = (
        ConsentConfirmation.objects.filter(customer_id=confirmation.customer_id)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return newest == confirmation.pk


def _grant_repeats_pending(state: ConsentState, channel: str, evidence: Evidence, address: str):
    """The pending confirmation a new grant repeats (same address, a method that asks for double
    opt-in), or ``None``. The person then keeps the one link already mailed to them."""
    if channel != Channel.EMAIL or state.status != ConsentStatus.PENDING:
        return None
    if evidence.method in _GRANT_METHODS_WITHOUT_DOUBLE_OPT_IN:
        return None
    pending = (
        ConsentConfirmation.objects.filter(customer_id=state.customer_id).select_related("grant").order_by("-pk").first()
    )
    if pending is None or pending.grant.address.lower() != address.lower():
        return None
    return pending


def _double_opt_in_applies(channel: str, evidence: Evidence) -> bool:
    return (
        channel == Channel.EMAIL
        and settings.TANDEM["EMAIL_DOUBLE_OPT_IN"]
        and evidence.method not in _GRANT_METHODS_WITHOUT_DOUBLE_OPT_IN
    )


@atomic_retry
def consent_grant(*, customer: Customer, channel: str, evidence: Evidence, reconfirm: bool = False) -> ConsentEvidence:
    """Record a grant and move the state: ``granted``, or ``pending`` under email double opt-in.

    Locks the customer, then the (customer, channel) state row. Raises ``ConsentError`` when the
    evidence the method requires is missing, the customer has no address for the channel, or the
    profile is erased or merged. A pending email grant queues one confirmation mail (sent after
    commit). Granting again while already granted appends the new evidence and keeps the state, unless
    ``reconfirm`` (email only) asks for a fresh double opt-in: a merge that joins a granted profile with
    an unconfirmed one keeps the unconfirmed state, and the survivor gets a confirmation mail of its
    own. Granting the same address again while its confirmation is pending (the person typed it at a
    second till) appends the evidence and keeps that confirmation, so the link already mailed stays
    the one that works; its mail is sent again only when the last one left more than
    ``CONFIRMATION_RESEND_AFTER`` ago.
    """
    if channel not in Channel.values:
        raise ConsentError(f"Unknown channel {channel!r}.")
    customer = _customer_lock(customer)
    if not customer.is_active_profile:
        raise ConsentError("This profile was merged or erased; change the surviving profile instead.")
    if channel in (Channel.EMAIL, Channel.SMS) and not _address_for(customer, channel):
        raise ConsentError(f"The customer has no {'email address' if channel == Channel.EMAIL else 'phone number'}.")
    _check_grant_evidence(evidence, channel)
    state = _locked_state(customer, channel)
    reconfirm = reconfirm and channel == Channel.EMAIL
    repeated = None if reconfirm else _grant_repeats_pending(state, channel, evidence, _address_for(customer, channel))
    entry = _ledger_append(customer=customer, channel=channel, action=ConsentEvidence.Action.GRANT, evidence=evidence)
    if repeated is not None:
        state.last_evidence = entry
        state.save(update_fields=["last_evidence", "updated_at"])
        _confirmation_resend_if_due(repeated)
        return entry
    if state.status == ConsentStatus.GRANTED and not reconfirm:
        state.last_evidence = entry
        state.save(update_fields=["last_evidence", "updated_at"])
        return entry
    state.last_evidence = entry
    state.granted_at = entry.occurred_at
    state.withdrawn_at = None
    # A confirmation belongs to the grant it confirmed; a fresh grant starts unconfirmed.
    state.confirmed_at = None
    if reconfirm or _double_opt_in_applies(channel, evidence):
        state.status = ConsentStatus.PENDING
        confirmation = ConsentConfirmation.objects.create(grant=entry, customer=customer)
        task_enqueue_on_commit("customers.consent_confirmation_send", confirmation.pk)
    else:
        state.status = ConsentStatus.GRANTED
    state.save()
    return entry


@atomic_retry
def consent_withdraw(*, customer: Customer, channel: str, evidence: Evidence) -> ConsentEvidence:
    """Withdraw at once: the state is ``withdrawn`` when this transaction commits.

    Needs no particular evidence beyond the method (withdrawing must be as easy as granting). Any
    pending double opt-in for the channel can no longer be confirmed. Idempotent in effect; every
    call is still logged. Locks the customer, then the state row.
    """
    if channel not in Channel.values:
        raise ConsentError(f"Unknown channel {channel!r}.")
    if evidence.method not in ConsentMethod.values:
        raise ConsentError(f"Unknown consent method {evidence.method!r}.")
    customer = _customer_lock(customer)
    state = _locked_state(customer, channel)
    entry = _ledger_append(
        customer=customer, channel=channel, action=ConsentEvidence.Action.WITHDRAW, evidence=evidence
    )
    state.status = ConsentStatus.WITHDRAWN
    state.withdrawn_at = entry.occurred_at
    state.last_evidence = entry
    state.save()
    return entry


def _confirmation_resend_if_due(confirmation: ConsentConfirmation) -> None:
    """Mail a pending confirmation again (the same link) when its last mail left long enough ago.

    Compare-and-set on the row: a mail queued or being sent is left alone, so two tills capturing the
    same address at once cause at most one mail.
    """
    due = timezone.now() - CONFIRMATION_RESEND_AFTER
    requeued = ConsentConfirmation.objects.filter(
        pk=confirmation.pk,
        status__in=[ConsentConfirmation.Status.SENT, ConsentConfirmation.Status.FAILED],
        claimed_at__lte=due,
    ).update(status=ConsentConfirmation.Status.QUEUED, attempts=0, last_error="")
    if requeued:
        task_enqueue_on_commit("customers.consent_confirmation_send", confirmation.pk)


def confirmation_token_make(confirmation: ConsentConfirmation) -> str:
    return token_make(
        purpose=CONFIRM_PURPOSE,
        payload={"c": str(confirmation.customer.public_id), "g": confirmation.grant_id},
    )


def confirmation_url(confirmation: ConsentConfirmation) -> str:
    from django.urls import reverse

    path = reverse("public:consent-confirm", kwargs={"token": confirmation_token_make(confirmation)})
    return settings.PUBLIC_BASE_URL + path


@atomic_retry
def consent_confirm(*, token: str, ip_address: str | None = None, user_agent: str = "", url: str = "") -> Customer:
    """Confirm a pending email grant from its signed link; returns the customer.

    Raises ``InvalidToken`` for a tampered, expired or other-purpose token, and for a link whose grant
    is no longer the pending one (withdrawn or superseded since). Confirming twice is a no-op, also
    when both clicks arrive at once: the confirmation is read again under the customer's lock, so the
    second click sees the first one's result. Locks the customer, then the email state.
    """
    max_age = timedelta(days=settings.TANDEM["CONFIRMATION_LINK_MAX_AGE_DAYS"]).total_seconds()
    payload = token_read(purpose=CONFIRM_PURPOSE, token=token, max_age_seconds=int(max_age))
    try:
        confirmation = ConsentConfirmation.objects.select_related("customer", "grant").get(
            grant_id=int(payload["g"]), customer__public_id=payload["c"]
        )
    except (ConsentConfirmation.DoesNotExist, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken("This link is not valid.") from exc
    customer = _customer_lock(confirmation.customer)
    if not customer.is_active_profile:
        # Merged away (the survivor was asked to confirm on its own) or erased.
        raise InvalidToken("This link is no longer valid.")
    state = _locked_state(customer, Channel.EMAIL)
    confirmation = ConsentConfirmation.objects.select_related("grant").get(pk=confirmation.pk)
    if confirmation.status == ConsentConfirmation.Status.CONFIRMED and state.status == ConsentStatus.GRANTED:
        return customer
    if not confirmation_is_current(confirmation, state):
        raise InvalidToken("This link is no longer valid.")
    if confirmation.grant.address.lower() != (customer.email or "").lower():
        raise InvalidToken("This link is no longer valid.")
    entry = _ledger_append(
        customer=customer,
        channel=Channel.EMAIL,
        action=ConsentEvidence.Action.CONFIRM,
        evidence=Evidence(
            method=ConsentMethod.EMAIL_CONFIRMATION,
            ip_address=ip_address,
            user_agent=user_agent,
            url=url,
            source_reference=f"grant:{confirmation.grant_id}",
        ),
    )
    state.status = ConsentStatus.GRANTED
    state.confirmed_at = entry.occurred_at
    state.last_evidence = entry
    state.save()
    confirmation.status = ConsentConfirmation.Status.CONFIRMED
    confirmation.confirmed_at = entry.occurred_at
    confirmation.save(update_fields=["status", "confirmed_at"])
    return customer


def consent_fold(entries) -> dict:
    """The state the ledger implies: replay grants, confirmations and withdrawals in order."""
    status = ConsentStatus.NONE
    granted_at = confirmed_at = withdrawn_at = None
    last = None
    pending_grant = None
    pending_address = ""
    for entry in entries:
        last = entry
        if entry.action == ConsentEvidence.Action.GRANT:
            # A grant that asked for confirmation restarts the double opt-in even over a granted state.
            needs_confirmation = entry.channel == Channel.EMAIL and hasattr(entry, "confirmation")
            repeats_pending = (
                status == ConsentStatus.PENDING
                and not needs_confirmation
                and entry.method not in _GRANT_METHODS_WITHOUT_DOUBLE_OPT_IN
                and entry.address.lower() == pending_address.lower()
            )
            if repeats_pending:
                continue  # the same address typed again: the confirmation already mailed still decides
            if needs_confirmation:
                pending_address = entry.address
            if status != ConsentStatus.GRANTED or needs_confirmation:
                granted_at, withdrawn_at = entry.occurred_at, None
                status = ConsentStatus.PENDING if needs_confirmation else ConsentStatus.GRANTED
                pending_grant = entry.pk if needs_confirmation else None
                confirmed_at = None
        elif entry.action == ConsentEvidence.Action.CONFIRM:
            if status == ConsentStatus.PENDING and entry.source_reference == f"grant:{pending_grant}":
                status, confirmed_at = ConsentStatus.GRANTED, entry.occurred_at
        elif entry.action == ConsentEvidence.Action.WITHDRAW:
            status, withdrawn_at, pending_grant = ConsentStatus.WITHDRAWN, entry.occurred_at, None
    return {
        "status": status,
        "granted_at": granted_at,
        "confirmed_at": confirmed_at,
        "withdrawn_at": withdrawn_at,
        "last_evidence": last,
    }


@atomic_retry
def consent_state_rebuild(*, customer: Customer) -> dict[str, ConsentState]:
    """Recompute every channel's state of ``customer`` from the ledger; returns them by channel."""
    states = {}
    customer = _customer_lock(customer)
    for channel in Channel.values:
        entries = list(
            ConsentEvidence.objects.filter(customer=customer, channel=channel)
            .select_related("confirmation")
            .order_by("id")
        )
        if not entries:
            continue
        state = _locked_state(customer, channel)
        for field, value in consent_fold(entries).items():
            setattr(state, field, value)
        state.save()
        states[channel] = state
    return states


def disclosure_publish(*, channel: str, text: str, locale: str = "en", user=None) -> DisclosureText:
    """Publish a new version of a disclosure text; earlier versions stay as they were shown."""
    text = text.strip()
    if not text:
        raise ConsentError("A disclosure text cannot be empty.")
    if channel not in Channel.values:
        raise ConsentError(f"Unknown channel {channel!r}.")
    with transaction.atomic():
        latest = (
            DisclosureText.objects.select_for_update()
            .filter(channel=channel, locale=locale)
            .order_by("-version")
            .first()
        )
        if latest is not None and latest.text == text:
            return latest
        return DisclosureText.objects.create(
            channel=channel,
            locale=locale,
            version=(latest.version + 1) if latest else 1,
            text=text,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            created_by=user,
        )


def suppression_add(*, channel: str, address: str, reason: str, user=None, note: str = "") -> Suppression:
    """Suppress a normalised address for a channel; idempotent (the first reason is kept)."""
    if channel not in (Channel.EMAIL, Channel.SMS):
        raise ConsentError("Only email addresses and phone numbers can be suppressed.")
    if not address:
        raise ConsentError("There is no address to suppress.")
    suppression, _ = Suppression.objects.get_or_create(
        channel=channel,
        address_hmac=address_hmac(channel, address),
        defaults={"reason": reason, "note": note[:MAX_TEXT], "created_by": user},
    )
    return suppression


@transaction.atomic
def suppression_remove(*, suppression: Suppression, user, note: str) -> None:
    """Lift a suppression; staff must say why. Erasure suppressions are never lifted.

    Locks the suppression row and checks it there. Raises ``ConsentError`` (nothing changes) for an
    erasure suppression, a missing reason, or a suppression already lifted.
    """
    if not note.strip():
        raise ConsentError("Say why the suppression is lifted.")
    locked = Suppression.objects.select_for_update().filter(pk=suppression.pk).first()
    if locked is None:
        raise ConsentError("This suppression was already lifted.")
    if locked.reason == Suppression.Reason.ERASURE:
        raise ConsentError("An erased person's suppression cannot be lifted.")
    locked.delete()
