"""Reads for the journey admin: the steps being edited, live counts per step, a customer's journeys, and
the journey's history."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count

from campaigns.models import AuditEvent, Enrolment, Journey, JourneyStepRun, JourneyVersion


def journey_draft(journey: Journey) -> JourneyVersion | None:
    """The journey's unpublished version, if an edit is in progress."""
    if journey.pk is None:
        return None
    return JourneyVersion.objects.filter(journey=journey, published_at__isnull=True).order_by("-number").first()


def journey_audit(journey: Journey, *, limit: int = 50) -> list[AuditEvent]:
    """The journey's audit events (publishing, pausing, resuming, draining, archiving), newest first."""
    events = AuditEvent.objects.filter(subject_type=Journey._meta.model_name, subject_id=journey.pk)
    return list(events.select_related("actor").order_by("-occurred_at", "-id")[:limit])


def journey_steps_for_editing(journey: Journey) -> list[dict]:
    """The draft's steps, else the live version's, else none (a new journey)."""
    draft = journey_draft(journey)
    if draft is not None:
        return list(draft.steps)
    if journey.live_version_id:
        return list(journey.live_version.steps)
    return []


def journey_step_counts(journey: Journey) -> dict[str, dict[str, int]]:
    """Per step key: ``waiting`` (active enrolments whose next step it is) and ``passed`` (step runs).

    Two grouped queries over the rows the engine's tick reads and writes, so the figures are what runs.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"waiting": 0, "passed": 0})
    waiting = (
        Enrolment.objects.filter(journey=journey, status=Enrolment.Status.ACTIVE)
        .values("step_key")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in waiting:
        counts[row["step_key"]]["waiting"] = row["n"]
    passed = (
        JourneyStepRun.objects.filter(enrolment__journey=journey).values("step_key").annotate(n=Count("id")).order_by()
    )
    for row in passed:
        counts[row["step_key"]]["passed"] = row["n"]
    return dict(counts)


def journey_removed_steps_with_people(journey: Journey, steps: list[dict]) -> list[tuple[str, int]]:
    """(step key, people waiting there) for the live steps ``steps`` would remove that have people on them."""
    if not journey.live_version_id:
        return []
    kept = {step.get("key") for step in steps}
    waiting = (
        Enrolment.objects.filter(journey=journey, status=Enrolment.Status.ACTIVE)
        .exclude(step_key__in=kept)
        .values("step_key")
        .annotate(n=Count("id"))
        .order_by("step_key")
    )
    return [(row["step_key"], row["n"]) for row in waiting if row["step_key"]]


def journey_timeline_entries(profile_ids) -> list:
    """The customer's enrolments and the steps they went through, as 360° timeline entries (two queries)."""
    from campaigns.journeys.steps_form import names_load, step_labels
    from customers.selectors import TimelineEntry

    enrolments = list(
        Enrolment.objects.filter(customer_id__in=list(profile_ids))
        .select_related("journey", "version")
        .order_by("-entered_at")[:50]
    )
    if not enrolments:
        return []
    runs = defaultdict(list)
    for run in JourneyStepRun.objects.filter(enrolment__in=enrolments).order_by("ran_at", "id"):
        runs[run.enrolment_id].append(run)
    entries = []
    for enrolment in enrolments:
        steps = enrolment.version.steps or []
        labels = step_labels(steps, names_load(steps))
        if enrolment.status == Enrolment.Status.ACTIVE:
            where = f"next: {labels.get(enrolment.step_key, enrolment.step_key)}"
        else:
            reason = f" ({enrolment.exit_reason})" if enrolment.exit_reason else ""
            where = enrolment.get_status_display().lower() + reason
        entries.append(
            TimelineEntry(
                at=enrolment.entered_at,
                kind="journey",
                title=f"Entered journey “{enrolment.journey.name}”: {where}",
                details={
                    "Version": enrolment.version.number,
                    "Entry": enrolment.entry_key or "first entry",
                    "Next step due": enrolment.due_at or "",
                    "Finished at": enrolment.finished_at or "",
                    "Goal met at": enrolment.converted_at or "",
                },
            )
        )
        for run in runs[enrolment.pk]:
            entries.append(
                TimelineEntry(
                    at=run.ran_at,
                    kind="journey",
                    title=f"Journey “{enrolment.journey.name}”: {labels.get(run.step_key, run.step_key)}"
                    + (f" — {run.outcome}" if run.outcome else ""),
                    details={"Step": run.step_key, "Kind": run.kind},
                )
            )
    return entries
