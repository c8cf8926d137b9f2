from __future__ import annotations

from django import forms
from django.db import models

from customers.capture_hooks import capture_extensions
from customers.exceptions import InvalidContact, InvalidNumber, InvalidText
from customers.normalization import (
    normalize_email,
    normalize_name,
    normalize_phone,
    parse_amount,
    phone_sms_refusal,
    plain_decimal_text,
    suggest_email_correction,
)


class AmountField(forms.CharField):
    """A money amount typed by a person: plain digits and at most two decimals (``parse_amount``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        super().__init__(*args, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        try:
            return parse_amount(value, label=str(self.label or "amount").lower())
        except InvalidNumber as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class PlainDecimalField(forms.DecimalField):
    """A decimal form field that reads plain notation only: ``1e3`` is refused, not read as 1000.

    Django's own field hands the text to ``Decimal()``, which reads exponents; a value typed as
    ``1e1`` would be stored as 10 without anyone having seen a 10. The field's places still apply.
    """

    default_error_messages = {"invalid": "Write a number in plain digits with a dot for decimals, e.g. 1000 or 2.5."}

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not plain_decimal_text(value.strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


#: For ``ModelAdmin.formfield_overrides``: every decimal in an admin form in plain notation.
PLAIN_DECIMAL_OVERRIDES = {models.DecimalField: {"form_class": PlainDecimalField}}


class CaptureForm(forms.Form):
    email = forms.CharField(
        required=False,
        max_length=400,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "inputmode": "email", "autocapitalize": "none"}),
    )
    phone = forms.CharField(
        required=False, max_length=40, widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"})
    )
    first_name = forms.CharField(required=False, max_length=100)
    # Consent boxes are never pre-ticked (compliance.md).
    consent_email = forms.BooleanField(required=False, initial=False)
    consent_sms = forms.BooleanField(required=False, initial=False)
    keep_typed_email = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, store=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.store = store
        self.email_suggestion = None
        self.extensions = capture_extensions()
        for extension in self.extensions:
            self.fields.update(extension.form_fields(store=store))

    def clean_email(self) -> str | None:
        raw = self.cleaned_data.get("email", "")
        if not raw.strip():
            return None
        try:
            email = normalize_email(raw)
        except InvalidContact as exc:
            raise forms.ValidationError(str(exc)) from exc
        return email

    def clean_phone(self) -> str | None:
        raw = self.cleaned_data.get("phone", "")
        if not raw.strip():
            return None
        try:
            # A local number is read in the country of the store where it is typed.
            return normalize_phone(raw, region=self.store.country if self.store is not None else None)
        except InvalidContact as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_first_name(self) -> str:
        try:
            return normalize_name(self.cleaned_data.get("first_name", ""), label="first name")
        except InvalidText as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        data = super().clean()
        email, phone = data.get("email"), data.get("phone")
        if "email" in self.errors or "phone" in self.errors:
            return data
        if not email and not phone:
            raise forms.ValidationError("Enter an email address or a phone number.")
        if data.get("consent_email") and not email:
            self.add_error("consent_email", "Email consent needs an email address.")
        if data.get("consent_sms") and not phone:
            self.add_error("consent_sms", "SMS consent needs a phone number.")
        elif data.get("consent_sms") and (refusal := phone_sms_refusal(phone)):
            self.add_error("consent_sms", refusal)
        if email and not data.get("keep_typed_email"):
            suggestion = suggest_email_correction(email)
            if suggestion:
                self.email_suggestion = suggestion
                self.add_error("email", f"Did you mean {suggestion}?")
        return data
