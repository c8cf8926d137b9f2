"""The campaign admin's operating panel: live progress, pause/resume/cancel at hand, and "why not sent"."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from campaigns.delivery.progress import campaign_progress, campaign_why, campaigns_progress, customers_matching
from campaigns.feedback.selectors import campaign_pause_reason, campaign_sender_health, sender_health_limits
from campaigns.models import Campaign

# Statuses in which deliveries exist and the panel is worth showing.
RUNNING = (Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT, Campaign.Status.CANCELLED)
# Only these keep changing, so only they poll.
LIVE = (Campaign.Status.SENDING, Campaign.Status.PAUSED)


class CampaignOperateAdminMixin:
    """Mixed into ``CampaignAdmin``: progress JSON, the why page, the list column, the change page panel."""

    def get_urls(self):
        return [
            path(
                "<int:campaign_id>/progress.json",
                self.admin_site.admin_view(self.progress_view),
                name="campaigns_campaign_progress",
            ),
            path("<int:campaign_id>/why/", self.admin_site.admin_view(self.why_view), name="campaigns_campaign_why"),
            path(
                "<int:campaign_id>/results.csv",
                self.admin_site.admin_view(self.results_csv_view),
                name="campaigns_campaign_results_csv",
            ),
            *super().get_urls(),
        ]

    def _campaign_for_view(self, request, campaign_id: int) -> Campaign:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def progress_view(self, request, campaign_id: int):
        """What the change page polls every few seconds; one aggregate query besides the campaign."""
        campaign = self._campaign_for_view(request, campaign_id)
        data = campaign_progress(campaign=campaign).as_dict()
        data.update(status=campaign.status, status_label=campaign.get_status_display(), live=campaign.status in LIVE)
        return JsonResponse(data)

    def results_csv_view(self, request, campaign_id: int):
        """One table of the Results panel (funnel, skipped, KPI, lift) as formula-safe CSV."""
        from campaigns.results.admin import campaign_results_csv

        return campaign_results_csv(self._campaign_for_view(request, campaign_id), request)

    def why_view(self, request, campaign_id: int):
        """Search by email, phone or name; answer with each match's deliveries or why they had none."""
        campaign = self._campaign_for_view(request, campaign_id)
        query = request.GET.get("q", "").strip()[:200]
        matches = customers_matching(query=query) if query else []
        context = {
            **self.admin_site.each_context(request),
            "title": f"Why was this person not sent “{campaign.name}”?",
            "opts": Campaign._meta,
            "original": campaign,
            "query": query,
            "answers": [campaign_why(campaign=campaign, customer=customer) for customer in matches],
        }
        return TemplateResponse(request, "admin/campaigns/campaign/why.html", context)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One aggregate query for the whole page; the column reads what it left on each row.
        rows = list(changelist.result_list)
        started = [row.pk for row in rows if row.status in RUNNING]
        counts = campaigns_progress(campaign_ids=started) if started else {}
        for row in rows:
            row.delivery_progress = counts.get(row.pk)
        return changelist

    @admin.display(description="Deliveries")
    def delivery_progress_column(self, obj) -> str:
        progress = getattr(obj, "delivery_progress", None)
        if progress is None or not progress.total:
            return "-"
        statuses = progress.statuses
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress> {} sent · {} queued · {} not sent',
            progress.percent,
            progress.percent,
            statuses["sent"],
            statuses["queued"] + statuses["sending"] + statuses["deferred"],
            statuses["skipped"] + statuses["failed"] + statuses["unknown"] + statuses["cancelled"],
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk and obj.status in RUNNING:
            progress = campaign_progress(campaign=obj)
            order = ("queued", "sending", "sent", "deferred", "skipped", "failed", "unknown", "cancelled")
            context.update(
                progress=progress,
                progress_statuses=[(status, progress.statuses.get(status, 0)) for status in order],
                progress_live=obj.status in LIVE,
                progress_url=reverse("admin:campaigns_campaign_progress", args=[obj.pk]),
                sender_health=campaign_sender_health(campaign=obj, sent=progress.sent_by_channel),
                pause_reason=campaign_pause_reason(campaign=obj),
                health_limits=sender_health_limits(),
            )
            if obj.status in (Campaign.Status.SENT, Campaign.Status.CANCELLED):
                # Results once sending is over; the sending page stays one delivery query for its polling.
                from campaigns.results.admin import campaign_results_context

                context.update(campaign_results_context(obj, request))
            context["results_csv_base"] = reverse("admin:campaigns_campaign_results_csv", args=[obj.pk]) + "?table="
        return super().render_change_form(request, context, add, change, form_url, obj)
