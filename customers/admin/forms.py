"""Forms of the customers admin; they collect input, services decide."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxLengthValidator

from customers.exceptions import CustomerError, InvalidContact
from customers.models import Channel, Customer, Suppression
from customers.normalization import normalize_email, normalize_phone
from customers.services.editing import EDITABLE_FIELDS, ProfileFieldError, profile_changes_clean

CONSENT_CHANNELS = [(Channel.EMAIL.value, "Email"), (Channel.SMS.value, "SMS"), (Channel.PUSH.value, "Push")]


class CustomerChangeForm(forms.ModelForm):
    """Profile fields only; values are checked by the editing service's rules, saved by the service."""

    class Meta:
        model = Customer
        fields = list(EDITABLE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Typed input may be longer than the stored form ("+1 (415) 555-2671" is 17 characters for a
        # 12-character E.164); up to these lengths the normaliser decides, with its clearer message.
        for name, length in (("email", 400), ("phone", 40)):
            field = self.fields[name]
            field.max_length = length
            field.validators = [v for v in field.validators if not isinstance(v, MaxLengthValidator)]
            field.validators.append(MaxLengthValidator(length))
            field.widget.attrs["maxlength"] = str(length)
        self.fields["phone"].help_text = (
            "Any common spelling; stored as E.164, e.g. +14155552671. "
            "Changing it withdraws the SMS consent given for the previous number."
        )
        self.fields["email"].help_text = "Changing it withdraws the email consent given for the previous address."
        self.fields["time_zone"].help_text = "Blank: the home store's, else the phone's country's."

    def clean(self):
        cleaned = super().clean()
        changes = {name: cleaned.get(name) for name in self.changed_data if name in EDITABLE_FIELDS}
        if any(name in self.errors for name in changes):
            return cleaned
        try:
            cleaned.update(profile_changes_clean(customer=self.instance, changes=changes))
        except ProfileFieldError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        except CustomerError as exc:
            self.add_error(None, str(exc))
        return cleaned


class GrantConsentForm(forms.Form):
    channel = forms.ChoiceField(choices=CONSENT_CHANNELS)
    basis = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="How and when the customer agreed, e.g. 'Signed paper form at the Fifth Avenue store, 3 May'.",
    )
    note = forms.CharField(max_length=500, required=False)


class WithdrawConsentForm(forms.Form):
    channel = forms.ChoiceField(choices=CONSENT_CHANNELS)
    note = forms.CharField(
        max_length=500, help_text="How the customer withdrew, e.g. 'Phone call to customer service, 3 May'."
    )


class EraseForm(forms.Form):
    confirm = forms.BooleanField(
        label="I understand that erasure cannot be undone",
        help_text="Names, contact details and web evidence are removed; addresses stay suppressed.",
    )


class MergeForm(forms.Form):
    survivor = forms.ChoiceField(widget=forms.RadioSelect, label="Keep this profile")

    def __init__(self, *args, customers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survivor"].choices = [
            (str(c.pk), f"{c} — {c.email or 'no email'}, {c.phone or 'no phone'}, since {c.created_at:%Y-%m-%d}")
            for c in customers
        ]


class SuppressionAddForm(forms.ModelForm):
    """Channel and address; only the keyed hash of the normalised address is stored."""

    address = forms.CharField(max_length=400, help_text="An email address or phone number; it is not stored.")

    class Meta:
        model = Suppression
        fields = ["channel", "address", "reason", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [(Channel.EMAIL.value, "Email"), (Channel.SMS.value, "SMS")]
        self.fields["reason"].choices = [
            choice for choice in Suppression.Reason.choices if choice[0] != Suppression.Reason.ERASURE
        ]

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), cleaned.get("address")
        if channel and address:
            try:
                cleaned["address"] = normalize_email(address) if channel == Channel.EMAIL else normalize_phone(address)
            except InvalidContact as exc:
                self.add_error("address", str(exc))
        return cleaned

    def _post_clean(self):
        # The model row is made by the service from the hash; skip model validation of a half row.
        pass


class SuppressionRemoveForm(forms.Form):
    note = forms.CharField(max_length=500, label="Why is it lifted?")


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with a header line.")
    consent_basis = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when the file grants consent: how and when these people agreed.",
    )
    phone_region = forms.CharField(
        max_length=2,
        required=False,
        label="Phone country",
        help_text="Country code in which numbers without +country code are read, e.g. GB. "
        "Blank: each row's home store's country, else the default.",
    )
