"""A dry run: who would enter a journey in the next days, and what each would receive when.

Read only, from current data, before publishing. Time-based triggers (a date, inactivity, points
expiring, a coupon not redeemed, a replenishment due) are computed exactly: who crosses the threshold
in the window, and when.
Event triggers (consent confirmed, a first capture, a purchase, a tier change) cannot be foreseen: the
last window's events stand in as an estimate, each shifted one window ahead, and the result says so.
Then the steps are walked for each entrant: waits add time (a wait until a time of day lands in the
customer's zone), a branch shows both of its paths (with the share a random split sends each way).
Consent, caps and quiet hours are applied at send time and are not simulated here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from campaigns.journeys.steps_form import names_load, step_summary
from campaigns.models import Enrolment, Journey, Variant
from customers.models import Customer

SHOWN = 50
MAX_STEPS_WALKED = 40
MAX_PATHS = 8


@dataclasses.dataclass
class Planned:
    at: dt.datetime
    text: str


@dataclasses.dataclass
class Path:
    label: str  # "" for the only path, else e.g. "yes (30%) → no"
    items: list[Planned]


@dataclasses.dataclass
class Entrant:
    customer: Customer
    enters_at: dt.datetime
    paths: list[Path]


@dataclasses.dataclass
class DryRun:
    window_days: int
    estimate: bool
    note: str
    total: int
    entrants: list[Entrant]


def _zone_of(customer: Customer, default: str) -> zoneinfo.ZoneInfo:
    for name in (customer.time_zone, getattr(customer.home_store, "time_zone", "") if customer.home_store_id else ""):
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo(default)


def _birthday_in(year: int, birthday: dt.date) -> dt.date:
    try:
        return birthday.replace(year=year)
    except ValueError:  # 29 February outside a leap year: the 28th
        return dt.date(year, 2, 28)


def _date_entrants(journey: Journey, now: dt.datetime, window: dt.timedelta, default_zone: str):
    params = journey.trigger_params or {}
    field = params.get("field", "birthday")
    at = dt.time.fromisoformat(params.get("time") or "09:00")
    # Every (month, day) some zone can be on in the window; exact instants are checked per customer below.
    days = {(now + dt.timedelta(days=offset)).date() for offset in range(-1, window.days + 2)}
    candidates = Customer.objects.select_related("home_store")
    if field == "signup":
        candidates = candidates.filter(created_at__lt=now - dt.timedelta(days=300))
        dates = {(day.month, day.day) for day in days}
        candidates = [c for c in candidates.iterator() if (c.created_at.month, c.created_at.day) in dates]
    else:
        candidates = candidates.filter(birthday__month__in={day.month for day in days}, birthday__isnull=False)
    for customer in candidates:
        zone = _zone_of(customer, default_zone)
        anniversary = customer.birthday if field == "birthday" else customer.created_at.astimezone(zone).date()
        local_today = now.astimezone(zone).date()
        for offset in range(-1, window.days + 2):
            day = local_today + dt.timedelta(days=offset)
            if _birthday_in(day.year, anniversary) != day:
                continue
            if field == "signup" and day.year <= anniversary.year:
                continue
            enters = dt.datetime.combine(day, at, tzinfo=zone)
            if now <= enters < now + window:
                yield customer.pk, enters


def _threshold_entrants(journey: Journey, now: dt.datetime, window: dt.timedelta):
    from customers.models import Purchase
    from loyalty.models import CouponCode, LedgerEntry

    params = journey.trigger_params or {}
    days = dt.timedelta(days=int(params.get("days") or 0))
    if journey.trigger == Journey.Trigger.INACTIVITY:
        rows = (
            Purchase.objects.filter(customer__isnull=False)
            .values("customer_id")
            .annotate(last=Max("occurred_at"))
            .filter(last__gt=now - days, last__lte=now - days + window)
            .order_by()
        )
        return [(row["customer_id"], row["last"] + days) for row in rows]
    if journey.trigger == Journey.Trigger.POINTS_EXPIRING:
        rows = (
            LedgerEntry.objects.filter(
                points__gt=0,
                account__points_balance__gt=0,
                expires_at__gt=now + days,
                expires_at__lte=now + days + window,
            )
            .values("account__customer_id")
            .annotate(first=Min("expires_at"))
            .order_by()
        )
        return [(row["account__customer_id"], row["first"] - days) for row in rows]
    if journey.trigger == Journey.Trigger.COUPON_UNREDEEMED:
        codes = CouponCode.objects.filter(
            account__isnull=False, uses=0, is_void=False, issued_at__gt=now - days, issued_at__lte=now - days + window
        )
        if params.get("offer_id"):
            codes = codes.filter(offer_id=params["offer_id"])
        rows = codes.values_list("account__customer_id", "issued_at")
        return [(customer_id, issued + days) for customer_id, issued in rows]
    return []


def _replenishment_entrants(journey: Journey, now: dt.datetime, window: dt.timedelta, default_zone: str):
    """Latest purchases in a category that runs out after N days whose N-th local day at the journey's
    time falls in the window (each customer's zone as the dry run reads it)."""
    from django.db.models import Exists, OuterRef, Q

    from customers.models import ProductCategory, PurchaseCategory

    params = journey.trigger_params or {}
    at = dt.time.fromisoformat(params.get("time") or "09:00")
    categories = ProductCategory.objects.filter(is_active=True, replenish_after_days__isnull=False)
    if params.get("category_ids"):
        categories = categories.filter(pk__in=params["category_ids"])
    for category in categories:
        days = dt.timedelta(days=category.replenish_after_days)
        later = PurchaseCategory.objects.filter(
            category=category, purchase__customer_id=OuterRef("purchase__customer_id")
        ).filter(
            Q(purchase__occurred_at__gt=OuterRef("purchase__occurred_at"))
            | Q(purchase__occurred_at=OuterRef("purchase__occurred_at"), purchase_id__gt=OuterRef("purchase_id"))
        )
        lines = (
            PurchaseCategory.objects.filter(
                category=category,
                purchase__customer__isnull=False,
                purchase__occurred_at__gte=now - days - dt.timedelta(days=2),
                purchase__occurred_at__lt=now + window - days + dt.timedelta(days=2),
            )
            .filter(~Exists(later))
            .select_related("purchase__customer__home_store")
        )
        for line in lines:
            customer = line.purchase.customer
            zone = _zone_of(customer, default_zone)
            due = line.purchase.occurred_at.astimezone(zone).date() + days
            enters = dt.datetime.combine(due, at, tzinfo=zone)
            if now <= enters < now + window:
                yield customer.pk, enters


def _event_entrants(journey: Journey, now: dt.datetime, window: dt.timedelta):
    """Last window's events, each moved one window ahead."""
    from customers.models import ConsentState, Purchase, Source
    from loyalty.models import TierChange

    params = journey.trigger_params or {}
    since = now - window
    if journey.trigger == Journey.Trigger.CONSENT_CONFIRMED:
        states = ConsentState.objects.filter(confirmed_at__gte=since, confirmed_at__lt=now)
        if params.get("channel") in ("email", "sms"):
            states = states.filter(channel=params["channel"])
        rows = states.values_list("customer_id", "confirmed_at")
    elif journey.trigger == Journey.Trigger.FIRST_CAPTURE:
        captured = Customer.objects.filter(source=Source.STORE, created_at__gte=since, created_at__lt=now)
        if params.get("store_ids"):
            captured = captured.filter(source_store_id__in=params["store_ids"])
        rows = captured.values_list("pk", "created_at")
    elif journey.trigger == Journey.Trigger.PURCHASE:
        purchases = Purchase.objects.filter(customer__isnull=False, occurred_at__gte=since, occurred_at__lt=now)
        if params.get("channel") in ("store", "online"):
            purchases = purchases.filter(channel=params["channel"])
        if params.get("store_ids"):
            purchases = purchases.filter(store_id__in=params["store_ids"])
        if params.get("category_ids"):
            purchases = purchases.filter(categories__in=params["category_ids"]).distinct()
        rows = purchases.values_list("customer_id", "occurred_at")
    elif journey.trigger == Journey.Trigger.TIER_CHANGED:
        changes = TierChange.objects.filter(occurred_at__gte=since, occurred_at__lt=now)
        if params.get("tier_ids"):
            changes = changes.filter(to_tier_id__in=params["tier_ids"])
        rows = changes.values_list("account__customer_id", "occurred_at")
    else:
        rows = []
    return [(customer_id, at + window) for customer_id, at in rows]


def _next_wall_time(at: dt.datetime, zone: zoneinfo.ZoneInfo, time_text: str, weekdays: list[int]) -> dt.datetime:
    wall = dt.time.fromisoformat(time_text or "09:00")
    allowed = set(weekdays or range(7))
    local = at.astimezone(zone)
    for offset in range(8):
        day = local.date() + dt.timedelta(days=offset)
        candidate = dt.datetime.combine(day, wall, tzinfo=zone)
        if day.weekday() in allowed and candidate >= local:
            return candidate
    return local


def _walk(steps, *, customer, at, zone, names, channels) -> list[Path]:
    by_key = {step.get("key"): step for step in steps}
    paths: list[Path] = []

    def go(key, when, label, items, walked):
        if len(paths) >= MAX_PATHS:
            return
        while key in by_key and walked < MAX_STEPS_WALKED:
            step = by_key[key]
            walked += 1
            kind = step.get("kind")
            if kind == "wait":
                when = when + dt.timedelta(hours=int(step.get("hours") or 0))
            elif kind == "wait_until":
                when = _next_wall_time(when, zone, step.get("time"), step.get("weekdays"))
            elif kind == "branch":
                condition = step.get("condition") or {}
                share = condition.get("random")
                if share:
                    yes, no = f"random split: yes ({share}%)", f"random split: no ({100 - int(share)}%)"
                else:
                    question = step_summary(step, names).rstrip("?")
                    yes, no = f"{question}: yes", f"{question}: no"
                go(step.get("yes"), when, _join(label, yes), list(items), walked)
                go(step.get("no"), when, _join(label, no), list(items), walked)
                return
            elif kind == "exit":
                break
            elif kind == "send":
                message_channels = [c for c in channels.get(step.get("message"), []) if _has_address(customer, c)]
                via = " or ".join(message_channels) if message_channels else "no channel they can be reached on"
                items.append(Planned(at=when, text=f"{step_summary(step, names)} by {via}"))
            else:
                items.append(Planned(at=when, text=step_summary(step, names)))
            key = step.get("next")
        paths.append(Path(label=label, items=items))

    if steps:
        go(steps[0].get("key"), at, "", [], 0)
    return paths


def _join(label: str, part: str) -> str:
    return f"{label} → {part}" if label else part


def _has_address(customer: Customer, channel: str) -> bool:
    return bool(customer.email) if channel == "email" else bool(customer.phone) if channel == "sms" else True


def journey_dry_run(
    *, journey: Journey, steps: list[dict], now: dt.datetime | None = None, days: int = 7, shown: int = SHOWN
) -> DryRun:
    """Who would enter ``journey`` within ``days`` from ``now`` and what ``steps`` would give each, when.

    Read only. The first ``shown`` entrants (earliest first) are walked; ``total`` counts them all. Entry
    segment and re-entry "never" (people already enrolled) are applied; erased and merged profiles skipped.
    """
    now = now or timezone.now()
    window = dt.timedelta(days=days)
    default_zone = settings.TIME_ZONE or "UTC"
    estimate = journey.trigger not in (
        Journey.Trigger.DATE,
        Journey.Trigger.INACTIVITY,
        Journey.Trigger.POINTS_EXPIRING,
        Journey.Trigger.COUPON_UNREDEEMED,
        Journey.Trigger.REPLENISHMENT_DUE,
    )
    if journey.trigger == Journey.Trigger.DATE:
        found = list(_date_entrants(journey, now, window, default_zone))
    elif journey.trigger == Journey.Trigger.REPLENISHMENT_DUE:
        found = list(_replenishment_entrants(journey, now, window, default_zone))
    elif estimate:
        found = _event_entrants(journey, now, window)
    else:
        found = _threshold_entrants(journey, now, window)
    note = ""
    if journey.trigger == Journey.Trigger.SEGMENT_JOINED:
        note = "Who will join a segment cannot be foreseen from current data; nobody is listed."
    elif estimate:
        note = (
            f"An estimate: this trigger fires on events, so the last {days} days' events stand in for the next "
            f"{days}, each moved {days} days ahead."
        )

    first: dict[int, dt.datetime] = {}
    for customer_id, enters in found:
        if customer_id is not None and (customer_id not in first or enters < first[customer_id]):
            first[customer_id] = enters
    eligible = Customer.objects.filter(pk__in=list(first), erased_at__isnull=True, merged_into__isnull=True)
    if journey.entry_segment_id:
        from campaigns.audience import segment_member_q

        eligible = eligible.filter(segment_member_q(journey.entry_segment, now=now))
    if journey.reentry == Journey.Reentry.NEVER and journey.pk:
        eligible = eligible.exclude(pk__in=Enrolment.objects.filter(journey=journey).values("customer_id"))
    ids = set(eligible.values_list("pk", flat=True))
    ordered = sorted((enters, customer_id) for customer_id, enters in first.items() if customer_id in ids)

    shown_ids = [customer_id for _enters, customer_id in ordered[:shown]]
    customers = Customer.objects.select_related("home_store").in_bulk(shown_ids)
    names = names_load(steps)
    message_ids = {step.get("message") for step in steps if step.get("kind") == "send"}
    channels: dict[int, list[str]] = {}
    for message_id, channel in (
        Variant.objects.filter(message_id__in=message_ids, persona__isnull=True)
        .order_by("channel")
        .values_list("message_id", "channel")
    ):
        channels.setdefault(message_id, []).append(channel)
    entrants = []
    for enters, customer_id in ordered[:shown]:
        customer = customers[customer_id]
        zone = _zone_of(customer, default_zone)
        paths = _walk(steps, customer=customer, at=enters, zone=zone, names=names, channels=channels)
        entrants.append(Entrant(customer=customer, enters_at=enters, paths=paths))
    return DryRun(window_days=days, estimate=estimate, note=note, total=len(ordered), entrants=entrants)
