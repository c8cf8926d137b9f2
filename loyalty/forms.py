from __future__ import annotations

import uuid

from django import forms

from customers.forms import AmountField
from customers.models import ProductCategory


def _nonce() -> str:
    return uuid.uuid4().hex


class LookupForm(forms.Form):
    query = forms.CharField(max_length=320, label="Card number, phone or email")


class PurchaseForm(forms.Form):
    receipt = forms.CharField(max_length=80, label="Receipt number")
    amount = AmountField(label="Amount before discounts")
    discount = AmountField(required=False, label="Discounts and rewards")
    categories = forms.ModelMultipleChoiceField(
        ProductCategory.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="What they bought",
        error_messages={"invalid_choice": "That product category is no longer offered; tick another."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["categories"].queryset = ProductCategory.objects.filter(is_active=True).order_by("name")


class CouponForm(forms.Form):
    code = forms.CharField(max_length=64, label="Coupon code")
    order_reference = forms.CharField(max_length=100, label="Receipt number")
    order_amount = AmountField(required=False, label="Order amount")


class CouponConfirmForm(CouponForm):
    nonce = forms.CharField(max_length=64, widget=forms.HiddenInput, initial=_nonce)


class PointsForm(forms.Form):
    points = forms.CharField(max_length=20, required=False, label="Points to spend")
    reward = forms.IntegerField(required=False, widget=forms.HiddenInput)
    order_reference = forms.CharField(max_length=100, label="Receipt number")
    nonce = forms.CharField(max_length=64, widget=forms.HiddenInput, initial=_nonce)


class RefundForm(forms.Form):
    receipt = forms.CharField(max_length=80, label="Receipt number")
