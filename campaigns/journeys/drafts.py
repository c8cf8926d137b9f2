"""Writes of the journey editor: the journey's fields, its draft steps, and handing a draft to publish.

The steps being edited are a draft ``JourneyVersion`` (``published_at`` NULL), one per journey at most,
so an edit in progress survives a reload and never touches what is live. Publishing hands the draft's
steps to the engine's ``journey_publish`` and drops the draft in the same transaction: when publishing
refuses, the transaction rolls back and the draft is still there.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from campaigns.exceptions import CampaignError
from campaigns.journeys.selectors_admin import journey_draft
from campaigns.models import Journey, JourneyVersion


class JourneyEngineMissing(CampaignError):
    """Publishing is not available in this installation."""


@transaction.atomic
def journey_save(*, journey: Journey, actor) -> Journey:
    """Create or update a journey's own fields (the editor's form has set them). No lock: last write wins,
    as for every admin form; what is live only changes by publishing."""
    if journey.pk is None and getattr(actor, "is_authenticated", False):
        journey.created_by = actor
    journey.save()
    return journey


@transaction.atomic
def journey_draft_save(*, journey: Journey, steps: list[dict], actor) -> JourneyVersion | None:
    """Store ``steps`` as the journey's draft, creating the draft version when there is none.

    Steps equal to the live version's are no draft: an existing draft is dropped and ``None`` returned.

    Locks the journey row, so two editors saving at once make one draft, not two. Idempotent for the
    same steps. The draft's number follows the highest number used so far; the engine numbers the
    published version itself (the draft is dropped before it publishes).
    """
    Journey.objects.select_for_update().filter(pk=journey.pk).first()
    draft = journey_draft(journey)
    live = JourneyVersion.objects.filter(pk=journey.live_version_id).first() if journey.live_version_id else None
    if live is not None and live.steps == steps:
        if draft is not None:
            draft.delete()
        return None
    if draft is None:
        top = JourneyVersion.objects.filter(journey=journey).aggregate(top=Max("number"))["top"] or 0
        return JourneyVersion.objects.create(journey=journey, number=top + 1, steps=steps)
    if draft.steps != steps:
        draft.steps = steps
        draft.save(update_fields=["steps"])
    return draft


@transaction.atomic
def journey_draft_publish(*, journey: Journey, moves: dict[str, str], actor):
    """Publish the journey's draft through the engine's ``journey_publish`` and drop the draft.

    Locks the journey row. ``moves`` maps each removed step that has people on it to a step of the draft
    or ``"exit"``. Raises ``JourneyEngineMissing`` when the engine is not installed, ``CampaignError`` when
    there is no draft, and whatever ``journey_publish`` raises (the transaction rolls back, the draft stays).
    """
    try:
        from campaigns.journeys.services import journey_publish
    except ImportError as exc:
        raise JourneyEngineMissing("Publishing journeys is not available in this installation yet.") from exc
    Journey.objects.select_for_update().filter(pk=journey.pk).first()
    draft = journey_draft(journey)
    if draft is None:
        raise CampaignError("There are no unpublished changes to publish.")
    steps = draft.steps
    draft.delete()
    return journey_publish(journey=journey, steps=steps, moves=moves, user=actor)
