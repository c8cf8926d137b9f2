"""Helpers shared by the customers admin pages: intermediate pages for actions that need input."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models
from django.http import HttpRequest
from django.template.response import TemplateResponse

PREVIEW_LIMIT = 50


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
    objects = list(objects if objects is not None else queryset[: PREVIEW_LIMIT + 1])
    select_across = request.POST.get("select_across") == "1"
    total = queryset.count() if select_across or len(objects) > PREVIEW_LIMIT else len(objects)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "objects": objects[:PREVIEW_LIMIT],
        # "Select all N" is carried as a flag, not N hidden ids (Django refuses > 1,000 fields).
        "select_across": select_across,
        # Django only runs a confirmed action when some id is posted; with the flag one id stands for all.
        "selected_ids": [objects[0].pk] if select_across and objects else list(queryset.values_list("pk", flat=True)),
        "total": total,
        "more": max(total - PREVIEW_LIMIT, 0),
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


def protected_by_other_rows(obj) -> bool:
    """Whether a row elsewhere PROTECTs (or RESTRICTs) ``obj``, so that deleting it can only be refused.

    Looks one step away, one ``EXISTS`` query per protecting relation; that covers the ledgers,
    evidence and history that point at the objects the admin lets staff delete.
    """
    for relation in type(obj)._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)):
            continue
        if getattr(relation, "on_delete", None) not in (models.PROTECT, models.RESTRICT):
            continue
        if relation.related_model._base_manager.filter(**{relation.field.name: obj}).exists():
            return True
    return False


class DeleteOnlyWhenUnprotected:
    """A ModelAdmin mixin: no "Delete" button on an object whose deletion would end in "Cannot delete"."""

    def has_delete_permission(self, request, obj=None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or not protected_by_other_rows(obj)
