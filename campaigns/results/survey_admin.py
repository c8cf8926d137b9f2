"""Survey answers for marketers: a read-only list to filter, search and export (CSV, formula-safe)."""

from __future__ import annotations

import re

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, Value
from django.db.models.functions import Concat, StrIndex, Substr
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from campaigns.delivery.admin import _ReadOnly
from campaigns.models import Campaign
from campaigns.results.selectors import DETRACTOR_HIGHEST, PROMOTER_LOWEST
from campaigns.results.tables import Table, table_csv
from customers.models import SurveyResponse

_CAMPAIGN = re.compile(r"^campaign:(\d+)$")
JOURNEYS = "journeys"
OTHER = "other"


def _campaign_q(campaign_id: int) -> Q:
    return Q(source=f"campaign:{campaign_id}") | Q(source__startswith=f"campaign:{campaign_id} ")


def score_group(score: int) -> str:
    if score >= PROMOTER_LOWEST:
        return "Promoter"
    return "Detractor" if score <= DETRACTOR_HIGHEST else "Passive"


def survey_names(sources: list[str]) -> dict[str, str]:
    """What carried each answer's link, in words: ``campaign:4 delivery:9`` → ``Campaign “Spring”``; one query."""
    ids = {int(match.group(1)) for source in sources if (match := _CAMPAIGN.match(source.split(" ")[0]))}
    names = dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    labels = {}
    for source in sources:
        cause = source.split(" ")[0]
        match = _CAMPAIGN.match(cause)
        if match:
            labels[source] = f"Campaign “{names.get(int(match.group(1)), '#' + match.group(1))}”"
        elif cause.startswith("journey_step:"):
            labels[source] = "Journey message"
        else:
            labels[source] = cause or "No source"
    return labels


class SurveyFilter(admin.SimpleListFilter):
    """The campaign whose message carried the survey link, or any journey's; two queries."""

    title = "survey"
    parameter_name = "survey"

    def lookups(self, request, model_admin):
        first_word = Substr("source", 1, StrIndex(Concat("source", Value(" ")), Value(" ")) - 1)
        causes = SurveyResponse.objects.order_by().annotate(cause=first_word).values_list("cause", flat=True).distinct()
        ids, journeys, other = set(), False, False
        for cause in causes:
            match = _CAMPAIGN.match(cause or "")
            if match:
                ids.add(int(match.group(1)))
            elif (cause or "").startswith("journey_step:"):
                journeys = True
            else:
                other = True
        choices = [
            (str(pk), f"Campaign “{name}”")
            for pk, name in Campaign.objects.filter(pk__in=ids).order_by("name").values_list("pk", "name")
        ]
        if journeys:
            choices.append((JOURNEYS, "Journey messages"))
        if other:
            choices.append((OTHER, "Other links"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == JOURNEYS:
            return queryset.filter(source__startswith="journey_step:")
        if value == OTHER:
            return queryset.exclude(source__startswith="campaign:").exclude(source__startswith="journey_step:")
        if value.isdigit():
            return queryset.filter(_campaign_q(int(value)))
        return queryset.none()


class ScoreFilter(admin.SimpleListFilter):
    title = "answer"
    parameter_name = "answer"

    def lookups(self, request, model_admin):
        return [("promoter", "Promoters (9-10)"), ("passive", "Passives (7-8)"), ("detractor", "Detractors (0-6)")]

    def queryset(self, request, queryset):
        return {
            "promoter": queryset.filter(score__gte=PROMOTER_LOWEST),
            "passive": queryset.filter(score__gt=DETRACTOR_HIGHEST, score__lt=PROMOTER_LOWEST),
            "detractor": queryset.filter(score__lte=DETRACTOR_HIGHEST),
        }.get(self.value(), queryset)


def survey_responses_table(queryset) -> Table:
    """The answers as a table (for CSV): one query for the answers, one for the campaigns' names."""
    answers = list(queryset.select_related("customer", "customer__home_store").order_by("-answered_at", "-pk"))
    labels = survey_names([answer.source for answer in answers])
    return Table(
        "survey_responses",
        "Survey answers",
        ["answered at", "score", "group", "survey", "comment", "customer id", "customer email", "home store"],
        [
            [
                answer.answered_at.isoformat(),
                answer.score,
                score_group(answer.score),
                labels[answer.source],
                answer.comment,
                str(answer.customer.public_id),
                answer.customer.email,
                answer.customer.home_store.name if answer.customer.home_store else "",
            ]
            for answer in answers
        ],
    )


class SurveyChangeList(ChangeList):
    def get_results(self, request):
        """Name the page's surveys in one query, not one per row."""
        super().get_results(request)
        answers = list(self.result_list)  # evaluated once; the page renders these same objects
        labels = survey_names([answer.source for answer in answers])
        for answer in answers:
            answer.survey_label = labels[answer.source]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(_ReadOnly):
    list_display = ("answered_at", "score", "group", "survey", "customer_link", "home_store", "short_comment")
    list_filter = (SurveyFilter, ScoreFilter, ("customer__home_store", admin.RelatedOnlyFieldListFilter), "answered_at")
    date_hierarchy = "answered_at"
    search_fields = ("customer__email", "customer__first_name", "customer__last_name", "=customer__phone")
    list_select_related = ("customer", "customer__home_store")
    readonly_fields = ("customer", "source", "score", "comment", "answered_at", "first_answered_at")
    actions = ("export_csv",)
    ordering = ("-answered_at", "-pk")

    def get_changelist(self, request, **kwargs):
        return SurveyChangeList

    @admin.display(description="Group")
    def group(self, obj: SurveyResponse) -> str:
        return score_group(obj.score)

    @admin.display(description="Survey")
    def survey(self, obj: SurveyResponse) -> str:
        label = getattr(obj, "survey_label", None)
        return label if label is not None else survey_names([obj.source])[obj.source]

    @admin.display(description="Customer")
    def customer_link(self, obj: SurveyResponse) -> str:
        url = reverse("admin:customers_customer_change", args=[obj.customer_id])
        return format_html('<a href="{}">{}</a>', url, obj.customer)

    @admin.display(description="Home store", ordering="customer__home_store__name")
    def home_store(self, obj: SurveyResponse) -> str:
        return obj.customer.home_store.name if obj.customer.home_store else "-"

    @admin.display(description="Comment")
    def short_comment(self, obj: SurveyResponse) -> str:
        return obj.comment if len(obj.comment) <= 80 else obj.comment[:79] + "…"

    @admin.action(description="Export selected answers (CSV)", permissions=["view"])
    def export_csv(self, request, queryset):
        response = HttpResponse(table_csv(survey_responses_table(queryset)), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="survey-answers.csv"'
        return response
