"""The studio in the admin: segments with live counts, the campaign page as one message, previews."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.checks import InlineModelAdminChecks
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import TextField
from django.db.models.functions import Cast
from django.forms.models import BaseInlineFormSet, inlineformset_factory
from django.forms.utils import ErrorDict
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join

from campaigns import rule_builder
from campaigns.audience import campaign_forecast, segment_counts
from campaigns.delivery.campaign_admin import RUNNING, CampaignOperateAdminMixin
from campaigns.exceptions import CampaignError, ChannelError
from campaigns.models import (
    AuditEvent,
    Campaign,
    FrequencyRule,
    Message,
    QuietHoursRule,
    Segment,
    StaffTestRecipient,
    Variant,
)
from campaigns.rendering import PLACEHOLDERS
from campaigns.segments import RuleError, segment_q
from campaigns.selectors import (
    audience_persona_counts,
    audit_for_campaign,
    customer_for_preview,
    customer_label,
    customers_search,
    message_previews,
    persona_warning,
)
from campaigns.services.campaigns import (
    campaign_duplicate,
    campaign_problems,
    campaign_save,
    campaign_staff_moves,
    campaign_status_change,
)
from campaigns.services.messages import message_save, variant_delete, variant_save, variant_test_send
from campaigns.services.segments import segment_save, segment_static_load
from campaigns.validation import variant_check
from customers.admin.base import DeleteOnlyWhenUnprotected
from customers.forms import PLAIN_DECIMAL_OVERRIDES
from customers.models import Channel

MAX_UPLOAD_BYTES = 20 * 1024 * 1024

class _RefusalShown:
    """A write the services refuse rolls the whole admin request back and comes back as a message."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except CampaignError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(request.get_full_path())


# --- Segments -----------------------------------------------------------------------------------


class _IndentedJSONField(forms.JSONField):
    """The rules as indented JSON, so a power user can read and edit the tree."""

    def prepare_value(self, value):
        if isinstance(value, str):  # not valid JSON: shown back as typed
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


class SegmentForm(forms.ModelForm):
    """A segment, its rules from the rule builder's fields or, when ticked, from the JSON box.

    A POST carrying ``rb-action`` (add rule, add group, remove, apply) is not a save: the page comes back
    with the tree changed and nothing written.
    """

    upload = forms.FileField(
        required=False, help_text="Uploaded list: one email or phone per line (or a CSV whose first column has them)."
    )
    rules_from_json = forms.BooleanField(
        required=False,
        label="Save the JSON, not the builder",
        help_text="Typing in the JSON box ticks this. The JSON is checked exactly as the builder's rules are.",
    )

    class Meta:
        model = Segment
        fields = ["name", "kind", "description", "is_persona", "is_active", "rules"]
        field_classes = {"rules": _IndentedJSONField}
        widgets = {"rules": forms.Textarea(attrs={"rows": 14, "cols": 90, "class": "vLargeTextField rules-json"})}
        labels = {"rules": "Rules as JSON"}
        help_texts = {"rules": "The same rules as the builder above, for power users and the API."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound and rule_builder.has_builder_fields(self.data):
            self.builder = rule_builder.Builder.from_data(self.data)
        else:
            self.builder = rule_builder.Builder.from_tree(self.instance.rules if self.instance.pk else {})
            if self.builder.notice and not self.is_bound:
                self.initial["rules_from_json"] = True
        if self.builder.action:
            # The page comes back with the changed tree; the JSON box follows it.
            data = self.data.copy()
            tree = self.builder.tree()
            if tree is not None:
                data["rules"] = json.dumps(tree)
            if self.builder.action == "load_json":
                data.pop("rules_from_json", None)
            self.data = data
        self.builder.prepared()

    def is_valid(self) -> bool:
        if self.builder.action:
            self._errors, self.cleaned_data = ErrorDict(), {}
            return False
        return super().is_valid()

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload is None:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError("Upload at most 20 MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError("Upload a UTF-8 text or CSV file.") from exc

    def clean(self):
        cleaned = super().clean()
        from_builder = not cleaned.get("rules_from_json") and rule_builder.has_builder_fields(self.data)
        if cleaned.get("kind") != Segment.Kind.RULES or not from_builder:
            return cleaned  # the JSON box, checked by Segment.clean
        self._errors.pop("rules", None)  # a half-typed JSON box does not block the builder's rules
        tree, errors = rule_builder.tree_from_nodes(self.builder.root)
        if errors:
            cleaned.pop("rules", None)
            for error in errors:
                self.add_error(None, error)
            return cleaned
        if self.instance.pk and tree == rule_builder.tree_canonical(self.instance.rules):
            tree = self.instance.rules  # unchanged meaning: keep the stored spelling, audit nothing
        cleaned["rules"] = tree
        return cleaned


@admin.register(Segment)
class SegmentAdmin(DeleteOnlyWhenUnprotected, admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "kind", "is_persona", "is_active", "updated_at"]
    list_filter = ["kind", "is_persona", "is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["live_counts"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "description", "is_persona", "is_active", "upload", "live_counts"]}),
        ("Advanced: edit as JSON", {"fields": ["rules_from_json", "rules"], "classes": ["collapse"]}),
    ]
    change_form_template = "admin/campaigns/segment/change_form.html"

    @admin.display(description="Members now")
    def live_counts(self, obj):
        if obj is None or obj.pk is None:
            return "Save to count."
        counts = segment_counts(obj)
        return format_html(
            "<strong>{}</strong> customers; reachable by email {}, SMS {}, push {}",
            counts["total"],
            counts["email"],
            counts["sms"],
            counts["push"],
        )

    def save_model(self, request, obj, form, change):
        segment_save(segment=obj, actor=request.user)
        content = form.cleaned_data.get("upload")
        if content:
            try:
                report = segment_static_load(segment=obj, content=content, actor=request.user)
            except CampaignError as exc:
                messages.error(request, str(exc))
                return
            messages.info(request, f"List: {report.matched} matched, {report.added} added.")
            for line, value, why in report.unmatched[:20]:
                messages.warning(request, f"Line {line} ({value}): {why}")
        warning = persona_warning()
        if warning:
            messages.warning(request, warning)

    def changelist_view(self, request, extra_context=None):
        warning = persona_warning()
        if warning:
            messages.warning(request, warning)
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("count/", self.admin_site.admin_view(self.count_view), name="campaigns_segment_count"),
            path("builder/", self.admin_site.admin_view(self.builder_view), name="campaigns_segment_builder"),
            *super().get_urls(),
        ]

    def count_view(self, request):
        """Live count while editing rules: POST the rule JSON (``rules``) or the builder's fields, get the numbers.

        From the builder's fields the answer also carries the JSON they make (``rules``).
        """
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        from_builder = rule_builder.has_builder_fields(request.POST) and not request.POST.get("rules_from_json")
        try:
            if from_builder:
                rules, errors = rule_builder.tree_from_nodes(rule_builder.nodes_from_data(request.POST))
                if errors:
                    return JsonResponse({"error": errors[0]}, status=400)
            else:
                rules = json.loads(request.POST.get("rules") or "{}")
            segment = Segment(kind=Segment.Kind.RULES, rules=rules)
            segment_q(rules, now=timezone.now())
            counts = segment_counts(segment)
        except (ValueError, RuleError) as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse({**counts, "rules": rules} if from_builder else counts)

    def builder_view(self, request):
        """The builder re-rendered after an action (add rule or group, remove, apply), for the page's script.

        Writes nothing: the same change a button makes without JavaScript, without reloading the page.
        """
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        builder = rule_builder.Builder.from_data(request.POST).prepared()
        html = render_to_string("admin/campaigns/segment/rule_builder_tree.html", {"builder": builder}, request)
        return JsonResponse({"html": html, "rules": builder.tree()})


# --- Messages and variants -------------------------------------------------------------------------


class VariantForm(forms.ModelForm):
    push_image_url = forms.URLField(required=False, assume_scheme="https", max_length=500, label="Push image URL")

    class Meta:
        model = Variant
        fields = [
            "persona",
            "channel",
            "subject",
            "preheader",
            "html_body",
            "text_body",
            "sms_body",
            "push_title",
            "push_body",
            "push_url",
            "push_image_url",
        ]
        widgets = {
            "html_body": forms.Textarea(attrs={"rows": 10, "cols": 80}),
            "text_body": forms.Textarea(attrs={"rows": 4, "cols": 80}),
            "sms_body": forms.Textarea(attrs={"rows": 3, "cols": 80, "class": "sms-body"}),
            "push_body": forms.Textarea(attrs={"rows": 2, "cols": 80}),
        }

    def _post_clean(self):
        super()._post_clean()
        # Blank fields of other channels are fine; the model's clean checks what the channel needs.
        if not self.errors:
            try:
                self.warnings = variant_check(self.instance)
            except ValidationError as exc:
                self._update_errors(exc)


_VARIANT_FIELDSETS = [
    (None, {"fields": ["persona", "channel", "preview_link"]}),
    ("Email", {"fields": ["subject", "preheader", "html_body", "text_body"], "classes": ["variant-email"]}),
    ("SMS", {"fields": ["sms_body"], "classes": ["variant-sms"]}),
    ("Push", {"fields": ["push_title", "push_body", "push_url", "push_image_url"], "classes": ["variant-push"]}),
]


class _VariantInlineBase(admin.StackedInline):
    model = Variant
    form = VariantForm
    extra = 0
    fieldsets = _VARIANT_FIELDSETS
    readonly_fields = ["preview_link"]

    @admin.display(description="Preview")
    def preview_link(self, obj):
        if obj is None or obj.pk is None:
            return "Save to preview."
        url = reverse("admin:campaigns_variant_preview", args=[obj.pk])
        return format_html('<a class="variant-preview-link" href="{}">Preview and test</a>', url)


class VariantInline(_VariantInlineBase):
    fk_name = "message"


@admin.register(Message)
class MessageAdmin(DeleteOnlyWhenUnprotected, _RefusalShown, admin.ModelAdmin):
    list_display = ["name", "purpose", "created_at"]
    list_filter = ["purpose"]
    search_fields = ["name"]
    inlines = [VariantInline]

    def save_model(self, request, obj, form, change):
        message_save(message=obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        _save_variant_formset(request, formset)

    def get_urls(self):
        return [
            path(
                "variant/<int:variant_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_variant_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, variant_id: int):
        """One cell as the recipient sees it, for a chosen or random customer; POST sends a test."""
        variant = get_object_or_404(Variant.objects.select_related("message", "persona"), pk=variant_id)
        if not self.has_view_permission(request, variant.message):
            raise PermissionDenied
        params = request.POST if request.method == "POST" else request.GET
        customer, matches, query = _picked_customer(params, id_key="customer", query_key="customer_q")
        if request.method == "POST":
            if not self.has_change_permission(request, variant.message):
                raise PermissionDenied
            try:
                to = variant_test_send(
                    variant=variant, user=request.user, customer=customer, phone=request.POST.get("phone", "")
                )
            except (CampaignError, ChannelError) as exc:
                messages.error(request, f"Test not sent: {exc}")
            else:
                messages.success(request, f"Test sent to {to}.")
            query = f"?customer={customer.pk}" if customer else ""
            return HttpResponseRedirect(request.path + query)
        previews = message_previews(message=variant.message, customer=customer)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {variant.message} / {variant}",
            "variant": variant,
            "customer": customer,
            "customer_label": customer_label(customer) if customer else "",
            "matches": [(c, customer_label(c)) for c in matches],
            "query": query,
            "previews": [p for p in previews if p.variant.pk == variant.pk],
            "opts": Message._meta,
        }
        return TemplateResponse(request, "admin/campaigns/variant_preview.html", context)


def _save_variant_formset(request, formset) -> None:
    """Store each cell through the service (validation, audit trail, freeze once sending)."""
    # The admin's change message reads these three lists, as after ``formset.save()``.
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.deleted_forms:
        if form.instance.pk:
            variant_delete(variant=form.instance, actor=request.user)
            formset.deleted_objects.append(form.instance)
    for form in formset.forms:
        if not form.has_changed() or form in formset.deleted_forms or not form.cleaned_data:
            continue
        variant = form.instance
        variant.message = formset.instance
        created = variant.pk is None
        for warning in variant_save(variant=variant, actor=request.user):
            messages.warning(request, f"{variant}: {warning}")
        if created:
            formset.new_objects.append(variant)
        else:
            formset.changed_objects.append((variant, form.changed_data))


# --- Campaigns ---------------------------------------------------------------------------------


class CampaignVariantFormSet(BaseInlineFormSet):
    """The variants of the campaign's message, edited on the campaign page."""

    def __init__(self, data=None, files=None, instance=None, **kwargs):
        message = getattr(instance, "message", None) if getattr(instance, "message_id", None) else None
        super().__init__(data, files, instance=message or Message(), **kwargs)


class _NoRelationChecks(InlineModelAdminChecks):
    def _check_relation(self, obj, parent_model):
        return []


class CampaignVariantInline(_VariantInlineBase):
    """Variants hang off the message; the campaign page shows them as if they were its own."""

    checks_class = _NoRelationChecks
    template = "admin/campaigns/campaign/variant_inline.html"
    verbose_name = "variant (persona x channel)"
    verbose_name_plural = "Message variants: one per persona and channel; the default column has no persona"

    def get_formset(self, request, obj=None, **kwargs):
        fields = list(VariantForm.Meta.fields)
        formset = inlineformset_factory(
            Message,
            Variant,
            form=VariantForm,
            formset=CampaignVariantFormSet,
            fields=fields,
            extra=self.get_extra(request, obj),
            can_delete=self.has_delete_permission(request, obj),
        )
        formset.fk = Variant._meta.get_field("message")
        return formset

    def _editable(self, obj) -> bool:
        return obj is None or obj.is_editable

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("campaigns.view_variant") or request.user.has_perm("campaigns.change_variant")


class ChannelOrderWidget(forms.MultiWidget):
    """One drop-down per rank: first choice, second, third (preferred-channel mode follows this order)."""

    template_name = "admin/campaigns/channel_order_widget.html"

    def __init__(self, attrs=None):
        choices = [("", "(none)"), *Channel.choices]
        super().__init__([forms.Select(choices=choices) for _ in Channel.values], attrs)

    def decompress(self, value):
        items = list(value) if isinstance(value, (list, tuple)) else []
        return (items + [""] * len(Channel.values))[: len(Channel.values)]


class ChannelOrderField(forms.MultiValueField):
    widget = ChannelOrderWidget

    def __init__(self, **kwargs):
        kwargs.pop("max_length", None)
        choices = [("", "(none)"), *Channel.choices]
        fields = [forms.ChoiceField(choices=choices, required=False) for _ in Channel.values]
        super().__init__(fields=fields, require_all_fields=False, **kwargs)

    def compress(self, data_list):
        # The model's clean refuses an empty list and a channel named twice, with a message.
        return [item for item in data_list or [] if item]

    def has_changed(self, initial, data):
        if self.disabled:
            return False
        before = [item for item in (initial or []) if item]
        return before != self.compress(data if isinstance(data, list) else self.widget.decompress(data))


class CampaignForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "holdout_percent" in self.fields:
            self.fields["holdout_percent"].required = False  # empty: no holdout
        if "holdout_mode" in self.fields:
            self.fields["holdout_mode"].required = False  # empty: a share of customers

    def clean_holdout_percent(self):
        return self.cleaned_data.get("holdout_percent") or 0

    def clean_holdout_mode(self):
        return self.cleaned_data.get("holdout_mode") or "customers"

    def clean(self):
        cleaned = super().clean()
        stores_chosen = cleaned.get("holdout_stores")
        if cleaned.get("holdout_mode") == "stores" and "holdout_stores" in self.fields and not stores_chosen:
            self.add_error("holdout_stores", "Choose the stores whose customers are held back.")
        return cleaned

    channels = ChannelOrderField(
        label="Channels",
        help_text="In order of preference. With “preferred channel” mode each customer gets the first one "
        "they consented to; otherwise every consented one.",
    )
    message = forms.ModelChoiceField(
        queryset=Message.objects.all(),
        required=False,
        help_text=(
            "Leave empty to start a new message named after the campaign. A message shared with another "
            "campaign changes for both: use the duplicate action for a copy."
        ),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "goal",
            "kpi",
            "kpi_target",
            "category",
            "when_capped",
            "message",
            "include_segments",
            "exclude_segments",
            "channels",
            "mode",
            "holdout_percent",
            "holdout_mode",
            "holdout_stores",
            "offer",
            "coupon_mode",
            "shared_code",
        ]


class ChannelListFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return Channel.choices

    def queryset(self, request, queryset):
        if self.value() in Channel.values:
            # JSON containment is PostgreSQL-only; the list's text holds each name in quotes on both.
            text = Cast("channels", output_field=TextField())
            return queryset.annotate(channels_text=text).filter(channels_text__contains=f'"{self.value()}"')
        return queryset


@admin.register(Campaign)
class CampaignAdmin(CampaignOperateAdminMixin, _RefusalShown, admin.ModelAdmin):
    form = CampaignForm
    formfield_overrides = PLAIN_DECIMAL_OVERRIDES
    list_display = [
        "name", "status", "goal", "category", "channels_display", "scheduled_at", "delivery_progress_column",
        "updated_at",
    ]
    list_filter = ["status", "goal", ChannelListFilter, "category"]
    search_fields = ["name"]
    filter_horizontal = ["include_segments", "exclude_segments", "holdout_stores"]
    inlines = [CampaignVariantInline]
    actions = ["duplicate_action"]
    change_form_template = "admin/campaigns/campaign/change_form.html"
    # Each fieldset belongs to a step of the page (its class); the template lays the steps out.
    fieldsets = [
        (None, {"fields": ["name", ("goal", "kpi", "kpi_target"), ("category", "when_capped")],
                "classes": ["step-audience"]}),
        ("Who it goes to", {"fields": ["include_segments", "exclude_segments", "channels", "mode"],
                            "classes": ["step-audience"]}),
        # Folded: most campaigns have no holdout, and the store picker is tall.
        ("Holdout for measuring lift (optional)", {"fields": ["holdout_percent", "holdout_mode", "holdout_stores"],
                                                   "classes": ["step-audience", "collapse"]}),
        ("Message", {"fields": ["message"], "classes": ["step-message"]}),
        ("Offer (optional)", {"fields": ["offer", "coupon_mode", "shared_code"], "classes": ["step-message"]}),
    ]
    raw_id_fields = ["shared_code"]

    @admin.display(description="Channels")
    def channels_display(self, obj):
        return ", ".join(Channel(item).label if item in Channel.values else item for item in obj.channel_list)

    @admin.display(description="Status")
    def status_display(self, obj):
        if obj is None or obj.pk is None:
            return "Draft"
        when = f" for {obj.scheduled_at:%Y-%m-%d %H:%M %Z}" if obj.scheduled_at else ""
        if obj.local_send_at is not None:
            when = f" for {obj.local_send_at:%Y-%m-%d %H:%M} in each recipient's zone"
        return f"{obj.get_status_display()}{when}"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return ["status_display", *CampaignForm.Meta.fields]
        return ["status_display"]

    @admin.action(description="Duplicate the selected campaigns (as drafts, with a copy of the message)")
    def duplicate_action(self, request, queryset):
        for campaign in queryset:
            copy = campaign_duplicate(campaign=campaign, actor=request.user)
            messages.success(request, f"Created {copy}.")

    def save_model(self, request, obj, form, change):
        campaign_save(
            campaign=obj,
            actor=request.user,
            include_segments=form.cleaned_data.get("include_segments"),
            exclude_segments=form.cleaned_data.get("exclude_segments"),
            holdout_stores=form.cleaned_data.get("holdout_stores"),
        )

    def save_formset(self, request, form, formset, change):
        formset.instance = form.instance.message
        _save_variant_formset(request, formset)

    def save_related(self, request, form, formsets, change):
        # The segments and held-out stores were stored with the campaign (and audited there); only the
        # variants are left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def get_urls(self):
        return [
            path(
                "<int:campaign_id>/status/",
                self.admin_site.admin_view(self.status_view),
                name="campaigns_campaign_status",
            ),
            path(
                "<int:campaign_id>/test-send/",
                self.admin_site.admin_view(self.test_send_view),
                name="campaigns_campaign_test_send",
            ),
            path("customers/", self.admin_site.admin_view(self.customer_search_view), name="campaigns_customer_search"),
            path("reach/", self.admin_site.admin_view(self.reach_view), name="campaigns_campaign_reach"),
            *super().get_urls(),
        ]

    def customer_search_view(self, request):
        """Customers matching a name, email or phone, as JSON for the preview and test-send pickers."""
        if not (self.has_view_permission(request) and request.user.has_perm("customers.view_customer")):
            raise PermissionDenied
        found = customers_search(query=request.GET.get("q", ""))
        payload = {"results": [{"id": c.pk, "label": customer_label(c)} for c in found]}
        # Escaped like json_script: the text is customers' own and must stay inert wherever it lands.
        body = json.dumps(payload).translate(_JSON_ESCAPES)
        return HttpResponse(body, content_type="application/json")

    def reach_view(self, request):
        """Reachable counts per channel for the audience and channels being edited, before saving them."""
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        stored = request.POST.get("campaign", "")
        campaign = get_object_or_404(Campaign, pk=int(stored)) if stored.isdigit() else Campaign()
        if request.POST.get("category") in Campaign.Category.values:
            campaign.category = request.POST["category"]
        channels = [c for c in (request.POST.get(f"channels_{i}") for i in range(len(Channel.values))) if c]
        if not channels or len(set(channels)) != len(channels) or not set(channels) <= set(Channel.values):
            return JsonResponse({"error": "Name each channel once."}, status=400)
        campaign.channels = channels
        if request.POST.get("mode") in Campaign.Mode.values:
            campaign.mode = request.POST["mode"]
        def chosen(name):
            ids = [int(v) for v in request.POST.getlist(name) if v.isdigit()][:200]
            return list(Segment.objects.filter(pk__in=ids))

        forecast = campaign_forecast(
            campaign, include=chosen("include_segments"), exclude=chosen("exclude_segments")
        )
        return JsonResponse({
            "audience": forecast.audience,
            "channels": [
                {"channel": row.channel, "reachable": row.reachable, "left_out": row.removed_total}
                for row in forecast.channels
            ],
        })

    def test_send_view(self, request, campaign_id: int):
        """Send one variant of the campaign's message to the staff member, rendered for a chosen customer."""
        campaign = get_object_or_404(Campaign.objects.select_related("message", "offer"), pk=campaign_id)
        if request.method != "POST" or not self.has_change_permission(request, campaign):
            raise PermissionDenied
        variant_id = request.POST.get("variant", "")
        variant = campaign.message.variants.filter(pk=int(variant_id)).first() if variant_id.isdigit() else None
        customer, _matches, _query = _picked_customer(request.POST, id_key="customer", query_key="customer_q")
        back = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        if customer is not None:
            back += f"?preview_customer={customer.pk}"
        if variant is None:
            messages.error(request, "Choose which variant to test.")
            return HttpResponseRedirect(back + "#step-review")
        try:
            to = variant_test_send(
                variant=variant, user=request.user, customer=customer, phone=request.POST.get("phone", ""),
                campaign=campaign,
            )
        except (CampaignError, ChannelError) as exc:
            messages.error(request, f"Test not sent: {exc}")
        else:
            messages.success(request, f"Test sent to {to}.")
        return HttpResponseRedirect(back + "#step-review")

    def response_add(self, request, obj, post_url_continue=None):
        return _to_step(request, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return _to_step(request, super().response_change(request, obj))

    def status_view(self, request, campaign_id: int):
        """Schedule, pause, resume, cancel: each through the status service."""
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if request.method != "POST" or not self.has_change_permission(request, campaign):
            raise PermissionDenied
        timing = request.POST.get("timing", Campaign.Timing.AT)
        at = _posted_datetime(request.POST.get("at", ""))
        if at is not None and timezone.is_naive(at):
            at = timezone.make_aware(at)
        local_at = _posted_datetime(request.POST.get("local_at", ""))
        if local_at is not None and timezone.is_aware(local_at):
            local_at = None  # a wall time carries no zone; the service asks for one again
        try:
            campaign_status_change(
                campaign=campaign,
                to=request.POST.get("to", ""),
                at=at,
                actor=request.user,
                timing=timing,
                local_at=local_at,
            )
        except CampaignError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"The campaign is now {campaign.get_status_display().lower()}.")
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            customer, matches, query = _picked_customer(request.GET, id_key="preview_customer", query_key="preview_q")
            previews = message_previews(message=obj.message, customer=customer, campaign=obj)
            _previews_beside_editors(context, previews)
            context.update(
                previews=previews,
                preview_customer=customer,
                preview_customer_label=customer_label(customer) if customer else "",
                preview_matches=[(c, customer_label(c)) for c in matches],
                preview_query=query,
                forecast=campaign_forecast(obj),
                problems=campaign_problems(obj),
                persona_counts=audience_persona_counts(obj),
                audit=audit_for_campaign(obj),
                next_statuses=_next_statuses(obj),
                grid=_variant_grid(obj),
                test_variants=[p.variant for p in previews],
                placeholders=PLACEHOLDERS,
                timings=Campaign.Timing.choices,
            )
        else:
            context.update(placeholders=PLACEHOLDERS)
        started = obj is not None and obj.pk and obj.status in RUNNING
        last_step = ("results" if obj.status in (Campaign.Status.SENT, Campaign.Status.CANCELLED) else "sending") if (
            started
        ) else "review"
        steps = [
            ("audience", "Audience"),
            ("message", "Message"),
            ("schedule", "Schedule"),
            (last_step, {"review": "Review & launch", "sending": "Sending", "results": "Results"}[last_step]),
        ]
        requested = request.GET.get("step", "")
        current = requested if requested in dict(steps) else (last_step if started else "audience")
        if context.get("errors"):
            current = "audience" if context["adminform"].form.errors else "message"
        context.update(
            steps=steps,
            current_step=current,
            persona_warning=persona_warning(),
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


_JSON_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}
_STEPS = ("audience", "message", "schedule", "review")


def _picked_customer(params, *, id_key: str, query_key: str):
    """The customer chosen in a picker: by the id a suggestion carried, else the first match of the typed
    name, email or phone, else a random one. Returns ``(customer, matches, query)``."""
    chosen = params.get(id_key, "")
    query = params.get(query_key, "").strip()[:100]
    if str(chosen).isdigit():
        return customer_for_preview(customer_id=int(chosen)), [], ""
    if query:
        matches = customers_search(query=query)
        return (matches[0] if matches else None), matches, query
    return customer_for_preview(), [], ""


def _previews_beside_editors(context, previews) -> None:
    """Hand each variant form its rendered preview, so the inline shows it next to the fields."""
    by_pk = {preview.variant.pk: preview for preview in previews}
    for inline_admin_formset in context.get("inline_admin_formsets", []):
        for form in inline_admin_formset.formset.forms:
            form.instance.studio_preview = by_pk.get(form.instance.pk)


def _to_step(request, response):
    """After "save and continue", come back to the step the button named."""
    step = request.POST.get("_continue", "")
    if step in _STEPS and isinstance(response, HttpResponseRedirect) and "#" not in response["Location"]:
        response["Location"] += f"#step-{step}"
    return response


def _posted_datetime(value: str):
    try:
        return parse_datetime(value.strip())
    except ValueError:
        return None


def _variant_grid(campaign: Campaign) -> dict:
    """Rows: the default column then each active persona; columns: the campaign's channels."""
    variants = {(v.persona_id, v.channel): v for v in campaign.message.variants.all()}
    personas = [None, *Segment.objects.personas()]
    channels = campaign.channel_list
    rows = []
    for persona in personas:
        cells = []
        for channel in channels:
            variant = variants.get((persona.pk if persona else None, channel))
            cells.append({"channel": channel, "variant": variant})
        rows.append({"persona": persona, "cells": cells})
    return {"channels": channels, "rows": rows}


_STATUS_BUTTONS = {
    Campaign.Status.DRAFT: "Back to draft",
    Campaign.Status.SENDING: "Resume sending",
    Campaign.Status.PAUSED: "Pause",
    Campaign.Status.CANCELLED: "Cancel the campaign",
}


def _next_statuses(campaign: Campaign) -> list[tuple[str, str]]:
    # Scheduling has its own form; the service decides which moves staff may make.
    return [(status, _STATUS_BUTTONS[status]) for status in campaign_staff_moves(campaign) if status in _STATUS_BUTTONS]


@admin.register(StaffTestRecipient)
class StaffTestRecipientAdmin(admin.ModelAdmin):
    """Where test sends may go besides consented customers: staff addresses and phones."""

    list_display = ["label", "channel", "address", "is_active", "created_by", "created_at"]
    list_filter = ["channel", "is_active"]
    search_fields = ["label", "address"]
    fields = ["label", "channel", "address", "is_active"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(FrequencyRule)
class FrequencyRuleAdmin(admin.ModelAdmin):
    """Frequency caps as policy: each active rule holds back marketing messages beyond its limit."""

    list_display = ["name", "channel_display", "category_display", "limit_display", "is_active", "updated_at"]
    list_filter = ["is_active", "window", "channel", "category"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        ("Which messages it counts", {"fields": ["channel", "category"]}),
        (
            "Limit",
            {
                "fields": ["window", "limit_source", "limit", "days", "gap_hours"],
                "description": "Examples: 1 SMS per calendar day; 3 emails in a rolling 7 days; 5 messages per "
                "calendar week on all channels; at least 12 hours between two messages.",
            },
        ),
    ]

    @admin.display(description="Channel", ordering="channel")
    def channel_display(self, obj):
        return obj.get_channel_display() if obj.channel else "All channels"

    @admin.display(description="Category", ordering="category")
    def category_display(self, obj):
        return obj.get_category_display() if obj.category else "All marketing"

    @admin.display(description="Limit")
    def limit_display(self, obj):
        if obj.window == FrequencyRule.Window.MIN_GAP:
            return f"At least {obj.gap_hours} h apart"
        count = "the customer's own choice" if obj.limit_source == FrequencyRule.LimitSource.CUSTOMER else obj.limit
        if obj.window == FrequencyRule.Window.ROLLING_DAYS:
            return f"{count} in {obj.days} days (rolling)"
        per = "calendar day" if obj.window == FrequencyRule.Window.CALENDAR_DAY else "calendar week"
        return f"{count} per {per}"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "subject_label", "subject_type", "action", "actor", "changes_summary"]
    list_filter = ["action", "subject_type"]
    search_fields = ["subject_label"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    @admin.display(description="Changes")
    def changes_summary(self, obj):
        return format_html_join("; ", "{}: {}", ((key, value) for key, value in obj.changes.items()))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(QuietHoursRule)
class QuietHoursRuleAdmin(admin.ModelAdmin):
    """Settings, not records: the rules are read once per sending chunk, so an edit applies from the next one."""

    list_display = ["__str__", "channel", "country", "region", "category", "start", "end", "note"]
    list_filter = ["channel", "country"]
    fieldsets = [
        (
            None,
            {
                "fields": ["channel", "country", "region", "category", ("start", "end"), "note"],
                "description": (
                    "Messages on this channel go out only between the start and end times in the recipient's "
                    "own time zone; outside them a delivery waits for the next allowed minute. A channel with "
                    "no rule sends at any hour. The most specific rule wins (region over country over "
                    "everywhere). When a customer's zone is unknown, the window must hold in every zone they "
                    "could be in."
                ),
            },
        )
    ]
