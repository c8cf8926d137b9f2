"""Stores with their staff, product categories, and purchases (recorded through the service, then read only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied

from customers.admin.base import DeleteOnlyWhenUnprotected
from customers.exceptions import CustomerError
from customers.models import ProductCategory, Purchase, Store, StoreMembership
from customers.services.profiles import purchase_record
from customers.services.stores import store_save


class StoreMembershipInline(admin.TabularInline):
    model = StoreMembership
    extra = 1
    raw_id_fields = ("user",)


@admin.register(Store)
class StoreAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    list_display = ("code", "name", "city", "state", "country", "time_zone", "region", "is_active")
    list_filter = ("is_active", "region", "country")
    search_fields = ("code", "name", "city")
    inlines = [StoreMembershipInline]

    def save_model(self, request, obj, form, change):
        moved = store_save(store=obj)
        if moved:
            note = f"{moved} customer(s) whose time zone comes from this store now use {obj.time_zone}."
            self.message_user(request, note)


@admin.register(ProductCategory)
class ProductCategoryAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    """A category bought on purchases cannot be deleted (their history keeps it); make it inactive instead."""

    list_display = ("name", "replenish_after_days", "is_active")
    list_editable = ("replenish_after_days", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name",)
    fields = ("name", "replenish_after_days", "is_active")


class PurchaseAddForm(forms.ModelForm):
    categories = forms.ModelMultipleChoiceField(
        ProductCategory.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="What was bought (product categories)",
    )

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
            "categories",
        ]

    def _post_clean(self):
        pass  # the form only collects input: the purchase service is the judge of a purchase


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = (
        "external_ref",
        "customer",
        "channel",
        "store",
        "source",
        "amount",
        "currency",
        "category_names",
        "occurred_at",
    )
    list_filter = ("channel", "source", "store", "categories", "occurred_at")
    list_select_related = ("customer", "store")
    search_fields = ("external_ref", "customer__email")
    raw_id_fields = ("customer",)
    date_hierarchy = "occurred_at"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("categories")

    @admin.display(description="Categories")
    def category_names(self, obj):
        return ", ".join(category.name for category in obj.categories.all())

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PurchaseAddForm
            kwargs["fields"] = PurchaseAddForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [*(f.name for f in Purchase._meta.fields), "category_names"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return super().get_fields(request, obj)
        return [*(f.name for f in Purchase._meta.fields), "category_names"]

    def add_view(self, request, form_url="", extra_context=None):
        """Record through the service; what it refuses comes back as an error on the form."""
        if request.method != "POST":
            return super().add_view(request, form_url, extra_context)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = self.get_form(request)(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                purchase, created = purchase_record(
                    customer=data.get("customer"),
                    channel=data["channel"],
                    source=data["source"],
                    external_ref=data["external_ref"],
                    amount=data["amount"],
                    discount_amount=data.get("discount_amount") or 0,
                    currency=data.get("currency") or "USD",
                    occurred_at=data.get("occurred_at"),
                    store=data.get("store"),
                    recorded_by=request.user,
                    categories=data.get("categories") or (),
                )
            except CustomerError as exc:
                form.add_error(None, str(exc))
            else:
                if created:
                    self.log_addition(request, purchase, [{"added": {}}])
                    return self.response_add(request, purchase)
                form.add_error("external_ref", f"Receipt {data['external_ref']} is already recorded.")
        admin_form = helpers.AdminForm(form, list(self.get_fieldsets(request)), {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add {Purchase._meta.verbose_name}",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)
