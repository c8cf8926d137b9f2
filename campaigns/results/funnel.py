"""One campaign's results: the funnel per channel and variant (persona), its KPI against the target, and
its lift against the holdout.

Lift uses the normal approximation for a difference of two independent means (a rate is the mean of a
0/1 outcome): ``diff ± 1.96 * sqrt(var_t / n_t + var_h / n_h)``, 95 % confidence, with the sample
variance of each group. It is fair only with a few hundred people in each group; smaller groups are
flagged as too small to read.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Variant
from campaigns.results.costs import campaign_channel_costs
from campaigns.results.selectors import DEFAULT_ATTRIBUTION_WINDOW, DELIVERED_STATUSES, campaign_ids_touching
from campaigns.results.selectors import last_touch_purchases as _last_touch
from campaigns.results.sql import dt, qn, refunded_sql, rows
from campaigns.results.tables import Table, money, percent
from customers.models import Channel, Customer, Purchase
from loyalty.models import Redemption

CAMPAIGN = Delivery.Cause.CAMPAIGN
# Skips that mean the person could not be reached on the channel at all (others happen after).
UNREACHABLE = {
    Delivery.Reason.NO_CONSENT,
    Delivery.Reason.MISSING_ADDRESS,
    Delivery.Reason.SUPPRESSED,
    Delivery.Reason.INVALID_ADDRESS,
    Delivery.Reason.MERGED,
    Delivery.Reason.ERASED,
    Delivery.Reason.PAUSED,
    Delivery.Reason.CATEGORY_LEFT,
}
Z_95 = 1.96
MIN_GROUP = 100
STEPS = ["audience", "reachable", "sent", "delivered", "opened", "clicked", "redeemed", "revenue"]


@dataclasses.dataclass
class Lift:
    label: str
    treated: float | None
    holdout: float | None
    difference: float | None
    low: float | None
    high: float | None


@dataclasses.dataclass
class CampaignResults:
    funnel: Table
    skipped: Table
    kpi: Table
    lift: Table | None
    totals: dict[str, object]
    window_days: int
    cost: Table | None = None


def _attribution_end(campaign: Campaign, window: timedelta, now: datetime) -> datetime:
    return min((campaign.finished_at or now) + window, now)


def campaign_results(
    *, campaign: Campaign, window: timedelta = DEFAULT_ATTRIBUTION_WINDOW, now: datetime | None = None
) -> CampaignResults:
    """The campaign's funnel, cost per conversion and lift; a fixed number of queries (seven, eight with a
    holdout)."""
    now = now or timezone.now()
    deliveries = Delivery.objects.filter(cause_type=CAMPAIGN, cause_id=campaign.pk).order_by()
    grouped = deliveries.values("channel", "variant_id", "status", "reason").annotate(
        n=Count("pk"),
        delivered=Count(
            "pk",
            filter=Q(provider_status__in=DELIVERED_STATUSES) | Q(opened_at__isnull=False) | Q(clicked_at__isnull=False),
        ),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
    )
    redeemed = _redemptions(campaign)
    revenue: dict[tuple, list] = {}
    if campaign.started_at:
        ids = campaign_ids_touching(campaign.started_at - window, _attribution_end(campaign, window, now))
        for _cause, channel, variant_id, _place, purchases, _buyers, amount in _last_touch(
            start=campaign.started_at,
            end=_attribution_end(campaign, window, now),
            window=window,
            campaign_ids=ids,
            only_campaign=campaign.pk,
        ):
            entry = revenue.setdefault((channel, variant_id), [0, Decimal(0)])
            entry[0] += purchases
            entry[1] += money(amount)
    personas = {
        row["pk"]: row["persona__name"] or "Default"
        for row in Variant.objects.filter(message_id=campaign.message_id).values("pk", "persona__name")
    }
    cells: dict[tuple, dict[str, object]] = {}
    skipped: dict[str, int] = {}
    for row in grouped:
        key = (row["channel"], row["variant_id"])
        cell = cells.setdefault(key, dict.fromkeys(STEPS, 0))
        held = row["reason"] == Delivery.Reason.HOLDOUT
        if held:
            cell.setdefault("holdout", 0)
            cell["holdout"] += row["n"]
        else:
            cell["audience"] += row["n"]
            if not (row["status"] == Delivery.Status.SKIPPED and row["reason"] in UNREACHABLE):
                cell["reachable"] += row["n"]
        if row["status"] == Delivery.Status.SENT:
            for step in ("sent", "delivered", "opened", "clicked"):
                cell[step] += row["n"] if step == "sent" else row[step]
        if row["status"] in (Delivery.Status.SKIPPED, Delivery.Status.FAILED) and not held:
            reason = row["reason"]
            reason_label = Delivery.Reason(reason).label if reason in Delivery.Reason.values else reason or "no reason"
            label = f"{row['status']}: {reason_label}"
            skipped[label] = skipped.get(label, 0) + row["n"]
    for key, (count, amount) in redeemed.items():
        cells.setdefault(key, dict.fromkeys(STEPS, 0))["redeemed"] = count
        cells[key]["redeemed_amount"] = amount
    for key, (purchases, amount) in revenue.items():
        cells.setdefault(key, dict.fromkeys(STEPS, 0))["revenue"] = amount
        cells[key]["purchases"] = purchases
    funnel_rows = []
    totals: dict[str, object] = dict.fromkeys(STEPS, 0)
    totals["revenue"] = Decimal(0)
    totals["purchases"] = 0
    for (channel, variant_id), cell in sorted(cells.items(), key=lambda i: (i[0][0], i[0][1] or 0)):
        funnel_rows.append(
            [
                Channel(channel).label if channel in Channel.values else channel,
                personas.get(variant_id, "-"),
                *[cell[step] for step in STEPS],
                cell.get("purchases", 0),
            ]
        )
        for step in STEPS:
            totals[step] += cell[step]
        totals["purchases"] += cell.get("purchases", 0)
    days = int(window.total_seconds() // 86400)
    funnel = Table(
        "funnel",
        "Funnel per channel and persona",
        ["channel", "persona", *STEPS, "purchases"],
        funnel_rows,
        f"Audience: people drawn at launch (holdout left out). Reachable: not skipped for consent, address, "
        f"suppression, merge, erasure or preferences. Opened: email only. Redeemed: the code this message carried, "
        f"redeemed by that person. Revenue: purchases within {days} days after a message whose last touch "
        f"was this campaign.",
    )
    skipped_table = Table(
        "skipped",
        "Not sent, by reason",
        ["reason", "messages"],
        sorted(([k, v] for k, v in skipped.items()), key=lambda r: -r[1]),
    )
    sent_by_channel: dict[str, int] = {}
    purchases_by_channel: dict[str, int] = {}
    for (channel, _variant_id), cell in cells.items():
        sent_by_channel[channel] = sent_by_channel.get(channel, 0) + cell["sent"]
        purchases_by_channel[channel] = purchases_by_channel.get(channel, 0) + cell.get("purchases", 0)
    return CampaignResults(
        cost=campaign_channel_costs(campaign, sent=sent_by_channel, purchases=purchases_by_channel),
        funnel=funnel,
        skipped=skipped_table,
        kpi=_kpi(campaign, totals),
        lift=_lift(campaign, window, now),
        totals=totals,
        window_days=days,
    )


def _redemptions(campaign: Campaign) -> dict[tuple, tuple[int, Decimal]]:
    """Redemptions of the codes the campaign's messages carried, by that person after the send, each
    credited to one message (the latest before it); one statement."""
    sql = (
        "SELECT t.channel, t.variant_id, COUNT(*), SUM(t.order_amount) FROM ("  # noqa: S608 (table names only)
        "SELECT d.channel, d.variant_id, r.order_amount, "
        "ROW_NUMBER() OVER (PARTITION BY r.id ORDER BY d.sent_at DESC, d.id DESC) AS touch "
        f"FROM {qn(Delivery._meta.db_table)} d JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
        f"JOIN {qn(Redemption._meta.db_table)} r ON r.coupon_code_id = d.coupon_code_id "
        "AND r.customer_id = COALESCE(c.merged_into_id, c.id) AND r.status = %s AND r.created_at >= d.sent_at "
        "WHERE d.cause_type = %s AND d.cause_id = %s AND d.status = %s AND d.coupon_code_id IS NOT NULL"
        ") t WHERE t.touch = 1 GROUP BY t.channel, t.variant_id"
    )
    found = rows(sql, [Redemption.Status.CONFIRMED, CAMPAIGN, campaign.pk, Delivery.Status.SENT])
    return {(channel, variant): (count, money(amount)) for channel, variant, count, amount in found}


def _kpi(campaign: Campaign, totals: dict) -> Table:
    sent = totals["sent"]
    values = {
        Campaign.Kpi.OPEN_RATE: (percent(totals["opened"], sent), "%"),
        Campaign.Kpi.CLICK_RATE: (percent(totals["clicked"], sent), "%"),
        Campaign.Kpi.CONVERSION_RATE: (percent(totals["purchases"], sent), "% (purchases per message sent)"),
        Campaign.Kpi.REVENUE: (totals["revenue"], ""),
        Campaign.Kpi.REDEMPTIONS: (totals["redeemed"], ""),
        Campaign.Kpi.STORE_VISITS: (totals["purchases"], " (purchases after a message, online and in store)"),
    }
    value, unit = values.get(campaign.kpi, (None, ""))
    target = campaign.kpi_target
    if value is None or target is None:
        verdict = "no target set" if target is None else "not measurable yet"
    else:
        verdict = "target met" if Decimal(str(value)) >= target else "below target"
    return Table(
        "kpi",
        "KPI against its target",
        ["kpi", "value", "target", "verdict"],
        [[campaign.get_kpi_display() + unit, value, target, verdict]],
    )


def _interval(mean_t, var_t, n_t, mean_h, var_h, n_h) -> tuple[float, float, float]:
    difference = mean_t - mean_h
    margin = Z_95 * math.sqrt(var_t / n_t + var_h / n_h)
    return difference, difference - margin, difference + margin


def _lift(campaign: Campaign, window: timedelta, now: datetime) -> Table | None:
    """Treated against held-out people: redemption of the campaign's offer and revenue per person within
    the attribution window after launch; one statement."""
    if not campaign.holds_out or campaign.started_at is None:
        return None
    start, end = campaign.started_at, _attribution_end(campaign, window, now)
    offer = campaign.offer_id or 0
    # Whole stores held out measure in-store lift: only till purchases and in-store redemptions count.
    in_store = campaign.holds_out_stores
    place = " AND {alias}.channel = 'store'" if in_store else ""
    sql = (
        "SELECT g.held, COUNT(*), SUM(g.redeemed), SUM(g.spend), SUM(g.spend * g.spend) FROM ("  # noqa: S608
        "SELECT m.person, m.held, "
        "CASE WHEN EXISTS (SELECT 1 FROM " + qn(Redemption._meta.db_table) + " r WHERE r.customer_id = m.person "
        "AND r.offer_id = %s AND r.status = %s AND r.created_at >= %s AND r.created_at < %s"
        + place.format(alias="r")
        + ") THEN 1 ELSE 0 END "
        "AS redeemed, "
        "COALESCE((SELECT SUM(p.amount) FROM " + qn(Purchase._meta.db_table) + " p WHERE p.customer_id = m.person "
        "AND p.occurred_at >= %s AND p.occurred_at < %s AND NOT "
        + refunded_sql("p")
        + place.format(alias="p")
        + "), 0) "
        "AS spend "
        "FROM (SELECT COALESCE(c.merged_into_id, c.id) AS person, "
        "MAX(CASE WHEN d.reason = %s THEN 1 ELSE 0 END) AS held "
        "FROM " + qn(Delivery._meta.db_table) + " d JOIN " + qn(Customer._meta.db_table) + " c ON c.id = d.customer_id "
        "WHERE d.cause_type = %s AND d.cause_id = %s GROUP BY COALESCE(c.merged_into_id, c.id)) m"
        ") g GROUP BY g.held"
    )
    params = [
        offer,
        Redemption.Status.CONFIRMED,
        dt(start),
        dt(end),
        dt(start),
        dt(end),
        Delivery.Reason.HOLDOUT,
        CAMPAIGN,
        campaign.pk,
    ]
    groups = {
        held: (n, int(red or 0), float(spend or 0), float(square or 0))
        for held, n, red, spend, square in rows(sql, params)
    }
    treated, holdout = groups.get(0), groups.get(1)
    table_rows = []
    if treated and holdout:
        n_t, n_h = treated[0], holdout[0]
        labels = (
            (("Redemption rate of the offer in store (%)", 1), ("In-store revenue per person", 2))
            if in_store
            else (("Redemption rate of the offer (%)", 1), ("Revenue per person", 2))
        )
        for label, index in labels:
            if index == 1:
                mean_t, mean_h = treated[1] / n_t, holdout[1] / n_h
                var_t, var_h = mean_t * (1 - mean_t), mean_h * (1 - mean_h)
                scale = 100
            else:
                mean_t, mean_h = treated[2] / n_t, holdout[2] / n_h
                var_t = max(treated[3] / n_t - mean_t**2, 0) * n_t / max(n_t - 1, 1)
                var_h = max(holdout[3] / n_h - mean_h**2, 0) * n_h / max(n_h - 1, 1)
                scale = 1
            difference, low, high = _interval(mean_t, var_t, n_t, mean_h, var_h, n_h)
            table_rows.append(
                [
                    label,
                    round(mean_t * scale, 2),
                    round(mean_h * scale, 2),
                    round(difference * scale, 2),
                    round(low * scale, 2),
                    round(high * scale, 2),
                ]
            )
    drawn = (
        "people whose home store is one of the held-out stores, never sent it; in-store purchases and "
        "redemptions only. People of one store resemble each other, so the interval, which treats them as "
        "independent, is narrower than the truth"
        if in_store
        else "people drawn at random at launch and never sent it"
    )
    note = (
        f"Treated: people in the audience not held back ({treated[0] if treated else 0}); holdout: "
        f"{holdout[0] if holdout else 0} {drawn}. Measured from the launch "
        f"to {int(window.total_seconds() // 86400)} days after the last send. 95 % interval by the normal "
        "approximation of a difference of means."
    )
    if not (treated and holdout):
        note += " Not enough people in one of the groups yet."
    elif min(treated[0], holdout[0]) < MIN_GROUP:
        note += f" Fewer than {MIN_GROUP} people in a group: read the interval with care."
    return Table(
        "lift",
        "Lift against the holdout",
        ["measure", "treated", "holdout", "lift", "95 % low", "95 % high"],
        table_rows,
        note,
    )
