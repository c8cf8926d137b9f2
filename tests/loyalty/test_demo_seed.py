"""The loyalty demo seed: a full programme built through the services, identical after a second run."""

import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Max, Sum
from django.urls import reverse

from customers.models import Customer, Purchase
from loyalty.models import (
    BonusWindow,
    CouponCode,
    LedgerEntry,
    LoyaltyAccount,
    Offer,
    Programme,
    Redemption,
    Tier,
    TierChange,
)
from loyalty.selectors import account_find

pytestmark = pytest.mark.django_db


def _seed(*commands: str) -> str:
    out = io.StringIO()
    for command in commands:
        call_command(command, stdout=out)
    return out.getvalue()


def _state() -> dict:
    """Everything the seed writes, as counts and totals a second run must leave alone."""
    return {
        "programmes": Programme.objects.count(),
        "tiers": list(Tier.objects.order_by("rank").values_list("name", "threshold_points", "multiplier")),
        "windows": list(BonusWindow.objects.values_list("name", "points_issued")),
        "accounts": sorted(LoyaltyAccount.objects.values_list("card_number", "points_balance", "tier__name")),
        "ledger": LedgerEntry.objects.count(),
        "tier_changes": TierChange.objects.count(),
        "offers": list(Offer.objects.order_by("name").values_list("name", "redemptions_count")),
        "codes": sorted(CouponCode.objects.values_list("code", "uses", "account_id")),
        "redemptions": Redemption.objects.count(),
        "purchases": Purchase.objects.count(),
        "customers": Customer.objects.count(),
    }


def test_refuses_to_run_before_the_customer_demo():
    with pytest.raises(CommandError, match="demo_seed"):
        _seed("loyalty_demo_seed")
    assert not Programme.objects.exists()


def test_seed_builds_the_programme_and_a_second_run_changes_nothing():
    first_output = _seed("demo_seed", "loyalty_demo_seed")
    before = _state()
    second_output = _seed("loyalty_demo_seed")
    assert _state() == before

    programme = Programme.objects.get()
    assert programme.name == "Tandem Rewards"
    assert programme.benefit_line
    assert [t.name for t in programme.tiers.order_by("rank")] == ["Member", "Silver", "Gold"]
    window = BonusWindow.objects.get()
    assert (window.days_of_week, window.start_time.hour, window.end_time.hour) == ("2", 9, 11)

    # About half of the active demo customers are members, each enrolled once.
    active = Customer.objects.filter(merged_into__isnull=True, erased_at__isnull=True).count()
    members = LoyaltyAccount.objects.filter(programme=programme).count()
    assert 0.4 * active <= members <= 0.6 * active
    assert LoyaltyAccount.objects.filter(tier__isnull=True).count() == 0
    assert LoyaltyAccount.objects.filter(tier__name__in=["Silver", "Gold"]).exists()

    # Every USD purchase of a member earned exactly once; nobody else earned anything.
    member_ids = LoyaltyAccount.objects.values_list("customer_id", flat=True)
    earning = Purchase.objects.filter(customer_id__in=member_ids, currency="USD")
    base_entries = LedgerEntry.objects.filter(kind="earn", purchase__isnull=False, bonus_window__isnull=True)
    assert base_entries.values("purchase").distinct().count() == earning.count()
    assert base_entries.count() == earning.count()
    assert not LedgerEntry.objects.filter(purchase__currency="GBP").exists()
    # The Tuesday-morning till purchase got its double points.
    bonus = LedgerEntry.objects.filter(bonus_window=window).first()
    assert bonus is not None
    assert window.points_issued >= bonus.points > 0

    welcome = CouponCode.objects.get(code="WELCOME10")
    assert welcome.offer.code_mode == Offer.CodeMode.SHARED
    assert welcome.max_uses is None
    assert welcome.uses == 1
    unique = CouponCode.objects.filter(offer__code_mode=Offer.CodeMode.UNIQUE)
    assert unique.count() == 5
    assert all(code.max_uses == 1 and code.account_id and code.code.startswith("BDAY") for code in unique)
    assert Redemption.objects.filter(status=Redemption.Status.CONFIRMED).count() == 2
    assert Redemption.objects.filter(kind=Redemption.Kind.POINTS, points=500).count() == 1

    # The summary names a member a clerk can find by card number and by phone, the same both runs.
    card, phone = re.search(r"card (\d{16}), phone (\+\d+)", second_output).groups()
    assert f"card {card}, phone {phone}" in first_output
    account = account_find(query=card, programme=programme)
    assert account is not None
    assert account_find(query=phone, programme=programme) == account


def test_every_seeded_ledger_balances():
    _seed("demo_seed", "loyalty_demo_seed", "loyalty_demo_seed")
    accounts = LoyaltyAccount.objects.annotate(total=Sum("ledger__points"), entries=Count("ledger")).order_by("pk")
    assert accounts.filter(entries__gt=0).count() > 50
    for account in accounts:
        assert account.points_balance == (account.total or 0), account.card_number
    last_after = LedgerEntry.objects.values("account").annotate(last=Max("id")).values_list("account", "last")
    for account_id, last_id in last_after:
        entry = LedgerEntry.objects.get(pk=last_id)
        assert entry.balance_after == LoyaltyAccount.objects.get(pk=account_id).points_balance
    assert not LoyaltyAccount.objects.filter(points_balance__lt=0).exists()
    assert not Offer.objects.filter(redemptions_count__gt=F("total_limit")).exists()


def test_loyalty_admin_renders_for_the_demo_marketing_login(client, django_assert_max_num_queries):
    _seed("demo_seed", "loyalty_demo_seed")
    assert client.login(username="marketing", password="demo-marketing-pass")
    account = LoyaltyAccount.objects.order_by("-pk").first()  # the changelist's first row
    with django_assert_max_num_queries(40):
        page = client.get(reverse("admin:loyalty_loyaltyaccount_changelist"))
    assert page.status_code == 200
    assert account.card_number.encode() in page.content
    for name in ("programme", "offer", "couponcode", "redemption", "ledgerentry", "bonuswindow"):
        assert client.get(reverse(f"admin:loyalty_{name}_changelist")).status_code == 200, name
    assert client.get(reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk])).status_code == 200


def test_loyalty_demo_seed_keeps_the_layering():
    source = Path(__file__).resolve().parents[2] / "loyalty/management/commands/loyalty_demo_seed.py"
    assert not re.search(r"^\s*(from|import) campaigns", source.read_text(), re.M)
