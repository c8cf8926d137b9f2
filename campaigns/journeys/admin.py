"""The journey in the admin, without JSON: its fields and its steps as forms in plain words, a diagram
with live counts, a dry run, publishing (asking where people on removed steps go), and templates.

The editor is one plain form. "Add step after" and "Remove" are submit buttons that re-render the page
from what was posted, saving nothing; Save validates everything and stores the steps as the journey's
draft; Publish hands the draft to the engine. The page works without JavaScript.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from campaigns.exceptions import CampaignError
from campaigns.journeys.diagram import journey_diagram_svg
from campaigns.journeys.drafts import journey_draft_publish, journey_draft_save, journey_save
from campaigns.journeys.dry_run import journey_dry_run
from campaigns.journeys.journey_form import JourneyForm
from campaigns.journeys.selectors_admin import (
    journey_audit,
    journey_draft,
    journey_removed_steps_with_people,
    journey_step_counts,
    journey_steps_for_editing,
)
from campaigns.journeys.services import (
    JourneyStateError,
    journey_archive,
    journey_drain,
    journey_pause,
    journey_resume,
)
from campaigns.journeys.steps_form import (
    KIND_LABELS,
    names_load,
    raw_from_step,
    raws_add_after,
    raws_from_post,
    raws_remove,
    step_forms_bound,
    step_forms_unbound,
    step_labels,
    steps_clean,
)
from campaigns.journeys.templates_library import TEMPLATES, journey_from_template
from campaigns.models import Journey

#: what each button on the journey page does, and how the confirmation says it
JOURNEY_STATUS_ACTIONS = {
    "pause": (journey_pause, "is paused: nobody moves and nobody enters until you resume it"),
    "resume": (journey_resume, "is live again: due steps run at the next minute"),
    "drain": (journey_drain, "takes no new entries: people inside finish their steps"),
    "archive": (journey_archive, "is archived: everyone still inside has left it"),
}

EXIT = "exit"


class MovesForm(forms.Form):
    """Where people waiting on each step the new version removes go: a step of the new version, or out."""

    def __init__(
        self, *args, removed: list[tuple[str, int]], labels: dict[str, str], old_labels: dict[str, str], **kwargs
    ):
        super().__init__(*args, **kwargs)
        choices = [*labels.items(), (EXIT, "Leave the journey")]
        for key, waiting in removed:
            self.fields[f"move-{key}"] = forms.ChoiceField(
                choices=choices,
                label=f"{old_labels.get(key, key)} — {waiting} waiting there go to",
                initial=EXIT,
            )

    def moves(self) -> dict[str, str]:
        return {name.removeprefix("move-"): value for name, value in self.cleaned_data.items()}


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    list_display = ("name", "trigger", "status", "live_version_number", "updated_at")
    list_filter = ("status", "trigger")
    search_fields = ("name",)
    change_list_template = "admin/campaigns/journey/change_list.html"

    @admin.display(description="Live version")
    def live_version_number(self, obj: Journey):
        return f"v{obj.live_version.number}" if obj.live_version_id else "not published"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("live_version")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("templates/", view(self.templates_view), name="campaigns_journey_templates"),
            path("<int:object_id>/diagram.svg", view(self.diagram_view), name="campaigns_journey_diagram"),
            path("<int:object_id>/dry-run/", view(self.dry_run_view), name="campaigns_journey_dry_run"),
            path("<int:object_id>/publish/", view(self.publish_view), name="campaigns_journey_publish"),
            path("<int:object_id>/status/", view(self.status_view), name="campaigns_journey_status"),
            *super().get_urls(),
        ]

    # --- the editor ---------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._editor(request, Journey(), can_change=True)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        journey = self._journey(request, object_id)
        return self._editor(request, journey, can_change=self.has_change_permission(request, journey))

    def _journey(self, request, object_id) -> Journey:
        journey = get_object_or_404(Journey.objects.select_related("live_version"), pk=object_id)
        if not self.has_view_or_change_permission(request, journey):
            raise PermissionDenied
        return journey

    def _editor(self, request, journey: Journey, *, can_change: bool):
        validated = False
        if request.method == "POST" and can_change:
            form = JourneyForm(request.POST, instance=journey)
            raws = raws_from_post(request.POST)
            if "_add_after" in request.POST:
                after = request.POST["_add_after"]
                kind = request.POST.get(f"add_kind-{after or 'start'}", "send")
                raws = raws_add_after(raws, after=after, kind=kind)
                step_forms = step_forms_unbound(raws)
            elif "_remove" in request.POST:
                raws = raws_remove(raws, key=request.POST["_remove"])
                step_forms = step_forms_unbound(raws)
            else:
                step_forms = step_forms_bound(raws)
                steps, problems = steps_clean(step_forms)
                if form.is_valid() and not problems:
                    with transaction.atomic():
                        journey = journey_save(journey=form.save(commit=False), actor=request.user)
                        journey_draft_save(journey=journey, steps=steps, actor=request.user)
                    return self._after_save(request, journey)
                validated = True
                for problem in problems:
                    messages.error(request, problem)
        else:
            form = JourneyForm(instance=journey)
            step_forms = step_forms_unbound([raw_from_step(step) for step in journey_steps_for_editing(journey)])
        return self._render_editor(request, journey, form, step_forms, validated=validated, can_change=can_change)

    def _after_save(self, request, journey: Journey):
        if "_publish" in request.POST:
            return HttpResponseRedirect(reverse("admin:campaigns_journey_publish", args=[journey.pk]))
        if "_dry_run" in request.POST:
            return HttpResponseRedirect(reverse("admin:campaigns_journey_dry_run", args=[journey.pk]))
        messages.success(request, f"“{journey.name}” saved. Its steps are a draft until you publish them.")
        return HttpResponseRedirect(reverse("admin:campaigns_journey_change", args=[journey.pk]))

    def _render_editor(self, request, journey, form, step_forms, *, validated, can_change):
        saved_steps = journey_steps_for_editing(journey) if journey.pk else []
        counts = journey_step_counts(journey) if journey.pk else {}
        context = {
            **self.admin_site.each_context(request),
            "title": journey.name if journey.pk else "Add journey",
            "opts": Journey._meta,
            "original": journey if journey.pk else None,
            "form": form,
            "step_forms": step_forms,
            "kinds": list(KIND_LABELS.items()),
            "validated": validated,
            "can_change": can_change,
            "has_draft": bool(journey.pk and journey_draft(journey)),
            "diagram": journey_diagram_svg(saved_steps, counts, title=journey.name) if journey.pk else "",
            "audit": journey_audit(journey) if journey.pk else [],
        }
        return TemplateResponse(request, "admin/campaigns/journey/change_form.html", context)

    # --- diagram, dry run, publish ------------------------------------------------------------------

    def diagram_view(self, request, object_id: int):
        journey = self._journey(request, object_id)
        steps = journey.live_version.steps if journey.live_version_id else journey_steps_for_editing(journey)
        svg = journey_diagram_svg(steps, journey_step_counts(journey), title=journey.name)
        return HttpResponse(svg, content_type="image/svg+xml")

    def dry_run_view(self, request, object_id: int):
        journey = self._journey(request, object_id)
        steps = journey_steps_for_editing(journey)
        run = journey_dry_run(journey=journey, steps=steps)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dry run of “{journey.name}”",
            "opts": Journey._meta,
            "original": journey,
            "run": run,
            "has_draft": journey_draft(journey) is not None,
        }
        return TemplateResponse(request, "admin/campaigns/journey/dry_run.html", context)

    def publish_view(self, request, object_id: int):
        journey = self._journey(request, object_id)
        if not self.has_change_permission(request, journey):
            raise PermissionDenied
        draft = journey_draft(journey)
        if draft is None:
            messages.info(request, "There are no unpublished changes: save your edits first.")
            return HttpResponseRedirect(reverse("admin:campaigns_journey_change", args=[journey.pk]))
        labels = step_labels(draft.steps, names_load(draft.steps))
        old_steps = journey.live_version.steps if journey.live_version_id else []
        removed = journey_removed_steps_with_people(journey, draft.steps)
        form = MovesForm(
            request.POST or None,
            removed=removed,
            labels=labels,
            old_labels=step_labels(old_steps, names_load(old_steps)),
        )
        if request.method == "POST" and form.is_valid():
            try:
                journey_draft_publish(journey=journey, moves=form.moves(), actor=request.user)
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
            except CampaignError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"“{journey.name}” published.")
                return HttpResponseRedirect(reverse("admin:campaigns_journey_change", args=[journey.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Publish “{journey.name}”",
            "opts": Journey._meta,
            "original": journey,
            "form": form,
            "removed": removed,
            "diagram": journey_diagram_svg(draft.steps, {}, title=journey.name),
        }
        return TemplateResponse(request, "admin/campaigns/journey/publish.html", context)

    # --- pause, resume, drain, archive ---------------------------------------------------------------

    def status_view(self, request, object_id: int):
        """POST only: ``action`` is pause, resume, drain or archive; back to the journey with what happened."""
        journey = self._journey(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request, journey):
            raise PermissionDenied
        action = request.POST.get("action", "")
        move = JOURNEY_STATUS_ACTIONS.get(action)
        if move is None:
            messages.error(request, "Choose pause, resume, drain or archive.")
        else:
            service, done = move
            try:
                service(journey=journey, user=request.user)
            except JourneyStateError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"“{journey.name}” {done}.")
        return HttpResponseRedirect(reverse("admin:campaigns_journey_change", args=[journey.pk]))

    # --- templates ----------------------------------------------------------------------------------

    def templates_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        from loyalty.models import Offer

        offers = list(Offer.objects.filter(is_active=True).order_by("name"))
        if request.method == "POST":
            key = request.POST.get("template", "")
            if key in TEMPLATES:
                offer = next((o for o in offers if str(o.pk) == request.POST.get(f"offer-{key}", "")), None)
                try:
                    journey = journey_from_template(key=key, actor=request.user, offer=offer)
                except (ValidationError, CampaignError) as exc:
                    messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
                else:
                    messages.success(
                        request, f"“{journey.name}” created as a draft with its messages: review it, then publish."
                    )
                    return HttpResponseRedirect(reverse("admin:campaigns_journey_change", args=[journey.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "New journey from a template",
            "opts": Journey._meta,
            "templates": list(TEMPLATES.values()),
            "offers": offers,
        }
        return TemplateResponse(request, "admin/campaigns/journey/templates.html", context)
