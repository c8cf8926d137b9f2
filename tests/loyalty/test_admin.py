"""Admin: adjustments only through the action (with a reason), code generation, safe CSV export."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from loyalty.admin import csv_safe
from loyalty.models import AccountStatusChange, CouponCode, LedgerEntry, Redemption
from loyalty.services import account_status_change, coupon_code_create, coupon_redeem, points_adjust
from tests.factories.loyalty import OfferFactory


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(user)
    return client


def test_adjust_points_action_writes_a_ledger_entry_with_reason(admin_client, account):
    url = reverse("admin:loyalty_loyaltyaccount_changelist")
    page = admin_client.post(url, {"action": "adjust_points", "_selected_action": [account.pk]})
    assert b"Adjust points" in page.content
    data = {"action": "adjust_points", "_selected_action": [account.pk], "apply": "1", "request_key": "k1"}
    refused = admin_client.post(url, data | {"points": "25", "reason": ""})
    assert refused.status_code == 200
    assert not LedgerEntry.objects.exists()
    for _ in range(2):  # a re-post of the same form is a no-op
        admin_client.post(url, data | {"points": "25", "reason": "Goodwill after a late delivery"})
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.points, entry.reason) == ("adjust", 25, "Goodwill after a late delivery")
    account.refresh_from_db()
    assert account.points_balance == 25


def test_account_change_page_shows_read_only_ledger(admin_client, account):
    points_adjust(account=account, points=10, reason="Seed <b>bold</b>", user=None, idempotency_key="s")
    page = admin_client.get(reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk])).content.decode()
    assert "Seed &lt;b&gt;bold&lt;/b&gt;" in page
    assert 'name="points_balance"' not in page
    assert 'name="ledger-0-points"' not in page


def test_generate_codes_action_and_safe_csv_export(admin_client, programme):
    offer = OfferFactory(programme=programme, name='=HYPERLINK("http://evil")')
    url = reverse("admin:loyalty_offer_changelist")
    admin_client.post(
        url,
        {
            "action": "generate_codes",
            "_selected_action": [offer.pk],
            "apply": "1",
            "count": "25",
            "max_uses": "1",
            "issue_reference": "+batch",
        },
    )
    assert CouponCode.objects.filter(offer=offer).count() == 25
    response = admin_client.post(url, {"action": "export_codes_csv", "_selected_action": [offer.pk]})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) == 26
    assert rows[1][0].startswith("'=")
    assert rows[1][6] == "'+batch"


def test_csv_safe():
    assert [csv_safe(v) for v in ["=1+1", "+1", "-2", "@SUM", "plain", None, 5]] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM",
        "plain",
        "",
        "5",
    ]


def test_redemption_log_filters_and_cancel_action(admin_client, account, programme, store):
    coupon_code_create(offer=OfferFactory(programme=programme), code="LOGME")
    redemption, _ = coupon_redeem(
        code="LOGME",
        customer=account.customer,
        channel="store",
        store=store,
        order_reference="R-1",
        idempotency_key="r1",
    )
    url = reverse("admin:loyalty_redemption_changelist")
    for query in (
        "",
        f"?store__id__exact={store.pk}",
        "?channel__exact=store",
        f"?offer__id__exact={redemption.offer_id}",
    ):
        response = admin_client.get(url + query)
        assert response.status_code == 200
        assert "R-1" in response.content.decode()
    assert "R-1" not in admin_client.get(url + "?channel__exact=online").content.decode()
    admin_client.post(url, {"action": "cancel_redemptions", "_selected_action": [redemption.pk]})
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.CANCELLED


def test_offer_needs_the_value_of_its_kind(programme):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    from loyalty.models import Offer

    offer = OfferFactory.build(programme=programme, kind=Offer.Kind.PERCENT_OFF, amount_off=None, percent_off=None)
    with pytest.raises(ValidationError, match="percent_off"):
        offer.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        offer.save()


@pytest.mark.parametrize(
    "model", ["programme", "bonuswindow", "loyaltyaccount", "offer", "couponcode", "redemption", "ledgerentry"]
)
def test_admin_pages_render(admin_client, account, model):
    assert admin_client.get(reverse(f"admin:loyalty_{model}_changelist")).status_code == 200
    add = admin_client.get(reverse(f"admin:loyalty_{model}_add")).status_code
    assert add == (403 if model in {"loyaltyaccount", "redemption", "ledgerentry"} else 200)


@pytest.mark.parametrize(
    ("model_name", "field"),
    [
        ("offer", "amount_off"),
        ("offer", "percent_off"),
        ("programme", "points_per_unit"),
        ("programme", "minimum_spend"),
        ("bonuswindow", "multiplier"),
    ],
)
@pytest.mark.parametrize("typed", ["1e1", "1E+1", "NaN", "Infinity", "1,5"])
def test_admin_decimals_refuse_exponent_and_special_notation(model_name, field, typed):
    from decimal import Decimal

    from django.apps import apps
    from django.contrib import admin
    from django.core.exceptions import ValidationError

    model = apps.get_model("loyalty", model_name)
    form_field = admin.site._registry[model].formfield_for_dbfield(model._meta.get_field(field), request=None)
    with pytest.raises(ValidationError, match="plain digits"):
        form_field.clean(typed)
    assert form_field.clean("10") == Decimal("10")


def test_account_status_is_not_a_free_field_on_the_change_page(admin_client, account):
    page = admin_client.get(reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk])).content.decode()
    assert 'name="status"' not in page


def test_change_status_action_asks_for_a_reason_then_records_the_change(admin_client, account):
    url = reverse("admin:loyalty_loyaltyaccount_changelist")
    data = {"action": "change_status", "_selected_action": [account.pk]}
    page = admin_client.post(url, data)
    assert b"Change account status" in page.content
    refused = admin_client.post(url, data | {"apply": "1", "status": "suspended", "reason": ""})
    assert refused.status_code == 200
    assert not AccountStatusChange.objects.exists()
    done = admin_client.post(url, data | {"apply": "1", "status": "suspended", "reason": "Card reported stolen"})
    assert done.status_code == 302
    account.refresh_from_db()
    assert account.status == "suspended"
    change = AccountStatusChange.objects.get()
    assert (change.from_status, change.to_status, change.reason, change.changed_by.username) == (
        "active",
        "suspended",
        "Card reported stolen",
        "boss",
    )


def test_change_status_action_shows_a_refused_move_and_changes_nothing(admin_client, account):
    account_status_change(account=account, status="closed", reason="Customer asked", user=None)
    url = reverse("admin:loyalty_loyaltyaccount_changelist")
    data = {"action": "change_status", "_selected_action": [account.pk], "apply": "1"}
    response = admin_client.post(url, data | {"status": "active", "reason": "Reopen"}, follow=True)
    assert any("A closed account cannot become active." in str(m) for m in response.context["messages"])
    account.refresh_from_db()
    assert account.status == "closed"
    assert AccountStatusChange.objects.count() == 1


def test_saving_the_account_page_cannot_write_back_a_stale_balance(admin_client, account):
    url = reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk])
    page = admin_client.get(url).content.decode()
    points_adjust(account=account, points=40, reason="Earned meanwhile", user=None, idempotency_key="m")
    response = admin_client.post(url, {"_save": "Save"})
    assert response.status_code == 403
    assert 'name="_save"' not in page
    account.refresh_from_db()
    assert account.points_balance == 40
