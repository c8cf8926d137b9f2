"""Customer admin actions: each intermediate page renders, and each action does what it says via services."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentMethod,
    ConsentStatus,
    Customer,
    MergeProposal,
    Purchase,
    Suppression,
)
from customers.normalization import address_hmac
from customers.services.consent import Evidence, consent_grant, consent_withdraw, suppression_add
from tests.factories import CustomerFactory, MarketingUserFactory, PurchaseFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:customers_customer_changelist"


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.force_login(user)
    return user


def run_action(client, action, customers, model="customer", query="", **data):
    """Post the action from the changelist (data=None) or confirm it from its intermediate page."""
    payload = {"action": action, "_selected_action": [c.pk for c in customers], **data}
    if data:
        payload["_confirm"] = "yes"
    else:
        payload["index"] = "0"
    return client.post(reverse(f"admin:customers_{model}_changelist") + query, payload)


def messages_of(response):
    return [str(m) for m in response.wsgi_request._messages] if hasattr(response, "wsgi_request") else []


def follow_messages(client, response):
    return [str(m) for m in client.get(response.url).context["messages"]] if response.status_code == 302 else []


def state(customer, channel):
    record = customer.consent_states.filter(channel=channel).first()
    return record.status if record else ConsentStatus.NONE


@pytest.mark.parametrize("action", ["grant_consent", "withdraw_consent", "merge_customers", "erase_customers"])
def test_each_action_page_renders_for_marketing(client, marketer, action):
    customers = [CustomerFactory(), CustomerFactory()]
    response = run_action(client, action, customers)
    assert response.status_code == 200
    assert b'name="_confirm" value="yes"' in response.content
    for customer in customers:
        assert str(customer).encode() in response.content


def test_grant_consent_records_admin_evidence_with_basis(client, marketer):
    a, b = CustomerFactory(), CustomerFactory()
    response = run_action(
        client, "grant_consent", [a, b], channel="email", basis="Signed paper form, spring fair", note="box 4"
    )
    assert response.status_code == 302
    for customer in (a, b):
        assert state(customer, Channel.EMAIL) == ConsentStatus.GRANTED  # staff grants need no double opt-in
        entry = ConsentEvidence.objects.get(customer=customer)
        assert entry.method == ConsentMethod.ADMIN
        assert entry.collected_by == marketer
        assert entry.basis == "Signed paper form, spring fair"
        assert entry.address == customer.email
    assert any("Consent recorded for 2" in m for m in follow_messages(client, response))


def test_grant_consent_requires_a_basis(client, marketer):
    customer = CustomerFactory()
    response = run_action(client, "grant_consent", [customer], channel="email", basis="   ")
    assert response.status_code == 200
    assert response.context["form"].errors["basis"]
    assert not ConsentEvidence.objects.exists()


def test_grant_consent_reports_customers_it_cannot_grant(client, marketer):
    no_phone = CustomerFactory(phone=None)
    suppressed = CustomerFactory(phone="+14155552671", phone_hmac=address_hmac("sms", "+14155552671"))
    suppression_add(channel=Channel.SMS, address="+14155552671", reason=Suppression.Reason.COMPLAINT)
    response = run_action(client, "grant_consent", [no_phone, suppressed], channel="sms", basis="Form")
    messages = follow_messages(client, response)
    assert any("no phone number" in m for m in messages)
    assert any("suppression list" in m for m in messages)
    assert not ConsentEvidence.objects.exists()


def test_withdraw_consent_is_immediate_and_needs_a_note(client, marketer):
    customer = CustomerFactory()
    consent_grant(
        customer=customer,
        channel=Channel.EMAIL,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=marketer, basis="Form"),
    )
    response = run_action(client, "withdraw_consent", [customer], channel="email", note="")
    assert response.status_code == 200
    assert state(customer, Channel.EMAIL) == ConsentStatus.GRANTED
    run_action(client, "withdraw_consent", [customer], channel="email", note="Phone call, 3 May")
    assert state(customer, Channel.EMAIL) == ConsentStatus.WITHDRAWN
    entry = ConsentEvidence.objects.filter(customer=customer).last()
    assert (entry.action, entry.method, entry.note, entry.collected_by) == (
        "withdraw",
        "admin",
        "Phone call, 3 May",
        marketer,
    )


def test_merge_needs_exactly_two(client, marketer):
    customer = CustomerFactory()
    response = run_action(client, "merge_customers", [customer])
    assert response.status_code == 302
    assert "Select exactly two customers to merge." in follow_messages(client, response)
    three = [CustomerFactory() for _ in range(3)]
    assert "Select exactly two customers to merge." in follow_messages(
        client, run_action(client, "merge_customers", three)
    )


def test_merge_keeps_the_chosen_survivor_and_most_restrictive_consent(client, marketer):
    keep = CustomerFactory(email="keep@example.com", phone=None)
    other = CustomerFactory(email=None, phone="+14155552671", first_name="Other")
    PurchaseFactory(customer=other, external_ref="R-1")
    consent_grant(
        customer=keep,
        channel=Channel.EMAIL,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=marketer, basis="Form"),
    )
    consent_withdraw(customer=other, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    response = run_action(client, "merge_customers", [keep, other], survivor=str(keep.pk))
    assert response.status_code == 302
    keep.refresh_from_db()
    other.refresh_from_db()
    assert other.merged_into == keep
    assert keep.phone == "+14155552671"
    assert Purchase.objects.get(external_ref="R-1").customer == keep
    assert state(keep, Channel.EMAIL) == ConsentStatus.WITHDRAWN


def test_merge_refuses_an_erased_profile(client, marketer):
    from customers.services.profiles import customer_erase

    a, b = CustomerFactory(), CustomerFactory()
    customer_erase(customer=b, user=marketer)
    response = run_action(client, "merge_customers", [a, b])
    assert any("Only active profiles" in m for m in follow_messages(client, response))
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_export_customer_data_downloads_json(client, marketer):
    customer = CustomerFactory(email="ann@example.com", first_name="Ann")
    PurchaseFactory(customer=customer, external_ref="R-9")
    response = run_action(client, "export_customer_data", [customer])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert f"customer-{customer.public_id}.json" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert LogEntry.objects.filter(object_id=str(customer.pk), change_message__contains="personal data").exists()
    assert data["profile"]["email"] == "ann@example.com"
    assert data["purchases"][0]["reference"] == "R-9"


def test_export_customer_data_needs_exactly_one(client, marketer):
    response = run_action(client, "export_customer_data", [CustomerFactory(), CustomerFactory()])
    assert response.status_code == 302
    assert "Select exactly one customer to export their data." in follow_messages(client, response)


def test_erase_needs_confirmation_then_pseudonymises(client, marketer):
    customer = CustomerFactory(email="gone@example.com", phone="+14155552671", first_name="Gone", last_name="Person")
    run_action(client, "export_customer_data", [customer])  # leaves an admin history entry naming them
    PurchaseFactory(customer=customer, external_ref="R-5")
    response = run_action(client, "erase_customers", [customer], confirm="")
    assert response.status_code == 200  # the box was not ticked
    customer.refresh_from_db()
    assert customer.erased_at is None
    run_action(client, "erase_customers", [customer], confirm="on")
    customer.refresh_from_db()
    assert customer.erased_at is not None
    assert (customer.email, customer.phone, customer.first_name) == (None, None, "")
    assert Suppression.objects.filter(address_hmac=address_hmac("email", "gone@example.com")).exists()
    assert Suppression.objects.filter(address_hmac=address_hmac("sms", "+14155552671")).exists()
    assert Purchase.objects.get(external_ref="R-5").customer == customer
    assert LogEntry.objects.filter(object_id=str(customer.pk), change_message="Erased on request.").exists()
    assert not LogEntry.objects.filter(object_repr__contains="Gone").exists()
    assert all(state(customer, channel) == ConsentStatus.WITHDRAWN for channel in Channel.values)


def test_export_csv_of_selected_customers(client, marketer):
    a = CustomerFactory(first_name='=HYPERLINK("http://evil")', email="a@example.com")
    CustomerFactory(email="not-selected@example.com")
    response = run_action(client, "export_csv", [a])
    body = b"".join(response.streaming_content).decode()
    assert "a@example.com" in body
    assert "not-selected" not in body
    assert "'=HYPERLINK" in body


# --- merge proposals and suppression ---------------------------------------------------------------


def test_merge_proposal_actions(client, marketer):
    left, right = CustomerFactory(email="l@example.com"), CustomerFactory(email=None, phone="+14155552671")
    proposal = MergeProposal.objects.create(customer=left, other=right, reason="one capture")
    listing = client.get(reverse("admin:customers_mergeproposal_changelist"))
    content = listing.content.decode()
    assert "l@example.com" in content
    assert "+14155552671" in content
    run_action(client, "merge_keep_right", [proposal], model="mergeproposal")
    left.refresh_from_db()
    proposal.refresh_from_db()
    assert left.merged_into == right
    assert proposal.status == MergeProposal.Status.MERGED
    # A resolved proposal is no longer listed by default, and cannot be merged again.
    assert proposal not in client.get(reverse("admin:customers_mergeproposal_changelist")).context["cl"].result_list
    response = run_action(client, "merge_keep_left", [proposal], model="mergeproposal", query="?status=all")
    assert any("already merged" in m for m in follow_messages(client, response))


def test_merge_proposal_keep_left_and_dismiss(client, marketer):
    a, b, c, d = (CustomerFactory() for _ in range(4))
    keep_left = MergeProposal.objects.create(customer=a, other=b, reason="r")
    dismiss = MergeProposal.objects.create(customer=c, other=d, reason="r")
    run_action(client, "merge_keep_left", [keep_left], model="mergeproposal")
    run_action(client, "dismiss", [dismiss], model="mergeproposal")
    b.refresh_from_db()
    dismiss.refresh_from_db()
    assert b.merged_into == a
    assert dismiss.status == MergeProposal.Status.DISMISSED
    assert dismiss.resolved_by == marketer
    c.refresh_from_db()
    assert c.merged_into is None


def test_suppression_added_by_address_stores_only_the_hash(client, marketer):
    response = client.post(
        reverse("admin:customers_suppression_add"),
        {"channel": "sms", "address": "(415) 555-2671", "reason": "manual", "note": "asked by letter", "_save": "Save"},
    )
    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert suppression.address_hmac == address_hmac("sms", "+14155552671")
    assert suppression.created_by == marketer
    assert "555" not in str(Suppression.objects.values().get())
    # Staff find it again by typing the address; the list never shows an address.
    listing = client.get(reverse("admin:customers_suppression_changelist"), {"q": "+1 415 555 2671"})
    assert list(listing.context["cl"].result_list) == [suppression]
    plain = client.get(reverse("admin:customers_suppression_changelist")).content.decode()
    assert "2671" not in plain
    assert (
        "2671" not in client.get(reverse("admin:customers_suppression_change", args=[suppression.pk])).content.decode()
    )


def test_suppression_add_refuses_bad_address(client, marketer):
    response = client.post(
        reverse("admin:customers_suppression_add"),
        {"channel": "email", "address": "nope", "reason": "manual", "_save": "Save"},
    )
    assert response.status_code == 200
    assert not Suppression.objects.exists()


def test_lift_suppression_needs_a_reason_and_never_lifts_erasure(client, marketer):
    manual = suppression_add(channel=Channel.EMAIL, address="a@example.com", reason="manual")
    erasure = suppression_add(channel=Channel.EMAIL, address="b@example.com", reason="erasure")
    page = run_action(client, "lift_suppression", [manual], model="suppression")
    assert page.status_code == 200
    run_action(client, "lift_suppression", [manual], model="suppression", note="")
    assert Suppression.objects.filter(pk=manual.pk).exists()
    response = run_action(client, "lift_suppression", [manual, erasure], model="suppression", note="Re-subscribed")
    assert not Suppression.objects.filter(pk=manual.pk).exists()
    assert Suppression.objects.filter(pk=erasure.pk).exists()
    assert any("cannot be lifted" in m for m in follow_messages(client, response))
    lifted = LogEntry.objects.filter(change_message__contains="Re-subscribed")
    # Only the lift that happened is in the admin history, not the refused one.
    assert list(lifted.values_list("object_id", flat=True)) == [str(manual.pk)]
    assert client.get(reverse("admin:customers_suppression_delete", args=[erasure.pk])).status_code == 403


def test_purchase_added_through_the_service(client, marketer, store):
    customer = CustomerFactory()
    data = {
        "customer": customer.pk,
        "channel": "store",
        "store": store.pk,
        "source": "till",
        "external_ref": "RCPT-1",
        "amount": "19.99",
        "discount_amount": "0",
        "currency": "usd",
        "occurred_at_0": "2026-05-01",
        "occurred_at_1": "10:00:00",
        "_save": "Save",
    }
    response = client.post(reverse("admin:customers_purchase_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    purchase = Purchase.objects.get()
    assert (purchase.currency, purchase.recorded_by, purchase.customer) == ("USD", marketer, customer)
    assert LogEntry.objects.filter(object_id=str(purchase.pk), action_flag=1).exists()
    response = client.post(reverse("admin:customers_purchase_add"), {**data, "amount": "-1"})
    assert response.status_code == 200
    response = client.post(reverse("admin:customers_purchase_add"), {**data, "store": ""})
    assert response.status_code == 200
    assert "needs its store" in response.content.decode()
    response = client.post(reverse("admin:customers_purchase_add"), data)
    assert response.status_code == 200
    assert "Receipt RCPT-1 is already recorded." in response.content.decode()
    assert Purchase.objects.count() == 1


def test_purchase_added_with_its_categories_and_an_unknown_one_refused(client, marketer):
    from tests.factories.customers import ProductCategoryFactory

    shampoo, coffee = ProductCategoryFactory(name="Shampoo"), ProductCategoryFactory(name="Coffee")
    data = {
        "channel": "online",
        "source": "online_shop",
        "external_ref": "WEB-1",
        "amount": "19.99",
        "discount_amount": "0",
        "currency": "USD",
        "occurred_at_0": "2026-05-01",
        "occurred_at_1": "10:00:00",
        "categories": [shampoo.pk, coffee.pk],
    }
    page = client.get(reverse("admin:customers_purchase_add")).content.decode()
    assert 'type="checkbox" name="categories"' in page

    refused = client.post(reverse("admin:customers_purchase_add"), {**data, "categories": [shampoo.pk, 999999]})
    assert refused.status_code == 200
    assert not Purchase.objects.exists()
    response = client.post(reverse("admin:customers_purchase_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    purchase = Purchase.objects.get()
    assert sorted(purchase.categories.values_list("name", flat=True)) == ["Coffee", "Shampoo"]
    listing = client.get(reverse("admin:customers_purchase_changelist")).content.decode()
    assert "Coffee, Shampoo" in listing
    shown = client.get(reverse("admin:customers_purchase_change", args=[purchase.pk])).content.decode()
    assert "Coffee, Shampoo" in shown


def test_product_categories_are_edited_and_searched_in_the_admin(client, marketer):
    from customers.models import ProductCategory
    from tests.factories.customers import ProductCategoryFactory, PurchaseFactory

    url = reverse("admin:customers_productcategory_add")
    response = client.post(url, {"name": " Coffee   beans ", "replenish_after_days": "21", "is_active": "on"})
    assert response.status_code == 302
    coffee = ProductCategory.objects.get()
    assert (coffee.name, coffee.replenish_after_days) == ("Coffee beans", 21)
    twin = client.post(url, {"name": "coffee BEANS", "is_active": "on"})
    assert twin.status_code == 200  # the name is unique whatever its case
    assert ProductCategory.objects.count() == 1
    assert client.post(url, {"name": "Tea", "replenish_after_days": "0"}).status_code == 200
    ProductCategoryFactory(name="Shampoo")
    found = client.get(reverse("admin:customers_productcategory_changelist"), {"q": "coff"}).content.decode()
    assert "Coffee beans" in found
    assert "Shampoo" not in found
    # bought on a purchase: kept for its history (made inactive instead), so no delete button
    PurchaseFactory(categories=[coffee])
    change_page = client.get(reverse("admin:customers_productcategory_change", args=[coffee.pk])).content.decode()
    assert "deletelink" not in change_page


def test_purchase_add_form_writes_nothing_by_itself(store):
    from customers.admin.stores import PurchaseAddForm

    form = PurchaseAddForm(
        {"customer": CustomerFactory().pk, "channel": "store", "store": store.pk, "source": "till",
         "external_ref": "RCPT-9", "amount": "5", "discount_amount": "0", "currency": "USD",
         "occurred_at": "2026-05-01 10:00"}
    )
    assert form.is_valid(), form.errors
    assert not Purchase.objects.exists()


def test_view_only_staff_get_no_state_changing_actions(client):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_customer", "view_mergeproposal", "view_suppression"],
            content_type__app_label="customers",
        )
    )
    client.force_login(viewer)
    customers = client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    assert {name for name, _label in customers} == {"", "export_customer_data", "export_csv"}
    proposals = client.get(reverse("admin:customers_mergeproposal_changelist"))
    assert "action_form" not in proposals.context or proposals.context["action_form"] is None
    suppressions = client.get(reverse("admin:customers_suppression_changelist"))
    assert "action_form" not in suppressions.context or suppressions.context["action_form"] is None
    customer = CustomerFactory()
    response = run_action(client, "erase_customers", [customer], confirm="on")
    customer.refresh_from_db()
    assert customer.erased_at is None
    assert response.status_code == 302
    assert messages_of(response) == ["No action selected."]


def test_select_all_across_pages_is_carried_as_a_flag(client, marketer):
    chosen = [CustomerFactory(source="import") for _ in range(60)]
    other = CustomerFactory(source="web")
    url = reverse(CHANGELIST) + "?source__exact=import"
    page = client.post(
        url, {"action": "grant_consent", "select_across": "1", "index": "0", "_selected_action": [chosen[0].pk]}
    )
    content = page.content.decode()
    assert "… and 10 more (60 in all)." in content
    assert 'name="select_across" value="1"' in content
    assert content.count('name="_selected_action"') == 1
    response = client.post(
        url,
        {
            "action": "grant_consent",
            "select_across": "1",
            "_selected_action": [chosen[0].pk],
            "_confirm": "yes",
            "channel": "email",
            "basis": "Forms",
        },
    )
    assert response.status_code == 302
    assert ConsentEvidence.objects.filter(customer__in=chosen).count() == 60
    assert not ConsentEvidence.objects.filter(customer=other).exists()
