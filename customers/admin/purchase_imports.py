"""CSV import of past orders: upload → dry-run verdict per row → apply, all through the service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from customers.exceptions import ImportFileError
from customers.models import PurchaseImport
from customers.services.purchase_importing import (
    CATEGORY_SEPARATOR,
    COLUMNS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    purchase_import_apply,
    purchase_import_create,
    purchase_import_size_check,
)


class PurchaseImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with a header line.")


@admin.register(PurchaseImport)
class PurchaseImportAdmin(admin.ModelAdmin):
    list_display = (
        "file_name",
        "status",
        "total_rows",
        "created_count",
        "skipped_count",
        "refused_count",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("created_by",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        urls = [
            path(
                "<int:import_id>/apply/",
                self.admin_site.admin_view(self.apply_view),
                name="customers_purchaseimport_apply",
            ),
        ]
        return urls + super().get_urls()

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PurchaseImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                purchase_import_size_check(upload.size)
                purchase_import = purchase_import_create(file_name=upload.name, data=upload.read(), user=request.user)
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                return HttpResponseRedirect(reverse("admin:customers_purchaseimport_change", args=[purchase_import.pk]))
        context = self._context(
            request,
            title="Import orders from CSV",
            form=form,
            columns=COLUMNS,
            separator=CATEGORY_SEPARATOR,
            max_kilobytes=MAX_FILE_BYTES // 1024,
            max_rows=MAX_ROWS,
        )
        return TemplateResponse(request, "admin/customers/purchaseimport/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        purchase_import = get_object_or_404(PurchaseImport.objects.select_related("created_by"), pk=object_id)
        if not self.has_view_permission(request, purchase_import):
            raise PermissionDenied
        context = self._context(
            request,
            title=str(purchase_import),
            original=purchase_import,
            purchase_import=purchase_import,
            can_apply=(
                purchase_import.status == PurchaseImport.Status.CHECKED
                and purchase_import.created_count
                and self.has_add_permission(request)
            ),
        )
        return TemplateResponse(request, "admin/customers/purchaseimport/report.html", context)

    def apply_view(self, request, import_id):
        back = HttpResponseRedirect(reverse("admin:customers_purchaseimport_change", args=[import_id]))
        if request.method != "POST":
            return back
        if not self.has_add_permission(request):
            raise PermissionDenied
        purchase_import = get_object_or_404(PurchaseImport, pk=import_id)
        if purchase_import_apply(purchase_import=purchase_import):
            self.message_user(
                request,
                f"{purchase_import.created_count} order(s) recorded, {purchase_import.skipped_count} skipped, "
                f"{purchase_import.refused_count} refused.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "This import was already applied.", messages.WARNING)
        return back
