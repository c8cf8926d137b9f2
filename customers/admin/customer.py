"""The customer admin: search, filters, a 360° timeline, and consent and privacy actions via services."""

from __future__ import annotations

import contextlib
import json
import uuid

from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.contrib.admin.views.main import ChangeList
from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from customers.admin.base import action_page, is_confirmation, report_errors
from customers.admin.forms import CustomerChangeForm, EraseForm, GrantConsentForm, MergeForm, WithdrawConsentForm
from customers.exceptions import CustomerError, InvalidContact
from customers.header_sources import header_sources, purchase_refund_sources
from customers.models import Channel, ConsentState, ConsentStatus, Customer, Suppression
from customers.normalization import normalize_email, normalize_phone
from customers.selectors import (
    consent_states_for,
    customer_export_data,
    customer_profile_ids,
    customer_summary,
    customer_timeline,
    suppressed_channels,
    timeline_kinds,
)
from customers.services.editing import (
    EDITABLE_FIELDS,
    consent_grant_by_staff,
    consent_withdraw_by_staff,
    customer_update_profile,
)
from customers.services.exporting import customers_export_lines
from customers.services.profiles import customer_erase, customer_merge
from customers.timeline_sources import timeline_sources

CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)


def _consent_filter(channel: str) -> type[admin.SimpleListFilter]:
    class ConsentFilter(admin.SimpleListFilter):
        title = f"{Channel(channel).label} consent"
        parameter_name = f"consent_{channel}"

        def lookups(self, request, model_admin):
            return ConsentStatus.choices

        def queryset(self, request, queryset):
            value = self.value()
            if value not in ConsentStatus.values:
                return queryset
            if value == ConsentStatus.NONE:
                asked = ConsentState.objects.filter(customer=OuterRef("pk"), channel=channel).exclude(
                    status=ConsentStatus.NONE
                )
                return queryset.filter(~Exists(asked))
            return queryset.filter(
                Exists(ConsentState.objects.filter(customer=OuterRef("pk"), channel=channel, status=value))
            )

    ConsentFilter.__name__ = f"Consent{channel.title()}Filter"
    return ConsentFilter


def _suppressed_exists():
    return Exists(
        Suppression.objects.filter(
            Q(channel=Channel.EMAIL, address_hmac=OuterRef("email_hmac"))
            | Q(channel=Channel.SMS, address_hmac=OuterRef("phone_hmac"))
        )
    )


class SuppressedFilter(admin.SimpleListFilter):
    title = "suppressed"
    parameter_name = "suppressed"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_suppressed_exists())
        if self.value() == "no":
            return queryset.filter(~_suppressed_exists())
        return queryset


class ProfileStateFilter(admin.SimpleListFilter):
    title = "profile"
    parameter_name = "profile"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("merged", "Merged into another"), ("erased", "Erased")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.active()
        if self.value() == "merged":
            return queryset.filter(merged_into__isnull=False)
        if self.value() == "erased":
            return queryset.filter(erased_at__isnull=False)
        return queryset


class CustomerChangeList(ChangeList):
    def url_for_result(self, result):
        # Links carry the opaque public id, never the sequential primary key.
        return reverse(
            admin_urlname(self.opts, "change"),
            args=(str(result.public_id),),
            current_app=self.model_admin.admin_site.name,
        )


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerChangeForm
    change_form_template = "admin/customers/customer/change_form.html"
    change_list_template = "admin/customers/customer/change_list.html"
    list_display = (
        "display_name",
        "phone",
        "home_store_name",
        "consent_badges",
        "added",
    )
    list_display_links = ("display_name",)
    list_filter = (
        "home_store",
        "source",
        _consent_filter(Channel.EMAIL),
        _consent_filter(Channel.SMS),
        _consent_filter(Channel.PUSH),
        SuppressedFilter,
        ProfileStateFilter,
    )
    list_select_related = ("home_store",)
    list_per_page = 50
    search_fields = ("email", "first_name", "last_name")
    search_help_text = "Email, phone (any spelling), name, or profile id."
    ordering = ("-created_at",)
    readonly_fields = (
        "public_id",
        "consent_summary",
        "suppression_summary",
        "time_zone_source",
        "source",
        "source_store",
        "source_clerk",
        "merged_into",
        "erased_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        ("Profile", {"fields": ("public_id", *EDITABLE_FIELDS, "time_zone_source")}),
        ("Consent (changed only through the actions of the customer list)", {"fields": ("consent_summary",)}),
        ("Suppression", {"fields": ("suppression_summary",)}),
        (
            "Origin",
            {
                "fields": (
                    "source",
                    "source_store",
                    "source_clerk",
                    "merged_into",
                    "erased_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    actions = [
        "grant_consent",
        "withdraw_consent",
        "merge_customers",
        "export_customer_data",
        "erase_customers",
        "export_csv",
    ]

    # --- list ------------------------------------------------------------------------------
    def get_changelist(self, request, **kwargs):
        return CustomerChangeList

    def get_object(self, request, object_id, from_field=None):
        try:
            public_id = uuid.UUID(str(object_id))
        except ValueError:
            return super().get_object(request, object_id, from_field)  # links in the admin's own history
        return self.get_queryset(request).filter(public_id=public_id).first()

    def get_queryset(self, request):
        annotations = {
            f"consent_{channel}_status": Subquery(
                ConsentState.objects.filter(customer=OuterRef("pk"), channel=channel).values("status")[:1]
            )
            for channel in CHANNELS
        }
        return super().get_queryset(request).annotate(**annotations)

    @admin.display(description="Customer", ordering="last_name")
    def display_name(self, obj: Customer) -> str:
        name = str(obj)
        if obj.email and obj.email != name:
            return format_html("{}<span class='customer-email'>{}</span>", name, obj.email)
        return name

    @admin.display(description="Store", ordering="home_store__name")
    def home_store_name(self, obj: Customer) -> str:
        return obj.home_store.name if obj.home_store else "-"

    @admin.display(description="Added", ordering="created_at")
    def added(self, obj: Customer) -> str:
        return f"{timezone.localtime(obj.created_at):%Y-%m-%d}"

    _BADGE_MARK = {
        ConsentStatus.GRANTED: "✓",
        ConsentStatus.PENDING: "…",
        ConsentStatus.WITHDRAWN: "✗",
        ConsentStatus.NONE: "-",
    }

    @admin.display(description="Consent")
    def consent_badges(self, obj: Customer) -> str:
        """One compact badge per channel (colour, mark and a spelled-out title), so the list fits 1,280 px."""
        cells = []
        for channel in CHANNELS:
            status = ConsentStatus(getattr(obj, f"consent_{channel}_status", None) or ConsentStatus.NONE)
            label = Channel(channel).label
            cells.append((status.value, f"{label}: {status.label}", label, self._BADGE_MARK[status]))
        return format_html(
            "<span class='consent-badges'>{}</span>",
            format_html_join(
                "",
                "<span class='consent-badge consent-{}' title='{}'><span aria-hidden='true'>{} {}</span>"
                "<span class='visually-hidden'>{}</span></span>",
                ((status, title, label, mark, title) for status, title, label, mark in cells),
            ),
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        wanted = Q()
        words = term.split()
        name_match = Q()
        for word in words:
            name_match &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
        wanted |= name_match | Q(email__icontains=term)
        with contextlib.suppress(InvalidContact):
            wanted |= Q(email__iexact=normalize_email(term))
        if any(char.isdigit() for char in term):
            with contextlib.suppress(InvalidContact):
                wanted |= Q(phone=normalize_phone(term))
            digits = "".join(char for char in term if char.isdigit())
            if len(digits) >= 4 and not term.strip("+()-. 0123456789"):
                wanted |= Q(phone__endswith=digits)  # the last digits a customer reads out
        with contextlib.suppress(ValueError):
            wanted |= Q(public_id=uuid.UUID(term))
        return queryset.filter(wanted), False

    # --- change page -------------------------------------------------------------------------
    def has_add_permission(self, request):
        return False  # profiles come from capture, import and the API, which dedupe

    def has_delete_permission(self, request, obj=None):
        return False  # a person is erased (action), never deleted: the ledger must stay

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_active_profile:
            return (*self.readonly_fields, *EDITABLE_FIELDS)
        return self.readonly_fields

    @admin.display(description="Consent")
    def consent_summary(self, obj: Customer) -> str:
        states = consent_states_for(obj)
        return format_html(
            "<ul class='consent-summary'>{}</ul>",
            format_html_join(
                "",
                "<li>{}: <strong>{}</strong></li>",
                ((Channel(c).label, ConsentStatus(s).label) for c, s in states.items()),
            ),
        )

    @admin.display(description="Suppressed channels")
    def suppression_summary(self, obj: Customer) -> str:
        channels = suppressed_channels(obj)
        return ", ".join(Channel(c).label for c in sorted(channels)) or "None"

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
        if changes:
            update = customer_update_profile(customer=obj, user=request.user, changes=changes)
            for channel in update.withdrawn_channels:
                self.message_user(
                    request,
                    f"{Channel(channel).label} consent was withdrawn: it covered the previous address. "
                    "Record a new consent if the customer gave one for the new address.",
                    messages.WARNING,
                )
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        pass  # no related rows are edited here

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            profile_ids = customer_profile_ids(obj)
            extra_context["summary"] = customer_summary(
                obj,
                profile_ids=profile_ids,
                panel_sources=header_sources(),
                refund_sources=purchase_refund_sources(),
            )
            timeline = customer_timeline(obj, extra_sources=timeline_sources())
            kind = request.GET.get("kind", "")
            kinds = timeline_kinds(timeline)
            if kind not in {value for value, _label, _count in kinds}:
                kind = ""
            extra_context.update(
                timeline=[entry for entry in timeline if entry.kind == kind] if kind else timeline,
                timeline_total=len(timeline),
                timeline_kinds=kinds,
                timeline_kind=kind,
                timeline_filter_query=self._timeline_filter_query(request),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _timeline_filter_query(request) -> str:
        """The page's query string without ``kind``, so the filter links keep the changelist's filters."""
        query = request.GET.copy()
        query.pop("kind", None)
        return query.urlencode()

    # --- actions -----------------------------------------------------------------------------
    def _consent_action(self, request, queryset, *, form_class, change, done: str, page: dict):
        """The intermediate page of a consent action, then ``change(customer, cleaned_data)`` per customer."""
        form = form_class(request.POST if is_confirmation(request) else None)
        if is_confirmation(request) and form.is_valid():
            changed, errors = 0, []
            for customer in queryset:
                try:
                    change(customer, form.cleaned_data)
                    changed += 1
                except CustomerError as exc:
                    errors.append(f"{customer}: {exc}")
            report_errors(self, request, errors, done.format(count=changed) if changed else "")
            return None
        return action_page(self, request, queryset, form=form, **page)

    @admin.action(description="Grant consent (with the stated basis)", permissions=["change"])
    def grant_consent(self, request, queryset):
        return self._consent_action(
            request,
            queryset,
            form_class=GrantConsentForm,
            change=lambda customer, data: consent_grant_by_staff(
                customer=customer, channel=data["channel"], basis=data["basis"], note=data["note"], user=request.user
            ),
            done="Consent recorded for {count} customer(s).",
            page={
                "action": "grant_consent",
                "title": "Grant consent",
                "intro": "Record a consent these customers gave you outside the checkout and web forms.",
                "submit_label": "Record consent",
            },
        )

    @admin.action(description="Withdraw consent", permissions=["change"])
    def withdraw_consent(self, request, queryset):
        return self._consent_action(
            request,
            queryset,
            form_class=WithdrawConsentForm,
            change=lambda customer, data: consent_withdraw_by_staff(
                customer=customer, channel=data["channel"], note=data["note"], user=request.user
            ),
            done="Consent withdrawn for {count} customer(s).",
            page={
                "action": "withdraw_consent",
                "title": "Withdraw consent",
                "intro": "The withdrawal takes effect at once; no further message on this channel will be sent.",
                "submit_label": "Withdraw consent",
            },
        )

    @admin.action(description="Merge two customers", permissions=["change"])
    def merge_customers(self, request, queryset):
        customers = list(queryset.order_by("created_at"))
        if len(customers) != 2:
            self.message_user(request, "Select exactly two customers to merge.", messages.ERROR)
            return None
        if not all(c.is_active_profile for c in customers):
            self.message_user(request, "Only active profiles can be merged (one is merged or erased).", messages.ERROR)
            return None
        form = MergeForm(request.POST if is_confirmation(request) else None, customers=customers)
        if is_confirmation(request) and form.is_valid():
            survivor = next(c for c in customers if str(c.pk) == form.cleaned_data["survivor"])
            other = next(c for c in customers if c.pk != survivor.pk)
            try:
                customer_merge(survivor=survivor, other=other, user=request.user)
            except CustomerError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            self.log_change(request, survivor, f"Merged profile {other.public_id} into this one.")
            self.message_user(request, f"Merged {other} into {survivor}.", messages.SUCCESS)
            return None
        return action_page(
            self,
            request,
            queryset,
            action="merge_customers",
            title="Merge two customers",
            form=form,
            objects=customers,
            intro="History of both is kept; for each channel the most restrictive consent wins.",
            submit_label="Merge",
        )

    @admin.action(description="Export this customer's data (JSON)", permissions=["view"])
    def export_customer_data(self, request, queryset):
        customers = list(queryset[:2])
        if len(customers) != 1:
            self.message_user(request, "Select exactly one customer to export their data.", messages.ERROR)
            return None
        customer = customers[0]
        self.log_change(request, customer, "Exported the customer's personal data (JSON).")
        response = HttpResponse(
            json.dumps(customer_export_data(customer), indent=2, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="customer-{customer.public_id}.json"'
        return response

    @admin.action(description="Erase customers (right to erasure)", permissions=["change"])
    def erase_customers(self, request, queryset):
        customers = [c for c in queryset if c.erased_at is None]
        if not customers:
            self.message_user(request, "The selected customers are already erased.", messages.ERROR)
            return None
        form = EraseForm(request.POST if is_confirmation(request) else None)
        if is_confirmation(request) and form.is_valid():
            for customer in customers:
                erased = customer_erase(customer=customer, user=request.user)
                self.log_change(request, erased, "Erased on request.")
            self.message_user(request, f"Erased {len(customers)} customer(s).", messages.SUCCESS)
            return None
        return action_page(
            self,
            request,
            queryset,
            action="erase_customers",
            title="Erase customers",
            form=form,
            objects=customers,
            intro=(
                "Erasure removes names, email, phone, birthday, attributes and web evidence, withdraws every "
                "consent and keeps the addresses suppressed. Purchases stay, detached from the person."
            ),
            submit_label="Erase",
        )

    @admin.action(description="Export selected customers (CSV)", permissions=["view"])
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(customers_export_lines(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="customers.csv"'
        return response
