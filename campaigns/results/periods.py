"""The period a dashboard shows and the one before it, of the same length."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta

from django.utils import timezone

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclasses.dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date  # inclusive

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first_day, time.min))

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return timezone.make_aware(datetime.combine(self.last_day + timedelta(days=1), time.min))

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def previous(self) -> Period:
        return Period(self.first_day - timedelta(days=self.days), self.first_day - timedelta(days=1))

    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range(self.days)]

    def __str__(self) -> str:
        return f"{self.first_day:%Y-%m-%d} to {self.last_day:%Y-%m-%d}"


def period_from(first: str | None, last: str | None, *, today: date | None = None) -> tuple[Period, str]:
    """The period asked for (ISO dates), or the last 30 days; with a sentence when the input was refused."""
    today = today or timezone.localdate()
    default = Period(today - timedelta(days=DEFAULT_DAYS - 1), today)
    if not first and not last:
        return default, ""
    try:
        first_day = date.fromisoformat(first or "")
        last_day = date.fromisoformat(last or "")
    except ValueError:
        return default, "Dates must be given as YYYY-MM-DD; showing the last 30 days."
    if last_day < first_day:
        return default, "The period ends before it starts; showing the last 30 days."
    if (last_day - first_day).days + 1 > MAX_DAYS:
        return default, f"A period is at most {MAX_DAYS} days; showing the last 30 days."
    return Period(first_day, last_day), ""
