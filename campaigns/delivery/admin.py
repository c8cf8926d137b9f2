"""Read-only admin pages: every delivery with its outcome and reason, and the demo outbox."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from campaigns.models import Delivery, OutboxMessage


class _ReadOnly(admin.ModelAdmin):
    show_full_result_count = False  # a count over millions of rows on every page is not worth it

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly):
    list_display = ("id", "cause", "customer_link", "channel", "status", "reason", "attempts", "sent_at")
    list_filter = ("status", "channel", "reason")
    list_select_related = False
    search_fields = ("=cause_id", "=customer__id")
    readonly_fields = [field.name for field in Delivery._meta.fields]

    @admin.display(description="Cause")
    def cause(self, obj: Delivery) -> str:
        if obj.cause_type == Delivery.Cause.CAMPAIGN:
            url = reverse("admin:campaigns_campaign_change", args=[obj.cause_id])
            return format_html('<a href="{}">Campaign {}</a>', url, obj.cause_id)
        return f"{obj.cause_type} {obj.cause_id}"

    @admin.display(description="Customer")
    def customer_link(self, obj: Delivery) -> str:
        url = reverse("admin:customers_customer_change", args=[obj.customer_id])
        return format_html('<a href="{}">{}</a>', url, obj.customer_id)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_ReadOnly):
    """Messages that would have gone to a provider; the email is shown as the recipient would see it."""

    list_display = ("id", "channel", "to", "summary", "cause_id", "created_at")
    list_filter = ("channel",)
    search_fields = ("=to", "=cause_id", "=delivery_id")
    fields = ("delivery_id", "cause_type", "cause_id", "channel", "to", "subject", "preheader", "title", "text",
              "url", "image_url", "headers", "metadata", "preview", "created_at")
    readonly_fields = fields

    @admin.display(description="Subject / text")
    def summary(self, obj: OutboxMessage) -> str:
        return (obj.subject or obj.title or obj.text)[:80]

    @admin.display(description="Rendered")
    def preview(self, obj: OutboxMessage) -> str:
        if obj.channel == "email":
            # srcdoc is escaped by format_html; the empty sandbox runs no script from the message.
            return format_html(
                '<iframe sandbox="" srcdoc="{}" style="width:640px;height:600px;border:1px solid #ccc"></iframe>',
                obj.html,
            )
        if obj.channel == "push":
            return format_html(
                '<div style="max-width:360px;padding:12px;border-radius:12px;background:#f3f3f3">'
                "<strong>{}</strong><br>{}<br><small>{}</small></div>",
                obj.title,
                obj.text,
                obj.url,
            )
        return format_html('<div style="max-width:320px;white-space:pre-wrap">{}</div>', obj.text)
