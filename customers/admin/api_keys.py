"""API keys: made here (the full key shown once, on the page after saving), revoked by an action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from customers.exceptions import CustomerError
from customers.models import ApiKey
from customers.services.api_keys import api_key_create, api_key_revoke


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses this key, e.g. Online shop (production).")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "status", "created_by", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("created_by",)
    search_fields = ("name", "prefix")
    readonly_fields = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    actions = ["revoke"]

    def has_delete_permission(self, request, obj=None):
        # A key is revoked, never deleted: its row says who made it and when it was last used.
        return False

    @admin.display(description="Status")
    def status(self, obj):
        return "revoked" if obj.revoked_at else "active"

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiKeyCreateForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Add API key"}
        if request.method == "POST" and form.is_valid():
            try:
                api_key, full_key = api_key_create(name=form.cleaned_data["name"], created_by=request.user)
            except CustomerError as exc:
                form.add_error("name", str(exc))
            else:
                self.log_addition(request, api_key, [{"added": {}}])
                # Rendered, not redirected: the key never passes through the session or a message (and
                # the admin marks every page it serves never-cache).
                return TemplateResponse(
                    request,
                    "admin/customers/apikey/created.html",
                    {**context, "title": "API key created", "api_key": api_key, "full_key": full_key},
                )
        return TemplateResponse(request, "admin/customers/apikey/add.html", {**context, "form": form})

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        now, revoked = timezone.now(), 0
        for api_key in queryset:
            if api_key_revoke(api_key=api_key, now=now):
                revoked += 1
                self.log_change(request, api_key, "Revoked")
        self.message_user(request, f"{revoked} API key(s) revoked.", messages.SUCCESS)
