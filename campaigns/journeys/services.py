"""Journey writes: publishing a version of the steps (moving people on removed steps), pause, resume,
drain, archive. Each locks the journey row; the tick takes the same lock's weaker sibling (it reads
the status inside its own claim), so a publish and a tick never interleave on one enrolment. Each
change is recorded in the audit trail, as campaigns' are (a repeat that changes nothing is not)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Case, Count, F, Value, When
from django.utils import timezone

from campaigns import events
from campaigns.journeys.steps import EXIT, JourneyStepsError, steps_by_key, steps_validate
from campaigns.models import Enrolment, Journey, JourneyVersion

Status = Journey.Status


class JourneyStateError(ValueError):
    """The journey is not in a state that allows this."""


def _locked(journey: Journey) -> Journey:
    return Journey.objects.select_for_update().get(pk=journey.pk)


def _check_trigger(journey: Journey) -> list[str]:
    problems = []
    params = journey.trigger_params or {}
    if not isinstance(params, dict):
        return ["The trigger's settings are not settings."]
    needs_days = {
        Journey.Trigger.INACTIVITY: "days without a purchase",
        Journey.Trigger.POINTS_EXPIRING: "days before the points expire",
        Journey.Trigger.COUPON_UNREDEEMED: "days after the coupon was issued",
    }
    if journey.trigger in needs_days:
        days = params.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 3650:
            problems.append(f"The trigger needs a number of {needs_days[journey.trigger]} (1 to 3650).")
    if journey.trigger == Journey.Trigger.DATE and params.get("field", "birthday") not in ("birthday", "created_at"):
        problems.append("A date trigger reads the birthday or the sign-up date.")
    if journey.trigger == Journey.Trigger.SEGMENT_JOINED and not isinstance(params.get("segment"), int):
        problems.append("A segment trigger names the segment to watch.")
    if journey.reentry == Journey.Reentry.AFTER_DAYS and not journey.reentry_days:
        problems.append("Re-entry after a number of days needs that number.")
    return problems


@transaction.atomic
def journey_publish(
    *, journey: Journey, steps: list[dict], moves: dict[str, str] | None = None, user=None, now: datetime | None = None
) -> JourneyVersion:
    """Publish ``steps`` as the journey's next version and make the journey live.

    Locks the journey row. People inside keep their place: an enrolment whose step key still exists
    stays on it (its ``due_at`` unchanged); one on a removed step moves where ``moves`` says (a key of
    the new steps, or ``"exit"``); every active enrolment then belongs to the new version. Raises
    ``JourneyStepsError`` (nothing changed) for invalid steps, or when people wait on a removed step and
    ``moves`` does not say where they go; ``JourneyStateError`` for an archived journey. Step runs
    are keyed by enrolment and step key, so a step already run is never run again after a move.
    The first publish sets the trigger watermark to now: events from before the journey existed
    enrol nobody.
    """
    now = now or timezone.now()
    moves = dict(moves or {})
    locked = _locked(journey)
    old_status = locked.status
    if locked.status == Status.ARCHIVED:
        raise JourneyStateError("An archived journey cannot be published again.")
    steps_validate(steps)
    problems = _check_trigger(locked)
    if problems:
        raise JourneyStepsError(problems)
    keys = steps_by_key(steps)
    waiting = dict(
        Enrolment.objects.filter(journey=locked, status=Enrolment.Status.ACTIVE)
        .exclude(step_key__in=list(keys))
        .values_list("step_key")
        .annotate(n=Count("id"))
    )
    for old_key in sorted(waiting):
        target = moves.get(old_key)
        if target is None:
            problems.append(f"{waiting[old_key]} people wait on the removed step {old_key!r}: say where they go.")
        elif target != EXIT and target not in keys:
            problems.append(f"People on {old_key!r} cannot move to {target!r}, which is not a step.")
    if problems:
        raise JourneyStepsError(problems)
    previous = locked.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = JourneyVersion.objects.create(
        journey=locked,
        number=previous + 1,
        steps=steps,
        moves={key: moves[key] for key in waiting},
        published_at=now,
        published_by=user,
    )
    active = Enrolment.objects.filter(journey=locked, status=Enrolment.Status.ACTIVE)
    exits = [key for key in waiting if moves[key] == EXIT]
    if exits:
        active.filter(step_key__in=exits).update(
            status=Enrolment.Status.EXITED, exit_reason="step_removed", finished_at=now, due_at=None, version=version
        )
    relocations = {key: moves[key] for key in waiting if moves[key] != EXIT}
    if relocations:
        # A moved enrolment runs its new step at once (it was waiting for a step that no longer exists).
        active.filter(step_key__in=list(relocations)).update(
            step_key=Case(*[When(step_key=old, then=Value(new)) for old, new in relocations.items()]),
            due_at=Case(When(due_at__lt=now, then=F("due_at")), default=Value(now)),
        )
    active.update(version=version)
    locked.live_version = version
    if locked.status in (Status.DRAFT, Status.ARCHIVED) or not locked.trigger_watermark:
        locked.trigger_watermark = {"at": now.isoformat()}
    if locked.status == Status.DRAFT:
        locked.status = Status.LIVE
    locked.save(update_fields=["live_version", "status", "trigger_watermark", "updated_at"])
    events.journey_published_event(
        journey=locked, actor=user, version=version, moves=version.moves, old_status=old_status
    )
    journey.status, journey.live_version, journey.trigger_watermark = (
        locked.status,
        version,
        locked.trigger_watermark,
    )
    return version


def _move(journey: Journey, *, allowed_from: set[str], to: str, verb: str, user) -> Journey:
    with transaction.atomic():
        locked = _locked(journey)
        if locked.status == to:
            return locked
        if locked.status not in allowed_from:
            raise JourneyStateError(f"A {locked.get_status_display().lower()} journey cannot be {verb}.")
        old = locked.status
        locked.status = to
        locked.save(update_fields=["status", "updated_at"])
        events.journey_status_changed_event(journey=locked, actor=user, old=old, new=to)
    journey.status = to
    return locked


def journey_pause(*, journey: Journey, user=None) -> Journey:
    """Nobody moves and nobody enters until resumed; queued sends wait too (the claim reads the status).
    Locks the journey row; idempotent. Raises ``JourneyStateError`` from draft or archived."""
    return _move(journey, allowed_from={Status.LIVE, Status.DRAINING}, to=Status.PAUSED, verb="paused", user=user)


def journey_resume(*, journey: Journey, user=None) -> Journey:
    """Live again: due steps run at the next tick, and trigger events since the pause are caught up from
    the watermark. Locks the journey row; idempotent."""
    return _move(journey, allowed_from={Status.PAUSED, Status.DRAINING}, to=Status.LIVE, verb="resumed", user=user)


def journey_drain(*, journey: Journey, user=None) -> Journey:
    """No new entries; people inside finish their steps. Locks the journey row; idempotent."""
    return _move(journey, allowed_from={Status.LIVE, Status.PAUSED}, to=Status.DRAINING, verb="drained", user=user)


@transaction.atomic
def journey_archive(*, journey: Journey, user=None, now: datetime | None = None) -> Journey:
    """Stop the journey for good: everyone still inside exits (reason ``archived``); queued sends are
    no longer claimed. Locks the journey row; idempotent."""
    now = now or timezone.now()
    locked = _locked(journey)
    if locked.status != Status.ARCHIVED:
        Enrolment.objects.filter(journey=locked, status=Enrolment.Status.ACTIVE).update(
            status=Enrolment.Status.EXITED, exit_reason="archived", finished_at=now, due_at=None
        )
        old = locked.status
        locked.status = Status.ARCHIVED
        locked.save(update_fields=["status", "updated_at"])
        events.journey_status_changed_event(journey=locked, actor=user, old=old, new=Status.ARCHIVED)
    journey.status = Status.ARCHIVED
    return locked
