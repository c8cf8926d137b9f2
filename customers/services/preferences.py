"""The customer's own messaging preferences, as the preference centre and one-click links change them.

Frequency caps in ``campaigns`` read ``Customer.max_messages_per_week``; launch and the send-time
re-check read ``Customer.messages_paused_until`` and ``CategoryOptOut``. Nothing here knows about
campaigns: where a change came from (the campaign and delivery that carried the link) is stored as
data in the evidence's ``source_reference``.

Every change but consent is recorded as a ``PreferenceEvidence`` row; consent changes go through
``consent_grant``/``consent_withdraw`` and their ledger. Each service takes the customer's lock first
(``customers.lock_objects`` order), so a change and a concurrent merge or erasure never interleave.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from customers.exceptions import ConsentError, CustomerError, InvalidToken
from customers.lock_objects import customers_lock
from customers.models import (
    CategoryOptOut,
    Channel,
    ConsentEvidence,
    ConsentMethod,
    Customer,
    DisclosureText,
    MarketingCategory,
    PreferenceEvidence,
)
from customers.normalization import phone_sms_refusal
from customers.services.consent import MAX_TEXT, Evidence, consent_grant, consent_withdraw
from customers.tokens import token_make, token_read
from customers.transactions import atomic_retry

#: the purpose of preference-centre (edit) links; unsubscribe links have a purpose of their own
PREFERENCES_PURPOSE = "preferences"

#: the highest own weekly limit a customer can choose (above it the house caps bind first)
MAX_MESSAGES_PER_WEEK = 21
#: how long "pause for a while" lasts
PAUSE_DAYS = 30


class InvalidPreference(CustomerError, ValueError):
    """A preference value outside what customers may choose."""


@dataclasses.dataclass(frozen=True)
class PreferenceLink:
    """What a valid preference link names: a live profile, where the link came from, its category."""

    customer: Customer
    source_reference: str
    category: str = ""


# Choices build their list of values on every access; a campaign checks one per message.
_CATEGORIES = frozenset(MarketingCategory.values)


def preference_token_make(*, customer: Customer, source: str = "", category: str = "") -> str:
    """A signed edit link for ``customer``; ``source`` names what carried it (e.g. campaign:4 delivery:9)."""
    payload = {"c": str(customer.public_id)}
    if source:
        payload["s"] = source[:200]
    if category in _CATEGORIES:
        payload["k"] = category
    return token_make(purpose=PREFERENCES_PURPOSE, payload=payload)


def preference_link_read(*, token: str, now: datetime | None = None) -> PreferenceLink:
    """Read a preference token; valid for ``PREFERENCE_LINK_MAX_AGE_DAYS``.

    Raises ``ExpiredToken`` for a genuine but old link, ``InvalidToken`` for anything else: tampered,
    truncated, another purpose's token (an unsubscribe link), or a profile merged or erased since.
    """
    max_age = int(timedelta(days=settings.TANDEM["PREFERENCE_LINK_MAX_AGE_DAYS"]).total_seconds())
    payload = token_read(purpose=PREFERENCES_PURPOSE, token=token, max_age_seconds=max_age)
    customer = Customer.objects.active().filter(public_id=payload.get("c")).first()
    if customer is None:
        raise InvalidToken("This link is not valid.")
    category = payload.get("k", "")
    return PreferenceLink(
        customer=customer,
        source_reference=str(payload.get("s", ""))[:200],
        category=category if category in MarketingCategory.values else "",
    )


def _preference_log(*, customer: Customer, action: str, value: str, evidence: Evidence | None) -> None:
    if evidence is None:
        return
    PreferenceEvidence.objects.create(
        customer=customer,
        action=action,
        value=value[:64],
        method=evidence.method,
        occurred_at=evidence.occurred_at or timezone.now(),
        url=evidence.url[:MAX_TEXT],
        ip_address=evidence.ip_address or None,
        user_agent=evidence.user_agent[:MAX_TEXT],
        source_reference=evidence.source_reference[:200],
    )


def _live_customer(customer: Customer) -> Customer:
    customer = customers_lock([customer.pk])[customer.pk]
    if not customer.is_active_profile:
        raise CustomerError("This profile was merged or erased.")
    return customer


@atomic_retry
def customer_frequency_set(
    *, customer: Customer, max_messages_per_week: int | None, evidence: Evidence | None = None
) -> Customer:
    """Store the customer's own "at most N marketing messages a week" choice; ``None`` clears it.

    With ``evidence`` (the preference centre), locks the customer and appends a ``PreferenceEvidence``
    row; without it, one UPDATE of that column only. Idempotent in effect. Raises ``InvalidPreference``
    (and changes nothing) for a value outside 1 to 21.
    """
    if max_messages_per_week is not None:
        if isinstance(max_messages_per_week, bool) or not isinstance(max_messages_per_week, int):
            raise InvalidPreference("The weekly limit must be a whole number.")
        if not 1 <= max_messages_per_week <= MAX_MESSAGES_PER_WEEK:
            raise InvalidPreference(f"Choose between 1 and {MAX_MESSAGES_PER_WEEK} messages a week.")
    if evidence is not None:
        customer = _live_customer(customer)
    Customer.objects.filter(pk=customer.pk).update(max_messages_per_week=max_messages_per_week)
    customer.max_messages_per_week = max_messages_per_week
    _preference_log(
        customer=customer,
        action=PreferenceEvidence.Action.FREQUENCY_SET,
        value="" if max_messages_per_week is None else str(max_messages_per_week),
        evidence=evidence,
    )
    return customer


@atomic_retry
def customer_category_leave(*, customer: Customer, category: str, evidence: Evidence) -> Customer:
    """Stop every marketing message of ``category`` to the customer (all channels), from the commit on.

    Locks the customer; inserts the opt-out (ON CONFLICT DO NOTHING: leaving twice is harmless) and
    appends a ``PreferenceEvidence`` row. Raises ``InvalidPreference`` for an unknown category.
    """
    if category not in MarketingCategory.values:
        raise InvalidPreference("Unknown kind of message.")
    customer = _live_customer(customer)
    CategoryOptOut.objects.bulk_create([CategoryOptOut(customer=customer, category=category)], ignore_conflicts=True)
    _preference_log(
        customer=customer, action=PreferenceEvidence.Action.CATEGORY_LEFT, value=category, evidence=evidence
    )
    return customer


@atomic_retry
def customer_category_rejoin(*, customer: Customer, category: str, evidence: Evidence) -> Customer:
    """Undo ``customer_category_leave``; consent is untouched (a withdrawn channel stays withdrawn).

    Locks the customer; deletes the opt-out and appends evidence. Idempotent in effect.
    """
    if category not in MarketingCategory.values:
        raise InvalidPreference("Unknown kind of message.")
    customer = _live_customer(customer)
    CategoryOptOut.objects.filter(customer=customer, category=category).delete()
    _preference_log(
        customer=customer, action=PreferenceEvidence.Action.CATEGORY_REJOINED, value=category, evidence=evidence
    )
    return customer


@atomic_retry
def customer_messages_pause(
    *, customer: Customer, evidence: Evidence, days: int = PAUSE_DAYS, now: datetime | None = None
) -> Customer:
    """Pause every marketing message to the customer for ``days`` from now (a later pause extends it).

    Locks the customer; one UPDATE and a ``PreferenceEvidence`` row. Launch leaves a paused customer
    out and the send-time re-check skips their queued deliveries.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise InvalidPreference("A pause lasts between 1 and 366 days.")
    customer = _live_customer(customer)
    until = (now or timezone.now()) + timedelta(days=days)
    Customer.objects.filter(pk=customer.pk).update(messages_paused_until=until)
    customer.messages_paused_until = until
    _preference_log(
        customer=customer, action=PreferenceEvidence.Action.PAUSED, value=until.isoformat(), evidence=evidence
    )
    return customer


@atomic_retry
def customer_messages_resume(*, customer: Customer, evidence: Evidence) -> Customer:
    """End a pause now. Locks the customer; one UPDATE and a ``PreferenceEvidence`` row."""
    customer = _live_customer(customer)
    Customer.objects.filter(pk=customer.pk).update(messages_paused_until=None)
    customer.messages_paused_until = None
    _preference_log(customer=customer, action=PreferenceEvidence.Action.RESUMED, value="", evidence=evidence)
    return customer


@atomic_retry
def customer_marketing_leave(
    *, customer: Customer, channels: tuple[str, ...] | list[str], evidence: Evidence
) -> list[ConsentEvidence]:
    """Withdraw marketing consent on every channel named, all or none, from the commit on.

    The one way out for the preference centre's "leave all email" and the RFC 8058 one-click POST.
    Locks the customer, then each consent state (through ``consent_withdraw``). Idempotent in effect;
    every call is logged. Raises ``ConsentError`` for an unknown channel.
    """
    return [consent_withdraw(customer=customer, channel=channel, evidence=evidence) for channel in channels]


@atomic_retry
def customer_email_resubscribe(*, customer: Customer, evidence: Evidence) -> ConsentEvidence:
    """A fresh email grant from the preference centre; pending (a confirmation mail) under double opt-in.

    ``evidence`` must carry the disclosure shown and the IP (``consent_grant`` checks it). Also ends a
    pause, since asking to hear from us again means now. Locks the customer, then the email state;
    enqueues the confirmation mail on commit. Raises ``ConsentError`` as ``consent_grant`` does.
    """
    entry = consent_grant(customer=customer, channel=Channel.EMAIL, evidence=evidence)
    Customer.objects.filter(pk=customer.pk, messages_paused_until__isnull=False).update(messages_paused_until=None)
    return entry


@atomic_retry
def customer_channel_switch_to_sms(
    *, customer: Customer, email_evidence: Evidence, sms_evidence: Evidence
) -> tuple[ConsentEvidence, ConsentEvidence]:
    """Leave email and take marketing by SMS instead, both or neither.

    SMS needs its own explicit consent: ``sms_evidence`` carries the SMS disclosure the customer saw
    and ticked (unticked by default) and their IP; the grant covers the phone on the profile, which is
    recorded in the ledger entry. Locks the customer, then the email and SMS states. Raises
    ``ConsentError`` (nothing changes) without a phone, for a number that cannot take SMS consent, or
    for missing evidence.
    """
    if not customer.phone:
        raise ConsentError("We have no mobile number for you.")
    if refusal := phone_sms_refusal(customer.phone):
        raise ConsentError(refusal)
    if sms_evidence.method != ConsentMethod.PREFERENCE_CENTRE or sms_evidence.disclosure is None:
        raise ConsentError("Texts need your explicit agreement to the text shown.")
    withdrawn = consent_withdraw(customer=customer, channel=Channel.EMAIL, evidence=email_evidence)
    granted = consent_grant(customer=customer, channel=Channel.SMS, evidence=sms_evidence)
    return withdrawn, granted


class Choice:
    """What the preference centre's buttons post as ``choice``."""

    CATEGORY_LEAVE = "category_leave"
    CATEGORY_REJOIN = "category_rejoin"
    WEEKLY_ONE = "weekly_one"
    WEEKLY_ANY = "weekly_any"
    PAUSE = "pause"
    RESUME = "resume"
    EMAIL_LEAVE = "email_leave"
    SWITCH_TO_SMS = "switch_to_sms"
    EMAIL_RESUBSCRIBE = "email_resubscribe"

    ALL = (
        CATEGORY_LEAVE,
        CATEGORY_REJOIN,
        WEEKLY_ONE,
        WEEKLY_ANY,
        PAUSE,
        RESUME,
        EMAIL_LEAVE,
        SWITCH_TO_SMS,
        EMAIL_RESUBSCRIBE,
    )


def _disclosure_shown(value, channel: str) -> DisclosureText:
    """The disclosure the page showed (its id comes back with the form), checked for its channel."""
    try:
        disclosure = DisclosureText.objects.filter(pk=int(value), channel=channel).first()
    except (TypeError, ValueError):
        disclosure = None
    if disclosure is None:
        raise ConsentError("The page was out of date; please read the text again and confirm.")
    return disclosure


def preference_choice_apply(
    *,
    link: PreferenceLink,
    choice: str,
    form: dict,
    url: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
    now: datetime | None = None,
) -> str:
    """Apply one preference-centre choice for the link's customer; returns the choice applied.

    Each choice is one service call above, effective when it commits (launch and the send-time
    re-check read the same rows), with evidence naming the campaign and delivery that carried the link,
    the URL, IP and user agent. ``form`` carries the choice's fields: ``category``; for the choices that
    grant consent, the id of the disclosure shown (``disclosure``) and, for SMS, the ticked ``agree``.
    Raises ``InvalidPreference`` or ``ConsentError`` (nothing changed) for a choice it cannot apply.
    """
    customer = link.customer
    evidence = Evidence(
        method=ConsentMethod.PREFERENCE_CENTRE,
        occurred_at=now,
        url=url,
        ip_address=ip_address,
        user_agent=user_agent,
        source_reference=link.source_reference,
    )
    if choice == Choice.CATEGORY_LEAVE:
        customer_category_leave(customer=customer, category=form.get("category", ""), evidence=evidence)
    elif choice == Choice.CATEGORY_REJOIN:
        customer_category_rejoin(customer=customer, category=form.get("category", ""), evidence=evidence)
    elif choice in (Choice.WEEKLY_ONE, Choice.WEEKLY_ANY):
        limit = 1 if choice == Choice.WEEKLY_ONE else None
        customer_frequency_set(customer=customer, max_messages_per_week=limit, evidence=evidence)
    elif choice == Choice.PAUSE:
        customer_messages_pause(customer=customer, evidence=evidence, now=now)
    elif choice == Choice.RESUME:
        customer_messages_resume(customer=customer, evidence=evidence)
    elif choice == Choice.EMAIL_LEAVE:
        customer_marketing_leave(customer=customer, channels=(Channel.EMAIL,), evidence=evidence)
    elif choice == Choice.SWITCH_TO_SMS:
        if form.get("agree") != "yes":
            raise ConsentError("Tick the box to agree to receive text messages.")
        sms_evidence = dataclasses.replace(evidence, disclosure=_disclosure_shown(form.get("disclosure"), Channel.SMS))
        customer_channel_switch_to_sms(customer=customer, email_evidence=evidence, sms_evidence=sms_evidence)
    elif choice == Choice.EMAIL_RESUBSCRIBE:
        grant = dataclasses.replace(evidence, disclosure=_disclosure_shown(form.get("disclosure"), Channel.EMAIL))
        customer_email_resubscribe(customer=customer, evidence=grant)
    else:
        raise InvalidPreference("Unknown choice.")
    return choice
