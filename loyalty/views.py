"""Clerk pages for loyalty at the till: thin views over loyalty services; the clerk acts for
``request.till_store`` only (set by ``till_login_required``)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from customers.models import Customer
from customers.normalization import mask_email, mask_phone
from customers.ratelimit import rate_limit_hit
from customers.views.till import till_login_required
from loyalty.capture import enrol_offer_customer_id
from loyalty.exceptions import InvalidCardNumber, LoyaltyError
from loyalty.forms import CouponConfirmForm, CouponForm, LookupForm, PointsForm, PurchaseForm, RefundForm
from loyalty.models import LoyaltyAccount
from loyalty.selectors import (
    account_by_card,
    account_find,
    points_expiring_soon,
    programme_current,
    purchase_for_receipt,
    purchase_refund_preview,
    rewards_available,
)
from loyalty.services import (
    account_enrol,
    coupon_preview,
    coupon_redeem,
    points_redeem,
    till_purchase_record,
    till_purchase_refund,
)

LOOKUPS_PER_MINUTE = 60
ANSWER_TITLES = {
    "purchase": "Purchase not recorded:",
    "coupon": "Code not accepted:",
    "points": "Points not spent:",
}


def _base_context(request, **extra) -> dict:
    return {"store": request.till_store, "stores": request.till_stores, **extra}


@till_login_required
@require_http_methods(["GET", "POST"])
def lookup(request):
    programme = programme_current()
    form = LookupForm(request.POST or None)
    status = 200
    if programme is None:
        form.add_error(None, "No loyalty programme is open yet; ask your manager.")
        status = 404
    elif request.method == "POST":
        status = 400
        if rate_limit_hit(scope="loyalty-lookup", key=str(request.user.pk), limit=LOOKUPS_PER_MINUTE):
            form.add_error(None, "Too many look-ups; wait a minute.")
            status = 429
        elif form.is_valid():
            try:
                account = account_find(
                    query=form.cleaned_data["query"], programme=programme, region=request.till_store.country
                )
            except LoyaltyError as exc:
                form.add_error("query", str(exc))
            else:
                if account is not None:
                    return redirect("loyalty:account", card_number=account.card_number)
                form.add_error("query", f"No {programme.name} member found. Enrol them from the capture page.")
                status = 404
    context = _base_context(request, form=form, programme=programme, answer_form=form, answer_title="Not found:")
    return render(request, "loyalty/lookup.html", context, status=status)


def _account_or_404(request, card_number: str) -> LoyaltyAccount | None:
    try:
        return account_by_card(card_number=card_number)
    except InvalidCardNumber:
        return None


def _account_page(request, account: LoyaltyAccount, *, status: int = 200, **forms):
    customer = account.customer
    refused = next((form for form in forms.values() if hasattr(form, "errors") and form.errors), None)
    context = _base_context(
        request,
        answer_form=refused,
        answer_title=ANSWER_TITLES.get(forms.get("active", ""), "Not done:"),
        show_card=request.GET.get("card") == "new",
        account=account,
        customer_name=customer.first_name or "Member",
        email=mask_email(customer.email) if customer.email else "",
        phone=mask_phone(customer.phone) if customer.phone else "",
        expiring=points_expiring_soon(account=account) if account.programme.points_expire_after_days else 0,
        rewards=list(rewards_available(programme=account.programme)),
        purchase_form=forms.get("purchase_form") or PurchaseForm(),
        coupon_form=forms.get("coupon_form") or CouponForm(),
        points_form=forms.get("points_form") or PointsForm(),
        active=forms.get("active", ""),
    )
    return render(request, "loyalty/account.html", context, status=status)


def _not_found(request):
    messages.error(request, "No account has this card number.")
    return redirect("loyalty:lookup")


@till_login_required
def account(request, card_number: str):
    found = _account_or_404(request, card_number)
    if found is None:
        return _not_found(request)
    return _account_page(request, found)


@till_login_required
@require_POST
def enrol(request):
    """Enrol the customer the clerk has just captured (named by the signed offer on the "Saved" page)."""
    programme = programme_current()
    customer_id = enrol_offer_customer_id(request.POST.get("offer", ""))
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    if programme is None or customer is None:
        messages.error(request, "This enrolment offer has expired; capture the customer again and tick Enrol.")
        return redirect("loyalty:lookup")
    try:
        account, created = account_enrol(
            customer=customer, programme=programme, store=request.till_store, clerk=request.user
        )
    except LoyaltyError as exc:
        messages.error(request, str(exc))
        return redirect("loyalty:lookup")
    if created:
        messages.success(request, f"Enrolled in {programme.name}: card {account.card_number}.")
    else:
        messages.info(request, f"Already a {programme.name} member: card {account.card_number}.")
    return redirect(f"{reverse('loyalty:account', args=[account.card_number])}?card=new")


@till_login_required
@require_POST
def purchase(request, card_number: str):
    found = _account_or_404(request, card_number)
    if found is None:
        return _not_found(request)
    form = PurchaseForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            _purchase, result = till_purchase_record(
                account=found,
                store=request.till_store,
                clerk=request.user,
                receipt=data["receipt"],
                amount=data["amount"],
                discount_amount=data["discount"] or "0",
                categories=data["categories"],
            )
        except LoyaltyError as exc:
            form.add_error(None, str(exc))
        else:
            line = f"Receipt {data['receipt']}: {result.total} points earned"
            if result.bonus_points:
                bonuses = ", ".join(f"{name} +{points}" for name, points in result.bonuses)
                line += f" ({result.base_points} + bonus: {bonuses})"
            if not result.created:
                line += " (already recorded)"
            if result.tier_change is not None:
                line += f". Now {result.tier_change.to_tier.name}!"
            messages.success(request, line)
            return redirect("loyalty:account", card_number=found.card_number)
    return _account_page(request, found, status=400, purchase_form=form, active="purchase")


@till_login_required
@require_POST
def coupon_check(request, card_number: str):
    found = _account_or_404(request, card_number)
    if found is None:
        return _not_found(request)
    form = CouponForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            preview = coupon_preview(code=data["code"], customer=found.customer, order_amount=data["order_amount"])
        except LoyaltyError as exc:
            form.add_error("code", str(exc))
        else:
            confirm = CouponConfirmForm(
                initial={
                    "code": preview.code.code,
                    "order_reference": data["order_reference"],
                    "order_amount": data["order_amount"],
                }
            )
            return render(
                request,
                "loyalty/coupon_confirm.html",
                _base_context(request, account=found, preview=preview, form=confirm),
            )
    return _account_page(request, found, status=400, coupon_form=form, active="coupon")


@till_login_required
@require_POST
def coupon_confirm(request, card_number: str):
    found = _account_or_404(request, card_number)
    if found is None:
        return _not_found(request)
    form = CouponConfirmForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            redemption, created = coupon_redeem(
                code=data["code"],
                customer=found.customer,
                channel="store",
                store=request.till_store,
                clerk=request.user,
                order_reference=data["order_reference"],
                order_amount=data["order_amount"],
                idempotency_key=f"till:{request.user.pk}:{data['nonce']}",
            )
        except LoyaltyError as exc:
            form.add_error("code", str(exc))
        else:
            line = f"Code {redemption.coupon_code.code} redeemed: {redemption.description}"
            if redemption.discount_amount:
                line += f" (take {redemption.discount_amount} off receipt {redemption.order_reference})"
            messages.success(request, line + ("" if created else " (already recorded)"))
            return redirect("loyalty:account", card_number=found.card_number)
    return _account_page(request, found, status=400, coupon_form=form, active="coupon")


@till_login_required
@require_POST
def points_spend(request, card_number: str):
    found = _account_or_404(request, card_number)
    if found is None:
        return _not_found(request)
    form = PointsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        reward = None
        if data["reward"]:
            reward = rewards_available(programme=found.programme, now=timezone.now()).filter(pk=data["reward"]).first()
            if reward is None:
                form.add_error(None, "That reward is no longer available.")
        if not form.errors:
            try:
                redemption, created = points_redeem(
                    account=found,
                    points=None if reward else data["points"],
                    reward=reward,
                    channel="store",
                    store=request.till_store,
                    clerk=request.user,
                    order_reference=data["order_reference"],
                    idempotency_key=f"till:{request.user.pk}:{data['nonce']}",
                )
            except LoyaltyError as exc:
                form.add_error(None, str(exc))
            else:
                line = f"{redemption.points} points spent: {redemption.description}"
                messages.success(request, line + ("" if created else " (already recorded)"))
                return redirect("loyalty:account", card_number=found.card_number)
    return _account_page(request, found, status=400, points_form=form, active="points")


@till_login_required
@require_http_methods(["GET", "POST"])
def refund(request):
    """Step one of a refund: find a purchase of this store by receipt number and show what it earned."""
    programme = programme_current()
    form = RefundForm(request.POST or None)
    status = 200
    if programme is None:
        form.add_error(None, "No loyalty programme is open yet; ask your manager.")
        status = 404
    elif request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                found = purchase_for_receipt(store=request.till_store, receipt=form.cleaned_data["receipt"])
            except LoyaltyError as exc:
                form.add_error("receipt", str(exc))
                status = 404
            else:
                preview = purchase_refund_preview(purchase=found, programme=programme)
                context = _base_context(
                    request, preview=preview, programme=programme, receipt=form.cleaned_data["receipt"].strip()
                )
                return render(request, "loyalty/refund_confirm.html", context)
    context = _base_context(request, form=form, programme=programme, answer_form=form, answer_title="Not found:")
    return render(request, "loyalty/refund.html", context, status=status)


@till_login_required
@require_POST
def refund_confirm(request):
    """Step two: take the points back (once, however often this is posted)."""
    programme = programme_current()
    form = RefundForm(request.POST)
    if programme is None:
        form.add_error(None, "No loyalty programme is open yet; ask your manager.")
    elif form.is_valid():
        receipt = form.cleaned_data["receipt"].strip()
        try:
            result = till_purchase_refund(
                store=request.till_store, clerk=request.user, receipt=receipt, programme=programme
            )
        except LoyaltyError as exc:
            form.add_error("receipt", str(exc))
        else:
            card = result.entry.account.card_number
            if result.created:
                line = f"Receipt {receipt} refunded: {result.taken} points taken back from card {card}."
                if result.unrecovered:
                    line += f" {result.unrecovered} points were already spent and could not be taken back."
                messages.success(request, line)
            else:
                when = timezone.localtime(result.entry.occurred_at).strftime("%Y-%m-%d %H:%M")
                messages.info(
                    request,
                    f"Receipt {receipt} was already refunded on {when}: {result.taken} points were taken back "
                    "then; nothing more was taken.",
                )
            return redirect("loyalty:account", card_number=card)
    context = _base_context(request, form=form, programme=programme, answer_form=form, answer_title="Not refunded:")
    return render(request, "loyalty/refund.html", context, status=400)
