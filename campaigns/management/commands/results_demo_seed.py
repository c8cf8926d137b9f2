"""Give the results pages something to show: one finished campaign with three weeks of history.

Runs after ``campaigns_demo_seed``. Writes a sent campaign (email and SMS, the Lincoln Road welcome
message, the WELCOME10 code, a 10 % holdout) with its deliveries, opens, clicks, a few bounces and
complaints, purchases after the message and redemptions of its code, the texts' costs (from an SMS
price table it fills when empty) and survey answers over the three weeks. Demo history is written directly
(bulk inserts), not through the send pipeline, and dated in the past. Idempotent: a second run finds the
campaign by name and changes nothing.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from campaigns.costs.pricing import PriceBook, sms_cost_make
from campaigns.models import Campaign, Delivery, DeliveryEvent, Message, SmsCost, SmsPrice
from campaigns.results.rollups import results_rollups_refresh
from customers.models import ConsentState, Customer, Purchase, SurveyResponse
from loyalty.models import CouponCode, Redemption

NAME = "Spring sale (results demo)"
MESSAGE = "Welcome to Lincoln Road: 10% off"
CODE = "WELCOME10"
SEED = 20260316
HOLDOUT_PERCENT = 10
# Illustrative prices per segment, in one currency so the demo's totals add up.
DEMO_SMS_PRICES = {"US": Decimal("0.0079"), "GB": Decimal("0.0450"), "": Decimal("0.0600")}


class Command(BaseCommand):
    help = "Add a finished demo campaign with deliveries, opens, purchases and redemptions (results pages)."

    def handle(self, *args, **options) -> None:
        message = Message.objects.filter(name=MESSAGE).first()
        code = CouponCode.objects.filter(code=CODE).select_related("offer").first()
        if message is None or code is None:
            raise CommandError("Run `manage.py campaigns_demo_seed` first: the results demo reuses its message.")
        if Campaign.objects.filter(name=NAME).exists():
            self.stdout.write(f"“{NAME}” is already there; nothing changed.")
            return
        with transaction.atomic():
            count = self._history(message, code)
        # The history is backdated, out of sight of the incremental refresh: rebuild the dashboard's roll-ups.
        results_rollups_refresh(full=True)
        self.stdout.write(f"Added “{NAME}” with {count} deliveries, its purchases and redemptions.")

    def _history(self, message: Message, code: CouponCode) -> int:
        rng = random.Random(SEED)
        now = timezone.now()
        started = now - timedelta(days=18)
        campaign = Campaign.objects.create(
            name=NAME,
            goal=Campaign.Goal.CONVERSION,
            kpi=Campaign.Kpi.REVENUE,
            kpi_target=Decimal("1500"),
            message=message,
            channels=["email", "sms"],
            offer=code.offer,
            coupon_mode=Campaign.CouponMode.SHARED,
            shared_code=code,
            holdout_percent=HOLDOUT_PERCENT,
        )
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.SENT, started_at=started, finished_at=started + timedelta(hours=2)
        )
        variants = {variant.channel: variant.pk for variant in message.variants.all()}
        granted = set(ConsentState.objects.filter(status="granted").values_list("customer_id", "channel"))
        people = list(Customer.objects.active().order_by("pk").values_list("pk", "email", "phone", "home_store_id"))
        deliveries, purchases, redemptions, events = [], [], [], []
        for pk, email, phone, store_id in people:
            held = rng.random() < HOLDOUT_PERCENT / 100
            converted_place = None
            for channel, address in (("email", email), ("sms", phone)):
                if not address or channel not in variants:
                    continue
                sent_at = started + timedelta(minutes=rng.randint(0, 110))
                row = Delivery(
                    cause_type="campaign",
                    cause_id=campaign.pk,
                    customer_id=pk,
                    channel=channel,
                    message=message,
                    variant_id=variants[channel],
                    address=address,
                    created_at=started,
                    updated_at=sent_at,
                )
                if held:
                    row.status, row.reason = Delivery.Status.SKIPPED, Delivery.Reason.HOLDOUT
                elif (pk, channel) not in granted:
                    row.status, row.reason = Delivery.Status.SKIPPED, Delivery.Reason.NO_CONSENT
                elif rng.random() < 0.04:
                    row.status, row.reason = Delivery.Status.SKIPPED, Delivery.Reason.FREQUENCY_CAP
                else:
                    row.status, row.sent_at, row.coupon_code_id = Delivery.Status.SENT, sent_at, code.pk
                    row.provider_status = "delivered" if rng.random() < 0.96 else "bounced"
                    if channel == "email" and row.provider_status == "delivered" and rng.random() < 0.45:
                        row.opened_at = sent_at + timedelta(hours=rng.randint(1, 30))
                        if rng.random() < 0.3:
                            row.clicked_at = row.opened_at + timedelta(minutes=2)
                    if rng.random() < 0.25:
                        converted_place = "store" if store_id and rng.random() < 0.6 else "online"
                deliveries.append(row)
            if held and rng.random() < 0.12:
                converted_place = "store" if store_id and rng.random() < 0.6 else "online"
            if converted_place:
                when = started + timedelta(days=rng.randint(0, 6), hours=rng.randint(3, 20))
                amount = Decimal(rng.randint(2500, 16000)) / 100
                purchases.append(
                    Purchase(
                        customer_id=pk,
                        channel=converted_place,
                        store_id=store_id if converted_place == "store" else None,
                        source="till" if converted_place == "store" else "online_shop",
                        external_ref=f"RESULTS-DEMO-{pk}",
                        amount=amount,
                        occurred_at=when,
                    )
                )
                if not held and rng.random() < 0.6:
                    redemptions.append(
                        Redemption(
                            kind="code",
                            customer_id=pk,
                            offer=code.offer,
                            coupon_code=code,
                            channel=converted_place,
                            store_id=store_id if converted_place == "store" else None,
                            order_amount=amount,
                            discount_amount=(amount / 10).quantize(Decimal("0.01")),
                            description="10% off (demo)",
                            idempotency_key=f"results-demo-{campaign.pk}-{pk}",
                        )
                    )
        Delivery.objects.bulk_create(deliveries, batch_size=1000)
        Purchase.objects.bulk_create(purchases, batch_size=1000)
        created = Redemption.objects.bulk_create(redemptions, batch_size=1000)
        Redemption.objects.filter(pk__in=[r.pk for r in created if r.pk]).update(created_at=started + timedelta(days=2))
        sent = Delivery.objects.filter(cause_id=campaign.pk, cause_type="campaign", channel="email", status="sent")
        for index, (delivery_id, provider_status) in enumerate(sent.values_list("pk", "provider_status")):
            kind = "bounced" if provider_status == "bounced" else ("complained" if index % 180 == 7 else None)
            if kind:
                events.append(
                    DeliveryEvent(
                        provider="demo",
                        provider_event_id=f"results-demo-{delivery_id}",
                        delivery_id=delivery_id,
                        kind=kind,
                        occurred_at=started + timedelta(days=index % 5, hours=1),
                    )
                )
        DeliveryEvent.objects.bulk_create(events)
        self._costs(campaign, message)
        self._survey_answers(campaign, rng, started, now)
        return len(deliveries)

    def _costs(self, campaign: Campaign, message: Message) -> None:
        if not SmsPrice.objects.exists():
            SmsPrice.objects.bulk_create(
                SmsPrice(country=country, price_per_segment=price, currency="USD")
                for country, price in DEMO_SMS_PRICES.items()
            )
        prices, body = PriceBook(), message.variants.filter(channel="sms").values_list("sms_body", flat=True).first()
        texts = Delivery.objects.filter(cause_type="campaign", cause_id=campaign.pk, channel="sms", status="sent")
        costs = []
        for delivery_id, address, sent_at in texts.values_list("pk", "address", "sent_at"):
            cost = sms_cost_make(
                delivery_id=delivery_id,
                cause_type="campaign",
                cause_id=campaign.pk,
                to=address,
                body=body or "",
                detail={},
                prices=prices,
                sent_at=sent_at,
            )
            costs.append(cost)
        SmsCost.objects.bulk_create(costs, batch_size=1000, ignore_conflicts=True)

    def _survey_answers(self, campaign: Campaign, rng: random.Random, started, now) -> None:
        sent_to = (
            Delivery.objects.filter(cause_type="campaign", cause_id=campaign.pk, status="sent", channel="email")
            .order_by("customer_id")
            .values_list("customer_id", flat=True)
        )
        answers = []
        for customer_id in sent_to:
            if rng.random() > 0.3:
                continue
            when = min(started + timedelta(days=rng.randint(0, 17), hours=rng.randint(1, 12)), now)
            draw = rng.random()
            score = rng.randint(9, 10) if draw < 0.5 else rng.randint(7, 8) if draw < 0.75 else rng.randint(0, 6)
            answers.append(
                SurveyResponse(
                    customer_id=customer_id,
                    source=f"campaign:{campaign.pk}",
                    score=score,
                    answered_at=when,
                    first_answered_at=when,
                )
            )
        SurveyResponse.objects.bulk_create(answers, ignore_conflicts=True)
