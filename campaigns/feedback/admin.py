"""Admin pages: provider events (read-only) and the text replies listed for an opt-out review."""

from __future__ import annotations

from django.contrib import admin, messages

from campaigns.delivery.admin import _ReadOnly
from campaigns.feedback.sms import sms_review_resolve
from campaigns.models import DeliveryEvent, SmsOptOutReview


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(_ReadOnly):
    list_display = ("id", "provider", "kind", "delivery_id", "occurred_at", "created_at")
    list_filter = ("provider", "kind")
    search_fields = ("=delivery_id", "=provider_event_id")
    readonly_fields = [field.name for field in DeliveryEvent._meta.fields]


@admin.register(SmsOptOutReview)
class SmsOptOutReviewAdmin(admin.ModelAdmin):
    # The body is untrusted text; the admin escapes it like every other value it shows.
    list_display = ("received_at", "from_number", "customer", "matched", "body", "status", "reviewed_by")
    list_filter = ("status",)
    list_select_related = ("customer", "reviewed_by")
    readonly_fields = [field.name for field in SmsOptOutReview._meta.fields]
    actions = ("withdraw_sms_consent", "dismiss")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Withdraw SMS consent (this reply is an opt-out)")
    def withdraw_sms_consent(self, request, queryset):
        for review in queryset:
            sms_review_resolve(review=review, withdraw=True, user=request.user)
        messages.success(request, "SMS consent withdrawn for the selected replies still open.")

    @admin.action(description="Dismiss (not an opt-out)")
    def dismiss(self, request, queryset):
        for review in queryset:
            sms_review_resolve(review=review, withdraw=False, user=request.user)
        messages.success(request, "The selected replies still open were dismissed.")
