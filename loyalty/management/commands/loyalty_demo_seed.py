"""Load the loyalty demo: Tandem Rewards with tiers, a bonus window, members, points, offers, codes.

Runs after ``demo_seed`` and is idempotent: the programme, tiers, window and offers are looked up by
name, enrolment and earning go through the loyalty services (one account per customer, points once
per purchase), codes are created only while an offer has none, and each redemption carries a fixed
request key. A second run changes nothing and prints the same summary.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from customers.management.commands.demo_seed import DEMO_DOMAIN
from customers.models import Customer, Purchase, Store
from loyalty.models import BonusWindow, CouponCode, LedgerEntry, LoyaltyAccount, Offer, Programme, Redemption, Tier
from loyalty.selectors import purchase_refund_preview
from loyalty.services import (
    account_enrol,
    coupon_code_create,
    coupon_codes_generate,
    coupon_redeem,
    points_redeem,
    purchase_earn,
    till_purchase_record,
)

PROGRAMME = {
    "name": "Tandem Rewards",
    "benefit_line": "1 point per $1; 500 points = $5 off. Double points Tuesdays 9-11 am.",
    "currency": "USD",
    "points_per_unit": Decimal("1"),
    "point_value": Decimal("0.01"),
    "points_expire_after_days": 395,
}
# name → (rank, points earned in 12 months, multiplier, benefits)
TIERS = [
    ("Member", 0, Decimal("1"), "1 point per $1 spent."),
    ("Silver", 300, Decimal("1.25"), "25% more points on every purchase; early sale access."),
    ("Gold", 800, Decimal("1.5"), "50% more points; free alterations; birthday gift."),
]
BONUS_WINDOW = "Double points Tuesdays 09:00-11:00"
WELCOME_OFFER = "Welcome 10% off"
WELCOME_CODE = "WELCOME10"
BIRTHDAY_OFFER = "Birthday $15 off"
BIRTHDAY_CODES = 5
REWARD_OFFER = "$5 off for 500 points"
TILL_RECEIPT = "DEMO-TUE-0001"
WELCOME_REDEMPTION_KEY = "demo-seed:welcome10"
POINTS_REDEMPTION_KEY = "demo-seed:reward-500"


class Command(BaseCommand):
    help = "Load the loyalty demo (programme, tiers, bonus window, members, points, offers, codes); idempotent."

    def handle(self, *args, **options) -> None:
        started = timezone.now()
        nyc = Store.objects.filter(code="nyc-5th").first()
        clerk = get_user_model().objects.filter(username="clerk-nyc").first()
        if nyc is None or clerk is None:
            raise CommandError("Run `manage.py demo_seed` first: the loyalty demo builds on its stores and staff.")
        with transaction.atomic():
            programme = self._programme()
            accounts = self._enrol(programme)
            self._earn(programme, accounts)
            featured = self._featured(accounts)
            self._till_purchase(featured, store=nyc, clerk=clerk)
            welcome, birthday = self._offers(programme, accounts)
            self._redemptions(programme, featured, accounts, store=nyc, clerk=clerk)
        seconds = (timezone.now() - started).total_seconds()
        self._summary(programme, featured, welcome, birthday, seconds)

    # --- programme ------------------------------------------------------------------------------
    def _programme(self) -> Programme:
        fields = {key: value for key, value in PROGRAMME.items() if key != "name"}
        programme, _ = Programme.objects.get_or_create(name=PROGRAMME["name"], defaults=fields)
        for rank, (name, threshold, multiplier, benefits) in enumerate(TIERS):
            Tier.objects.get_or_create(
                programme=programme,
                name=name,
                defaults={
                    "rank": rank,
                    "threshold_points": threshold,
                    "multiplier": multiplier,
                    "benefits": benefits,
                },
            )
        today = timezone.localdate()
        BonusWindow.objects.get_or_create(
            programme=programme,
            name=BONUS_WINDOW,
            defaults={
                "kind": BonusWindow.Kind.MULTIPLIER,
                "multiplier": Decimal("2"),
                "combine": BonusWindow.Combine.BEST,
                # Covers the demo's year of purchase history and the year ahead.
                "starts_on": today - dt.timedelta(days=400),
                "ends_on": today + dt.timedelta(days=365),
                "days_of_week": "2",
                "start_time": dt.time(9, 0),
                "end_time": dt.time(11, 0),
                "applies_online": False,
            },
        )
        return programme

    # --- members and points ---------------------------------------------------------------------
    def _demo_customers(self):
        """Active demo profiles: by their demo email, or (phone-only) by their demo purchases."""
        demo = Q(email__endswith="@" + DEMO_DOMAIN) | Q(purchases__external_ref__startswith="DEMO-")
        return (
            Customer.objects.filter(demo, merged_into__isnull=True, erased_at__isnull=True)
            .distinct()
            .order_by("pk")
            .select_related("home_store", "source_store", "source_clerk")
        )

    def _enrol(self, programme: Programme) -> list[LoyaltyAccount]:
        """Every other demo customer (even ids), so the member/non-member split stays put between runs."""
        accounts = []
        for customer in self._demo_customers():
            if customer.pk % 2:
                continue
            account, _ = account_enrol(
                customer=customer,
                programme=programme,
                store=customer.source_store or customer.home_store,
                clerk=customer.source_clerk,
            )
            accounts.append(account)
        return accounts

    def _earn(self, programme: Programme, accounts: list[LoyaltyAccount]) -> None:
        """Points for the members' past purchases in the programme currency, oldest first (once each)."""
        customer_ids = [account.customer_id for account in accounts]
        purchases = (
            Purchase.objects.filter(customer_id__in=customer_ids, currency=programme.currency)
            .select_related("customer__home_store", "store")
            .order_by("occurred_at", "pk")
        )
        for purchase in purchases:
            purchase_earn(purchase=purchase, programme=programme)

    def _featured(self, accounts: list[LoyaltyAccount]) -> LoyaltyAccount:
        """The member a clerk at Fifth Avenue can look up: a New York customer with a phone and an email."""
        nyc = [a for a in accounts if a.customer.phone and a.customer.email and a.customer.home_store_id]
        nyc = [a for a in nyc if a.customer.home_store.code == "nyc-5th"] or nyc or accounts
        if not nyc:
            raise CommandError("No demo customers to enrol; run `manage.py demo_seed` first.")
        return nyc[0]

    def _till_purchase(self, account: LoyaltyAccount, *, store: Store, clerk) -> None:
        """One purchase on a recent Tuesday at 10:15 in the store, so the bonus window shows on the ledger."""
        if Purchase.objects.filter(external_ref=f"{store.code}:{TILL_RECEIPT}").exists():
            return
        local_now = timezone.now().astimezone(zoneinfo.ZoneInfo(store.time_zone))
        days_back = (local_now.isoweekday() - 2) % 7 or 7
        tuesday = (local_now - dt.timedelta(days=days_back)).replace(hour=10, minute=15, second=0, microsecond=0)
        till_purchase_record(
            account=account, store=store, clerk=clerk, receipt=TILL_RECEIPT, amount="120.00", occurred_at=tuesday
        )

    # --- offers, codes, redemptions -------------------------------------------------------------
    def _offers(self, programme: Programme, accounts: list[LoyaltyAccount]) -> tuple[CouponCode, list[CouponCode]]:
        now = timezone.now()
        welcome, _ = Offer.objects.get_or_create(
            programme=programme,
            name=WELCOME_OFFER,
            defaults={
                "description": "10% off one purchase, in store or online, for new subscribers.",
                "kind": Offer.Kind.PERCENT_OFF,
                "percent_off": Decimal("10"),
                "code_mode": Offer.CodeMode.SHARED,
                "valid_from": now - dt.timedelta(days=30),
                "valid_until": now + dt.timedelta(days=365),
                "per_customer_limit": 1,
            },
        )
        welcome_code = CouponCode.objects.filter(code=WELCOME_CODE).first() or coupon_code_create(
            offer=welcome, code=WELCOME_CODE, max_uses=None
        )
        birthday, _ = Offer.objects.get_or_create(
            programme=programme,
            name=BIRTHDAY_OFFER,
            defaults={
                "description": "A birthday treat: $15 off, one unique code per member.",
                "kind": Offer.Kind.AMOUNT_OFF,
                "amount_off": Decimal("15"),
                "code_mode": Offer.CodeMode.UNIQUE,
                "valid_from": now - dt.timedelta(days=1),
                "valid_until": now + dt.timedelta(days=90),
                "per_customer_limit": 1,
            },
        )
        if not birthday.codes.exists():
            coupon_codes_generate(
                offer=birthday,
                count=BIRTHDAY_CODES,
                accounts=accounts[1 : 1 + BIRTHDAY_CODES],
                max_uses=1,
                issue_reference="demo birthday batch",
                prefix="BDAY",
            )
        Offer.objects.get_or_create(
            programme=programme,
            name=REWARD_OFFER,
            defaults={
                "description": "Spend 500 points at the till for $5 off.",
                "kind": Offer.Kind.AMOUNT_OFF,
                "amount_off": Decimal("5"),
                "points_cost": 500,
                "valid_from": now - dt.timedelta(days=30),
                "valid_until": now + dt.timedelta(days=365 * 3),
            },
        )
        return welcome_code, list(birthday.codes.select_related("account__customer").order_by("pk"))

    def _redemptions(self, programme, featured: LoyaltyAccount, accounts, *, store: Store, clerk) -> None:
        if not Redemption.objects.filter(idempotency_key=WELCOME_REDEMPTION_KEY).exists():
            coupon_redeem(
                code=WELCOME_CODE,
                customer=featured.customer,
                channel=Redemption.Channel.STORE,
                store=store,
                clerk=clerk,
                order_reference="DEMO-RCPT-0001",
                order_amount="80.00",
                idempotency_key=WELCOME_REDEMPTION_KEY,
            )
        if not Redemption.objects.filter(idempotency_key=POINTS_REDEMPTION_KEY).exists():
            reward = Offer.objects.get(programme=programme, name=REWARD_OFFER)
            richest = (
                LoyaltyAccount.objects.filter(pk__in=[a.pk for a in accounts], points_balance__gte=reward.points_cost)
                .exclude(pk=featured.pk)
                .order_by("-points_balance", "pk")
                .first()
            )
            if richest is not None:
                points_redeem(
                    account=richest,
                    reward=reward,
                    channel=Redemption.Channel.STORE,
                    store=richest.enrolled_store or store,
                    order_reference="DEMO-RCPT-0002",
                    idempotency_key=POINTS_REDEMPTION_KEY,
                )

    # --- summary --------------------------------------------------------------------------------
    def _summary(self, programme, featured, welcome: CouponCode, birthday: list[CouponCode], seconds) -> None:
        featured.refresh_from_db()
        accounts = LoyaltyAccount.objects.filter(programme=programme)
        earned = LedgerEntry.objects.filter(
            account__programme=programme, kind=LedgerEntry.Kind.EARN, purchase__isnull=False
        ).points_sum()
        by_tier = {tier.name: accounts.filter(tier=tier).count() for tier in programme.tiers.order_by("rank")}
        write = self.stdout.write
        write(
            f"Loyalty demo ready in {seconds:.1f} s: {programme.name}, {accounts.count()} members "
            f"({', '.join(f'{n} {name}' for name, n in by_tier.items())}), "
            f"{earned} points from purchases, "
            f"{Redemption.objects.filter(Q(account__programme=programme) | Q(offer__programme=programme)).count()} "
            "redemptions."
        )
        write("\nAt the till (log in as clerk-nyc, open /till/loyalty/), each of these works on fresh demo data:")
        for line in self._hints(programme, featured, welcome, birthday):
            write(f"  {line}")

    def _hints(self, programme, featured: LoyaltyAccount, welcome: CouponCode, birthday: list[CouponCode]) -> list[str]:
        """What a clerk can try; every member named here can still do what the line suggests."""
        customer = featured.customer
        hints = [
            f"Look up {customer.first_name} {customer.last_name}: card {featured.card_number}, phone {customer.phone}, "
            f"{featured.points_balance} points, {featured.tier or 'no tier'}",
            "Record a purchase on that card: any new receipt number, e.g. DEMO-TRY-0001, amount 42.50",
        ]
        welcome_member = self._welcome_member(programme, welcome)
        if welcome_member is not None:
            owner = welcome_member.customer
            hints.append(
                f"Shared code {welcome.code} ({welcome.offer.name}) for {owner.first_name} {owner.last_name}, "
                f"card {welcome_member.card_number}, receipt DEMO-TRY-0002, order 80.00"
            )
        unused = [code for code in birthday if code.account_id and code.uses == 0]
        if unused:
            code = unused[0]
            owner = code.account.customer
            hints.append(
                f"Unique code {code.code} ({code.offer.name}) for {owner.first_name} {owner.last_name}, "
                f"card {code.account.card_number}, receipt DEMO-TRY-0003"
            )
        reward = Offer.objects.filter(programme=programme, name=REWARD_OFFER).first()
        if reward is not None:
            rich = (
                LoyaltyAccount.objects.filter(
                    programme=programme, status=LoyaltyAccount.Status.ACTIVE, points_balance__gte=reward.points_cost
                )
                .select_related("customer")
                .order_by("-points_balance", "pk")
                .first()
            )
            if rich is not None:
                hints.append(
                    f"Spend {reward.points_cost} points ({reward.name}) on card {rich.card_number} "
                    f"({rich.customer.first_name}, {rich.points_balance} points), receipt DEMO-TRY-0004"
                )
        till_purchase = Purchase.objects.filter(external_ref=f"nyc-5th:{TILL_RECEIPT}").first()
        if till_purchase is not None:
            preview = purchase_refund_preview(purchase=till_purchase, programme=programme)
            if preview.to_take and not preview.refunded:
                hints.append(
                    f"Refund receipt {TILL_RECEIPT} (open /till/loyalty/refund/): takes back {preview.to_take} points"
                )
        return hints

    def _welcome_member(self, programme, welcome: CouponCode) -> LoyaltyAccount | None:
        """A New York member who has not used the shared welcome code (it is once per customer)."""
        used_by = Redemption.objects.filter(offer=welcome.offer).values("customer_id")
        candidates = (
            LoyaltyAccount.objects.filter(programme=programme, status=LoyaltyAccount.Status.ACTIVE)
            .exclude(customer_id__in=used_by)
            .exclude(customer__first_name="")
            .select_related("customer")
            .order_by("pk")
        )
        return candidates.filter(customer__home_store__code="nyc-5th").first() or candidates.first()
