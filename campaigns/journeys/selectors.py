"""Journey reads for the admin: counts straight from the rows the tick runs on, so they cannot drift."""

from __future__ import annotations

import dataclasses
from collections import Counter

from django.db.models import Count, Q

from campaigns.models import Enrolment, Journey, JourneyStepRun


@dataclasses.dataclass(frozen=True)
class JourneyCounts:
    waiting: dict[str, int]  # active enrolments per step key
    completed: int
    exited: dict[str, int]  # per exit reason
    converted: int
    entered: int
    sent: dict[str, int]  # per send step key: runs that wrote deliveries
    runs: dict[str, int]  # per step key: runs of any outcome


def journey_counts(journey: Journey) -> JourneyCounts:
    """Waiting per step, completed, exited by reason, converted, and step runs per step: two GROUP BYs."""
    waiting: Counter = Counter()
    exited: Counter = Counter()
    completed = converted = entered = 0
    rows = (
        Enrolment.objects.filter(journey=journey)
        .values("status", "step_key", "exit_reason")
        .annotate(n=Count("id"), converted=Count("id", filter=Q(converted_at__isnull=False)))
        .order_by()
    )
    for row in rows:
        entered += row["n"]
        converted += row["converted"]
        if row["status"] == Enrolment.Status.ACTIVE:
            waiting[row["step_key"]] += row["n"]
        elif row["status"] == Enrolment.Status.COMPLETED:
            completed += row["n"]
        else:
            exited[row["exit_reason"]] += row["n"]
    sent: Counter = Counter()
    runs: Counter = Counter()
    for row in (
        JourneyStepRun.objects.filter(enrolment__journey=journey)
        .values("step_key", "kind", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    ):
        runs[row["step_key"]] += row["n"]
        if row["kind"] == "send" and row["outcome"] == "sent":
            sent[row["step_key"]] += row["n"]
    return JourneyCounts(
        waiting=dict(waiting),
        completed=completed,
        exited=dict(exited),
        converted=converted,
        entered=entered,
        sent=dict(sent),
        runs=dict(runs),
    )
