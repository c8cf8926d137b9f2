"""Stores with their staff, and purchases (recorded through the service, then read only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction

from customers.exceptions import CustomerError
from customers.models import Purchase, Store, StoreMembership
from customers.services.profiles import purchase_record


class StoreMembershipInline(admin.TabularInline):
    model = StoreMembership
    extra = 1
    raw_id_fields = ("user",)


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "city", "state", "country", "time_zone", "region", "is_active")
    list_filter = ("is_active", "region", "country")
    search_fields = ("code", "name", "city")
    inlines = [StoreMembershipInline]


class PurchaseAddForm(forms.ModelForm):
    class Meta:
        model = Purchase
        fields = [
            "customer",
            "channel",
            "store",
            "source",
            "external_ref",
            "amount",
            "discount_amount",
            "currency",
            "occurred_at",
        ]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        # The service is the only judge of a purchase; the admin's view runs in one transaction, so a
        # savepoint here keeps the row only when the whole request succeeds.
        try:
            with transaction.atomic():
                self.recorded, created = purchase_record(
                    customer=cleaned.get("customer"),
                    channel=cleaned["channel"],
                    source=cleaned["source"],
                    external_ref=cleaned["external_ref"],
                    amount=cleaned["amount"],
                    discount_amount=cleaned.get("discount_amount") or 0,
                    currency=cleaned.get("currency") or "USD",
                    occurred_at=cleaned.get("occurred_at"),
                    store=cleaned.get("store"),
                    recorded_by=getattr(self, "user", None),
                )
        except CustomerError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if not created:
            raise forms.ValidationError(f"Receipt {cleaned['external_ref']} is already recorded.")
        return cleaned

    def _post_clean(self):
        pass  # the service validated and wrote the row


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ("external_ref", "customer", "channel", "store", "source", "amount", "currency", "occurred_at")
    list_filter = ("channel", "source", "store", "occurred_at")
    list_select_related = ("customer", "store")
    search_fields = ("external_ref", "customer__email")
    raw_id_fields = ("customer",)
    date_hierarchy = "occurred_at"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PurchaseAddForm
            kwargs["fields"] = PurchaseAddForm.Meta.fields
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            form.user = request.user  # a fresh class per request (modelform_factory)
        return form

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [f.name for f in Purchase._meta.fields]

    def save_model(self, request, obj, form, change):
        obj.pk = form.recorded.pk
        obj.public_id = form.recorded.public_id

    def save_related(self, request, form, formsets, change):
        pass
