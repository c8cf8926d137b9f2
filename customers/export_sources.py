"""Sections of the subject-access export (JSON) from apps above customers (loyalty, campaigns).

An app calls ``export_source_register("loyalty", fn, models={"loyalty.LoyaltyAccount": "loyalty_accounts"})``
from its ``AppConfig.ready``; ``fn`` takes the list of profile ids (the customer and every profile
merged into it) and returns a dict of top-level sections merged into the export. ``models`` names
every model holding the person's data that the sections cover, and the section that holds it: a
test walks the app registry for foreign keys to ``Customer`` and fails for a model nobody covers,
so a new model holding personal data cannot be left out of the export by accident.
customers never imports those apps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

ExportSource = Callable[[list[int]], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class _Registered:
    source: ExportSource
    models: Mapping[str, str]


_sources: dict[str, _Registered] = {}

# customers' own models and the section of ``customers.selectors.customer_export_data`` holding them.
CUSTOMERS_MODELS = {
    "customers.Customer": "merge_history",  # merged_into: the profiles merged into this one
    "customers.ConsentState": "consent_states",
    "customers.ConsentEvidence": "consent_evidence",
    "customers.ConsentConfirmation": "consent_confirmations",
    "customers.PreferenceEvidence": "preference_evidence",
    "customers.CategoryOptOut": "category_opt_outs",
    "customers.SurveyResponse": "survey_responses",
    "customers.Purchase": "purchases",
    "customers.MergeProposal": "merge_history",
}


def export_source_register(name: str, source: ExportSource, *, models: Mapping[str, str]) -> None:
    """Register (or replace, by name) an export section source and the models (label → section) it covers."""
    _sources[name] = _Registered(source=source, models=dict(models))


def export_source_unregister(name: str) -> None:
    _sources.pop(name, None)


def export_sources() -> list[ExportSource]:
    return [registered.source for registered in _sources.values()]


def export_covered_models() -> dict[str, str]:
    """Model label (``app_label.ModelName``) → the export section holding its rows, over every source."""
    covered = dict(CUSTOMERS_MODELS)
    for registered in _sources.values():
        covered.update(registered.models)
    return covered
