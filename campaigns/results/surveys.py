"""NPS over time: the survey answers of each week (or month) of the period, with the score's parts."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from campaigns.results.periods import Period
from campaigns.results.selectors import DETRACTOR_HIGHEST, PROMOTER_LOWEST
from campaigns.results.tables import Table
from customers.models import SurveyResponse

#: periods up to this many days are shown week by week, longer ones month by month
WEEKLY_UP_TO_DAYS = 92


@dataclasses.dataclass(frozen=True)
class Bucket:
    first_day: date
    last_day: date


def buckets(period: Period, unit: str) -> list[Bucket]:
    """The weeks (Monday to Sunday) or calendar months covering ``period``, clipped to it."""
    result = []
    day = period.first_day
    while day <= period.last_day:
        if unit == "week":
            end = day + timedelta(days=6 - day.weekday())
        else:
            end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        end = min(end, period.last_day)
        result.append(Bucket(day, end))
        day = end + timedelta(days=1)
    return result


def nps_score(promoters: int, detractors: int, answers: int) -> float | None:
    """% promoters - % detractors, one decimal; ``None`` without answers (no score, not a score of 0)."""
    if not answers:
        return None
    return round(100 * (promoters - detractors) / answers, 1)


def nps_over_time(period: Period, *, unit: str | None = None) -> Table:
    """NPS per week (periods up to 92 days) or per month, with answers, promoters, passives and detractors;
    one query (answers grouped by day in the database, days put into buckets here).

    A week or month without answers is a row with zero answers and no score.
    """
    unit = unit or ("week" if period.days <= WEEKLY_UP_TO_DAYS else "month")
    per_day = (
        SurveyResponse.objects.filter(answered_at__gte=period.start, answered_at__lt=period.end)
        .order_by()
        .annotate(day=TruncDate("answered_at"))
        .values("day")
        .annotate(
            answers=Count("pk"),
            promoters=Count("pk", filter=Q(score__gte=PROMOTER_LOWEST)),
            detractors=Count("pk", filter=Q(score__lte=DETRACTOR_HIGHEST)),
        )
    )
    days = {
        (row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))): row for row in per_day
    }
    table_rows = []
    for bucket in buckets(period, unit):
        answers = promoters = detractors = 0
        for day, row in days.items():
            if bucket.first_day <= day <= bucket.last_day:
                answers += row["answers"]
                promoters += row["promoters"]
                detractors += row["detractors"]
        table_rows.append(
            [
                bucket.first_day.isoformat(),
                bucket.last_day.isoformat(),
                answers,
                promoters,
                answers - promoters - detractors,
                detractors,
                nps_score(promoters, detractors, answers),
            ]
        )
    return Table(
        "nps_trend",
        f"NPS per {unit}",
        ["from", "to", "answers", "promoters (9-10)", "passives (7-8)", "detractors (0-6)", "NPS"],
        table_rows,
        f"Each {unit} of the period (weeks run Monday to Sunday, cut at the period's ends); a changed answer "
        f"counts once, at its latest date. No score for a {unit} without answers.",
    )
