"""Texts coming back through Twilio: replies (opt-out keywords and their kin) and status callbacks."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.feedback.health import sender_health_check
from campaigns.feedback.optouts import SUPPRESSION, address_suppress, customer_opt_out
from campaigns.feedback.records import (
    FAILURE_STATUSES,
    DeliveryRef,
    delivery_event_store,
    delivery_ref_get,
    delivery_status_advance,
    feedback_count_add,
)
from campaigns.models import Campaign, Delivery, DeliveryEvent, FeedbackCount, SmsOptOutReview
from customers.exceptions import ConsentError, InvalidContact
from customers.models import Channel, ConsentMethod, Customer, Suppression
from customers.normalization import address_hmac, normalize_phone
from customers.services.consent import Evidence, consent_grant, suppression_remove
from customers.transactions import atomic_retry

PROVIDER = "twilio"
Kind = DeliveryEvent.Kind

# compliance.md: single words, case-insensitive, surrounding spaces and punctuation ignored.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

# A reply that plainly asks to stop (FCC 24-18: revocation by any reasonable means) is honoured at once
# and listed for review; one that merely mentions stopping is only listed.
_CLEAR_OPT_OUT = re.compile(
    r"\b(?:(?:stop|quit|cease|end)\s+(?:\w+\s+){0,3}?(?:text|texting|texts|txt|txts|messag\w*|msgs?|sms|contact\w*|send\w*)"
    r"|no\s+more\s+(?:\w+\s+)?(?:text|texts|messages|msgs|sms)"
    r"|(?:do\s*not|don'?t|dont)\s+(?:text|message|msg|contact|sms)\s+me"
    r"|(?:unsubscribe|opt\s*-?\s*out|remove)\s+me"
    r"|take\s+me\s+off"
    r"|unsubscribe|opt\s*-?\s*out)\b",
    re.IGNORECASE,
)
# "STOP please", "Unsubscribe. I never signed up": a reply that opens with an unambiguous keyword.
_OPENS_WITH_OPT_OUT = re.compile(r"^\W*(?:stop|stopall|unsubscribe|optout|revoke)\b", re.IGNORECASE)
_MENTIONS_OPT_OUT = re.compile(r"\b(?:stop\w*|cancel\w*|quit|unsub\w*|remove|leave me alone|block\w*)\b", re.IGNORECASE)
# Which campaigns a reply may answer: texts older than this are not "the last one sent".
REPLY_LOOKBACK = timedelta(days=30)

# Twilio's delivery errors (https://www.twilio.com/docs/api/errors): meaning, and whether the number
# itself can never receive texts (then it is suppressed). 21610: the recipient opted out at the carrier.
SMS_ERRORS: dict[str, tuple[str, bool]] = {
    "21610": ("Recipient opted out (replied STOP to this sender)", True),
    "21211": ("Invalid 'To' phone number", True),
    "21614": ("'To' number is not a valid mobile number", True),
    "30003": ("Unreachable destination handset (off, out of coverage or unable to receive)", False),
    "30004": ("Message blocked (by the recipient or their carrier)", False),
    "30005": ("Unknown destination handset (the number does not exist or is not in service)", True),
    "30006": ("Landline or unreachable carrier", True),
    "30007": ("Message filtered by the carrier (spam or content rules)", False),
    "30008": ("Unknown error from the carrier", False),
}
CARRIER_OPT_OUT = "21610"
TWILIO_STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "canceled"}
)
_STATUS_KINDS = {
    "queued": Kind.QUEUED,
    "accepted": Kind.QUEUED,
    "scheduled": Kind.QUEUED,
    "sending": Kind.QUEUED,
    "sent": Kind.SENT,
    "delivered": Kind.DELIVERED,
    "read": Kind.DELIVERED,
    "undelivered": Kind.UNDELIVERED,
    "failed": Kind.FAILED,
    "canceled": Kind.FAILED,
}


def sms_keyword(body: str) -> str | None:
    """The compliance keyword a reply is, or ``None``: ``" Stop!! "`` is STOP, ``"stop it"`` is not."""
    text = "".join(char for char in (body or "")[:200] if unicodedata.category(char)[0] not in "CZ" or char == " ")
    word = text.strip().strip("".join(c for c in text if unicodedata.category(c)[0] in "PSZ")).strip()
    word = word.upper()
    if word in OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS:
        return word
    return None


def opt_out_phrase(body: str) -> tuple[str, bool] | None:
    """``(phrase, clear)`` when a free-text reply reads like an opt-out; ``clear`` when it plainly asks to stop."""
    text = " ".join((body or "")[:1600].split())
    match = _OPENS_WITH_OPT_OUT.search(text) or _CLEAR_OPT_OUT.search(text)
    if match:
        return match.group(0)[:100], True
    match = _MENTIONS_OPT_OUT.search(text)
    if match:
        return match.group(0)[:100], False
    return None


def _brand() -> str:
    return settings.TANDEM["BRAND_NAME"]


def help_reply() -> str:
    tandem = settings.TANDEM
    return (
        f"{_brand()}: marketing texts, {tandem['SMS_FREQUENCY']}. Help: {tandem['SMS_HELP_CONTACT']}. "
        "Msg & data rates may apply. Reply STOP to opt out."
    )


def opt_out_reply() -> str:
    # The one confirmation allowed after STOP: no marketing in it.
    return f"{_brand()}: you are unsubscribed and will get no more texts from us. Reply START to resubscribe."


def opt_in_reply() -> str:
    return (
        f"{_brand()}: you are subscribed to texts again, {settings.TANDEM['SMS_FREQUENCY']}. "
        "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
    )


@dataclasses.dataclass(frozen=True)
class InboundResult:
    reply: str  # the text to answer with ("" for none)
    action: str  # opt_out, opt_in, help, review, none
    duplicate: bool = False
    customer_id: int | None = None


def _last_text_to(customer_id: int, now: datetime) -> DeliveryRef | None:
    """The last text sent to this customer by a recent campaign; one query over the unique key's prefix."""
    recent = Campaign.objects.filter(started_at__gte=now - REPLY_LOOKBACK).values("pk")
    row = (
        Delivery.objects.filter(
            cause_type=Delivery.Cause.CAMPAIGN,
            cause_id__in=recent,
            customer_id=customer_id,
            channel=Channel.SMS,
            status=Delivery.Status.SENT,
        )
        .order_by("-sent_at", "-id")
        .values_list("id", "cause_type", "cause_id", "customer_id", "channel", "address", "provider_message_id")
        .first()
    )
    return DeliveryRef(*row) if row else None


def _action_for(keyword: str | None, phrase: tuple[str, bool] | None) -> str:
    if keyword in OPT_OUT_KEYWORDS:
        return "opt_out"
    if keyword in OPT_IN_KEYWORDS:
        return "opt_in"
    if keyword in HELP_KEYWORDS:
        return "help"
    if phrase is not None:
        return "opt_out_phrase" if phrase[1] else "review"
    return "none"


_REPLIES = {"opt_out": opt_out_reply, "opt_out_phrase": opt_out_reply, "help": help_reply}
# Twilio's Advanced Opt-Out names the keyword class it matched (its own keyword lists may be longer).
_TWILIO_OPT_OUT_TYPES = {"STOP": "STOP", "START": "START", "HELP": "HELP"}


@atomic_retry
def sms_inbound_receive(
    *, message_sid: str, from_number: str, body: str, opt_out_type: str = "", now: datetime | None = None
) -> InboundResult:
    """Act on one reply from Twilio, once per ``MessageSid``.

    Opt-out keywords withdraw SMS consent, opt-in keywords grant it afresh (and lift a carrier opt-out
    suppression of the number), HELP/INFO only answer; the evidence names the reply's MessageSid and
    the last text sent to the number. A reply that plainly asks to stop in other words is honoured and
    listed for review; one that only mentions stopping is listed. Unknown numbers are answered, nothing
    else. A replay (same MessageSid) stores and changes nothing and gets the same answer. Locks the
    customer, then its consent states (through the customers services).
    """
    now = now or timezone.now()
    keyword = _TWILIO_OPT_OUT_TYPES.get((opt_out_type or "").strip().upper()) or sms_keyword(body)
    phrase = None if keyword else opt_out_phrase(body)
    action = _action_for(keyword, phrase)
    try:
        number = normalize_phone(from_number or "")
    except InvalidContact:
        number = ""
    customer = Customer.objects.active().filter(phone=number).only("pk").first() if number else None
    last = _last_text_to(customer.pk, now) if customer else None
    stored = delivery_event_store(
        provider=PROVIDER,
        provider_event_id=message_sid,
        kind=Kind.INBOUND,
        occurred_at=now,
        delivery_id=last.id if last else None,
        detail={"keyword": keyword or "", "action": action, "known_number": customer is not None},
    )
    reply = _REPLIES.get(action, lambda: "")()
    if stored is None:
        return InboundResult(reply=reply, action=action, duplicate=True, customer_id=customer.pk if customer else None)
    source = f"twilio:{message_sid}" + (f" delivery:{last.id}" if last else "")
    if action in ("opt_out", "opt_out_phrase") and customer is not None:
        said = keyword or f"“{phrase[0]}”"
        customer_opt_out(
            customer_id=customer.pk,
            channel=Channel.SMS,
            method=ConsentMethod.SMS_KEYWORD,
            source_reference=source,
            note=f"Replied {said} to a text.",
            occurred_at=now,
        )
        if last is not None:
            feedback_count_add(ref=last, kind=FeedbackCount.STOPPED)
    elif action == "opt_in":
        reply = _opt_in(customer=customer, number=number, source=source, keyword=keyword, now=now)
    if phrase is not None:
        SmsOptOutReview.objects.create(
            message_sid=message_sid[:64],
            from_number=(number or from_number or "")[:32],
            customer=customer,
            delivery_id=last.id if last else None,
            body=(body or "")[:1600],
            matched=phrase[0],
            status=SmsOptOutReview.Status.WITHDRAWN if phrase[1] and customer else SmsOptOutReview.Status.OPEN,
            received_at=now,
        )
    return InboundResult(reply=reply, action=action, customer_id=customer.pk if customer else None)


def _opt_in(*, customer, number: str, source: str, keyword: str, now: datetime) -> str:
    """A fresh SMS grant from a START-type reply; the help text when it cannot be granted (unknown number)."""
    if customer is None:
        return help_reply()
    try:
        consent_grant(
            customer=customer,
            channel=Channel.SMS,
            evidence=Evidence(
                method=ConsentMethod.SMS_KEYWORD, occurred_at=now, source_reference=source, note=f"Replied {keyword}."
            ),
        )
    except ConsentError:
        return help_reply()
    # The carrier lifts its own block on START; ours, recorded from error 21610, goes with it.
    suppression = Suppression.objects.filter(
        channel=Channel.SMS, address_hmac=address_hmac(Channel.SMS, number), reason=Suppression.Reason.CARRIER_OPT_OUT
    ).first()
    if suppression is not None:
        suppression_remove(suppression=suppression, user=None, note=f"Replied {keyword} ({source}).")
    return opt_in_reply()


@transaction.atomic
def sms_review_resolve(*, review: SmsOptOutReview, withdraw: bool, user) -> SmsOptOutReview:
    """Staff's decision on a listed reply: withdraw SMS consent (with the reply as evidence) or dismiss.

    Locks the review row; a review already decided is left as it is (idempotent).
    """
    locked = SmsOptOutReview.objects.select_for_update().get(pk=review.pk)
    if locked.status != SmsOptOutReview.Status.OPEN:
        return locked
    now = timezone.now()
    if withdraw:
        customer_opt_out(
            customer_id=locked.customer_id,
            channel=Channel.SMS,
            method=ConsentMethod.SMS_KEYWORD,
            source_reference=f"twilio:{locked.message_sid}",
            note="A reply read as an opt-out by staff.",
            occurred_at=now,
        )
    locked.status = SmsOptOutReview.Status.WITHDRAWN if withdraw else SmsOptOutReview.Status.DISMISSED
    locked.reviewed_at, locked.reviewed_by = now, user
    locked.save(update_fields=["status", "reviewed_at", "reviewed_by"])
    return locked


@dataclasses.dataclass(frozen=True)
class StatusResult:
    stored: bool
    moved: bool = False


@atomic_retry
def sms_status_record(
    *, delivery_id: int, message_sid: str, status: str, error_code: str = "", now: datetime | None = None
) -> StatusResult:
    """Record one Twilio status callback for a delivery, once per (MessageSid, status, error).

    The delivery's provider status only moves forward (compare-and-set on its rank). Error 21610
    withdraws SMS consent and suppresses the number; another error meaning the number cannot receive
    texts suppresses it and counts as a hard bounce (sender health). A callback for an unknown delivery
    or another message is kept as an event without a delivery and changes nothing else.
    """
    now = now or timezone.now()
    status = status.strip().lower()
    if status not in TWILIO_STATUSES:
        status = "unknown"
    code = error_code.strip() if error_code and error_code.strip().isdigit() else ""
    ref = delivery_ref_get(delivery_id=delivery_id, channel=Channel.SMS)
    if ref is not None and ref.provider_message_id and ref.provider_message_id != message_sid:
        ref = None  # signed by Twilio, but about another message than the one this delivery sent
    meaning, permanent = SMS_ERRORS.get(code, ("", False))
    detail = {"status": status}
    if code:
        detail.update(error_code=code, error=meaning or "Twilio error")
    stored = delivery_event_store(
        provider=PROVIDER,
        provider_event_id=f"{message_sid}:{status}:{code}",
        kind=_STATUS_KINDS.get(status, Kind.OTHER),
        occurred_at=now,
        delivery_id=ref.id if ref else None,
        detail=detail,
    )
    if stored is None or ref is None:
        return StatusResult(stored=stored is not None)
    provider_status = "failed" if status == "canceled" else ("delivered" if status == "read" else status)
    moved = delivery_status_advance(delivery_id=ref.id, status=provider_status, at=now)
    if moved and provider_status == "delivered":
        feedback_count_add(ref=ref, kind=Kind.DELIVERED)
    if code == CARRIER_OPT_OUT:
        customer_opt_out(
            customer_id=ref.customer_id,
            channel=Channel.SMS,
            method=ConsentMethod.SMS_KEYWORD,
            source_reference=f"delivery:{ref.id}",
            note="Opted out at the carrier (Twilio error 21610 in a status callback).",
            occurred_at=now,
        )
        address_suppress(channel=Channel.SMS, address=ref.address, reason=SUPPRESSION.CARRIER_OPT_OUT)
    elif permanent and provider_status in FAILURE_STATUSES:
        address_suppress(
            channel=Channel.SMS, address=ref.address, reason=SUPPRESSION.HARD_BOUNCE, note=f"Twilio {code}: {meaning}"
        )
        if moved:
            count = feedback_count_add(ref=ref, kind=Kind.BOUNCED)
            sender_health_check(ref=ref, kind=Kind.BOUNCED, count=count)
    return StatusResult(stored=True, moved=moved)


def sms_replies_erase(*, customer, user) -> None:
    """Erasure hook: blank the number and text of the person's replies listed for review (the decision stays)."""
    SmsOptOutReview.objects.filter(customer=customer).update(from_number="", body="")
