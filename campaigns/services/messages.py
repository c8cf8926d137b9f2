"""Message and variant writes, and test sends through the real channel backends."""

from __future__ import annotations

from django.db import transaction

from campaigns import events
from campaigns.channels.registry import channel_get
from campaigns.composer import variant_compiled
from campaigns.exceptions import CampaignError
from campaigns.links import preview_links
from campaigns.models import Campaign, Message, StaffTestRecipient, Variant
from campaigns.rendering import RenderError, TemplateProblem
from campaigns.validation import variant_check
from customers.exceptions import InvalidContact
from customers.models import Channel
from customers.normalization import normalize_phone
from customers.selectors import address_is_suppressed, customer_find_by_contact, customer_is_reachable

_VARIANT_FIELDS = (
    "persona_id",
    "channel",
    "subject",
    "preheader",
    "html_body",
    "text_body",
    "sms_body",
    "push_title",
    "push_body",
    "push_url",
    "push_image_url",
)


def variant_snapshot(variant: Variant) -> dict:
    return {field: getattr(variant, field) for field in _VARIANT_FIELDS}


def _refuse_if_frozen(message: Message) -> None:
    """Raise ``CampaignError`` when a campaign using ``message`` has started sending.

    Locks the rows of the campaigns using the message (in pk order, like every campaign lock), so a
    campaign cannot start sending between this check and the caller's write.
    """
    if message.pk is None:
        return
    campaigns = Campaign.objects.select_for_update().filter(message=message).order_by("pk")
    frozen = next((c for c in campaigns if c.status not in Campaign.EDITABLE_STATUSES), None)
    if frozen is not None:
        raise CampaignError(f"{frozen} has started sending; its message can no longer change.")


@transaction.atomic
def message_save(*, message: Message, actor) -> Message:
    """Create or rename a message; records what differs from the stored row. Refused
    (``CampaignError``) once a campaign using it has started sending (locks those campaigns' rows)."""
    created = message.pk is None
    changes = {}
    if created:
        message.created_by = actor if getattr(actor, "is_authenticated", False) else None
    else:
        _refuse_if_frozen(message)
        stored = Message.objects.get(pk=message.pk)
        changes = {
            name: str(getattr(message, name))
            for name in ("name", "purpose")
            if getattr(stored, name) != getattr(message, name)
        }
    message.save()
    if created or changes:
        events.message_changed_event(subject=message, actor=actor, changes=changes, created=created)
    return message


@transaction.atomic
def variant_save(*, variant: Variant, actor) -> list[str]:
    """Validate and store one grid cell; returns warnings (e.g. SMS over one segment).

    Raises ``ValidationError`` for a cell we refuse and ``CampaignError`` when a campaign using the
    message has started sending (checked under those campaigns' row locks); nothing is stored then.
    Records what changed since the stored row in the audit trail.
    """
    _refuse_if_frozen(variant.message)
    variant.full_clean()
    warnings = variant_check(variant)
    created = variant.pk is None
    before = None if created else variant_snapshot(Variant.objects.get(pk=variant.pk))
    variant.save()
    after = variant_snapshot(variant)
    changes = after if created else {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if created or changes:
        events.message_changed_event(subject=variant, actor=actor, changes=changes, created=created)
    return warnings


@transaction.atomic
def variant_delete(*, variant: Variant, actor) -> None:
    """Remove one grid cell (refused once a campaign using the message has started sending)."""
    _refuse_if_frozen(variant.message)
    events.message_changed_event(subject=variant, actor=actor, changes={"deleted": variant_snapshot(variant)})
    variant.delete()


def test_recipient_allowed(*, channel: str, address: str) -> bool:
    """Whether a test may go to ``address`` (normalised): an active staff test recipient, or a
    customer whose consent for ``channel`` is granted; never a suppressed address."""
    if address_is_suppressed(channel=channel, address=address):
        return False
    if StaffTestRecipient.objects.filter(channel=channel, address=address, is_active=True).exists():
        return True
    lookup = {"email": address} if channel == Channel.EMAIL else {"phone": address}
    customer = customer_find_by_contact(**lookup)
    return customer is not None and customer_is_reachable(customer=customer, channel=channel)


def variant_test_send(
    *, variant: Variant, user, customer=None, phone: str = "", campaign=None, channel_options=None
) -> str:
    """Send ``variant`` rendered for ``customer`` (placeholders only) to the staff member ``user``.

    Email goes to ``user.email``, SMS to ``phone``, push to every active device of the user. Links in
    a test lead to a page that changes nothing. Raises ``CampaignError`` when there is nowhere to send
    it or the message does not render, ``ChannelError`` when the provider refuses. Returns the address
    used.
    """
    from campaigns.selectors import preview_context

    try:
        rendered = variant_compiled(variant).render(preview_context(customer=customer, campaign=campaign))
    except (TemplateProblem, RenderError) as exc:
        # Text stored before a rule tightened, or written around the checks: show it, never a 500.
        raise CampaignError(f"The variant has errors; fix them first. {exc}") from exc
    links = preview_links()
    backend = channel_get(variant.channel, **(channel_options or {}))
    metadata = {"test_send": "1", "variant_id": variant.pk}
    if campaign is not None:
        metadata["campaign_id"] = campaign.pk
    if variant.channel == Channel.EMAIL:
        if not user.email:
            raise CampaignError("Add an email address to your staff account first.")
        to = user.email
        rendered = type(rendered)(
            subject=f"[TEST] {rendered.subject}", preheader=rendered.preheader, html=rendered.html, text=rendered.text
        )
        backend.send(backend.build_payload(rendered=rendered, to=to, metadata=metadata, links=links))
        label = to
    elif variant.channel == Channel.SMS:
        try:
            to = normalize_phone(phone)
        except InvalidContact as exc:
            raise CampaignError(f"Give the phone number to send the test to: {exc}") from exc
        if not test_recipient_allowed(channel=Channel.SMS, address=to):
            raise CampaignError(
                f"{to} is not a staff test number or a customer who agreed to texts (and is not suppressed). "
                "Add it under Campaigns, Staff test recipients first."
            )
        backend.send(backend.build_payload(rendered=rendered, to=to, metadata=metadata, links=links))
        label = to
    else:
        from push_notifications.models import GCMDevice

        devices = list(GCMDevice.objects.filter(user=user, active=True))
        if not devices:
            raise CampaignError("Register a push device on your staff account first.")
        backend.send(backend.build_payload(rendered=rendered, to=devices, metadata=metadata, links=links))
        label = f"{len(devices)} device(s)"
    events.variant_test_sent_event(variant=variant, actor=user, to=label, campaign=campaign)
    return label
