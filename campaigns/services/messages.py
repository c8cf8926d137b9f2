"""Message and variant writes, and test sends through the real channel backends."""

from __future__ import annotations

from django.db import transaction

from campaigns import events
from campaigns.channels.registry import channel_get
from campaigns.composer import variant_compiled
from campaigns.exceptions import CampaignError
from campaigns.links import preview_links
from campaigns.models import Campaign, Variant
from campaigns.rendering import RenderError, TemplateProblem
from campaigns.validation import variant_check
from customers.models import Channel
from customers.normalization import normalize_phone

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


def _frozen_by(message) -> Campaign | None:
    return message.campaigns.exclude(status__in=Campaign.EDITABLE_STATUSES).first()


@transaction.atomic
def variant_save(*, variant: Variant, actor, before: dict | None = None) -> list[str]:
    """Validate and store one grid cell; returns warnings (e.g. SMS over one segment).

    Raises ``ValidationError`` for a cell we refuse and ``CampaignError`` when a campaign using the
    message has started sending; nothing is stored then. Records the change in the audit trail.
    """
    campaign = _frozen_by(variant.message)
    if campaign is not None:
        raise CampaignError(f"{campaign} has started sending; its message can no longer change.")
    variant.full_clean()
    warnings = variant_check(variant)
    created = variant.pk is None
    variant.save()
    after = variant_snapshot(variant)
    changes = after if created else {k: [before.get(k), v] for k, v in after.items() if before and before.get(k) != v}
    if created or changes:
        events.message_changed_event(subject=variant, actor=actor, changes=changes, created=created)
    return warnings


@transaction.atomic
def variant_delete(*, variant: Variant, actor) -> None:
    """Remove one grid cell (refused once a campaign using the message has started sending)."""
    campaign = _frozen_by(variant.message)
    if campaign is not None:
        raise CampaignError(f"{campaign} has started sending; its message can no longer change.")
    events.message_changed_event(subject=variant, actor=actor, changes={"deleted": variant_snapshot(variant)})
    variant.delete()


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
        compiled = variant_compiled(variant)
        links = preview_links()
        rendered = compiled.render(preview_context(customer=customer, campaign=campaign))
    except (TemplateProblem, RenderError) as exc:
        raise CampaignError(f"The message cannot be sent as it stands: {exc}") from exc
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
        except Exception as exc:
            raise CampaignError(f"Give the phone number to send the test to: {exc}") from exc
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
