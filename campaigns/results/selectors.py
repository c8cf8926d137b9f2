"""The goal dashboard's figures: awareness, engagement, conversion, loyalty, channel health.

Every function returns ``Table`` rows computed by aggregate statements grouped in the database (the
current and the previous period counted in the same pass with filtered aggregates); Python only
reshapes a handful of grouped rows. Conventions, stated on the page too:

- Merged-away profiles are duplicates: they are not new profiles, and their purchases moved to the
  survivor at merge. Deliveries stay on the profile they were sent to, so attribution joins a delivery
  to purchases of ``COALESCE(merged_into, id)``. Erased profiles keep their (anonymous) history.
- Revenue is net of refunds: a purchase refunded through loyalty (refunds are whole) counts nothing.
- "Online" and "in store" follow the purchase's or redemption's own channel; for a customer, "both"
  means they bought in each during the period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, F, Min, OuterRef, Q, Sum, Window
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from campaigns.audience import sendable_q
from campaigns.models import (
    BuyerDay,
    Campaign,
    CodeRedemption,
    CohortDay,
    Delivery,
    DeliveryEvent,
    HealthDay,
    ProfileDay,
    PurchaseDay,
    PurchaseTouch,
    ReachableCount,
    SendDay,
    SignupDay,
    SurveyDay,
    ValueDay,
)
from campaigns.results.periods import Period
from campaigns.results.sql import dt, minus, qn, refunded, refunded_sql, rows, subquery
from campaigns.results.tables import Table, change, money, percent
from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentMethod,
    Customer,
    Purchase,
    Source,
    Store,
    SurveyResponse,
)
from loyalty.models import LedgerEntry, LoyaltyAccount, Redemption

CAMPAIGN = Delivery.Cause.CAMPAIGN
DEFAULT_ATTRIBUTION_WINDOW = timedelta(days=7)
PLACE = {"store": "In store", "online": "Online", "both": "Both", "": "No place recorded"}
# Grants that are a new signup (a confirmation or a merge only restates an earlier grant).
SIGNUP_METHODS = {
    ConsentMethod.CHECKOUT: "store",
    ConsentMethod.WEB_FORM: "online",
    ConsentMethod.API: "online",
    ConsentMethod.IMPORT: "",
    ConsentMethod.ADMIN: "",
    ConsentMethod.SMS_KEYWORD: "online",
}
SOURCE_PLACE = {Source.WEB: "online", Source.API: "online", Source.STORE: "store", Source.IMPORT: ""}
DELIVERED_STATUSES = ("delivered", "read")


def _between(field: str, period: Period) -> Q:
    return Q(**{f"{field}__gte": period.start, f"{field}__lt": period.end})


def _day_both(period: Period) -> tuple[Q, Q, Q]:
    """``_both`` for a roll-up's ``day``: a period is its days, so a day's row is wholly in it or out."""
    previous = period.previous
    return (
        Q(day__gte=period.first_day, day__lte=period.last_day),
        Q(day__gte=previous.first_day, day__lte=previous.last_day),
        Q(day__gte=previous.first_day, day__lte=period.last_day),
    )


def _both(field: str, period: Period) -> tuple[Q, Q, Q]:
    """(in the period, in the previous one, in either): the filters of one two-period aggregate."""
    previous = period.previous
    return (
        _between(field, period),
        _between(field, previous),
        Q(**{f"{field}__gte": previous.start, f"{field}__lt": period.end}),
    )


def campaign_ids_touching(start: datetime, end: datetime) -> list[int]:
    """Campaigns that may have deliveries sent between ``start`` and ``end``; one small query.

    Naming them lets the deliveries' unique key ``(cause_type, cause_id, …)`` find their rows, since
    deliveries carry no index on their send time (it would cost every send a B-tree insert).
    """
    return list(
        Campaign.objects.filter(started_at__isnull=False, started_at__lt=end)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=start))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _sent(campaign_ids: list[int]):
    return Delivery.objects.filter(cause_type=CAMPAIGN, cause_id__in=campaign_ids, status=Delivery.Status.SENT)


def _sent_days(campaign_ids: list[int]):
    """The roll-up of ``_sent``: its rows per sent day, channel and variant."""
    return SendDay.objects.filter(cause_type=CAMPAIGN, cause_id__in=campaign_ids)


# --- awareness ------------------------------------------------------------------------------------


def new_profiles(period: Period, *, direct: bool = False) -> list[Table]:
    """New profiles by source and by capture store; two queries (on the daily roll-up unless ``direct``)."""
    if direct:
        current, previous, either = _both("created_at", period)
        base = Customer.objects.filter(either, merged_into__isnull=True).order_by()
        cur, prev = Count("pk", filter=current), Count("pk", filter=previous)
    else:
        current, previous, either = _day_both(period)
        base = ProfileDay.objects.filter(either).order_by()
        cur, prev = Sum("profiles", filter=current, default=0), Sum("profiles", filter=previous, default=0)
    by_source = base.values("source").annotate(cur=cur, prev=prev)
    source_rows = [
        [
            Source(row["source"]).label if row["source"] in Source.values else row["source"],
            PLACE[SOURCE_PLACE.get(row["source"], "")],
            row["cur"],
            row["prev"],
            change(row["cur"], row["prev"]),
        ]
        for row in sorted(by_source, key=lambda r: (-r["cur"], r["source"]))
    ]
    by_store = base.values("source_store__name").annotate(cur=cur, prev=prev)
    store_rows = [
        [
            row["source_store__name"] or "No store (online, import, API)",
            row["cur"],
            row["prev"],
            change(row["cur"], row["prev"]),
        ]
        for row in sorted(by_store, key=lambda r: (-r["cur"], r["source_store__name"] or ""))
    ]
    return [
        Table(
            "new_by_source",
            "New profiles by source",
            ["source", "place", "period", "previous", "change"],
            source_rows,
            "Merged-away duplicates are not counted; erased profiles are (they were new then).",
        ),
        Table(
            "new_by_store", "New profiles by store of capture", ["store", "period", "previous", "change"], store_rows
        ),
    ]


def reachable_audience(*, now: datetime | None = None, direct: bool = False) -> Table:
    """Active profiles each channel can reach (consent, address, not suppressed); one query.

    Counting them takes a pass over every profile, so the page reads the snapshot the roll-up refresh
    keeps (``campaigns.results.rollups``); ``direct``, or before the first snapshot, counts them now.
    """
    snapshot = [] if direct else list(ReachableCount.objects.all())
    if snapshot:
        counts = {row.channel: row.profiles for row in snapshot}
        counted_at = min(row.counted_at for row in snapshot)
    else:
        counted_at = now or timezone.now()
        counts = Customer.objects.active().aggregate(
            **{channel: Count("pk", filter=sendable_q(channel, None, now=counted_at)) for channel in Channel.values}
        )
    return Table(
        "reachable",
        "Reachable audience per channel (today)",
        ["channel", "profiles"],
        [[Channel(channel).label, counts.get(channel, 0)] for channel in Channel.values],
        f"A snapshot counted at {timezone.localtime(counted_at):%Y-%m-%d %H:%M}, whatever the period: consent "
        "given, an address, not suppressed, not paused.",
    )


# --- engagement -----------------------------------------------------------------------------------


def signups(period: Period, *, direct: bool = False) -> Table:
    """Email and SMS consent grants by how they were collected; one query (on the daily roll-up unless
    ``direct``)."""
    if direct:
        current, previous, either = _both("occurred_at", period)
        grouped = (
            ConsentEvidence.objects.filter(either, action="grant", method__in=list(SIGNUP_METHODS))
            .exclude(channel=Channel.PUSH)
            .order_by()
            .values("channel", "method")
            .annotate(cur=Count("pk", filter=current), prev=Count("pk", filter=previous))
        )
    else:
        current, previous, either = _day_both(period)
        grouped = (
            SignupDay.objects.filter(either)
            .order_by()
            .values("channel", "method")
            .annotate(cur=Sum("grants", filter=current, default=0), prev=Sum("grants", filter=previous, default=0))
        )
    table_rows = [
        [
            Channel(row["channel"]).label,
            ConsentMethod(row["method"]).label,
            PLACE[SIGNUP_METHODS[row["method"]]],
            row["cur"],
            row["prev"],
            change(row["cur"], row["prev"]),
        ]
        for row in sorted(grouped, key=lambda r: (r["channel"], -r["cur"], r["method"]))
    ]
    return Table(
        "signups", "Email and SMS signups", ["channel", "method", "place", "period", "previous", "change"], table_rows
    )


def checkout_opt_in(period: Period, *, direct: bool = False) -> list[Table]:
    """Of the profiles the till captured in the period, the share that opted in at checkout, per store
    and per clerk; two queries (on the daily roll-up unless ``direct``)."""
    if direct:
        opted = Exists(
            ConsentEvidence.objects.filter(
                customer_id=OuterRef("pk"), action="grant", method=ConsentMethod.CHECKOUT, channel__in=["email", "sms"]
            )
        )
        base = Customer.objects.filter(_between("created_at", period), source=Source.STORE, merged_into__isnull=True)
        base = base.order_by().alias(opted=opted)
        captured, opted_in = Count("pk"), Count("pk", filter=Q(opted=True))
    else:
        base = ProfileDay.objects.filter(_day_both(period)[0], source=Source.STORE).order_by()
        captured, opted_in = Sum("profiles"), Sum("checkout_opt_ins")
    tables = []
    for key, field, title, empty in (
        ("optin_store", "source_store__name", "Opt-in rate at checkout per store", "No store"),
        ("optin_clerk", "source_clerk__username", "Opt-in rate at checkout per clerk", "No clerk recorded"),
    ):
        grouped = base.values(field).annotate(captured=captured, opted_in=opted_in)
        table_rows = [
            [row[field] or empty, row["captured"], row["opted_in"], percent(row["opted_in"], row["captured"])]
            for row in sorted(grouped, key=lambda r: (-r["captured"], r[field] or ""))
        ]
        tables.append(
            Table(
                key,
                title,
                [field.split("__")[0].replace("source_", ""), "captured", "opted in", "opt-in %"],
                table_rows,
                "Profiles created at the till in the period; opted in = email or SMS consent given at checkout.",
            )
        )
    return tables


def open_click_rates(period: Period, campaign_ids: list[int], *, direct: bool = False) -> Table:
    """Opens and clicks per message sent, per channel, where the provider reports them; one query
    (on the daily roll-up unless ``direct``)."""
    if direct:
        current, previous, either = _both("sent_at", period)
        grouped = (
            _sent(campaign_ids)
            .filter(either)
            .order_by()
            .values("channel")
            .annotate(
                sent=Count("pk", filter=current),
                opened=Count("pk", filter=current & Q(opened_at__isnull=False)),
                clicked=Count("pk", filter=current & Q(clicked_at__isnull=False)),
                sent_prev=Count("pk", filter=previous),
                opened_prev=Count("pk", filter=previous & Q(opened_at__isnull=False)),
                clicked_prev=Count("pk", filter=previous & Q(clicked_at__isnull=False)),
            )
        )
    else:
        current, previous, either = _day_both(period)
        grouped = (
            _sent_days(campaign_ids)
            .filter(either)
            .order_by()
            .values("channel")
            .annotate(
                **{
                    f"{name}{suffix}": Sum(field, filter=span, default=0)
                    for name, field in (("sent", "messages"), ("opened", "opens"), ("clicked", "clicks"))
                    for suffix, span in (("", current), ("_prev", previous))
                }
            )
        )
    table_rows = []
    for row in sorted(grouped, key=lambda r: r["channel"]):
        tracked = row["channel"] == Channel.EMAIL
        table_rows.append(
            [
                Channel(row["channel"]).label,
                row["sent"],
                percent(row["opened"], row["sent"]) if tracked else None,
                percent(row["clicked"], row["sent"]),
                percent(row["opened_prev"], row["sent_prev"]) if tracked else None,
                percent(row["clicked_prev"], row["sent_prev"]),
            ]
        )
    return Table(
        "open_click",
        "Open and click rates",
        ["channel", "sent", "open %", "click %", "open % (prev)", "click % (prev)"],
        table_rows,
        "Per message sent in the period. Opens are tracked for email only (pixel; privacy proxies inflate "
        "them); clicks where links are tracked. Empty: not tracked.",
    )


def _person_ids(customer_ref: str = "customer_id"):
    """Profiles that are the person ``OuterRef(customer_ref)`` of an outer row: itself and those merged into it."""
    return Customer.objects.filter(
        Q(pk=OuterRef(OuterRef(customer_ref))) | Q(merged_into_id=OuterRef(OuterRef(customer_ref)))
    ).values("pk")


def coupon_redemption_rate(period: Period, campaign_ids: list[int], *, direct: bool = False) -> Table:
    """Of the messages sent in the period carrying a code, the share whose code that person redeemed
    (after the send), online and in store; one statement (on the daily roll-up unless ``direct``: then
    a hash join on (code, person))."""
    counts = {"carried": 0, "redeemed": 0, "store": 0, "online": 0}
    if campaign_ids and not direct:
        counts = (
            _sent_days(campaign_ids)
            .filter(_day_both(period)[0])
            .aggregate(
                carried=Sum("coupons", default=0),
                redeemed=Sum("redemptions", default=0),
                store=Sum("store_redemptions", default=0),
                online=Sum("online_redemptions", default=0),
            )
        )
    elif campaign_ids:
        ids = ", ".join(str(int(pk)) for pk in campaign_ids)
        sql = (
            "SELECT COUNT(*), SUM(x.any_place), SUM(x.in_store), SUM(x.online) FROM ("  # noqa: S608
            "SELECT d.id, MAX(CASE WHEN r.id IS NULL THEN 0 ELSE 1 END) AS any_place, "
            "MAX(CASE WHEN r.channel = 'store' THEN 1 ELSE 0 END) AS in_store, "
            "MAX(CASE WHEN r.channel = 'online' THEN 1 ELSE 0 END) AS online "
            f"FROM {qn(Delivery._meta.db_table)} d JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
            f"LEFT JOIN {qn(Redemption._meta.db_table)} r ON r.coupon_code_id = d.coupon_code_id "
            "AND r.customer_id = COALESCE(c.merged_into_id, c.id) AND r.status = %s AND r.created_at >= d.sent_at "
            f"WHERE d.cause_type = %s AND d.cause_id IN ({ids}) AND d.status = %s AND d.coupon_code_id IS NOT NULL "
            "AND d.sent_at >= %s AND d.sent_at < %s GROUP BY d.id) x"
        )
        params = [Redemption.Status.CONFIRMED, CAMPAIGN, Delivery.Status.SENT, dt(period.start), dt(period.end)]
        carried, any_place, in_store, online = rows(sql, params)[0]
        counts = {"carried": carried, "redeemed": any_place or 0, "store": in_store or 0, "online": online or 0}
    carried = counts["carried"]
    return Table(
        "coupon_rate",
        "Coupon redemption rate",
        ["place", "messages with a code", "redeemed", "redemption %"],
        [
            [PLACE[key], carried, counts[name], percent(counts[name], carried)]
            for key, name in (("store", "store"), ("online", "online"), ("both", "redeemed"))
        ],
        "Messages sent in the period that carried a coupon code; redeemed by the person it was sent to, after "
        "the send. 'Both' counts a message once even if redeemed in each place.",
    )


# --- conversion -----------------------------------------------------------------------------------


def revenue(period: Period, *, direct: bool = False) -> Table:
    """Revenue online and in store, net of refunds, this period and the previous one; one query (on the
    daily roll-up unless ``direct``)."""
    if direct:
        current, previous, either = _both("occurred_at", period)
        grouped = (
            Purchase.objects.filter(either)
            .order_by()
            .alias(is_refunded=refunded())
            .values("channel")
            .annotate(
                cur=Sum("amount", filter=current & Q(is_refunded=False), default=Decimal(0)),
                prev=Sum("amount", filter=previous & Q(is_refunded=False), default=Decimal(0)),
                orders=Count("pk", filter=current & Q(is_refunded=False)),
                refunds=Sum("amount", filter=current & Q(is_refunded=True), default=Decimal(0)),
            )
        )
    else:
        current, previous, either = _day_both(period)
        grouped = (
            PurchaseDay.objects.filter(either)
            .order_by()
            .values("channel")
            .annotate(
                cur=Sum("net_revenue", filter=current, default=Decimal(0)),
                prev=Sum("net_revenue", filter=previous, default=Decimal(0)),
                orders=Sum("kept_orders", filter=current, default=0),
                refunds=Sum("refunded_amount", filter=current, default=Decimal(0)),
            )
        )
    by_channel = {row["channel"]: row for row in grouped}
    table_rows = []
    totals = {"cur": Decimal(0), "prev": Decimal(0), "orders": 0, "refunds": Decimal(0)}
    for channel in ("store", "online"):
        row = by_channel.get(channel, {"cur": Decimal(0), "prev": Decimal(0), "orders": 0, "refunds": Decimal(0)})
        for key in totals:
            totals[key] += row[key]
        table_rows.append(
            [PLACE[channel], row["orders"], row["cur"], row["prev"], change(row["cur"], row["prev"]), row["refunds"]]
        )
    table_rows.append(
        [
            PLACE["both"],
            totals["orders"],
            totals["cur"],
            totals["prev"],
            change(totals["cur"], totals["prev"]),
            totals["refunds"],
        ]
    )
    return Table(
        "revenue",
        "Revenue",
        ["place", "orders", "revenue", "previous", "change", "refunded"],
        table_rows,
        "Net of refunds: a refunded purchase counts nothing (refunds are whole purchases).",
    )


def code_attributed_revenue(period: Period, campaign_ids: list[int], *, direct: bool = False) -> Table:
    """Redemptions in the period of codes that messages carried to that person, with their order amounts;
    one statement (the roll-up's (campaign, redemption) pairs unless ``direct``: then a hashed semi-join on
    (code, person) over the campaigns' deliveries)."""
    previous = period.previous
    grouped = []
    if campaign_ids:
        ids = ", ".join(str(int(pk)) for pk in campaign_ids)
        if direct:
            carried = (
                "(r.coupon_code_id, r.customer_id) IN (SELECT d.coupon_code_id, COALESCE(c.merged_into_id, c.id) "  # noqa: S608
                f"FROM {qn(Delivery._meta.db_table)} d JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
                f"WHERE d.cause_type = %s AND d.cause_id IN ({ids}) AND d.coupon_code_id IS NOT NULL) "
            )
            carried_params = [CAMPAIGN]
        else:
            pairs = qn(CodeRedemption._meta.db_table)
            carried = f"r.id IN (SELECT x.redemption_id FROM {pairs} x WHERE x.cause_id IN ({ids})) "  # noqa: S608
            carried_params = []
        sql = (
            "SELECT r.channel, "  # noqa: S608 (table names and integers only)
            "COUNT(CASE WHEN r.created_at >= %s THEN 1 END), "
            "SUM(CASE WHEN r.created_at >= %s THEN r.order_amount END), "
            "COUNT(CASE WHEN r.created_at < %s THEN 1 END), "
            "SUM(CASE WHEN r.created_at < %s THEN r.order_amount END) "
            f"FROM {qn(Redemption._meta.db_table)} r WHERE r.status = %s AND r.created_at >= %s AND r.created_at < %s "
            f"AND {carried}GROUP BY r.channel"
        )
        start = dt(period.start)
        params = [start, start, start, start, Redemption.Status.CONFIRMED, dt(previous.start), dt(period.end)]
        params += carried_params
        grouped = [
            {"channel": channel, "cur": cur, "amount": money(amount), "prev": prev, "amount_prev": money(amount_prev)}
            for channel, cur, amount, prev, amount_prev in rows(sql, params)
        ]
    by_channel = {row["channel"]: row for row in grouped}
    empty = {"cur": 0, "amount": Decimal(0), "prev": 0, "amount_prev": Decimal(0)}
    table_rows = []
    total = dict(empty)
    for channel in ("store", "online"):
        row = by_channel.get(channel, empty)
        for key in total:
            total[key] += row[key]
        table_rows.append([PLACE[channel], row["cur"], row["amount"], row["prev"], row["amount_prev"]])
    table_rows.append([PLACE["both"], total["cur"], total["amount"], total["prev"], total["amount_prev"]])
    return Table(
        "code_revenue",
        "Revenue from redeemed message codes",
        ["place", "redemptions", "order amount", "redemptions (prev)", "order amount (prev)"],
        table_rows,
        "Redemptions of a code that one of our messages carried to that same person.",
    )


def last_touch_purchases(
    *,
    start: datetime,
    end: datetime,
    window: timedelta,
    campaign_ids: list[int],
    only_campaign: int | None = None,
    direct: bool = True,
) -> list[tuple]:
    """Purchases between ``start`` and ``end`` credited to the last message sent to that person within
    ``window`` before it (last touch), grouped; ONE statement.

    Rows: ``(cause_id, channel, variant_id, purchase channel, purchases, buyers, revenue)``. Refunded
    purchases are left out. ``only_campaign`` keeps the purchases whose last touch was that campaign.
    Not ``direct``: read from the purchases' last touches the roll-up refresh keeps (a window up to its
    horizon); the last message before a purchase is its touch for every window it falls inside.
    """
    if not campaign_ids:
        return []
    ids = ", ".join(str(int(pk)) for pk in campaign_ids)
    keep = f"AND t.cause_id = {int(only_campaign)}" if only_campaign is not None else ""
    from campaigns.results.rollups import TOUCH_HORIZON

    if not direct and window <= TOUCH_HORIZON:
        lower, lower_params = minus("t.occurred_at", window)
        sql = (
            "SELECT t.cause_id, t.channel, t.variant_id, t.purchase_channel, COUNT(*), "  # noqa: S608
            f"COUNT(DISTINCT t.customer_id), SUM(t.amount) FROM {qn(PurchaseTouch._meta.db_table)} t "
            f"WHERE t.cause_id IN ({ids}) AND t.occurred_at >= %s AND t.occurred_at < %s AND t.sent_at > {lower} "
            f"{keep} GROUP BY t.cause_id, t.channel, t.variant_id, t.purchase_channel"
        )
        return rows(sql, [dt(start), dt(end), *lower_params])
    lower, lower_params = minus("p.occurred_at", window)
    sql = (
        "SELECT t.cause_id, t.channel, t.variant_id, t.purchase_channel, COUNT(*), COUNT(DISTINCT t.customer_id), "  # noqa: S608
        "SUM(t.amount) FROM ("
        "SELECT d.cause_id, d.channel, d.variant_id, p.channel AS purchase_channel, p.customer_id, p.amount, "
        "ROW_NUMBER() OVER (PARTITION BY p.id ORDER BY d.sent_at DESC, d.id DESC) AS touch "
        f"FROM {qn(Delivery._meta.db_table)} d "
        f"JOIN {qn(Customer._meta.db_table)} c ON c.id = d.customer_id "
        f"JOIN {qn(Purchase._meta.db_table)} p ON p.customer_id = COALESCE(c.merged_into_id, c.id) "
        f"WHERE d.cause_type = %s AND d.cause_id IN ({ids}) AND d.status = %s "
        f"AND p.occurred_at >= %s AND p.occurred_at < %s AND d.sent_at <= p.occurred_at AND d.sent_at > {lower} "
        f"AND NOT {refunded_sql('p')}"
        f") t WHERE t.touch = 1 {keep} GROUP BY t.cause_id, t.channel, t.variant_id, t.purchase_channel"
    )
    return rows(sql, [CAMPAIGN, Delivery.Status.SENT, dt(start), dt(end), *lower_params])


def message_conversion(
    period: Period,
    campaign_ids: list[int],
    *,
    window: timedelta,
    direct: bool = False,
    attributed: list[tuple] | None = None,
) -> list[Table]:
    """Purchases after a message (last touch within ``window``) per campaign, channel and variant, with
    the messages sent; four queries (attribution, sends, campaign names, variant names), three when the
    caller passes the period's ``last_touch_purchases`` rows as ``attributed``; the sends on the daily
    roll-up unless ``direct``."""
    from campaigns.models import Variant

    if attributed is None:
        attributed = last_touch_purchases(
            start=period.start, end=period.end, window=window, campaign_ids=campaign_ids, direct=direct
        )
    if direct:
        sends = (
            _sent(campaign_ids)
            .filter(_between("sent_at", period))
            .order_by()
            .values("cause_id", "channel", "variant_id")
            .annotate(sent=Count("pk"), people=Count("customer_id", distinct=True))
        )
    else:
        # A campaign sends a person one message per channel (the deliveries' unique key), so the people
        # sent to per campaign, channel and variant are its messages: the days' counts add up.
        sends = (
            _sent_days(campaign_ids)
            .filter(_day_both(period)[0])
            .order_by()
            .values("cause_id", "channel", "variant_id")
            .annotate(sent=Sum("messages"), people=Sum("messages"))
        )
    sent = {(row["cause_id"], row["channel"], row["variant_id"]): row for row in sends}
    keys = set(sent) | {(row[0], row[1], row[2]) for row in attributed}
    names = dict(Campaign.objects.filter(pk__in={key[0] for key in keys}).values_list("pk", "name"))
    variants = {
        row["pk"]: row["persona__name"] or "Default"
        for row in Variant.objects.filter(pk__in={key[2] for key in keys if key[2]}).values("pk", "persona__name")
    }
    merged: dict[tuple, dict] = {}
    place_totals = {"store": [0, Decimal(0)], "online": [0, Decimal(0)]}
    for cause_id, channel, variant_id, purchase_channel, purchases, buyers, amount in attributed:
        entry = merged.setdefault((cause_id, channel, variant_id), {"purchases": 0, "buyers": 0, "revenue": Decimal(0)})
        entry["purchases"] += purchases
        entry["buyers"] += buyers
        entry["revenue"] += money(amount)
        place_totals[purchase_channel][0] += purchases
        place_totals[purchase_channel][1] += money(amount)
    table_rows = []
    for key in sorted(keys, key=lambda k: (names.get(k[0], ""), k[1], k[2] or 0)):
        send = sent.get(key, {"sent": 0, "people": 0})
        entry = merged.get(key, {"purchases": 0, "buyers": 0, "revenue": Decimal(0)})
        table_rows.append(
            [
                names.get(key[0], f"#{key[0]}"),
                Channel(key[1]).label if key[1] in Channel.values else key[1],
                variants.get(key[2], "-"),
                send["sent"],
                entry["purchases"],
                entry["buyers"],
                percent(entry["buyers"], send["people"]),
                entry["revenue"],
            ]
        )
    days = int(window.total_seconds() // 86400)
    note = (
        f"Last touch: each purchase is credited to the last message sent to that person in the {days} days "
        "before it (one message per purchase, never two). Conversion % = buyers / people sent to in the "
        "period; a purchase may follow a message sent just before the period."
    )
    return [
        Table(
            "message_conversion",
            "Conversion per campaign, channel and variant (persona)",
            ["campaign", "channel", "persona", "sent", "purchases", "buyers", "conversion %", "revenue"],
            table_rows,
            note,
        ),
        Table(
            "attributed_revenue",
            "Revenue attributed to messages (last touch)",
            ["place", "purchases", "revenue"],
            [[PLACE[place], *values] for place, values in place_totals.items()]
            + [
                [
                    PLACE["both"],
                    sum(v[0] for v in place_totals.values()),
                    sum((v[1] for v in place_totals.values()), Decimal(0)),
                ]
            ],
            note,
        ),
    ]


#: how long after its step ran a journey message may still be sent (quiet hours, local send times)
JOURNEY_SEND_SLACK = timedelta(days=2)


def journey_conversion(period: Period, *, direct: bool = False) -> Table:
    """Per journey: enrolments entered and converted, the conversion rate and the messages its send
    steps sent, in the period and the previous one; three queries whatever the data (on the daily
    roll-ups unless ``direct``).

    Deliveries carry no index on their send time: the step runs of the two periods (and the slack
    before them) name them through the deliveries' unique key ``(cause_type, cause_id, ...)``.
    """
    from campaigns.models import Enrolment, JourneyStepRun

    if not direct:
        return _journey_table(period, *_journey_counts_rolled_up(period))
    current, previous, either = _both("entered_at", period)
    converted, converted_prev, converted_either = _both("converted_at", period)
    enrolments = {
        row["journey_id"]: row
        for row in Enrolment.objects.filter(either | converted_either)
        .order_by()
        .values("journey_id")
        .annotate(
            entered=Count("pk", filter=current),
            entered_prev=Count("pk", filter=previous),
            converted=Count("pk", filter=converted),
            converted_prev=Count("pk", filter=converted_prev),
            cohort_converted=Count("pk", filter=current & Q(converted_at__isnull=False)),
            cohort_converted_prev=Count("pk", filter=previous & Q(converted_at__isnull=False)),
        )
    }
    previous_period = period.previous
    sql = (
        f"SELECT e.journey_id, "  # noqa: S608 (quoted table names only; values are parameters)
        f"SUM(CASE WHEN d.sent_at >= %s THEN 1 ELSE 0 END), SUM(CASE WHEN d.sent_at < %s THEN 1 ELSE 0 END) "
        f"FROM {qn(JourneyStepRun._meta.db_table)} r "
        f"JOIN {qn(Enrolment._meta.db_table)} e ON e.id = r.enrolment_id "
        f"JOIN {qn(Delivery._meta.db_table)} d ON d.cause_type = %s AND d.cause_id = r.id "
        f"WHERE r.ran_at >= %s AND r.ran_at < %s AND d.sent_at >= %s AND d.sent_at < %s "
        f"GROUP BY e.journey_id"
    )
    params = [
        dt(period.start),
        dt(period.start),
        Delivery.Cause.JOURNEY_STEP.value,
        dt(previous_period.start - JOURNEY_SEND_SLACK),
        dt(period.end),
        dt(previous_period.start),
        dt(period.end),
    ]
    sends = {journey_id: (int(cur or 0), int(prev or 0)) for journey_id, cur, prev in rows(sql, params)}
    return _journey_table(period, enrolments, sends)


def _journey_counts_rolled_up(period: Period) -> tuple[dict, dict]:
    from campaigns.models import JourneyDay, JourneySendDay

    current, previous, either = _day_both(period)
    enrolments = {
        row["journey_id"]: row
        for row in JourneyDay.objects.filter(either)
        .order_by()
        .values("journey_id")
        .annotate(
            entered=Sum("entries", filter=current, default=0),
            entered_prev=Sum("entries", filter=previous, default=0),
            converted=Sum("conversions", filter=current, default=0),
            converted_prev=Sum("conversions", filter=previous, default=0),
            cohort_converted=Sum("entries_converted", filter=current, default=0),
            cohort_converted_prev=Sum("entries_converted", filter=previous, default=0),
        )
    }
    earliest_run = period.previous.first_day - timedelta(days=JOURNEY_SEND_SLACK.days)
    sends = {
        row["journey_id"]: (row["cur"], row["prev"])
        for row in JourneySendDay.objects.filter(either, ran_day__gte=earliest_run, ran_day__lte=period.last_day)
        .order_by()
        .values("journey_id")
        .annotate(cur=Sum("messages", filter=current, default=0), prev=Sum("messages", filter=previous, default=0))
    }
    return enrolments, sends


def _journey_table(period: Period, enrolments: dict, sends: dict) -> Table:
    from campaigns.models import Journey

    ids = set(enrolments) | set(sends)
    names = dict(Journey.objects.filter(pk__in=ids).values_list("pk", "name"))
    empty = dict.fromkeys(
        ("entered", "entered_prev", "converted", "converted_prev", "cohort_converted", "cohort_converted_prev"), 0
    )
    table_rows = []
    for journey_id in sorted(ids, key=lambda pk: (names.get(pk, ""), pk)):
        row = enrolments.get(journey_id, empty)
        sent, sent_prev = sends.get(journey_id, (0, 0))
        table_rows.append(
            [
                names.get(journey_id, f"#{journey_id}"),
                row["entered"],
                row["converted"],
                percent(row["cohort_converted"], row["entered"]),
                sent,
                row["entered_prev"],
                row["converted_prev"],
                percent(row["cohort_converted_prev"], row["entered_prev"]),
                sent_prev,
            ]
        )
    return Table(
        "journey_conversion",
        "Conversion per journey",
        [
            "journey",
            "entered",
            "converted",
            "conversion %",
            "messages sent",
            "entered (prev)",
            "converted (prev)",
            "conversion % (prev)",
            "messages sent (prev)",
        ],
        table_rows,
        "Entered and converted: enrolments that entered, or met the journey's goal, in the period. Conversion % "
        "= share of the period's entrants who have met the goal since. Messages sent: by the journey's send "
        "steps, counted when sent.",
    )


# --- loyalty --------------------------------------------------------------------------------------


def _buyers_sql(start: datetime | None, end: datetime) -> tuple[str, list]:
    """One row per buyer: purchases, in store, online, net revenue (refunds left out)."""
    purchases = Purchase.objects.filter(customer__isnull=False, occurred_at__lt=end)
    if start is not None:
        purchases = purchases.filter(occurred_at__gte=start)
    grouped = (
        purchases.alias(is_refunded=refunded())
        .filter(is_refunded=False)
        .order_by()
        .values("customer_id")
        .annotate(
            n=Count("pk"),
            store=Count("pk", filter=Q(channel="store")),
            online=Count("pk", filter=Q(channel="online")),
            spend=Sum("amount"),
        )
    )
    return subquery(grouped)


_MIX = "CASE WHEN b.store > 0 AND b.online > 0 THEN 'both' WHEN b.store > 0 THEN 'store' ELSE 'online' END"


def _buyer_days_sql(span: Period) -> tuple[str, list]:
    """``_buyers_sql`` from the daily roll-up (without the spend, which repeat purchase does not need)."""
    grouped = (
        BuyerDay.objects.filter(day__gte=span.first_day, day__lte=span.last_day)
        .order_by()
        .values("customer_id")
        .annotate(store=Sum("store_orders"), online=Sum("online_orders"))
        .annotate(n=F("store") + F("online"))
    )
    return subquery(grouped)


def repeat_purchase(period: Period, *, direct: bool = False) -> Table:
    """Of the customers who bought in the period, the share who bought more than once, by where they
    bought; one query per period (on the daily roll-up unless ``direct``)."""
    result = {}
    for name, span in (("cur", period), ("prev", period.previous)):
        inner, params = _buyers_sql(span.start, span.end) if direct else _buyer_days_sql(span)
        result[name] = {
            mix: (buyers, repeaters)
            for mix, buyers, repeaters in rows(
                f"SELECT {_MIX}, COUNT(*), SUM(CASE WHEN b.n > 1 THEN 1 ELSE 0 END) FROM {inner} b GROUP BY 1",  # noqa: S608
                params,
            )
        }
    table_rows = []
    for mix in ("store", "online", "both"):
        buyers, repeaters = result["cur"].get(mix, (0, 0))
        prev_buyers, prev_repeaters = result["prev"].get(mix, (0, 0))
        table_rows.append(
            [
                PLACE[mix] + (" (bought in each)" if mix == "both" else " only"),
                buyers,
                repeaters or 0,
                percent(repeaters, buyers),
                percent(prev_repeaters, prev_buyers),
            ]
        )
    all_buyers = sum(v[0] for v in result["cur"].values())
    all_repeat = sum(v[1] or 0 for v in result["cur"].values())
    prev_all = sum(v[0] for v in result["prev"].values())
    prev_repeat = sum(v[1] or 0 for v in result["prev"].values())
    table_rows.append(
        ["All buyers", all_buyers, all_repeat, percent(all_repeat, all_buyers), percent(prev_repeat, prev_all)]
    )
    return Table(
        "repeat",
        "Repeat purchase rate",
        ["buyers", "customers", "bought twice or more", "repeat %", "repeat % (prev)"],
        table_rows,
        "Customers with a purchase in the period; refunded purchases do not count; customers with no "
        "purchase are not in the denominator.",
    )


def customer_value(period: Period, *, direct: bool = False) -> Table:
    """Historic customer lifetime value (net revenue to the end of the period) per buyer, by where they
    buy, and how many profiles never bought; two queries (on the daily roll-ups unless ``direct``)."""
    if direct:
        inner, params = _buyers_sql(None, period.end)
        grouped = rows(f"SELECT {_MIX}, COUNT(*), SUM(b.spend) FROM {inner} b GROUP BY 1", params)  # noqa: S608
        profiles = Customer.objects.filter(merged_into__isnull=True, created_at__lt=period.end).aggregate(
            total=Count("pk"), without=Count("pk", filter=~Exists(Purchase.objects.filter(customer_id=OuterRef("pk"))))
        )
    else:
        grouped = ValueDay.objects.filter(day__lte=period.last_day).order_by().values("mix")
        grouped = [
            (row["mix"], row["n"], row["total"])
            for row in grouped.annotate(n=Sum("buyers"), total=Sum("spend"))
            if row["n"]
        ]
        profiles = ProfileDay.objects.filter(day__lte=period.last_day).aggregate(
            total=Sum("profiles", default=0), without=Sum("never_bought", default=0)
        )
    by_mix = {mix: (buyers, money(spend)) for mix, buyers, spend in grouped}
    table_rows = []
    for mix in ("store", "online", "both"):
        buyers, spend = by_mix.get(mix, (0, Decimal(0)))
        table_rows.append(
            [
                PLACE[mix] + (" (bought in each)" if mix == "both" else " only"),
                buyers,
                spend,
                round(spend / buyers, 2) if buyers else None,
            ]
        )
    all_buyers = sum(v[0] for v in by_mix.values())
    all_spend = sum((v[1] for v in by_mix.values()), Decimal(0))
    table_rows.append(["All buyers", all_buyers, all_spend, round(all_spend / all_buyers, 2) if all_buyers else None])
    table_rows.append(["Profiles with no purchase", profiles["without"], Decimal(0), Decimal(0)])
    everyone = profiles["total"]
    table_rows.append(["All profiles", everyone, all_spend, round(all_spend / everyone, 2) if everyone else None])
    return Table(
        "clv",
        "Historic customer lifetime value",
        ["customers", "count", "net revenue", "value per customer"],
        table_rows,
        "All purchases up to the end of the period, net of refunds; merged duplicates count "
        "once (their purchases moved to the survivor).",
    )


def cohort_retention(period: Period, *, months: int = 6, direct: bool = False) -> Table:
    """Retention by first-purchase month (UTC months): of each cohort, the share buying again in each
    following month; one query (on the daily roll-up unless ``direct``)."""
    if direct:
        first = Window(Min(TruncMonth("occurred_at", tzinfo=UTC)), partition_by=[F("customer_id")])
        purchases = (
            Purchase.objects.filter(customer__isnull=False, occurred_at__lt=period.end)
            .alias(is_refunded=refunded())
            .filter(is_refunded=False)
            .order_by()
            .annotate(month=TruncMonth("occurred_at", tzinfo=UTC), first_month=first)
            .values("customer_id", "month", "first_month")
        )
        inner, params = subquery(purchases)
        grouped = rows(
            f"SELECT x.first_month, x.month, COUNT(DISTINCT x.customer_id) FROM {inner} x "  # noqa: S608
            "GROUP BY x.first_month, x.month",
            params,
        )
    else:
        grouped = CohortDay.objects.filter(day__lte=period.last_day).order_by().values_list("cohort", "month")
        grouped = grouped.annotate(n=Sum("customers"))

    def label(value) -> str:
        return str(value)[:7]

    def index(value: str) -> int:
        return int(value[:4]) * 12 + int(value[5:7]) - 1

    last = index(f"{period.last_day:%Y-%m}")
    cohorts: dict[str, dict[int, int]] = {}
    for first_month, month, count in grouped:
        start = label(first_month)
        if last - index(start) >= months:
            continue
        cohorts.setdefault(start, {})[index(label(month)) - index(start)] = count
    table_rows = []
    for start in sorted(cohorts):
        size = cohorts[start].get(0, 0)
        offsets = [
            percent(cohorts[start].get(offset, 0), size) if index(start) + offset <= last else None
            for offset in range(1, months)
        ]
        table_rows.append([start, size, *offsets])
    return Table(
        "cohorts",
        "Retention by first-purchase month",
        ["cohort", "customers", *[f"month +{offset} %" for offset in range(1, months)]],
        table_rows,
        "Share of each cohort (month of first purchase, UTC) buying again in each later month.",
    )


def loyalty_members(period: Period) -> Table:
    """Active members (a ledger entry in the period) of the open accounts, by tier; one query."""

    grouped = (
        LoyaltyAccount.objects.filter(status=LoyaltyAccount.Status.ACTIVE, customer__erased_at__isnull=True)
        .order_by()
        .values("tier__name")
        .annotate(
            members=Count("pk"),
            active=Count(
                "pk",
                filter=Exists(LedgerEntry.objects.filter(_between("occurred_at", period), account_id=OuterRef("pk"))),
            ),
            active_prev=Count(
                "pk",
                filter=Exists(
                    LedgerEntry.objects.filter(_between("occurred_at", period.previous), account_id=OuterRef("pk"))
                ),
            ),
        )
    )
    table_rows = [
        [
            row["tier__name"] or "No tier",
            row["members"],
            row["active"],
            percent(row["active"], row["members"]),
            row["active_prev"],
        ]
        for row in sorted(grouped, key=lambda r: r["tier__name"] or "")
    ]
    if table_rows:
        totals = [sum(row[i] for row in table_rows) for i in (1, 2, 4)]
        table_rows.append(["All tiers", totals[0], totals[1], percent(totals[1], totals[0]), totals[2]])
    return Table(
        "members",
        "Loyalty members",
        ["tier", "open accounts", "active in period", "active %", "active (prev)"],
        table_rows,
        "Active: earned, redeemed or had points adjusted in the period.",
    )


def points(period: Period) -> Table:
    """Points issued, redeemed and expired in the period, and the outstanding liability now; two queries."""
    current, previous, either = _both("occurred_at", period)
    grouped = {
        row["kind"]: row
        for row in LedgerEntry.objects.filter(either)
        .order_by()
        .values("kind")
        .annotate(cur=Sum("points", filter=current, default=0), prev=Sum("points", filter=previous, default=0))
    }
    table_rows = []
    for kind, label, sign in (
        ("earn", "Issued (earned)", 1),
        ("redeem", "Redeemed", -1),
        ("expire", "Expired", -1),
        ("reverse", "Taken back (refunds)", -1),
    ):
        row = grouped.get(kind, {"cur": 0, "prev": 0})
        table_rows.append(
            [label, sign * row["cur"], sign * row["prev"], change(sign * row["cur"], sign * row["prev"]), None]
        )
    liability = LoyaltyAccount.objects.filter(status=LoyaltyAccount.Status.ACTIVE).aggregate(
        points=Sum("points_balance", default=0),
        value=Sum(F("points_balance") * F("programme__point_value"), default=Decimal(0)),
    )
    table_rows.append(
        ["Outstanding now (liability)", liability["points"], None, "-", round(Decimal(liability["value"] or 0), 2)]
    )
    return Table(
        "points",
        "Points",
        ["points", "period", "previous", "change", "value"],
        table_rows,
        "Liability: the open accounts' balances at each programme's point value.",
    )


PROMOTER_LOWEST = 9
DETRACTOR_HIGHEST = 6


def nps(period: Period, *, direct: bool = False) -> Table:
    """Net promoter score of the survey answers given in the period and the previous one; one query (on
    the daily roll-up unless ``direct``).

    Promoters answered 9-10, detractors 0-6; NPS = % promoters - % detractors, from -100 to +100.
    """
    if direct:
        current, previous, either = _both("answered_at", period)
        promoter, detractor = Q(score__gte=PROMOTER_LOWEST), Q(score__lte=DETRACTOR_HIGHEST)
        counts = SurveyResponse.objects.filter(either).aggregate(
            n=Count("pk", filter=current),
            promoters=Count("pk", filter=current & promoter),
            detractors=Count("pk", filter=current & detractor),
            n_prev=Count("pk", filter=previous),
            promoters_prev=Count("pk", filter=previous & promoter),
            detractors_prev=Count("pk", filter=previous & detractor),
        )
    else:
        current, previous, either = _day_both(period)
        counts = SurveyDay.objects.filter(either).aggregate(
            **{
                f"{name}{suffix}": Sum(field, filter=span, default=0)
                for name, field in (
                    ("n", "answers"),
                    ("promoters", "promoter_answers"),
                    ("detractors", "detractor_answers"),
                )
                for suffix, span in (("", current), ("_prev", previous))
            }
        )

    def score(suffix: str) -> float | None:
        n = counts["n" + suffix]
        if not n:
            return None
        return round(100 * (counts["promoters" + suffix] - counts["detractors" + suffix]) / n, 1)

    passives = counts["n"] - counts["promoters"] - counts["detractors"]
    passives_prev = counts["n_prev"] - counts["promoters_prev"] - counts["detractors_prev"]
    table_rows = [
        ["Answers", counts["n"], counts["n_prev"], change(counts["n"], counts["n_prev"])],
        [
            "Promoters (9-10)",
            counts["promoters"],
            counts["promoters_prev"],
            change(counts["promoters"], counts["promoters_prev"]),
        ],
        ["Passives (7-8)", passives, passives_prev, change(passives, passives_prev)],
        [
            "Detractors (0-6)",
            counts["detractors"],
            counts["detractors_prev"],
            change(counts["detractors"], counts["detractors_prev"]),
        ],
    ]
    current_score, previous_score = score(""), score("_prev")
    points_change = (
        "-" if current_score is None or previous_score is None else f"{current_score - previous_score:+.1f} pts"
    )
    table_rows.append(["NPS", current_score, previous_score, points_change])
    return Table(
        "nps",
        "Net promoter score (survey)",
        ["", "period", "previous", "change"],
        table_rows,
        "NPS = % promoters (9-10) - % detractors (0-6) of the answers given in the period, from -100 to +100; "
        "a changed answer counts once, at its latest date.",
    )


# --- channel health -------------------------------------------------------------------------------

HEALTH_KINDS = {
    DeliveryEvent.Kind.BOUNCED: ("bounce", Channel.EMAIL),
    DeliveryEvent.Kind.COMPLAINED: ("complaint", Channel.EMAIL),
    DeliveryEvent.Kind.UNSUBSCRIBED: ("unsubscribe", Channel.EMAIL),
}
UNSUBSCRIBE_METHODS = (ConsentMethod.ONE_CLICK, ConsentMethod.ESP_UNSUBSCRIBE, ConsentMethod.PREFERENCE_CENTRE)


def channel_health(period: Period, campaign_ids: list[int], *, direct: bool = False) -> Table:
    """Per day: email sent, bounce, complaint and unsubscribe rates; SMS sent and STOP rate; three queries
    (the sends on the daily roll-up unless ``direct``)."""
    if direct:
        sends = _sent(campaign_ids).filter(_between("sent_at", period)).annotate(day=TruncDate("sent_at"))
        sends = sends.order_by().values("day", "channel").annotate(n=Count("pk"))
    else:
        sends = _sent_days(campaign_ids).filter(_day_both(period)[0]).order_by()
        sends = sends.values("day", "channel").annotate(n=Sum("messages"))
    sent = {(str(row["day"]), row["channel"]): row["n"] for row in sends}
    events: dict[tuple[str, str], int] = {}
    if not direct:
        reports = HealthDay.objects.filter(_day_both(period)[0]).values_list("day", "kind", "reports")
        events = {(str(day), kind): n for day, kind, n in reports}
    for row in (
        DeliveryEvent.objects.filter(_between("occurred_at", period), kind__in=list(HEALTH_KINDS))
        .order_by()
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "kind")
        .annotate(n=Count("pk"))
        if direct
        else ()
    ):
        events[(str(row["day"]), HEALTH_KINDS[row["kind"]][0])] = row["n"]
    for row in (
        ConsentEvidence.objects.filter(_between("occurred_at", period), action="withdraw")
        .filter(Q(channel="sms", method=ConsentMethod.SMS_KEYWORD) | Q(channel="email", method__in=UNSUBSCRIBE_METHODS))
        .order_by()
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "channel")
        .annotate(n=Count("pk"))
        if direct
        else ()
    ):
        key = (str(row["day"]), "stop" if row["channel"] == "sms" else "unsubscribe")
        events[key] = events.get(key, 0) + row["n"]
    table_rows = []
    for day in period.day_list():
        text = day.isoformat()
        email, sms = sent.get((text, "email"), 0), sent.get((text, "sms"), 0)
        table_rows.append(
            [
                text,
                email,
                percent(events.get((text, "bounce"), 0), email, 2),
                percent(events.get((text, "complaint"), 0), email, 3),
                percent(events.get((text, "unsubscribe"), 0), email, 2),
                sms,
                percent(events.get((text, "stop"), 0), sms, 2),
            ]
        )
    return Table(
        "health",
        "Channel health per day",
        ["day", "email sent", "bounce %", "complaint %", "unsubscribe %", "sms sent", "STOP %"],
        table_rows,
        "Reports and opt-outs of a day over the messages sent that day (UTC days). Gmail and Yahoo expect "
        "complaints below 0.1 % and never at 0.3 %. Unsubscribes include one-click, preference-centre and "
        "provider-side ones.",
    )


# --- the whole page -------------------------------------------------------------------------------


def goal_dashboard(
    period: Period, *, window: timedelta = DEFAULT_ATTRIBUTION_WINDOW, direct: bool = False
) -> dict[str, list[Table]]:
    """Every table of the goal dashboard, by goal; a fixed number of queries whatever the data.

    The daily roll-ups answer what they hold (``campaigns.results.rollups``); ``direct`` computes
    everything from the base tables instead, which must give the same tables once they are refreshed.
    """
    from campaigns.results.costs import sms_cost_per_conversion
    from campaigns.results.surveys import nps_over_time

    campaign_ids = campaign_ids_touching(period.previous.start - window, period.end)
    # The period's attribution, worked out once for the conversion table and the SMS cost per conversion.
    attributed = last_touch_purchases(
        start=period.start, end=period.end, window=window, campaign_ids=campaign_ids, direct=direct
    )
    return {
        "awareness": [*new_profiles(period, direct=direct), reachable_audience(direct=direct)],
        "engagement": [
            signups(period, direct=direct),
            *checkout_opt_in(period, direct=direct),
            open_click_rates(period, campaign_ids, direct=direct),
            coupon_redemption_rate(period, campaign_ids, direct=direct),
        ],
        "conversion": [
            revenue(period, direct=direct),
            code_attributed_revenue(period, campaign_ids, direct=direct),
            *message_conversion(period, campaign_ids, window=window, direct=direct, attributed=attributed),
            sms_cost_per_conversion(period, campaign_ids, attributed=attributed),
            journey_conversion(period, direct=direct),
        ],
        "loyalty": [
            repeat_purchase(period, direct=direct),
            cohort_retention(period, direct=direct),
            customer_value(period, direct=direct),
            loyalty_members(period),
            points(period),
            nps(period, direct=direct),
            nps_over_time(period),
        ],
        "health": [channel_health(period, campaign_ids, direct=direct)],
    }


def stores_count() -> int:
    return Store.objects.count()
