"""The SMS price table staff keep (used when the provider's answer carries no price)."""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import SmsPrice


@admin.register(SmsPrice)
class SmsPriceAdmin(admin.ModelAdmin):
    list_display = ("country_display", "price_per_segment", "currency", "updated_at")
    search_fields = ("country",)
    fields = ("country", "price_per_segment", "currency")

    @admin.display(description="Country", ordering="country")
    def country_display(self, obj: SmsPrice) -> str:
        return obj.country or "Every other country"
