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

from campaigns.models import Campaign, CampaignFunnelCount, CampaignSummary, Delivery, Variant
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
    as_of: datetime | None = None  # when its roll-up was computed; None: computed from the deliveries now


def _attribution_end(campaign: Campaign, window: timedelta, now: datetime) -> datetime:
    return min((campaign.finished_at or now) + window, now)


def campaign_results(
    *,
    campaign: Campaign,
    window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    now: datetime | None = None,
    direct: bool = False,
) -> CampaignResults:
    """The campaign's funnel, cost per conversion and lift; a fixed number of queries whatever its deliveries.

    Read from the campaign's roll-ups (``campaigns.results.rollups``, as of their last refresh) unless
    ``direct``, or the campaign has none yet: then grouped from its deliveries now. The lift is rolled up
    for the default attribution window only; another window measures it now.
    """
    now = now or timezone.now()
    summary = None if direct else CampaignSummary.objects.filter(cause_id=campaign.pk).first()
    if summary is None:
        grouped = funnel_counts([campaign.pk]).get(campaign.pk, [])
        redeemed = _by_cell(code_redemptions([campaign.pk]).get(campaign.pk, {}))
    else:
        grouped, redeemed = _rolled_up_funnel(campaign)
    revenue: dict[tuple, list] = {}
    if campaign.started_at:
        ids = campaign_ids_touching(campaign.started_at - window, _attribution_end(campaign, window, now))
        for _cause, channel, variant_id, _place, purchases, _buyers, amount in _last_touch(
            start=campaign.started_at,
            end=_attribution_end(campaign, window, now),
            window=window,
            campaign_ids=ids,
            only_campaign=campaign.pk,
            direct=summary is None,
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
        lift=_lift(campaign, window, now, summary),
        totals=totals,
        window_days=days,
        as_of=summary.computed_at if summary is not None else None,
    )


def funnel_counts(campaign_ids: list[int]) -> dict[int, list[dict]]:
    """The campaigns' messages per channel, variant, status and reason, with those delivered, opened and
    clicked; one statement."""
    grouped = (
        Delivery.objects.filter(cause_type=CAMPAIGN, cause_id__in=campaign_ids)
        .order_by()
        .values("cause_id", "channel", "variant_id", "status", "reason")
        .annotate(
            n=Count("pk"),
            delivered=Count(
                "pk",
                filter=Q(provider_status__in=DELIVERED_STATUSES)
                | Q(opened_at__isnull=False)
                | Q(clicked_at__isnull=False),
            ),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        )
    )
    found: dict[int, list[dict]] = {}
    for row in grouped:
        found.setdefault(row.pop("cause_id"), []).append(row)
    return found


def code_redemptions(campaign_ids: list[int]) -> dict[int, dict[tuple, tuple[int, Decimal]]]:
    """Redemptions of the codes the campaigns' messages carried, by that person after the send, each
    credited to one message of its campaign (the latest before it), per campaign and (channel, variant,
    reason); one statement."""
    ids = ", ".join(str(int(pk)) for pk in campaign_ids) or "NULL"
    sql = (
        "SELECT t.cause_id, t.channel, t.variant_id, t.reason, COUNT(*), SUM(t.order_amount) FROM ("  # noqa: S608
        "SELECT d.cause_id, d.channel, d.variant_id, d.reason, r.order_amount, "
        "ROW_NUMBER() OVER (PARTITION BY d.cause_id, r.id ORDER BY d.sent_at DESC, d.id DESC) AS touch "
        f"FROM {qn(Delivery._meta.db_table)} d JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
        f"JOIN {qn(Redemption._meta.db_table)} r ON r.coupon_code_id = d.coupon_code_id "
        "AND r.customer_id = COALESCE(c.merged_into_id, c.id) AND r.status = %s AND r.created_at >= d.sent_at "
        f"WHERE d.cause_type = %s AND d.cause_id IN ({ids}) AND d.status = %s AND d.coupon_code_id IS NOT NULL"
        ") t WHERE t.touch = 1 GROUP BY t.cause_id, t.channel, t.variant_id, t.reason"
    )
    found: dict[int, dict[tuple, tuple[int, Decimal]]] = {}
    for cause_id, channel, variant, reason, count, amount in rows(
        sql, [Redemption.Status.CONFIRMED, CAMPAIGN, Delivery.Status.SENT]
    ):
        found.setdefault(cause_id, {})[(channel, variant, reason)] = (count, money(amount))
    return found


def _by_cell(redeemed: dict[tuple, tuple[int, Decimal]]) -> dict[tuple, tuple[int, Decimal]]:
    cells: dict[tuple, tuple[int, Decimal]] = {}
    for (channel, variant, _reason), (count, amount) in redeemed.items():
        before = cells.get((channel, variant), (0, Decimal(0)))
        cells[(channel, variant)] = (before[0] + count, before[1] + amount)
    return cells


def _rolled_up_funnel(campaign: Campaign) -> tuple[list[dict], dict[tuple, tuple[int, Decimal]]]:
    """The funnel counts and the redemptions per (channel, variant) from the campaign's roll-up; one query."""
    grouped, redeemed = [], {}
    for row in CampaignFunnelCount.objects.filter(cause_id=campaign.pk).order_by():
        grouped.append(
            {
                "channel": row.channel,
                "variant_id": row.variant_id,
                "status": row.status,
                "reason": row.reason,
                "n": row.messages,
                "delivered": row.delivered,
                "opened": row.opened,
                "clicked": row.clicked,
            }
        )
        if row.redemptions:
            redeemed[(row.channel, row.variant_id, row.reason)] = (row.redemptions, money(row.redeemed_amount))
    return grouped, _by_cell(redeemed)


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


def _lift(campaign: Campaign, window: timedelta, now: datetime, summary: CampaignSummary | None = None) -> Table | None:
    """Treated against held-out people: redemption of the campaign's offer and revenue per person within
    the attribution window after launch; one statement, none when read from the campaign's roll-up."""
    if not campaign.holds_out or campaign.started_at is None:
        return None
    if summary is not None and summary.lift_until is not None and window == DEFAULT_ATTRIBUTION_WINDOW:
        groups = summary_lift_groups(summary)
    else:
        groups = lift_groups(campaign, _attribution_end(campaign, window, now))
    return _lift_table(campaign, window, groups)


def summary_lift_groups(summary: CampaignSummary) -> dict[int, tuple[int, int, float, float]]:
    groups = {}
    if summary.treated_people:
        groups[0] = (
            summary.treated_people,
            summary.treated_redeemers,
            float(summary.treated_spend),
            summary.treated_spend_squares,
        )
    if summary.holdout_people:
        groups[1] = (
            summary.holdout_people,
            summary.holdout_redeemers,
            float(summary.holdout_spend),
            summary.holdout_spend_squares,
        )
    return groups


def lift_groups(campaign: Campaign, end: datetime) -> dict[int, tuple[int, int, float, float]]:
    """Per group (0 treated, 1 held out): people, those who redeemed the offer, and the sum and sum of squares
    of their spend from the launch to ``end``; one statement."""
    start = campaign.started_at
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
    return groups


def _lift_table(campaign: Campaign, window: timedelta, groups: dict[int, tuple]) -> Table:
    in_store = campaign.holds_out_stores
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
