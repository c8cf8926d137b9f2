"""Load the demo data set: stores, staff logins, a few hundred customers with consent and purchases.

Idempotent: stores, staff and disclosure texts are looked up by their natural keys, and the
customers are created only once (recognised by their demo email domain). Running it again leaves
the data as it was and prints the logins again.

Consent goes through the consent services with the evidence each method needs; rows that carry no
evidence (profiles, purchases) are bulk-inserted so the whole run takes seconds on SQLite.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from customers.models import (
    Channel,
    ConsentConfirmation,
    ConsentMethod,
    Customer,
    ProductCategory,
    Purchase,
    PurchaseCategory,
    Source,
    Store,
    StoreMembership,
    Suppression,
)
from customers.roles import CLERK, MARKETING, STORE_MANAGER, roles_ensure
from customers.services import (
    ConsentRequest,
    consent_grant,
    consent_withdraw,
    customer_capture,
    customer_erase,
    disclosure_publish,
    suppression_add,
)
from customers.services.consent import Evidence, confirmation_token_make, consent_confirm
from customers.services.profiles import customer_refresh_derived

DEMO_DOMAIN = "demo.tandem.example"
CUSTOMER_COUNT = 300
SEED = 20260101
# (name, days until it usually runs out, or None)
DEMO_CATEGORIES = [
    ("Shampoo", 30),
    ("Coffee beans", 21),
    ("Vitamins", 60),
    ("Razor blades", 45),
    ("Candles", None),
    ("Gift cards", None),
]

STORES = [
    {
        "code": "nyc-5th",
        "name": "New York Fifth Avenue",
        "street": "500 Fifth Avenue",
        "city": "New York",
        "postal_code": "10110",
        "state": "NY",
        "country": "US",
        "time_zone": "America/New_York",
        "region": "North-East",
        "area": "212",
    },
    {
        "code": "la-melrose",
        "name": "Los Angeles Melrose",
        "street": "7500 Melrose Avenue",
        "city": "Los Angeles",
        "postal_code": "90046",
        "state": "CA",
        "country": "US",
        "time_zone": "America/Los_Angeles",
        "region": "West",
        "area": "310",
    },
    {
        "code": "mia-lincoln",
        "name": "Miami Lincoln Road",
        "street": "800 Lincoln Road",
        "city": "Miami Beach",
        "postal_code": "33139",
        "state": "FL",
        "country": "US",
        "time_zone": "America/New_York",
        "region": "South-East",
        "area": "305",
    },
    {
        "code": "ldn-regent",
        "name": "London Regent Street",
        "street": "200 Regent Street",
        "city": "London",
        "postal_code": "W1B 5BT",
        "state": "",
        "country": "GB",
        "time_zone": "Europe/London",
        "region": "UK",
        "area": "",
    },
]

EMAIL_DISCLOSURE = (
    "Yes, email me news, offers and event invitations from Tandem Stores. About 4 emails a month. "
    "I can unsubscribe at any time from any email."
)
SMS_DISCLOSURE = (
    "Yes, text me offers from Tandem Stores at this number, up to 4 msgs/month. Consent is not a condition "
    "of purchase. Msg & data rates may apply. Reply STOP to opt out, HELP for help."
)

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jamal",
    "Kate",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xena",
    "Yusuf",
    "Zoe",
    "Amir",
    "Bea",
    "Carlos",
    "Dana",
]
LAST_NAMES = [
    "Lopez",
    "Smith",
    "Chen",
    "Okafor",
    "Novak",
    "Rossi",
    "Müller",
    "Haddad",
    "Kim",
    "Patel",
    "Garcia",
    "Brown",
    "Silva",
    "Nguyen",
    "Cohen",
    "O'Brien",
    "Johnson",
    "Ibrahim",
    "Tanaka",
    "Dubois",
]

# login → (role, store code or None, password)
STAFF = [
    ("marketing", "marketing", None, "demo-marketing-pass"),
    ("clerk-nyc", "clerk", "nyc-5th", "demo-clerk-pass"),
    ("clerk-la", "clerk", "la-melrose", "demo-clerk-pass"),
    ("clerk-mia", "clerk", "mia-lincoln", "demo-clerk-pass"),
    ("clerk-ldn", "clerk", "ldn-regent", "demo-clerk-pass"),
    ("manager-nyc", "manager", "nyc-5th", "demo-manager-pass"),
]


class Command(BaseCommand):
    help = "Load demo stores, staff logins, customers with consent evidence and purchases (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--logins", action="store_true", help="Only print the demo's logins (scripts/demo prints them last)."
        )

    def handle(self, *args, **options) -> None:
        if options["logins"]:
            self._print_logins({store.code: store for store in Store.objects.all()})
            return
        started = timezone.now()
        with transaction.atomic():
            stores = self._stores()
            users = self._staff(stores)
            self._product_categories()
            disclosures = {
                Channel.EMAIL: disclosure_publish(channel=Channel.EMAIL, text=EMAIL_DISCLOSURE),
                Channel.SMS: disclosure_publish(channel=Channel.SMS, text=SMS_DISCLOSURE),
            }
        if Customer.objects.filter(email__endswith="@" + DEMO_DOMAIN).exists():
            self.stdout.write("Demo customers already loaded; left as they are.")
        else:
            # The seeded confirmation mails count as sent (see below); their tasks, queued on commit,
            # run here and claim nothing, instead of waiting in the broker for the worker.
            eager, trace_logger = celery_app.conf.task_always_eager, logging.getLogger("celery.app.trace")
            level = trace_logger.level
            celery_app.conf.task_always_eager = True
            trace_logger.setLevel(logging.WARNING)
            try:
                with transaction.atomic():
                    self._customers(stores, users, disclosures)
            finally:
                celery_app.conf.task_always_eager = eager
                trace_logger.setLevel(level)
        seconds = (timezone.now() - started).total_seconds()
        self.stdout.write(
            f"Demo data ready in {seconds:.1f} s: {Store.objects.count()} stores, "
            f"{Customer.objects.count()} customers, {Purchase.objects.count()} purchases."
        )
        self._print_logins(stores)

    # --- stores and staff ----------------------------------------------------------------------
    def _stores(self) -> dict[str, Store]:
        stores = {}
        for spec in STORES:
            fields = {key: value for key, value in spec.items() if key not in ("code", "area")}
            store, _ = Store.objects.update_or_create(code=spec["code"], defaults=fields)
            stores[store.code] = store
        return stores

    def _staff(self, stores: dict[str, Store]) -> dict[str, object]:
        groups = roles_ensure()
        user_model = get_user_model()
        users = {}
        for username, role, store_code, password in STAFF:
            user, _ = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@staff.{DEMO_DOMAIN}"}
            )
            user.is_staff = role == "marketing"
            user.is_active = True
            user.set_password(password)
            user.save()
            group_name = {"marketing": MARKETING, "clerk": CLERK, "manager": STORE_MANAGER}[role]
            user.groups.add(groups[group_name])
            if store_code:
                StoreMembership.objects.update_or_create(
                    user=user,
                    store=stores[store_code],
                    defaults={
                        "role": StoreMembership.Role.MANAGER if role == "manager" else StoreMembership.Role.CLERK
                    },
                )
            users[username] = user
        return users

    def _print_logins(self, stores: dict[str, Store]) -> None:
        self.stdout.write("\nLogins (demo only):")
        for username, role, store_code, password in STAFF:
            store = stores.get(store_code)
            where = (
                "marketing admin /admin/"
                if role == "marketing"
                else f"till /till/ at {store.name if store else store_code}"
            )
            self.stdout.write(f"  {username:<12} {password:<20} {role:<9} {where}")

    # --- customers ----------------------------------------------------------------------------
    def _customers(self, stores: dict[str, Store], users: dict[str, object], disclosures) -> None:
        rng = random.Random(SEED)
        now = timezone.now()
        store_list = [stores[spec["code"]] for spec in STORES]
        areas = {spec["code"]: spec["area"] for spec in STORES}
        clerks = {store.code: users[f"clerk-{store.code.split('-')[0]}"] for store in store_list}

        profiles = []
        for index in range(CUSTOMER_COUNT):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            roll = rng.random()
            source = Source.STORE if roll < 0.5 else Source.WEB if roll < 0.8 else Source.IMPORT
            store = rng.choice(store_list)
            local = f"{first}.{last}".lower().replace("'", "").replace("ü", "u")
            email = f"{local}.{index}@{DEMO_DOMAIN}" if rng.random() < 0.92 else None
            phone = None
            if email is None or rng.random() < 0.55:
                if store.country == "GB":
                    phone = f"+4420794{60000 + index:05d}"[:13]
                else:
                    phone = f"+1{areas[store.code]}555{index:04d}"
            customer = Customer(
                email=email,
                phone=phone,
                first_name=first,
                last_name=last,
                source=source,
                home_store=store if source == Source.STORE or rng.random() < 0.5 else None,
                source_store=store if source == Source.STORE else None,
                source_clerk=clerks[store.code] if source == Source.STORE else None,
                locale="en",
            )
            customer_refresh_derived(customer)
            profiles.append(customer)
        Customer.objects.bulk_create(profiles, batch_size=500)
        # In creation order: the seeded random story must not depend on how the database returns rows.
        customers = list(
            Customer.objects.filter(pk__in=[c.pk for c in profiles]).select_related("home_store").order_by("pk")
        )
        if not customers or customers[0].pk is None:  # databases that return no ids from bulk_create
            customers = list(
                Customer.objects.filter(email__endswith="@" + DEMO_DOMAIN).select_related("home_store").order_by("pk")
            )

        for customer in customers:
            self._consent_story(rng, now, customer, stores=store_list, clerks=clerks, disclosures=disclosures)
        # The seeded confirmation mails count as sent long ago; the worker must not mail 100 demo inboxes.
        ConsentConfirmation.objects.filter(status=ConsentConfirmation.Status.QUEUED).update(
            status=ConsentConfirmation.Status.SENT, sent_at=now, attempts=1
        )
        self._purchases(rng, now, customers, store_list, clerks)
        self._special_cases(stores, clerks, disclosures)

    def _evidence(self, rng, customer, *, at, stores, clerks, disclosure) -> Evidence:
        if customer.source == Source.STORE:
            store = customer.source_store or rng.choice(stores)
            return Evidence(
                method=ConsentMethod.CHECKOUT,
                occurred_at=at,
                store=store,
                collected_by=clerks[store.code],
                disclosure=disclosure,
            )
        if customer.source == Source.WEB:
            return Evidence(
                method=ConsentMethod.WEB_FORM,
                occurred_at=at,
                disclosure=disclosure,
                url="https://shop.tandem.example/newsletter",
                ip_address=f"198.51.100.{rng.randint(1, 254)}",
                user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            )
        return Evidence(
            method=ConsentMethod.IMPORT,
            occurred_at=at,
            basis="Opted in on the loyalty sign-up card (legacy CRM export 2024)",
            source_reference="import:demo",
        )

    def _consent_story(self, rng, now, customer, *, stores, clerks, disclosures) -> None:
        """Grant, confirm, withdraw or suppress, in the mix a real list would have."""
        for channel, address in ((Channel.EMAIL, customer.email), (Channel.SMS, customer.phone)):
            if not address or rng.random() < 0.25:
                continue
            at = now - timedelta(days=rng.randint(20, 360), minutes=rng.randint(0, 600))
            evidence = self._evidence(
                rng, customer, at=at, stores=stores, clerks=clerks, disclosure=disclosures[channel]
            )
            grant = consent_grant(customer=customer, channel=channel, evidence=evidence)
            outcome = rng.random()
            if channel == Channel.EMAIL and hasattr(grant, "confirmation") and outcome < 0.75:
                if outcome < 0.15:
                    continue  # left pending: the customer has not opened the link yet
                consent_confirm(
                    token=confirmation_token_make(grant.confirmation),
                    ip_address=f"203.0.113.{rng.randint(1, 254)}",
                    user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)",
                )
            if outcome > 0.88:
                consent_withdraw(
                    customer=customer,
                    channel=channel,
                    evidence=Evidence(
                        method=ConsentMethod.ONE_CLICK if channel == Channel.EMAIL else ConsentMethod.SMS_KEYWORD,
                        occurred_at=at + timedelta(days=rng.randint(1, 19)),
                        source_reference="demo",
                    ),
                )
            elif outcome > 0.84 and channel == Channel.EMAIL:
                suppression_add(
                    channel=Channel.EMAIL,
                    address=address,
                    reason=Suppression.Reason.HARD_BOUNCE,
                    note="Mailbox does not exist (demo)",
                )

    def _product_categories(self) -> list[ProductCategory]:
        """What the demo shop sells; those that run out drive the replenishment journey. Idempotent."""
        return [
            ProductCategory.objects.get_or_create(name=name, defaults={"replenish_after_days": days})[0]
            for name, days in DEMO_CATEGORIES
        ]

    def _purchases(self, rng, now, customers, stores, clerks) -> None:
        rows = []
        number = 0
        for customer in customers:
            for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
                number += 1
                in_store = rng.random() < 0.6
                store = customer.home_store or rng.choice(stores)
                rows.append(
                    Purchase(
                        customer=customer,
                        channel=Purchase.Channel.STORE if in_store else Purchase.Channel.ONLINE,
                        store=store if in_store else None,
                        source=Purchase.Source.TILL if in_store else Purchase.Source.ONLINE_SHOP,
                        external_ref=f"DEMO-{number:05d}",
                        amount=Decimal(rng.randint(500, 25000)) / 100,
                        currency="GBP" if store.country == "GB" and in_store else "USD",
                        occurred_at=now - timedelta(days=rng.randint(0, 364), minutes=rng.randint(0, 1440)),
                        recorded_by=clerks[store.code] if in_store else None,
                    )
                )
        for anonymous in range(40):  # walk-in sales with no profile
            store = rng.choice(stores)
            rows.append(
                Purchase(
                    customer=None,
                    channel=Purchase.Channel.STORE,
                    store=store,
                    source=Purchase.Source.TILL,
                    external_ref=f"DEMO-ANON-{anonymous:03d}",
                    amount=Decimal(rng.randint(300, 9000)) / 100,
                    currency="GBP" if store.country == "GB" else "USD",
                    occurred_at=now - timedelta(days=rng.randint(0, 364)),
                )
            )
        Purchase.objects.bulk_create(rows, batch_size=500)
        # A random source of its own, so the rest of the seeded story stays as it was.
        pick, categories = random.Random(SEED + 1), self._product_categories()
        bought = Purchase.objects.filter(external_ref__startswith="DEMO-", customer__isnull=False).order_by("pk")
        PurchaseCategory.objects.bulk_create(
            [
                PurchaseCategory(purchase_id=purchase_id, category=category)
                for purchase_id in bought.values_list("pk", flat=True)
                for category in pick.sample(categories, pick.choice((0, 1, 1, 2)))
            ],
            batch_size=500,
        )

    def _special_cases(self, stores, clerks, disclosures) -> None:
        """One merge proposal and one erased person, so those admin screens have something to show."""
        store = stores["nyc-5th"]
        clerk = clerks["nyc-5th"]
        email_only = Customer.objects.filter(email__endswith="@" + DEMO_DOMAIN, phone__isnull=True).order_by("pk")
        phone_holder = Customer.objects.filter(phone__startswith="+1212").order_by("pk").first()
        first = email_only.first()
        if first is not None and phone_holder is not None and phone_holder.pk != first.pk:
            customer_capture(
                email=first.email,
                phone=phone_holder.phone,
                source=Source.STORE,
                store=store,
                clerk=clerk,
                consents=[ConsentRequest(channel=Channel.SMS, disclosure=disclosures[Channel.SMS])],
                evidence=Evidence(method=ConsentMethod.CHECKOUT, store=store, collected_by=clerk),
            )
        to_erase = email_only.exclude(pk=first.pk if first else None).last()
        if to_erase is not None:
            customer_erase(customer=to_erase, user=None)
