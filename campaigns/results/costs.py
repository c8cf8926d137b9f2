"""What texts cost against what they brought: SMS cost and cost per purchase, per campaign on the goal
dashboard and per channel on a campaign's results.

A text's cost is known when the provider's answer or the price table priced it (``SmsCost``); a text sent
without a cost row (the demo outbox, sends from before prices were kept) or with a null amount is
unpriced. A sum with unpriced texts in it would understate the spend, so such a figure reads "cost
unknown" and the table says how many texts were priced.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Sum

from campaigns.models import Campaign, Delivery, SmsCost
from campaigns.models.costs import MICROS
from campaigns.results.periods import Period
from campaigns.results.sql import dt, qn, rows
from campaigns.results.tables import Table
from customers.models import Channel

COST_UNKNOWN = "cost unknown"
CENT = Decimal("0.01")
# A cost per conversion is a unit price (a text costs a fraction of a cent): kept to four places.
UNIT = Decimal("0.0001")
CAMPAIGN = Delivery.Cause.CAMPAIGN


class Spend:
    """Texts sent, how many of them are priced, and the priced amounts by currency (micros)."""

    def __init__(self):
        self.sent = 0
        self.priced = 0
        self.micros: dict[str, int] = {}

    def add(self, *, currency: str | None, sent: int, priced: int, micros) -> None:
        self.sent += sent
        self.priced += priced
        if priced:
            self.micros[currency] = self.micros.get(currency, 0) + int(micros or 0)

    def merge(self, other: Spend) -> None:
        self.sent += other.sent
        self.priced += other.priced
        for currency, micros in other.micros.items():
            self.micros[currency] = self.micros.get(currency, 0) + micros

    def cells(self, purchases: int) -> list[object]:
        """``[priced, cost, currency, cost per purchase]`` as the tables show them."""
        priced = f"{self.priced} of {self.sent}"
        if self.sent == 0:
            return [priced, Decimal("0.00"), "", None]
        if self.priced < self.sent:
            return [priced, COST_UNKNOWN, "", COST_UNKNOWN]
        if len(self.micros) > 1:
            parts = " + ".join(f"{_amount(micros)} {currency}" for currency, micros in sorted(self.micros.items()))
            return [priced, parts, "several", "several currencies"]
        [(currency, micros)] = self.micros.items()
        per_purchase = (Decimal(micros) / MICROS / purchases).quantize(UNIT) if purchases else None
        return [priced, _amount(micros), currency, per_purchase]


def _amount(micros: int) -> Decimal:
    return (Decimal(micros) / MICROS).quantize(CENT)


def _spend_sql(where: str, group: str) -> str:
    return (
        f"SELECT {group}, k.currency, COUNT(*), COUNT(k.amount_micros), SUM(k.amount_micros) "  # noqa: S608
        f"FROM {qn(Delivery._meta.db_table)} d LEFT JOIN {qn(SmsCost._meta.db_table)} k ON k.delivery_id = d.id "
        f"WHERE d.cause_type = %s AND d.status = %s AND {where} GROUP BY {group}, k.currency"
    )


def sms_cost_per_conversion(period: Period, campaign_ids: list[int], *, attributed: list[tuple]) -> Table:
    """Per campaign: the texts sent in the period, what they cost and the cost per purchase credited to
    a text (last touch, ``attributed`` as ``last_touch_purchases`` returns it); two queries.

    Texts are found through the deliveries' unique key (campaign ids), joined to their costs by primary key.
    """
    spend: dict[int, Spend] = {}
    if campaign_ids:
        ids = ", ".join(str(int(pk)) for pk in campaign_ids)
        sql = _spend_sql(
            f"d.cause_id IN ({ids}) AND d.channel = %s AND d.sent_at >= %s AND d.sent_at < %s", "d.cause_id"
        )
        params = [CAMPAIGN, Delivery.Status.SENT, Channel.SMS, dt(period.start), dt(period.end)]
        for cause_id, currency, sent, priced, micros in rows(sql, params):
            spend.setdefault(cause_id, Spend()).add(currency=currency, sent=sent, priced=priced, micros=micros)
    purchases: dict[int, int] = {}
    for cause_id, channel, _variant, _place, count, _buyers, _amount_sum in attributed:
        if channel == Channel.SMS:
            purchases[cause_id] = purchases.get(cause_id, 0) + count
    keys = set(spend) | set(purchases)
    names = dict(Campaign.objects.filter(pk__in=keys).values_list("pk", "name")) if keys else {}
    table_rows = []
    total, total_purchases = Spend(), 0
    for cause_id in sorted(keys, key=lambda pk: (names.get(pk, ""), pk)):
        campaign_spend = spend.get(cause_id, Spend())
        total.merge(campaign_spend)
        total_purchases += purchases.get(cause_id, 0)
        cells = campaign_spend.cells(purchases.get(cause_id, 0))
        table_rows.append(
            [names.get(cause_id, f"#{cause_id}"), campaign_spend.sent, *cells[:3], purchases.get(cause_id, 0), cells[3]]
        )
    if len(table_rows) > 1:
        cells = total.cells(total_purchases)
        table_rows.append(["All campaigns", total.sent, *cells[:3], total_purchases, cells[3]])
    return Table(
        "sms_cost",
        "SMS cost per conversion",
        [
            "campaign",
            "texts sent",
            "priced",
            "SMS cost",
            "currency",
            "purchases after a text",
            "SMS cost per conversion",
        ],
        table_rows,
        "Cost of the texts sent in the period (the provider's price, or the SMS price table times the segments); "
        "conversions are the period's purchases credited to a text by last touch. 'cost unknown' when some "
        "texts have no price.",
    )


def campaign_channel_costs(campaign: Campaign, *, sent: dict[str, int], purchases: dict[str, int]) -> Table:
    """Per channel of one campaign: messages sent, their cost where known and the cost per purchase
    (``sent`` and ``purchases`` per channel as the funnel counted them, purchases by last touch); one
    query on the texts' costs (by their cause, not through the campaign's deliveries)."""
    priced = (
        SmsCost.objects.filter(cause_type=CAMPAIGN, cause_id=campaign.pk, amount_micros__isnull=False)
        .order_by()
        .values("currency")
        .annotate(priced=Count("pk"), micros=Sum("amount_micros"))
    )
    spend = {channel: Spend() for channel, count in sent.items() if count}
    spend.setdefault(Channel.SMS, Spend())
    for row in priced:
        spend[Channel.SMS].add(currency=row["currency"], sent=0, priced=row["priced"], micros=row["micros"])
    table_rows = []
    for channel in sorted(set(spend) | {key for key, value in purchases.items() if value}):
        channel_spend = spend.get(channel, Spend())
        channel_spend.sent = sent.get(channel, 0)
        if not channel_spend.sent and not purchases.get(channel):
            continue
        cells = channel_spend.cells(purchases.get(channel, 0))
        label = Channel(channel).label if channel in Channel.values else channel
        table_rows.append([label, channel_spend.sent, *cells[:3], purchases.get(channel, 0), cells[3]])
    return Table(
        "cost",
        "Cost per conversion per channel",
        ["channel", "sent", "priced", "cost", "currency", "purchases", "cost per conversion"],
        table_rows,
        "SMS are priced by the provider's answer or the SMS price table times the segments; other channels "
        "carry no per-message cost. 'cost unknown' when some messages have no price.",
    )
