"""The "Enrol in <programme>" box on the clerk capture page (customers.capture_hooks protocol)."""

from __future__ import annotations

from django import forms

from loyalty.exceptions import LoyaltyError
from loyalty.selectors import programme_current

FIELD = "loyalty_enrol"


class LoyaltyEnrolExtension:
    template_name = "loyalty/capture_enrol.html"

    def form_fields(self, *, store) -> dict[str, forms.Field]:
        programme = programme_current()
        if programme is None:
            return {}
        # Not pre-ticked: joining is the customer's choice, like consent.
        return {
            FIELD: forms.BooleanField(
                required=False, initial=False, label=f"Enrol in {programme.name}", help_text=programme.benefit_line
            )
        }

    def after_capture(self, *, result, cleaned_data: dict, store, clerk) -> list[str]:
        from loyalty.services import account_enrol

        if not cleaned_data.get(FIELD):
            return []
        programme = programme_current()
        if programme is None:
            return []
        try:
            account, created = account_enrol(customer=result.customer, programme=programme, store=store, clerk=clerk)
        except LoyaltyError as exc:
            return [str(exc)]
        if created:
            return [f"Enrolled in {programme.name}: card {account.card_number}."]
        return [f"Already a {programme.name} member: card {account.card_number}."]


capture_extension = LoyaltyEnrolExtension()
