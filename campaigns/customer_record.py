"""What campaigns add to a customer's record in the admin: the "last messages" panel of the 360°
header and the messaging sections of the subject-access export (deliveries and their provider
events, SMS opt-out reviews, push devices, uploaded-segment memberships). Registered with customers'
hooks from ``CampaignsConfig.ready``, so customers never imports campaigns."""

from __future__ import annotations

from django.urls import reverse

from campaigns.delivery.causes import delivery_cause_label, delivery_causes
from campaigns.delivery.progress import REASON_TEXT, deliveries_for_customer
from campaigns.models import (
    CustomerPushDevice,
    CustomerWebPushDevice,
    DeliveryEvent,
    Enrolment,
    JourneySegmentMark,
    JourneyStepRun,
    SegmentMember,
    SmsOptOutReview,
)
from customers.header_sources import HeaderLine, HeaderPanel

HEADER_DELIVERIES = 3

#: the models holding a person's messaging data, and the export section holding each
EXPORTED_MODELS = {
    "campaigns.Delivery": "deliveries",
    "campaigns.SmsOptOutReview": "sms_opt_out_reviews",
    "campaigns.CustomerPushDevice": "push_devices",
    "campaigns.CustomerWebPushDevice": "push_devices",
    "campaigns.SegmentMember": "segment_memberships",
    "campaigns.Enrolment": "journeys",
    "campaigns.JourneySegmentMark": "journeys",
}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def deliveries_header_panel(customer, profile_ids: list[int]) -> HeaderPanel:
    """The last few messages sent (or not sent, and why) to the person."""
    rows = deliveries_for_customer(profile_ids=profile_ids, limit=HEADER_DELIVERIES)
    causes = delivery_causes(rows)
    lines = [
        HeaderLine(
            label=row.get_channel_display(),
            value=delivery_cause_label(causes, row)[0],
            note=" · ".join(
                part
                for part in (
                    f"{(row.sent_at or row.updated_at or row.created_at):%Y-%m-%d}",
                    row.get_status_display().lower(),
                    REASON_TEXT.get(row.reason, "") if row.reason else "",
                    "opened" if row.opened_at else "",
                    "clicked" if row.clicked_at else "",
                )
                if part
            ),
            url=delivery_cause_label(causes, row)[1],
        )
        for row in rows
    ]
    return HeaderPanel(key="deliveries", title="Last messages", lines=lines, empty_text="No message yet.")


def journeys_header_panel(customer, profile_ids: list[int]) -> HeaderPanel:
    """The journeys the person is in now: which step they are on and when it runs."""
    enrolments = (
        Enrolment.objects.filter(customer_id__in=profile_ids, status=Enrolment.Status.ACTIVE)
        .select_related("journey")
        .order_by("entered_at", "pk")
    )
    lines = [
        HeaderLine(
            label=enrolment.journey.name,
            value=f"step {enrolment.step_key}" if enrolment.step_key else "entering",
            note=" · ".join(
                part
                for part in (
                    f"entered {enrolment.entered_at:%Y-%m-%d}",
                    f"next {enrolment.due_at:%Y-%m-%d %H:%M} UTC" if enrolment.due_at else "",
                )
                if part
            ),
            url=reverse("admin:campaigns_journey_change", args=[enrolment.journey_id]),
        )
        for enrolment in enrolments[:10]
    ]
    return HeaderPanel(key="journeys", title="Open journeys", lines=lines, empty_text="In no journey now.")


def campaigns_export_sections(profile_ids: list[int]) -> dict:
    deliveries = deliveries_for_customer(profile_ids=profile_ids, limit=None)
    causes = delivery_causes(deliveries)
    events: dict[int, list] = {row.pk: [] for row in deliveries}
    for event in DeliveryEvent.objects.filter(delivery_id__in=list(events)).order_by("occurred_at", "id"):
        events[event.delivery_id].append(
            {
                "kind": event.kind,
                "provider": event.provider,
                "occurred_at": _iso(event.occurred_at),
                "detail": event.detail,
            }
        )
    push = [
        {"kind": "app", "name": link.device.name, "active": link.device.active, "linked_at": _iso(link.created_at)}
        for link in CustomerPushDevice.objects.filter(customer_id__in=profile_ids).select_related("device")
    ] + [
        {
            "kind": "browser",
            "name": link.device.browser,
            "active": link.device.active,
            "linked_at": _iso(link.created_at),
        }
        for link in CustomerWebPushDevice.objects.filter(customer_id__in=profile_ids).select_related("device")
    ]
    return {
        "deliveries": [
            {
                "sent_by": delivery_cause_label(causes, row)[0],
                "channel": row.channel,
                "address": row.address,
                "status": row.status,
                "reason": row.reason,
                "created_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
                "provider_status": row.provider_status,
                "opened_at": _iso(row.opened_at),
                "clicked_at": _iso(row.clicked_at),
                "complained_at": _iso(row.complained_at),
                "events": events[row.pk],
            }
            for row in deliveries
        ],
        "sms_opt_out_reviews": [
            {
                "from_number": review.from_number,
                "body": review.body,
                "matched": review.matched,
                "status": review.status,
                "received_at": _iso(review.received_at),
                "reviewed_at": _iso(review.reviewed_at),
            }
            for review in SmsOptOutReview.objects.filter(customer_id__in=profile_ids).order_by("received_at", "id")
        ],
        "push_devices": push,
        "segment_memberships": [
            {"segment": member.segment.name, "added_at": _iso(member.added_at)}
            for member in SegmentMember.objects.filter(customer_id__in=profile_ids).select_related("segment")
        ],
        "journeys": _journeys_export(profile_ids),
    }


def _journeys_export(profile_ids: list[int]) -> list[dict]:
    enrolments = list(
        Enrolment.objects.filter(customer_id__in=profile_ids).select_related("journey").order_by("entered_at", "pk")
    )
    steps: dict[int, list] = {enrolment.pk: [] for enrolment in enrolments}
    for run in JourneyStepRun.objects.filter(enrolment_id__in=list(steps)).order_by("ran_at", "id"):
        steps[run.enrolment_id].append(
            {"step": run.step_key, "kind": run.kind, "outcome": run.outcome, "at": _iso(run.ran_at)}
        )
    marks = set(JourneySegmentMark.objects.filter(customer_id__in=profile_ids).values_list("journey__name", flat=True))
    return [
        {
            "journey": enrolment.journey.name,
            "status": enrolment.status,
            "step": enrolment.step_key,
            "entered_at": _iso(enrolment.entered_at),
            "finished_at": _iso(enrolment.finished_at),
            "exit_reason": enrolment.exit_reason,
            "converted_at": _iso(enrolment.converted_at),
            "steps": steps[enrolment.pk],
        }
        for enrolment in enrolments
    ] + [{"journey": name, "segment_watched": True} for name in sorted(marks)]
