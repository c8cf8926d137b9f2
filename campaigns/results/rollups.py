"""Keeping the daily roll-ups (``campaigns.models.rollups``) current, incrementally.

How a refresh finds what to redo. Profiles, purchases and deliveries carry no index on their times
(each would cost every write a B-tree insert), so a refresh reads them once per run, but re-aggregates
only what changed:

- the last ``RECENT_DAYS`` days, always: today's rows keep arriving, and a transaction that started
  before the previous run may commit after it;
- days of rows written since the watermark (the previous run's start less ``WATERMARK_SLACK``), found
  from the rows themselves rather than from marks the writing services would have to leave: a profile
  saved (created, merged, erased: each goes through ``save()``, which moves ``updated_at``) marks its
  creation day; checkout consent evidence marks its profile's creation day; a purchase marks the day it
  occurred; a refund (a REVERSE ledger entry) marks its purchase's day;
- campaigns, not days, for deliveries, since only the campaign finds its deliveries through an index
  (their unique key): campaigns still sending or finished since the watermark, those whose deliveries
  got a provider event since (opens, clicks, bounces arrive as events), and those whose offer had a
  redemption written or cancelled since, or one by a profile merged since (a merge lets the survivor
  redeem what the duplicate was sent);
- campaigns, too, for a campaign's results page (its funnel, code redemptions and holdout lift, whole):
  those above, and for the lift, campaigns holding people out whose attribution window covers a day of
  the purchases found above, or that messaged a profile merged since;
- everything for lifetime value and cohorts when any purchase changed since, and for survey answers
  every run: a backdated purchase or a changed answer moves figures on days other than its own, and each
  is one pass over its table.

Re-aggregating a day replaces its rows, so a refresh is idempotent; runs are serialised on the state
row (a second run that finds it locked does nothing), and readers see the old rows until the new ones
commit. The first run, or ``full=True``, rebuilds everything.

Today is not computed live: without a time index that would scan the base tables on each page view.
The beat runs the refresh every five minutes (``results-rollups-refresh`` in the settings) instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case, Count, Exists, F, Max, Min, OuterRef, Q, Sum, When
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone

from campaigns.audience import sendable_q
from campaigns.models import (
    BuyerDay,
    Campaign,
    CampaignFunnelCount,
    CampaignSummary,
    CodeRedemption,
    CohortDay,
    Delivery,
    DeliveryEvent,
    HealthDay,
    JourneyDay,
    JourneySendDay,
    ProfileDay,
    PurchaseDay,
    PurchaseTouch,
    ReachableCount,
    RollupState,
    SendDay,
    SignupDay,
    SurveyDay,
    ValueDay,
)
from campaigns.results.selectors import JOURNEY_SEND_SLACK, campaign_ids_touching
from campaigns.results.sql import minus, qn, refunded, rows, subquery
from campaigns.results.tables import money
from customers.models import Channel, ConsentEvidence, ConsentMethod, Customer, Purchase, SurveyResponse
from loyalty.customer_record import REFUND_KEY_PREFIX
from loyalty.models import LedgerEntry, Redemption

STATE = "results"
RECENT_DAYS = 2
WATERMARK_SLACK = timedelta(minutes=10)
# The longest attribution window the touches answer for (the admin offers up to 90 days).
TOUCH_HORIZON = timedelta(days=90)
REACHABLE_MAX_AGE = timedelta(minutes=30)
CAMPAIGN = Delivery.Cause.CAMPAIGN


def _day(value) -> date:
    """A date from what a backend returns for a truncated date (a date, or ISO text on SQLite)."""
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _days(queryset, field: str) -> set[date]:
    return {_day(value) for value in queryset.annotate(_d=TruncDate(field)).values_list("_d", flat=True).distinct()}


def _recent(now: datetime) -> set[date]:
    today = timezone.localdate(now)
    return {today - timedelta(days=n) for n in range(RECENT_DAYS)}


def _checkout_grant() -> Q:
    return Q(action="grant", method=ConsentMethod.CHECKOUT, channel__in=[Channel.EMAIL, Channel.SMS])


# --- profiles ---------------------------------------------------------------------------------------


def profile_days_dirty(since: datetime) -> set[date]:
    saved = Customer.objects.filter(updated_at__gte=since).order_by()
    opted = Customer.objects.filter(
        pk__in=ConsentEvidence.objects.filter(_checkout_grant(), recorded_at__gte=since).values("customer_id")
    ).order_by()
    buying = Customer.objects.filter(pk__in=Purchase.objects.filter(created_at__gte=since).values("customer_id"))
    return _days(saved, "created_at") | _days(opted, "created_at") | _days(buying.order_by(), "created_at")


def _replace(existing, model, rows) -> int:
    """Delete ``existing`` roll-up rows and write ``rows`` (``model`` instances) in their place; returns how many."""
    existing.delete()
    return len(model.objects.bulk_create(rows, batch_size=2000))


def profile_days_build(days: set[date] | None) -> int:
    """Replace the profile rows of ``days`` (all of them when None); returns the rows written."""
    opted = Exists(ConsentEvidence.objects.filter(_checkout_grant(), customer_id=OuterRef("pk")))
    customers = Customer.objects.filter(merged_into__isnull=True).order_by().annotate(day=TruncDate("created_at"))
    existing = ProfileDay.objects.all()
    if days is not None:
        customers, existing = customers.filter(day__in=days), existing.filter(day__in=days)
    grouped = customers.alias(opted=opted).values("day", "source", "source_store_id", "source_clerk_id")
    bought = Exists(Purchase.objects.filter(customer_id=OuterRef("pk")))
    grouped = grouped.alias(bought=bought).annotate(
        profiles=Count("pk"),
        opted_in=Count("pk", filter=Q(opted=True)),
        never_bought=Count("pk", filter=Q(bought=False)),
    )
    return _replace(
        existing,
        ProfileDay,
        [
            ProfileDay(
                day=_day(row["day"]),
                source=row["source"],
                source_store_id=row["source_store_id"],
                source_clerk_id=row["source_clerk_id"],
                profiles=row["profiles"],
                checkout_opt_ins=row["opted_in"],
                never_bought=row["never_bought"],
            )
            for row in grouped
        ],
    )


# --- purchases --------------------------------------------------------------------------------------


def _refunds_since(since: datetime):
    return LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.REVERSE, idempotency_key__startswith=REFUND_KEY_PREFIX, created_at__gte=since
    )


def purchase_days_dirty(since: datetime) -> set[date]:
    written = Purchase.objects.filter(created_at__gte=since).order_by()
    refunded_since = Purchase.objects.filter(pk__in=_refunds_since(since).values("purchase_id")).order_by()
    # A merge moves the duplicate's purchases to the survivor, and the duplicate's messages count for them.
    survivors = Customer.objects.filter(updated_at__gte=since, merged_into__isnull=False).values("merged_into_id")
    merged = Purchase.objects.filter(customer_id__in=survivors).order_by()
    return _days(written, "occurred_at") | _days(refunded_since, "occurred_at") | _days(merged, "occurred_at")


def purchase_days_build(days: set[date] | None) -> int:
    """Replace the purchase rows of ``days`` (all of them when None); returns the rows written."""
    purchases = Purchase.objects.order_by().annotate(day=TruncDate("occurred_at"))
    existing = PurchaseDay.objects.all()
    if days is not None:
        purchases, existing = purchases.filter(day__in=days), existing.filter(day__in=days)
    grouped = (
        purchases.alias(is_refunded=refunded())
        .values("day", "channel")
        .annotate(
            orders=Count("pk", filter=Q(is_refunded=False)),
            revenue=Sum("amount", filter=Q(is_refunded=False), default=0),
            refunded=Sum("amount", filter=Q(is_refunded=True), default=0),
        )
    )
    return _replace(
        existing,
        PurchaseDay,
        [
            PurchaseDay(
                day=_day(row["day"]),
                channel=row["channel"],
                kept_orders=row["orders"],
                net_revenue=row["revenue"],
                refunded_amount=row["refunded"],
            )
            for row in grouped
        ],
    )


def buyer_days_build(days: set[date] | None) -> int:
    """Replace the buyers' rows of ``days`` (all when None): kept purchases per buyer and day, by place."""
    purchases = Purchase.objects.filter(customer__isnull=False).alias(is_refunded=refunded()).filter(is_refunded=False)
    purchases = purchases.order_by().annotate(day=TruncDate("occurred_at"))
    existing = BuyerDay.objects.all()
    if days is not None:
        purchases, existing = purchases.filter(day__in=days), existing.filter(day__in=days)
    inner, params = subquery(
        purchases.values("day", "customer_id").annotate(
            store=Count("pk", filter=Q(channel="store")), online=Count("pk", filter=Q(channel="online"))
        )
    )
    existing.delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(BuyerDay._meta.db_table)} (day, customer_id, store_orders, online_orders) "  # noqa: S608
            f"SELECT b.day, b.customer_id, b.store, b.online FROM {inner} b",
            params,
        )
        return cursor.rowcount


def value_days_build() -> int:
    """Rebuild the lifetime-value changes from every purchase kept (one statement; replaces all rows).

    Not by day: a purchase changes the place mix of its buyer from that day on, so a backdated one moves
    rows on other days. One pass over the purchases grouped by buyer, day and place.
    """
    kept = (
        Purchase.objects.filter(customer__isnull=False)
        .alias(is_refunded=refunded())
        .filter(is_refunded=False)
        .order_by()
        .annotate(day=TruncDate("occurred_at"))
        .values("customer_id", "day", "channel")
        .annotate(spend=Sum("amount"))
    )
    inner, params = subquery(kept)
    # Each kept purchase adds its spend to its own place on its day, moved to "both" from the day of the
    # buyer's first purchase in the other place; each buyer is counted in the place of their first
    # purchase, moved to "both" once they have bought in each.
    changes = (
        f"WITH k AS {inner}, "  # noqa: S608 (SQL built here)
        "f AS (SELECT customer_id, MIN(CASE WHEN channel = 'store' THEN day END) AS fs, "
        "MIN(CASE WHEN channel = 'online' THEN day END) AS fo FROM k GROUP BY customer_id), "
        "s AS (SELECT k.day AS day, k.channel AS channel, k.spend AS spend, "
        "CASE WHEN k.channel = 'store' THEN f.fo ELSE f.fs END AS other "
        "FROM k JOIN f ON f.customer_id = k.customer_id), "
        "c AS (SELECT day, CASE WHEN other IS NULL OR day < other THEN channel ELSE 'both' END AS mix, "
        "0 AS buyers, spend FROM s "
        "UNION ALL SELECT other, channel, 0, -spend FROM s WHERE other IS NOT NULL AND day < other "
        "UNION ALL SELECT other, 'both', 0, spend FROM s WHERE other IS NOT NULL AND day < other "
        "UNION ALL SELECT CASE WHEN fo IS NULL OR fs <= fo THEN fs ELSE fo END, "
        "CASE WHEN fs = fo THEN 'both' WHEN fo IS NULL OR fs < fo THEN 'store' ELSE 'online' END, 1, 0 FROM f "
        "UNION ALL SELECT CASE WHEN fs < fo THEN fo ELSE fs END, CASE WHEN fs < fo THEN 'store' ELSE 'online' END, "
        "-1, 0 FROM f WHERE fs <> fo "
        "UNION ALL SELECT CASE WHEN fs < fo THEN fo ELSE fs END, 'both', 1, 0 FROM f WHERE fs <> fo) "
    )
    table = qn(ValueDay._meta.db_table)
    ValueDay.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"{changes}INSERT INTO {table} (day, mix, buyers, spend) "  # noqa: S608 (quoted names, SQL built here)
            "SELECT day, mix, SUM(buyers), SUM(spend) FROM c GROUP BY day, mix",
            params,
        )
        return cursor.rowcount


def cohort_days_build() -> int:
    """Rebuild the cohort rows from every purchase kept (one statement read, rows written in bulk).

    Not by day either: a backdated first purchase moves its buyer to another cohort on every day they bought.
    """
    kept = (
        Purchase.objects.filter(customer__isnull=False)
        .alias(is_refunded=refunded())
        .filter(is_refunded=False)
        .order_by()
        .annotate(month=TruncMonth("occurred_at", tzinfo=UTC))
        .values("customer_id", "month")
        .annotate(day=TruncDate(Min("occurred_at")))
    )
    inner, params = subquery(kept)
    grouped = rows(
        "SELECT x.cohort, x.month, x.day, COUNT(*) FROM (SELECT MIN(m.month) OVER (PARTITION BY m.customer_id) "  # noqa: S608
        f"AS cohort, m.month AS month, m.day AS day FROM {inner} m) x GROUP BY x.cohort, x.month, x.day",
        params,
    )
    return _replace(
        CohortDay.objects.all(),
        CohortDay,
        [
            CohortDay(cohort=_day(cohort), month=_day(month), day=_day(day), customers=customers)
            for cohort, month, day, customers in grouped
        ],
    )


def purchase_touches_build(days: set[date] | None) -> int:
    """Replace the last touches of the purchases of ``days`` (all when None); one statement read.

    Each kept purchase is joined to the campaign messages sent to that person (the survivor, once merged) in
    the ``TOUCH_HORIZON`` before it; the latest one (then the highest id, as the direct computation) stays.
    """
    purchases = Purchase.objects.filter(customer__isnull=False).alias(is_refunded=refunded()).filter(is_refunded=False)
    purchases = purchases.order_by().annotate(day=TruncDate("occurred_at"))
    existing = PurchaseTouch.objects.all()
    if days is not None:
        if not days:
            return 0
        purchases, existing = purchases.filter(day__in=days), existing.filter(day__in=days)
    existing.delete()
    bounds = purchases.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    if bounds["first"] is None:
        return 0
    campaign_ids = campaign_ids_touching(bounds["first"] - TOUCH_HORIZON, bounds["last"] + timedelta(seconds=1))
    if not campaign_ids:
        return 0
    inner, params = subquery(purchases.values("id", "customer_id", "channel", "amount", "occurred_at", "day"))
    lower, lower_params = minus("p.occurred_at", TOUCH_HORIZON)
    ids = ", ".join(str(int(pk)) for pk in campaign_ids)
    sql = (
        "SELECT t.id, t.occurred_at, t.day, t.customer_id, t.purchase_channel, t.amount, t.sent_at, t.cause_id, "  # noqa: S608
        "t.channel, t.variant_id FROM (SELECT p.id, p.occurred_at, p.day, p.customer_id, "
        "p.channel AS purchase_channel, p.amount, d.sent_at, d.cause_id, d.channel, d.variant_id, "
        "ROW_NUMBER() OVER (PARTITION BY p.id ORDER BY d.sent_at DESC, d.id DESC) AS touch "
        f"FROM {qn(Delivery._meta.db_table)} d JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
        f"JOIN {inner} p ON p.customer_id = COALESCE(c.merged_into_id, c.id) "
        f"WHERE d.cause_type = %s AND d.cause_id IN ({ids}) AND d.status = %s "
        f"AND d.sent_at <= p.occurred_at AND d.sent_at > {lower}) t WHERE t.touch = 1"
    )
    found = rows(sql, [*params, CAMPAIGN, Delivery.Status.SENT, *lower_params])
    fields = ("occurred_at", "day", "customer_id", "purchase_channel", "amount", "sent_at", "cause_id", "channel")
    touches = []
    for purchase_id, *values, variant_id in found:
        touch = PurchaseTouch(purchase_id=purchase_id, variant_id=variant_id, **dict(zip(fields, values, strict=True)))
        touch.day = _day(touch.day)
        touches.append(touch)
    return len(PurchaseTouch.objects.bulk_create(touches, batch_size=2000))


# --- deliveries -------------------------------------------------------------------------------------


def campaigns_dirty(since: datetime) -> set[int]:
    # A campaign's deliveries change while it sends; once it has finished, only through provider events,
    # redemptions and merges, found below.
    live = Campaign.objects.filter(started_at__isnull=False).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=since)
    )
    ids = set(live.values_list("pk", flat=True))
    with_events = Delivery.objects.filter(
        cause_type=CAMPAIGN,
        pk__in=DeliveryEvent.objects.filter(created_at__gte=since, delivery_id__isnull=False).values("delivery_id"),
    )
    ids |= set(with_events.order_by().values_list("cause_id", flat=True).distinct())
    merged_survivors = Customer.objects.filter(updated_at__gte=since, merged_into__isnull=False).values(
        "merged_into_id"
    )
    offers = (
        Redemption.objects.filter(
            Q(created_at__gte=since) | Q(cancelled_at__gte=since) | Q(customer_id__in=merged_survivors),
            offer_id__isnull=False,
        )
        .order_by()
        .values("offer_id")
    )
    ids |= set(Campaign.objects.filter(offer_id__in=offers).values_list("pk", flat=True))
    return ids


def send_days_build(campaign_ids: Iterable[int] | None) -> int:
    """Replace the send rows of ``campaign_ids`` (every campaign when None); returns the rows written.

    One statement per call: each sent delivery is joined to the confirmed redemptions of its code by the
    person it went to (the survivor, once merged) after the send, then grouped by day, channel, variant.
    """
    deliveries = Delivery.objects.filter(cause_type=CAMPAIGN, status=Delivery.Status.SENT)
    existing = SendDay.objects.filter(cause_type=CAMPAIGN)
    if campaign_ids is not None:
        campaign_ids = sorted(campaign_ids)
        if not campaign_ids:
            return 0
        deliveries, existing = deliveries.filter(cause_id__in=campaign_ids), existing.filter(cause_id__in=campaign_ids)
    inner, params = subquery(
        deliveries.order_by()
        .annotate(day=TruncDate("sent_at"), person=Coalesce("customer__merged_into_id", "customer_id"))
        .annotate(
            opened=Case(When(opened_at__isnull=False, then=1), default=0),
            clicked=Case(When(clicked_at__isnull=False, then=1), default=0),
        )
        .values(
            "id", "day", "cause_id", "channel", "variant_id", "coupon_code_id", "person", "sent_at", "opened", "clicked"
        )
    )
    sql = (
        "SELECT y.day, y.cause_id, y.channel, y.variant_id, COUNT(*), SUM(y.opened), SUM(y.clicked), "  # noqa: S608
        "SUM(y.with_code), SUM(y.any_place), SUM(y.in_store), SUM(y.online) FROM ("
        "SELECT x.id, x.day, x.cause_id, x.channel, x.variant_id, x.opened, x.clicked, "
        "CASE WHEN x.coupon_code_id IS NULL THEN 0 ELSE 1 END AS with_code, "
        "MAX(CASE WHEN r.id IS NULL THEN 0 ELSE 1 END) AS any_place, "
        "MAX(CASE WHEN r.channel = 'store' THEN 1 ELSE 0 END) AS in_store, "
        "MAX(CASE WHEN r.channel = 'online' THEN 1 ELSE 0 END) AS online "
        f"FROM {inner} x LEFT JOIN {qn(Redemption._meta.db_table)} r ON r.coupon_code_id = x.coupon_code_id "
        "AND r.customer_id = x.person AND r.status = %s AND r.created_at >= x.sent_at "
        "GROUP BY x.id, x.day, x.cause_id, x.channel, x.variant_id, x.opened, x.clicked, x.coupon_code_id) y "
        "GROUP BY y.day, y.cause_id, y.channel, y.variant_id"
    )
    grouped = rows(sql, [*params, Redemption.Status.CONFIRMED])
    counts = ("messages", "opens", "clicks", "coupons", "redemptions", "store_redemptions", "online_redemptions")
    return _replace(
        existing,
        SendDay,
        [
            SendDay(
                day=_day(day),
                cause_type=CAMPAIGN,
                cause_id=cause_id,
                channel=channel,
                variant_id=variant_id,
                **{name: int(value or 0) for name, value in zip(counts, values, strict=True)},
            )
            for day, cause_id, channel, variant_id, *values in grouped
        ],
    )


def code_redemptions_build(campaign_ids: Iterable[int] | None) -> int:
    """Replace the (campaign, redemption) pairs of ``campaign_ids`` (all when None): confirmed redemptions of a
    code one of the campaign's messages carried to that person (the survivor, once merged), at any time."""
    existing = CodeRedemption.objects.all()
    where = ""
    if campaign_ids is not None:
        campaign_ids = sorted(int(pk) for pk in campaign_ids)
        if not campaign_ids:
            return 0
        existing = existing.filter(cause_id__in=campaign_ids)
        where = f"AND d.cause_id IN ({', '.join(str(pk) for pk in campaign_ids)}) "
    existing.delete()
    sql = (
        f"INSERT INTO {qn(CodeRedemption._meta.db_table)} (cause_id, redemption_id) "  # noqa: S608 (integers only)
        f"SELECT DISTINCT d.cause_id, r.id FROM {qn(Delivery._meta.db_table)} d "
        f"JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
        f"JOIN {qn(Redemption._meta.db_table)} r ON r.coupon_code_id = d.coupon_code_id "
        "AND r.customer_id = COALESCE(c.merged_into_id, c.id) "
        f"WHERE d.cause_type = %s AND d.coupon_code_id IS NOT NULL AND r.status = %s {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [CAMPAIGN, Redemption.Status.CONFIRMED])
        return cursor.rowcount


def summary_campaigns_dirty(since: datetime, changed_purchase_days: set[date], send_dirty: set[int]) -> set[int]:
    """Campaigns whose results roll-up is out of date: those whose send roll-ups are (deliveries, events,
    redemptions of their offer), and, for the lift, those holding people out whose attribution window
    (the default one) covers a day whose purchases were written, refunded or moved by a merge since, or
    that messaged a profile merged since (two profiles become one person)."""
    from campaigns.results.selectors import DEFAULT_ATTRIBUTION_WINDOW

    ids = set(send_dirty)
    holding = Campaign.objects.filter(started_at__isnull=False).filter(
        Q(holdout_percent__gt=0) | Q(holdout_mode="stores")
    )
    for pk, started_at, finished_at in holding.values_list("pk", "started_at", "finished_at"):
        first = timezone.localdate(started_at) - timedelta(days=1)
        last = timezone.localdate((finished_at or timezone.now()) + DEFAULT_ATTRIBUTION_WINDOW) + timedelta(days=1)
        if any(first <= day <= last for day in changed_purchase_days):
            ids.add(pk)
    merged = Customer.objects.filter(updated_at__gte=since, merged_into__isnull=False).values("pk")
    messaged = Delivery.objects.filter(cause_type=CAMPAIGN, customer_id__in=merged).order_by()
    ids |= set(messaged.values_list("cause_id", flat=True).distinct())
    return ids


def campaign_summaries_build(campaign_ids: Iterable[int] | None, now: datetime) -> int:
    """Replace the results roll-ups of ``campaign_ids`` (every campaign launched when None); returns the funnel
    rows written. Two statements for the funnel and its redemptions, one per campaign holding people out
    for its lift (from the launch to the end of the default attribution window, or ``now`` before it)."""
    from campaigns.results.funnel import _attribution_end, code_redemptions, funnel_counts, lift_groups
    from campaigns.results.selectors import DEFAULT_ATTRIBUTION_WINDOW

    campaigns = Campaign.objects.filter(started_at__isnull=False)
    if campaign_ids is not None:
        campaign_ids = sorted(int(pk) for pk in campaign_ids)
        if not campaign_ids:
            return 0
        campaigns = campaigns.filter(pk__in=campaign_ids)
    campaigns = list(campaigns.order_by("pk"))
    ids = [campaign.pk for campaign in campaigns]
    # A full rebuild also drops the rows of campaigns deleted since.
    stale = {} if campaign_ids is None else {"cause_id__in": campaign_ids}
    CampaignFunnelCount.objects.filter(**stale).delete()
    CampaignSummary.objects.filter(**stale).delete()
    if not ids:
        return 0
    counts, redeemed = funnel_counts(ids), code_redemptions(ids)
    funnel_rows = []
    for cause_id, grouped in counts.items():
        found = redeemed.get(cause_id, {})
        for row in grouped:
            cell = (row["channel"], row["variant_id"], row["reason"])
            count, amount = found.get(cell, (0, 0)) if row["status"] == Delivery.Status.SENT else (0, 0)
            funnel_rows.append(
                CampaignFunnelCount(
                    cause_id=cause_id,
                    channel=row["channel"],
                    variant_id=row["variant_id"],
                    status=row["status"],
                    reason=row["reason"],
                    messages=row["n"],
                    delivered=row["delivered"],
                    opened=row["opened"],
                    clicked=row["clicked"],
                    redemptions=count,
                    redeemed_amount=amount,
                )
            )
    summaries = []
    for campaign in campaigns:
        summary = CampaignSummary(cause_id=campaign.pk, computed_at=now)
        if campaign.holds_out:
            summary.lift_until = _attribution_end(campaign, DEFAULT_ATTRIBUTION_WINDOW, now)
            groups = lift_groups(campaign, summary.lift_until)
            for held, prefix in ((0, "treated"), (1, "holdout")):
                people, redeemers, spend, squares = groups.get(held, (0, 0, 0.0, 0.0))
                setattr(summary, f"{prefix}_people", people)
                setattr(summary, f"{prefix}_redeemers", redeemers)
                setattr(summary, f"{prefix}_spend", money(spend))
                setattr(summary, f"{prefix}_spend_squares", squares)
        summaries.append(summary)
    CampaignSummary.objects.bulk_create(summaries, batch_size=2000)
    return len(CampaignFunnelCount.objects.bulk_create(funnel_rows, batch_size=2000))


# --- journeys -------------------------------------------------------------------------------------


def journey_days_dirty(since: datetime) -> set[date]:
    """The entry days of enrolments that met their goal since (their cohort's conversions changed)."""
    from campaigns.models import Enrolment

    converted = Enrolment.objects.filter(converted_at__gte=since).order_by()
    return _days(converted, "entered_at") | _days(converted, "converted_at")


def journey_days_build(days: set[date] | None) -> int:
    """Replace the journeys' entry and goal rows of ``days`` (all when None), and the rows of the messages
    their send steps sent on those days; three statements read."""
    from campaigns.models import Enrolment, JourneyStepRun

    entered = Enrolment.objects.order_by().annotate(day=TruncDate("entered_at"))
    converted = Enrolment.objects.filter(converted_at__isnull=False).order_by().annotate(day=TruncDate("converted_at"))
    existing, existing_sends = JourneyDay.objects.all(), JourneySendDay.objects.all()
    runs = JourneyStepRun.objects.order_by()
    sends = Delivery.objects.filter(cause_type=Delivery.Cause.JOURNEY_STEP, sent_at__isnull=False).order_by()
    sends = sends.annotate(day=TruncDate("sent_at"))
    if days is not None:
        if not days:
            return 0
        entered, converted, sends = (
            entered.filter(day__in=days),
            converted.filter(day__in=days),
            sends.filter(day__in=days),
        )
        existing, existing_sends = existing.filter(day__in=days), existing_sends.filter(day__in=days)
        first = timezone.make_aware(datetime.combine(min(days), datetime.min.time()))
        last = timezone.make_aware(datetime.combine(max(days) + timedelta(days=1), datetime.min.time()))
        # Deliveries have no index on their send time: the step runs name them through their unique key.
        runs = runs.filter(ran_at__gte=first - JOURNEY_SEND_SLACK, ran_at__lt=last)
        sends = sends.filter(cause_id__in=runs.values("pk"))
    counts: dict[tuple, dict[str, int]] = {}
    for row in entered.values("day", "journey_id").annotate(
        n=Count("pk"), n_converted=Count("pk", filter=Q(converted_at__isnull=False))
    ):
        entry = counts.setdefault((_day(row["day"]), row["journey_id"]), {"conversions": 0})
        entry.update(entries=row["n"], entries_converted=row["n_converted"])
    for row in converted.values("day", "journey_id").annotate(n=Count("pk")):
        entry = counts.setdefault((_day(row["day"]), row["journey_id"]), {"entries": 0, "entries_converted": 0})
        entry["conversions"] = row["n"]
    inner, params = subquery(sends.values("cause_id", "day"))
    runs_sql, runs_params = subquery(
        runs.annotate(ran_day=TruncDate("ran_at"), journey=F("enrolment__journey_id")).values(
            "id", "ran_day", "journey"
        )
    )
    grouped = rows(
        "SELECT s.day, r.ran_day, r.journey, COUNT(*) FROM "  # noqa: S608 (SQL built here)
        f"{inner} s JOIN {runs_sql} r ON r.id = s.cause_id GROUP BY s.day, r.ran_day, r.journey",
        [*params, *runs_params],
    )
    existing.delete()
    existing_sends.delete()
    JourneyDay.objects.bulk_create(
        [JourneyDay(day=day, journey_id=journey_id, **entry) for (day, journey_id), entry in counts.items()],
        batch_size=2000,
    )
    JourneySendDay.objects.bulk_create(
        [
            JourneySendDay(day=_day(day), ran_day=_day(ran_day), journey_id=journey_id, messages=n)
            for day, ran_day, journey_id, n in grouped
        ],
        batch_size=2000,
    )
    return len(counts) + len(grouped)


# --- signups, channel health, survey ---------------------------------------------------------------


def evidence_days_dirty(since: datetime) -> set[date]:
    """Days of consent evidence and provider reports recorded since (both are append-only)."""
    evidence = ConsentEvidence.objects.filter(recorded_at__gte=since).order_by()
    events = DeliveryEvent.objects.filter(created_at__gte=since).order_by()
    return _days(evidence, "occurred_at") | _days(events, "occurred_at")


def signup_and_health_days_build(days: set[date] | None) -> int:
    """Replace the signup and channel-health rows of ``days`` (all when None); three statements read."""
    from campaigns.results.selectors import HEALTH_KINDS, SIGNUP_METHODS, UNSUBSCRIBE_METHODS

    grants = ConsentEvidence.objects.filter(action="grant", method__in=list(SIGNUP_METHODS))
    grants = grants.exclude(channel=Channel.PUSH).order_by().annotate(day=TruncDate("occurred_at"))
    reports = (
        DeliveryEvent.objects.filter(kind__in=list(HEALTH_KINDS)).order_by().annotate(day=TruncDate("occurred_at"))
    )
    opt_outs = (
        ConsentEvidence.objects.filter(action="withdraw")
        .filter(Q(channel="sms", method=ConsentMethod.SMS_KEYWORD) | Q(channel="email", method__in=UNSUBSCRIBE_METHODS))
        .order_by()
        .annotate(day=TruncDate("occurred_at"))
    )
    existing_signups, existing_health = SignupDay.objects.all(), HealthDay.objects.all()
    if days is not None:
        if not days:
            return 0
        grants, reports, opt_outs = (
            grants.filter(day__in=days),
            reports.filter(day__in=days),
            opt_outs.filter(day__in=days),
        )
        existing_signups, existing_health = existing_signups.filter(day__in=days), existing_health.filter(day__in=days)
    signup_rows = [
        SignupDay(day=_day(row["day"]), channel=row["channel"], method=row["method"], grants=row["n"])
        for row in grants.values("day", "channel", "method").annotate(n=Count("pk"))
    ]
    health: dict[tuple[date, str], int] = {}
    for row in reports.values("day", "kind").annotate(n=Count("pk")):
        key = (_day(row["day"]), HEALTH_KINDS[row["kind"]][0])
        health[key] = health.get(key, 0) + row["n"]
    for row in opt_outs.values("day", "channel").annotate(n=Count("pk")):
        key = (_day(row["day"]), "stop" if row["channel"] == "sms" else "unsubscribe")
        health[key] = health.get(key, 0) + row["n"]
    existing_signups.delete()
    existing_health.delete()
    SignupDay.objects.bulk_create(signup_rows, batch_size=2000)
    HealthDay.objects.bulk_create(
        [HealthDay(day=day, kind=kind, reports=n) for (day, kind), n in health.items()], batch_size=2000
    )
    return len(signup_rows) + len(health)


def survey_days_build() -> int:
    """Rebuild the survey rows (one statement read): a changed answer moves to its new day, and the old
    day is not recorded anywhere, so every run counts them all (one row per answer, no join)."""
    from campaigns.results.selectors import DETRACTOR_HIGHEST, PROMOTER_LOWEST

    grouped = (
        SurveyResponse.objects.order_by()
        .annotate(day=TruncDate("answered_at"))
        .values("day")
        .annotate(
            n=Count("pk"),
            n_promoters=Count("pk", filter=Q(score__gte=PROMOTER_LOWEST)),
            n_detractors=Count("pk", filter=Q(score__lte=DETRACTOR_HIGHEST)),
        )
    )
    days = [
        SurveyDay(
            day=_day(row["day"]),
            answers=row["n"],
            promoter_answers=row["n_promoters"],
            detractor_answers=row["n_detractors"],
        )
        for row in grouped
    ]
    SurveyDay.objects.all().delete()
    return len(SurveyDay.objects.bulk_create(days, batch_size=2000))


# --- reachable audience -----------------------------------------------------------------------------


def reachable_count(now: datetime) -> None:
    """Count the reachable profiles per channel now (one statement) and keep it as the snapshot."""
    counts = Customer.objects.active().aggregate(
        **{channel: Count("pk", filter=sendable_q(channel, None, now=now)) for channel in Channel.values}
    )
    ReachableCount.objects.all().delete()
    ReachableCount.objects.bulk_create(
        [ReachableCount(channel=channel, profiles=counts[channel], counted_at=now) for channel in Channel.values]
    )


def rollups_refreshed_at() -> datetime | None:
    """When the last refresh finished (what the dashboard's figures are as of); None before the first."""
    return RollupState.objects.filter(name=STATE).values_list("refreshed_at", flat=True).first()


# --- the refresh ------------------------------------------------------------------------------------


def results_rollups_refresh(*, now: datetime | None = None, full: bool = False) -> dict[str, int] | None:
    """Bring every roll-up up to date; returns rows written per roll-up, or None if another run holds the lock.

    Locks the state row for the whole run (one transaction), so two runs never interleave; re-running
    changes nothing. The reachable-audience snapshot is recounted when older than ``REACHABLE_MAX_AGE``.
    """
    now = now or timezone.now()
    RollupState.objects.get_or_create(name=STATE, defaults={"watermark": now})
    with transaction.atomic():
        locked = RollupState.objects.select_for_update(skip_locked=True).filter(name=STATE)
        state = locked.first()
        if state is None:
            return None
        if full or state.refreshed_at is None:
            written = {
                "profiles": profile_days_build(None),
                "purchases": purchase_days_build(None),
                "touches": purchase_touches_build(None),
                "buyers": buyer_days_build(None),
                "sends": send_days_build(None),
                "code_redemptions": code_redemptions_build(None),
                "campaign_results": campaign_summaries_build(None, now),
                "value": value_days_build(),
                "cohorts": cohort_days_build(),
                "journeys": journey_days_build(None),
                "signups_health": signup_and_health_days_build(None),
                "survey": survey_days_build(),
            }
        else:
            since = state.watermark - WATERMARK_SLACK
            recent = _recent(now)
            dirty_campaigns = campaigns_dirty(since)
            # Purchases written, refunded or moved by a merge since: the only changes that move a last touch
            # (a message sent now can only precede purchases written from now on), lifetime value or cohorts,
            # each of which reads every purchase, so they are skipped when there are none.
            changed = purchase_days_dirty(since)
            written = {
                "profiles": profile_days_build(recent | profile_days_dirty(since)),
                "purchases": purchase_days_build(recent | changed),
                "touches": purchase_touches_build(changed),
                "buyers": buyer_days_build(recent | changed),
                "sends": send_days_build(dirty_campaigns),
                "code_redemptions": code_redemptions_build(dirty_campaigns),
                "campaign_results": campaign_summaries_build(
                    summary_campaigns_dirty(since, changed, dirty_campaigns), now
                ),
                "value": value_days_build() if changed else 0,
                "cohorts": cohort_days_build() if changed else 0,
                "journeys": journey_days_build(recent | journey_days_dirty(since)),
                "signups_health": signup_and_health_days_build(recent | evidence_days_dirty(since)),
                "survey": survey_days_build(),
            }
        reachable = ReachableCount.objects.order_by("counted_at").values_list("counted_at", flat=True).first()
        if full or reachable is None or reachable < now - REACHABLE_MAX_AGE:
            reachable_count(now)
        state.watermark, state.refreshed_at = now, timezone.now()
        state.save()
    return written
