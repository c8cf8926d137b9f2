"""Loyalty admin: programme and tiers, bonus windows, accounts with their read-only ledger, offers and
codes, and the redemption log. Every change of points goes through a service (adjustments through the
"Adjust points" action, which writes a ledger entry with its reason; refunds through the "Refund" action
on earn entries of the ledger, which takes a purchase's points back once).

The redemption log filters by store, offer, channel (store/online) and date; a filter by the campaign
and channel of the message that carried a code belongs to campaigns, which joins redemption -> code <-
delivery from its side.
"""

from __future__ import annotations

import csv
import uuid

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse

from customers.admin.base import DeleteOnlyWhenUnprotected
from customers.forms import PLAIN_DECIMAL_OVERRIDES
from loyalty.exceptions import LoyaltyError
from loyalty.models import (
    AccountStatusChange,
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
from loyalty.selectors import purchase_refund_preview
from loyalty.services import (
    account_status_change,
    coupon_codes_generate,
    points_adjust,
    purchase_refund,
    redemption_cancel,
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A cell a spreadsheet shows as text: a leading ``= + - @`` (formula injection) is quoted away."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0
    formfield_overrides = PLAIN_DECIMAL_OVERRIDES
    fields = ("rank", "name", "threshold_points", "threshold_spend", "multiplier", "benefits")


@admin.register(Programme)
class ProgrammeAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    formfield_overrides = PLAIN_DECIMAL_OVERRIDES
    list_display = ("name", "is_active", "points_per_unit", "percent_back", "point_value", "points_expire_after_days")
    inlines = [TierInline]
    fieldsets = (
        (None, {"fields": ("name", "benefit_line", "is_active", "currency")}),
        ("Earning", {"fields": ("points_per_unit", "percent_back", "point_value", "rounding", "minimum_spend")}),
        ("Expiry", {"fields": ("points_expire_after_days", "expiring_soon_days")}),
        ("Tiers", {"fields": ("qualification_basis", "qualification_window_days", "downgrade_grace_days")}),
    )


@admin.register(BonusWindow)
class BonusWindowAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    formfield_overrides = PLAIN_DECIMAL_OVERRIDES
    list_display = ("name", "programme", "kind", "starts_on", "ends_on", "combine", "points_issued", "budget_points")
    list_filter = ("programme", "is_active", "kind", "combine")
    search_fields = ("name",)
    filter_horizontal = ("stores",)
    readonly_fields = ("points_issued",)


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("occurred_at", "kind", "points", "balance_after", "reason", "store", "acting_user", "expires_at")
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")


class TierChangeInline(ReadOnlyInline):
    model = TierChange
    fields = ("occurred_at", "from_tier", "to_tier", "reason", "qualifying_value")
    readonly_fields = fields


class AccountStatusChangeInline(ReadOnlyInline):
    model = AccountStatusChange
    fields = ("occurred_at", "from_status", "to_status", "reason", "changed_by")
    readonly_fields = fields


class ChangeStatusForm(forms.Form):
    status = forms.ChoiceField(choices=LoyaltyAccount.Status.choices, label="New status")
    reason = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 60}))


class AdjustPointsForm(forms.Form):
    points = forms.IntegerField(help_text="Positive to add, negative to remove.")
    reason = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 60}))
    request_key = forms.CharField(widget=forms.HiddenInput)

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError("Give a number of points other than zero.")
        return points


@admin.register(LoyaltyAccount)
class LoyaltyAccountAdmin(admin.ModelAdmin):
    list_display = ("card_number", "customer", "programme", "tier", "points_balance", "status", "enrolled_at")
    list_filter = ("programme", "tier", "status")
    search_fields = ("card_number", "customer__email", "customer__phone", "customer__last_name")
    list_select_related = ("customer", "programme", "tier")
    raw_id_fields = ("customer",)
    # The tier moves only by the tier services and the status by the "Change status" action, which
    # record every change.
    readonly_fields = (
        "status",
        "card_number",
        "points_balance",
        "tier",
        "tier_since",
        "tier_grace_until",
        "enrolled_at",
        "enrolled_store",
        "enrolled_by",
        "expired_through",
        "closed_at",
        "merged_into",
    )
    fields = ("customer", "programme", *readonly_fields)
    inlines = [LedgerInline, TierChangeInline, AccountStatusChangeInline]
    actions = ["adjust_points", "change_status"]

    def has_delete_permission(self, request, obj=None):
        return False  # a member's points ledger stays; the account is closed (Change status), never deleted

    def has_add_permission(self, request):
        # Accounts are opened by enrolment (capture page or service), which draws the card number.
        return False

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "customer", "programme") if obj else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        # Nothing on an account's page is edited by hand, and saving it would write back a stale balance:
        # the page is read only; points and status change through the actions (which need "change").
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Adjust points (writes a ledger entry with a reason)", permissions=["change"])
    def adjust_points(self, request, queryset):
        if "apply" in request.POST:
            form = AdjustPointsForm(request.POST)
            if form.is_valid():
                data, done = form.cleaned_data, 0
                for account in queryset.select_related("programme"):
                    try:
                        _entry, created = points_adjust(
                            account=account,
                            points=data["points"],
                            reason=data["reason"],
                            user=request.user,
                            idempotency_key=f"admin:{data['request_key']}:{account.pk}",
                        )
                    except LoyaltyError as exc:
                        self.message_user(request, f"{account}: {exc}", messages.ERROR)
                    else:
                        done += int(created)
                self.message_user(request, f"Adjusted {done} account(s) by {data['points']:+d} points.")
                return None
        else:
            form = AdjustPointsForm(initial={"request_key": uuid.uuid4().hex})
        return TemplateResponse(
            request,
            "admin/loyalty/adjust_points.html",
            {
                **self.admin_site.each_context(request),
                "title": "Adjust points",
                "form": form,
                "accounts": queryset,
                "action": "adjust_points",
                "opts": self.model._meta,
            },
        )


    @admin.action(description="Change status (suspend, reactivate, close; with a reason)", permissions=["change"])
    def change_status(self, request, queryset):
        form = ChangeStatusForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for account in queryset:
                try:
                    account_status_change(
                        account=account,
                        status=form.cleaned_data["status"],
                        reason=form.cleaned_data["reason"],
                        user=request.user,
                    )
                except LoyaltyError as exc:
                    self.message_user(request, f"{account}: {exc}", messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(request, f"Changed the status of {done} account(s).")
            return None
        return TemplateResponse(
            request,
            "admin/loyalty/change_status.html",
            {
                **self.admin_site.each_context(request),
                "title": "Change account status",
                "form": form,
                "accounts": queryset,
                "action": "change_status",
                "opts": self.model._meta,
            },
        )


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=100_000)
    max_uses = forms.IntegerField(min_value=1, required=False, initial=1, help_text="Empty: unlimited uses.")
    issue_reference = forms.CharField(max_length=100, required=False, help_text="e.g. spring-mailing-batch-1")
    prefix = forms.CharField(max_length=8, required=False)


@admin.register(Offer)
class OfferAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    formfield_overrides = PLAIN_DECIMAL_OVERRIDES
    list_display = (
        "name",
        "programme",
        "kind",
        "code_mode",
        "valid_from",
        "valid_until",
        "redemptions_count",
        "total_limit",
    )
    list_filter = ("programme", "kind", "code_mode", "is_active")
    search_fields = ("name",)
    readonly_fields = ("redemptions_count",)
    actions = ["generate_codes", "export_codes_csv"]

    @admin.action(description="Generate codes", permissions=["change"])
    def generate_codes(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one offer to generate codes for.", messages.ERROR)
            return None
        offer = queryset.get()
        if "apply" in request.POST:
            form = GenerateCodesForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    codes = coupon_codes_generate(
                        offer=offer,
                        count=data["count"],
                        max_uses=data["max_uses"],
                        issue_reference=data["issue_reference"],
                        prefix=data["prefix"],
                    )
                except LoyaltyError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    self.message_user(request, f"Generated {len(codes)} codes for {offer}.")
                return None
        else:
            form = GenerateCodesForm(initial={"max_uses": 1})
        return TemplateResponse(
            request,
            "admin/loyalty/generate_codes.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Generate codes for {offer}",
                "form": form,
                "offer": offer,
                "action": "generate_codes",
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Export codes as CSV", permissions=["view"])
    def export_codes_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="coupon-codes.csv"'
        writer = csv.writer(response)
        writer.writerow(["offer", "code", "uses", "max_uses", "card_number", "issued_at", "issue_reference"])
        codes = CouponCode.objects.filter(offer__in=queryset).select_related("offer", "account").order_by("offer", "pk")
        for code in codes.iterator(chunk_size=2000):
            writer.writerow(
                [
                    csv_safe(code.offer.name),
                    csv_safe(code.code),
                    code.uses,
                    "" if code.max_uses is None else code.max_uses,
                    code.account.card_number if code.account_id else "",
                    code.issued_at.isoformat() if code.issued_at else "",
                    csv_safe(code.issue_reference),
                ]
            )
        return response


@admin.register(CouponCode)
class CouponCodeAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    list_display = ("code", "offer", "uses", "max_uses", "account", "issued_at", "issue_reference", "is_void")
    list_filter = ("offer", "is_void")
    search_fields = ("code", "issue_reference")
    raw_id_fields = ("account",)
    readonly_fields = ("uses", "created_at")
    list_select_related = ("offer", "account")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "customer",
        "kind",
        "description",
        "coupon_code",
        "points",
        "channel",
        "store",
        "clerk",
        "order_reference",
        "order_amount",
        "discount_amount",
        "status",
    )
    list_filter = ("store", "offer", "channel", "kind", "status", ("created_at", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    search_fields = ("order_reference", "coupon_code__code", "customer__email", "account__card_number")
    list_select_related = ("customer", "coupon_code", "store", "clerk")
    actions = ["cancel_redemptions"]

    @admin.action(description="Cancel and restore points/uses", permissions=["cancel"])
    def cancel_redemptions(self, request, queryset):
        for redemption in queryset.filter(status=Redemption.Status.CONFIRMED):
            redemption_cancel(redemption=redemption, user=request.user, reason="Cancelled in admin")
        self.message_user(request, "Cancelled; points and code uses restored.")

    def has_cancel_permission(self, request):
        return request.user.has_perm("loyalty.view_redemption") and (
            request.user.is_superuser or request.user.has_perm("loyalty.change_offer")
        )


class RefundForm(forms.Form):
    reason = forms.CharField(
        max_length=200, initial="Refund", widget=forms.TextInput(attrs={"size": 60}), help_text="Shown on the ledger."
    )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "account", "kind", "points", "balance_after", "reason", "store", "acting_user")
    list_filter = ("kind", "store")
    search_fields = ("account__card_number", "reason", "idempotency_key", "purchase__external_ref")
    list_select_related = ("account", "store", "acting_user")
    actions = ["refund_purchases"]

    @admin.action(description="Refund: take back the points of the selected entries' purchases", permissions=["refund"])
    def refund_purchases(self, request, queryset):
        earned = (
            queryset.filter(kind=LedgerEntry.Kind.EARN, purchase__isnull=False)
            .select_related("purchase__store", "account__programme")
            .order_by("purchase_id", "pk")
        )
        purchases = {}
        for entry in earned:
            purchases.setdefault((entry.purchase_id, entry.account.programme_id), entry)
        if not purchases:
            self.message_user(request, "Choose earn entries of purchases to refund.", messages.ERROR)
            return None
        if "apply" in request.POST:
            form = RefundForm(request.POST)
            if form.is_valid():
                for entry in purchases.values():
                    try:
                        result = purchase_refund(
                            purchase=entry.purchase,
                            programme=entry.account.programme,
                            acting_user=request.user,
                            reason=form.cleaned_data["reason"],
                        )
                    except LoyaltyError as exc:
                        self.message_user(request, f"Purchase {entry.purchase.external_ref}: {exc}", messages.ERROR)
                        continue
                    line = f"Purchase {entry.purchase.external_ref}: "
                    if result.created:
                        line += f"{result.taken} points taken back"
                        if result.unrecovered:
                            line += f" ({result.unrecovered} already spent could not be taken back)"
                    else:
                        line += f"already refunded ({result.taken} points taken back then); nothing more taken"
                    self.message_user(request, line + ".", messages.SUCCESS if result.created else messages.INFO)
                return None
        else:
            form = RefundForm()
        previews = [
            purchase_refund_preview(purchase=entry.purchase, programme=entry.account.programme)
            for entry in purchases.values()
        ]
        return TemplateResponse(
            request,
            "admin/loyalty/refund_purchases.html",
            {
                **self.admin_site.each_context(request),
                "title": "Refund purchases",
                "form": form,
                "previews": previews,
                "entries": queryset.filter(pk__in=[e.pk for e in purchases.values()]),
                "action": "refund_purchases",
                "opts": self.model._meta,
            },
        )

    def has_refund_permission(self, request):
        return request.user.has_perm("loyalty.view_ledgerentry") and (
            request.user.is_superuser or request.user.has_perm("loyalty.change_loyaltyaccount")
        )
