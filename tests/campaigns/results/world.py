"""Small hand-built histories for the results tests: every figure in the tests is computed from these."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.results.periods import Period
from customers.models import Purchase
from loyalty.models import LedgerEntry, Redemption
from tests.factories import PurchaseFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory

# The period under test and the ten days before it.
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 10))
PREVIOUS = PERIOD.previous


def at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour))


def march(day: int, hour: int = 12) -> datetime:
    return at(date(2026, 3, day), hour)


def buy(customer, when: datetime, amount: str, channel: str = "online", store=None) -> Purchase:
    if channel == "store":
        return PurchaseFactory(
            customer=customer,
            occurred_at=when,
            amount=Decimal(amount),
            channel="store",
            source=Purchase.Source.TILL,
            store=store,
        )
    return PurchaseFactory(customer=customer, occurred_at=when, amount=Decimal(amount))


def refund(purchase: Purchase, account) -> None:
    """What loyalty's refund leaves behind: a REVERSE entry keyed to the purchase."""
    LedgerEntry.objects.create(
        account=account,
        kind="earn",
        points=10,
        balance_after=10,
        occurred_at=purchase.occurred_at,
        idempotency_key=f"earn:{purchase.pk}",
        purchase=purchase,
    )
    LedgerEntry.objects.create(
        account=account,
        kind="reverse",
        points=-10,
        balance_after=0,
        occurred_at=purchase.occurred_at,
        idempotency_key=f"refund:purchase:{purchase.pk}",
        purchase=purchase,
    )


def sent_campaign(name: str = "Spring", started: datetime | None = None, **kwargs) -> Campaign:
    campaign = CampaignFactory(name=name, **kwargs)
    EmailVariantFactory(message=campaign.message)
    started = started or march(2, 9)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENT, started_at=started, finished_at=started + timedelta(hours=1)
    )
    campaign.refresh_from_db()
    return campaign


def deliver(
    campaign: Campaign,
    customer,
    *,
    channel: str = "email",
    sent_at: datetime | None = None,
    status: str = "sent",
    reason: str = "",
    **fields,
) -> Delivery:
    sent_at = sent_at or campaign.started_at
    variant = campaign.message.variants.filter(channel=channel).first()
    return Delivery.objects.create(
        cause_type="campaign",
        cause_id=campaign.pk,
        customer=customer,
        channel=channel,
        message=campaign.message,
        variant=variant,
        status=status,
        reason=reason,
        created_at=sent_at,
        updated_at=sent_at,
        sent_at=sent_at if status == "sent" else None,
        **fields,
    )


def redeem(
    customer, code, when: datetime, *, channel: str = "online", store=None, amount: str = "40.00", offer=None
) -> Redemption:
    redemption = Redemption.objects.create(
        kind="code",
        customer=customer,
        coupon_code=code,
        offer=offer or code.offer,
        channel=channel,
        store=store,
        order_amount=Decimal(amount),
        idempotency_key=f"r-{customer.pk}-{code.pk}-{when.timestamp()}",
    )
    Redemption.objects.filter(pk=redemption.pk).update(created_at=when)
    return redemption
