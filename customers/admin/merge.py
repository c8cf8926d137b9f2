"""Merge proposals: the two profiles side by side, merged or dismissed through services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from customers.admin.base import report_errors
from customers.exceptions import CustomerError
from customers.models import Customer, MergeProposal
from customers.services.profiles import customer_merge, merge_proposal_dismiss


def _profile_card(customer: Customer) -> str:
    return format_html(
        "<strong>{}</strong><br>{}<br>{}<br><small>{} since {}</small>",
        str(customer),
        customer.email or "no email",
        customer.phone or "no phone",
        customer.get_source_display(),
        f"{customer.created_at:%Y-%m-%d}",
    )


class OpenFirstFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("all", "All"), *MergeProposal.Status.choices]

    def choices(self, changelist):
        # "Open" is the default view, so the "All" entry is an explicit value here.
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or MergeProposal.Status.OPEN) == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or MergeProposal.Status.OPEN
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(MergeProposal)
class MergeProposalAdmin(admin.ModelAdmin):
    list_display = ("left_profile", "right_profile", "reason", "store", "status", "created_at")
    list_filter = (OpenFirstFilter,)
    list_select_related = ("customer", "other", "store")
    fields = ("left_profile", "right_profile", "reason", "status", "store", "proposed_by", "created_at", "resolved_at")
    readonly_fields = fields
    actions = ["merge_keep_left", "merge_keep_right", "dismiss"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_merge_permission(self, request) -> bool:
        # Merging or dismissing changes profiles, so it takes the right to change customers.
        return request.user.has_perm("customers.change_customer")

    @admin.display(description="Left profile")
    def left_profile(self, obj):
        return _profile_card(obj.customer)

    @admin.display(description="Right profile")
    def right_profile(self, obj):
        return _profile_card(obj.other)

    def _merge(self, request, queryset, *, keep_left: bool):
        done, errors = 0, []
        for proposal in queryset.select_related("customer", "other"):
            if proposal.status != MergeProposal.Status.OPEN:
                errors.append(f"Proposal {proposal.pk} is already {proposal.get_status_display().lower()}.")
                continue
            survivor, other = (proposal.customer, proposal.other) if keep_left else (proposal.other, proposal.customer)
            try:
                customer_merge(survivor=survivor, other=other, user=request.user)
                done += 1
            except CustomerError as exc:
                errors.append(f"Proposal {proposal.pk}: {exc}")
        report_errors(self, request, errors, f"Merged {done} pair(s)." if done else "")

    @admin.action(description="Merge, keeping the left profile", permissions=["merge"])
    def merge_keep_left(self, request, queryset):
        self._merge(request, queryset, keep_left=True)

    @admin.action(description="Merge, keeping the right profile", permissions=["merge"])
    def merge_keep_right(self, request, queryset):
        self._merge(request, queryset, keep_left=False)

    @admin.action(description="Dismiss (not the same person)", permissions=["merge"])
    def dismiss(self, request, queryset):
        done, errors = 0, []
        for proposal in queryset:
            try:
                merge_proposal_dismiss(proposal=proposal, user=request.user)
                done += 1
            except CustomerError as exc:
                errors.append(f"Proposal {proposal.pk}: {exc}")
        report_errors(self, request, errors, f"Dismissed {done} proposal(s)." if done else "")
        if not done and not errors:
            self.message_user(request, "Nothing selected.", messages.ERROR)
