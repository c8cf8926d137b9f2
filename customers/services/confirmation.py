"""The double opt-in mail: sent once per pending grant, from the transactional address."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from customers.models import Channel, ConsentConfirmation, ConsentState
from customers.services.consent import confirmation_is_current, confirmation_url

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LEASE = timedelta(minutes=10)
LOST_TASK_GRACE = timedelta(minutes=2)


def consent_confirmation_send(*, confirmation_id: int) -> bool:
    """Claim and send one confirmation mail; returns whether this call sent it.

    The claim is a compare-and-set (queued → sending) so a duplicate task claims nothing; a grant that
    is no longer the pending one (withdrawn, superseded) or whose address changed is not mailed. No
    transaction is held across the SMTP/ESP call. A failure puts the row back to queued for the
    sweeper, up to ``MAX_ATTEMPTS``, then marks it failed.
    """
    now = timezone.now()
    claimed = ConsentConfirmation.objects.filter(pk=confirmation_id, status=ConsentConfirmation.Status.QUEUED).update(
        status=ConsentConfirmation.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now
    )
    if not claimed:
        return False
    confirmation = ConsentConfirmation.objects.select_related("customer", "grant").get(pk=confirmation_id)
    customer = confirmation.customer
    if (
        not customer.is_active_profile
        or not customer.email
        or customer.email.lower() != confirmation.grant.address.lower()
    ):
        ConsentConfirmation.objects.filter(pk=confirmation_id).update(
            status=ConsentConfirmation.Status.FAILED,
            last_error="The address changed (or merged, erased) before sending.",
        )
        return False
    # Withdrawn (or granted again) before the mail left: a withdrawn person gets no mail, and a newer
    # grant has a confirmation of its own.
    state = ConsentState.objects.filter(customer=customer, channel=Channel.EMAIL).first()
    if not confirmation_is_current(confirmation, state):
        ConsentConfirmation.objects.filter(pk=confirmation_id).update(
            status=ConsentConfirmation.Status.FAILED, last_error="No longer pending: withdrawn or superseded."
        )
        return False
    context = {
        "customer": customer,
        "brand_name": settings.TANDEM["BRAND_NAME"],
        "confirm_url": confirmation_url(confirmation),
        "max_age_days": settings.TANDEM["CONFIRMATION_LINK_MAX_AGE_DAYS"],
    }
    message = EmailMultiAlternatives(
        subject=f"Please confirm your subscription to {settings.TANDEM['BRAND_NAME']}",
        body=render_to_string("emails/consent_confirm.txt", context),
        from_email=settings.TRANSACTIONAL_FROM_EMAIL,
        to=[customer.email],
    )
    message.attach_alternative(render_to_string("emails/consent_confirm.html", context), "text/html")
    # String values and one tag: what every ESP accepts (Postmark refuses a second tag, and a mail it
    # refuses leaves the customer pending for good).
    message.metadata = {"consent_confirmation_id": str(confirmation_id)}
    message.tags = ["double-opt-in"]
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # the provider's error types vary by ESP; all are recorded and retried
        logger.warning("Confirmation mail %s failed: %s", confirmation_id, exc)
        give_up = confirmation.attempts >= MAX_ATTEMPTS
        ConsentConfirmation.objects.filter(pk=confirmation_id, status=ConsentConfirmation.Status.SENDING).update(
            status=ConsentConfirmation.Status.FAILED if give_up else ConsentConfirmation.Status.QUEUED,
            last_error=str(exc)[:500],
        )
        return False
    ConsentConfirmation.objects.filter(pk=confirmation_id, status=ConsentConfirmation.Status.SENDING).update(
        status=ConsentConfirmation.Status.SENT, sent_at=timezone.now()
    )
    return True


def consent_confirmations_redrive(*, now=None) -> list[int]:
    """Ids of confirmations whose task was lost: queued for a while, or stuck sending past the lease.

    A confirmation mail is harmless to send twice, so a stuck one is put back to queued.
    """
    now = now or timezone.now()
    ConsentConfirmation.objects.filter(
        status=ConsentConfirmation.Status.SENDING, claimed_at__lt=now - LEASE, attempts__lt=MAX_ATTEMPTS
    ).update(status=ConsentConfirmation.Status.QUEUED)
    return list(
        ConsentConfirmation.objects.filter(status=ConsentConfirmation.Status.QUEUED)
        .filter(
            Q(claimed_at__lt=now - LOST_TASK_GRACE) | Q(claimed_at__isnull=True, created_at__lt=now - LOST_TASK_GRACE)
        )
        .values_list("pk", flat=True)[:500]
    )
