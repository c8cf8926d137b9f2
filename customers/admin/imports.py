"""CSV imports: upload → dry-run report → confirm → progress, all through the importing service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from customers.admin.forms import ImportUploadForm
from customers.exceptions import ImportFileError
from customers.models import CustomerImport
from customers.services.importing import COLUMNS, MAX_FILE_BYTES, customer_import_create, customer_import_queue


@admin.register(CustomerImport)
class CustomerImportAdmin(admin.ModelAdmin):
    list_display = (
        "file_name",
        "status",
        "progress",
        "created_count",
        "updated_count",
        "error_count",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("created_by",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Progress")
    def progress(self, obj):
        return f"{obj.processed_rows}/{obj.total_rows}"

    def get_urls(self):
        urls = [
            path(
                "<int:import_id>/confirm/",
                self.admin_site.admin_view(self.confirm_view),
                name="customers_customerimport_confirm",
            ),
        ]
        return urls + super().get_urls()

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_FILE_BYTES:
                form.add_error("file", f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it.")
            else:
                try:
                    customer_import = customer_import_create(
                        file_name=upload.name,
                        data=upload.read(),
                        consent_basis=form.cleaned_data["consent_basis"],
                        phone_region=form.cleaned_data["phone_region"],
                        user=request.user,
                    )
                except ImportFileError as exc:
                    form.add_error(None, str(exc))
                else:
                    return HttpResponseRedirect(
                        reverse("admin:customers_customerimport_change", args=[customer_import.pk])
                    )
        context = self._context(
            request,
            title="Import customers from CSV",
            form=form,
            columns=COLUMNS,
            max_megabytes=MAX_FILE_BYTES // (1024 * 1024),
        )
        return TemplateResponse(request, "admin/customers/customerimport/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer_import = get_object_or_404(CustomerImport.objects.select_related("created_by"), pk=object_id)
        if not self.has_view_permission(request, customer_import):
            raise PermissionDenied
        running = customer_import.status in (CustomerImport.Status.QUEUED, CustomerImport.Status.RUNNING)
        percent = (
            int(100 * customer_import.processed_rows / customer_import.total_rows) if customer_import.total_rows else 0
        )
        context = self._context(
            request,
            title=str(customer_import),
            original=customer_import,
            customer_import=customer_import,
            running=running,
            percent=percent,
            can_confirm=(
                customer_import.status == CustomerImport.Status.VALIDATED and self.has_add_permission(request)
            ),
            good_rows=customer_import.created_count + customer_import.updated_count,
            more_errors=max(customer_import.error_count - len(customer_import.errors), 0),
            more_changes=max(
                customer_import.created_count + customer_import.updated_count - len(customer_import.changes or []), 0
            ),
        )
        return TemplateResponse(request, "admin/customers/customerimport/report.html", context)

    def confirm_view(self, request, import_id):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:customers_customerimport_change", args=[import_id]))
        if not self.has_add_permission(request):
            raise PermissionDenied
        customer_import = get_object_or_404(CustomerImport, pk=import_id)
        with transaction.atomic():
            queued = customer_import_queue(customer_import=customer_import)
        if queued:
            self.message_user(request, "The import is queued; this page shows its progress.", messages.SUCCESS)
        else:
            self.message_user(request, "This import was already started.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:customers_customerimport_change", args=[import_id]))
