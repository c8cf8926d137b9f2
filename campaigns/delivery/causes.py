"""What caused deliveries, named for people: the campaign, or the journey whose step sent them."""

from __future__ import annotations

from django.urls import reverse

from campaigns.models import Campaign, Delivery, JourneyStepRun


def delivery_causes(rows) -> dict[tuple[str, int], tuple[str, str]]:
    """``{(cause_type, cause_id): (label, admin url)}`` for the deliveries ``rows``; two queries at most."""
    campaign_ids = {row.cause_id for row in rows if row.cause_type == Delivery.Cause.CAMPAIGN}
    run_ids = {row.cause_id for row in rows if row.cause_type == Delivery.Cause.JOURNEY_STEP}
    causes: dict[tuple[str, int], tuple[str, str]] = {}
    for pk, name in Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "name"):
        causes[(Delivery.Cause.CAMPAIGN, pk)] = (
            f"campaign “{name}”",
            reverse("admin:campaigns_campaign_change", args=[pk]),
        )
    runs = JourneyStepRun.objects.filter(pk__in=run_ids).values_list(
        "pk", "step_key", "enrolment__journey_id", "enrolment__journey__name"
    )
    for pk, step_key, journey_id, name in runs:
        causes[(Delivery.Cause.JOURNEY_STEP, pk)] = (
            f"journey “{name}” (step {step_key})",
            reverse("admin:campaigns_journey_change", args=[journey_id]),
        )
    return causes


def delivery_cause_label(causes: dict, row) -> tuple[str, str]:
    """The label and url of ``row``'s cause, or a plain description when it is gone."""
    return causes.get((row.cause_type, row.cause_id), (f"{row.cause_type} {row.cause_id}", ""))
