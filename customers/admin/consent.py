"""Admin for the consent records: disclosures (publish only), the ledger and states (read only), suppression."""

from __future__ import annotations

import contextlib

from django.contrib import admin, messages
from django.db.models import Q

from customers.admin.base import action_page, is_confirmation, report_errors
from customers.admin.forms import SuppressionAddForm, SuppressionRemoveForm
from customers.exceptions import CustomerError, InvalidContact
from customers.models import (
    Channel,
    ConsentConfirmation,
    ConsentEvidence,
    ConsentState,
    DisclosureText,
    Suppression,
)
from customers.normalization import address_hmac, normalize_email, normalize_phone
from customers.services.consent import disclosure_publish, suppression_add, suppression_remove


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: viewable with the view permission, never added, changed or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DisclosureText)
class DisclosureTextAdmin(admin.ModelAdmin):
    list_display = ("channel", "locale", "version", "short_text", "sha256", "created_at", "created_by")
    list_filter = ("channel", "locale")
    list_select_related = ("created_by",)
    fields = ("channel", "locale", "text")

    @admin.display(description="Text")
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    def has_change_permission(self, request, obj=None):
        return False  # a text once shown is evidence; publish a new version instead

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        return ("channel", "locale", "version", "text", "sha256", "created_at", "created_by")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        before = DisclosureText.objects.filter(channel=form.cleaned_data["channel"]).count()
        published = disclosure_publish(
            channel=form.cleaned_data["channel"],
            text=form.cleaned_data["text"],
            locale=form.cleaned_data["locale"] or "en",
            user=request.user,
        )
        obj.pk = published.pk
        obj.version, obj.sha256 = published.version, published.sha256
        if DisclosureText.objects.filter(channel=form.cleaned_data["channel"]).count() == before:
            self.message_user(
                request,
                f"The text is the same as version {published.version}; nothing new was published.",
                messages.WARNING,
            )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            form._post_clean = lambda self: None  # version and hash come from disclosure_publish
        return form


@admin.register(ConsentEvidence)
class ConsentEvidenceAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "customer",
        "channel",
        "action",
        "method",
        "store",
        "collected_by",
        "source_reference",
    )
    list_filter = ("channel", "action", "method", "store", "occurred_at")
    list_select_related = ("customer", "store", "collected_by")
    search_fields = ("customer__email", "source_reference", "basis")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("customer",)


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdmin):
    list_display = ("customer", "channel", "status", "granted_at", "confirmed_at", "withdrawn_at", "updated_at")
    list_filter = ("channel", "status")
    list_select_related = ("customer",)
    search_fields = ("customer__email",)


@admin.register(ConsentConfirmation)
class ConsentConfirmationAdmin(ReadOnlyAdmin):
    """Double opt-in mails: answers "did the confirmation mail go out, and was it confirmed?"."""

    list_display = ("customer", "status", "attempts", "created_at", "sent_at", "confirmed_at", "last_error")
    list_filter = ("status",)
    list_select_related = ("customer",)
    search_fields = ("customer__email",)
    raw_id_fields = ("customer", "grant")


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("channel", "reason", "note", "created_at", "created_by")
    list_filter = ("channel", "reason")
    list_select_related = ("created_by",)
    search_fields = ("note",)
    search_help_text = "An email address or phone number (matched by its hash), or words of the note."
    actions = ["lift_suppression"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # lifted only through the action, with a reason

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("customers.delete_suppression")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("channel", "address", "reason", "note")
        return ("channel", "reason", "note", "created_at", "created_by")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            return SuppressionAddForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request, obj, form, change):
        suppression = suppression_add(
            channel=form.cleaned_data["channel"],
            address=form.cleaned_data["address"],
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data.get("note") or "",
            user=request.user,
        )
        obj.pk = suppression.pk

    def save_related(self, request, form, formsets, change):
        pass

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        wanted = Q(note__icontains=term)
        with contextlib.suppress(InvalidContact):
            wanted |= Q(channel=Channel.EMAIL, address_hmac=address_hmac(Channel.EMAIL, normalize_email(term)))
        if any(char.isdigit() for char in term):
            with contextlib.suppress(InvalidContact):
                wanted |= Q(channel=Channel.SMS, address_hmac=address_hmac(Channel.SMS, normalize_phone(term)))
        return queryset.filter(wanted), False

    @admin.action(description="Lift suppression (with a reason)", permissions=["lift"])
    def lift_suppression(self, request, queryset):
        form = SuppressionRemoveForm(request.POST if is_confirmation(request) else None)
        if is_confirmation(request) and form.is_valid():
            done, errors = 0, []
            for suppression in queryset:
                label = str(suppression)
                try:
                    suppression_remove(suppression=suppression, user=request.user, note=form.cleaned_data["note"])
                except CustomerError as exc:
                    errors.append(f"{label}: {exc}")
                else:
                    # Only a lift that happened goes in the admin history.
                    self.log_change(request, suppression, f"Lifted: {form.cleaned_data['note']}")
                    done += 1
            report_errors(self, request, errors, f"Lifted {done} suppression(s)." if done else "")
            return None
        if not queryset.exclude(reason=Suppression.Reason.ERASURE).exists():
            self.message_user(request, "An erased person's suppression cannot be lifted.", messages.ERROR)
            return None
        return action_page(
            self,
            request,
            queryset,
            action="lift_suppression",
            title="Lift suppression",
            form=form,
            intro="Messages may reach these addresses again once consent allows it.",
            submit_label="Lift",
        )
