"""Helpers shared by the customers admin pages: intermediate pages for actions that need input."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse


def action_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset,
    *,
    action: str,
    title: str,
    form=None,
    intro: str = "",
    submit_label: str = "Confirm",
    objects=None,
    template: str = "admin/customers/action_page.html",
    extra: dict | None = None,
) -> TemplateResponse:
    """Render the page between choosing an action and running it (like Django's delete confirmation)."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "objects": list(objects if objects is not None else queryset),
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "submit_label": submit_label,
        "opts": opts,
        "app_label": opts.app_label,
        "media": modeladmin.media + (form.media if form is not None else ""),
        **(extra or {}),
    }
    return TemplateResponse(request, template, context)


def is_confirmation(request: HttpRequest) -> bool:
    """The POST comes from our intermediate page, not from the changelist's action bar."""
    return request.method == "POST" and request.POST.get("_confirm") == "yes"


def report_errors(modeladmin: admin.ModelAdmin, request: HttpRequest, errors: list[str], done: str = "") -> None:
    if done:
        modeladmin.message_user(request, done, messages.SUCCESS)
    for error in errors[:20]:
        modeladmin.message_user(request, error, messages.ERROR)
    if len(errors) > 20:
        modeladmin.message_user(request, f"… and {len(errors) - 20} more.", messages.ERROR)
