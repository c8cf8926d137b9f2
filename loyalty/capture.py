"""The "Enrol in <programme>" box on the clerk capture page (customers.capture_hooks protocol)."""

from __future__ import annotations

from django import forms
from django.core import signing
from django.urls import reverse

from loyalty.exceptions import LoyaltyError
from loyalty.selectors import account_for_profile, programme_current

FIELD = "loyalty_enrol"
#: The "Saved" page offers enrolment to the customer just captured; the offer names them by a signed
#: id, so a clerk can enrol only someone they have just served, and only for a while.
ENROL_OFFER_SALT = "loyalty.till-enrol-offer"
ENROL_OFFER_MAX_AGE = 30 * 60


def enrol_offer_token(customer_id: int) -> str:
    return signing.dumps({"customer": customer_id}, salt=ENROL_OFFER_SALT, compress=True)


def enrol_offer_customer_id(token: str) -> int | None:
    try:
        payload = signing.loads(token, salt=ENROL_OFFER_SALT, max_age=ENROL_OFFER_MAX_AGE)
    except signing.BadSignature:
        return None
    customer_id = payload.get("customer") if isinstance(payload, dict) else None
    return customer_id if isinstance(customer_id, int) else None


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

    def after_capture(self, *, result, cleaned_data: dict, store, clerk) -> list:
        from loyalty.services import account_enrol

        programme = programme_current()
        if programme is None:
            return []
        if not cleaned_data.get(FIELD):
            account = account_for_profile(customer=result.customer, programme=programme)
            if account is not None:
                return [_card_note(f"Already a {programme.name} member.", account.card_number, new=False)]
            return [
                {
                    "text": f"Not a {programme.name} member.",
                    "template": "loyalty/capture_enrol_offer.html",
                    "data": {"programme": programme.name, "token": enrol_offer_token(result.customer.pk)},
                }
            ]
        try:
            account, created = account_enrol(customer=result.customer, programme=programme, store=store, clerk=clerk)
        except LoyaltyError as exc:
            return [{"text": str(exc), "template": "loyalty/capture_enrol_refused.html"}]
        if created:
            return [_card_note(f"Enrolled in {programme.name}.", account.card_number, new=True)]
        return [_card_note(f"Already a {programme.name} member.", account.card_number, new=False)]

    def till_links(self) -> list[tuple[str, str]]:
        return [("Loyalty", reverse("loyalty:lookup")), ("Refund", reverse("loyalty:refund"))]


def _card_note(headline: str, card_number: str, *, new: bool) -> dict:
    return {
        "text": f"{headline} Card {card_number}.",
        "template": "loyalty/capture_card.html",
        "data": {"headline": headline, "card_number": card_number, "new": new},
    }


capture_extension = LoyaltyEnrolExtension()
