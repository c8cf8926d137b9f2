"""No "Delete" button in the admin where deleting could only end in "Cannot delete"."""

import pytest
from django.urls import reverse

from loyalty.services import account_enrol
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.campaigns import CampaignFactory, MessageFactory
from tests.factories.customers import PurchaseFactory
from tests.factories.loyalty import CouponCodeFactory, OfferFactory, ProgrammeFactory

pytestmark = pytest.mark.django_db


def _change_page(client, obj) -> str:
    opts = obj._meta
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _delete_status(client, obj) -> int:
    opts = obj._meta
    return client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])).status_code


def _protected_and_free():
    """(protected, free) pairs: the first has rows that PROTECT it, the second none."""
    used_store, free_store = StoreFactory(code="used"), StoreFactory(code="free")
    PurchaseFactory(store=used_store)
    programme, free_programme = ProgrammeFactory(), ProgrammeFactory(name="Unused programme")
    account_enrol(customer=CustomerFactory(), programme=programme)
    offer_with_codes, offer_without = OfferFactory(programme=programme), OfferFactory(programme=programme)
    CouponCodeFactory(offer=offer_with_codes)
    used_message, free_message = MessageFactory(), MessageFactory()
    CampaignFactory(message=used_message)
    return [
        (used_store, free_store),
        (programme, free_programme),
        (offer_with_codes, offer_without),
        (used_message, free_message),
    ]


def test_delete_is_offered_only_where_it_can_succeed(admin_client):
    for protected, free in _protected_and_free():
        assert 'class="deletelink"' not in _change_page(admin_client, protected), protected
        assert _delete_status(admin_client, protected) == 403, protected
        assert 'class="deletelink"' in _change_page(admin_client, free), free
        assert _delete_status(admin_client, free) == 200, free


def test_a_loyalty_account_is_never_deleted_in_the_admin(admin_client):
    account, _ = account_enrol(customer=CustomerFactory(), programme=ProgrammeFactory())
    assert 'class="deletelink"' not in _change_page(admin_client, account)
    assert _delete_status(admin_client, account) == 403
    changelist = admin_client.get(reverse("admin:loyalty_loyaltyaccount_changelist")).content.decode()
    assert "delete_selected" not in changelist


def test_records_that_are_evidence_offer_no_delete(admin_client):
    customer = CustomerFactory()
    assert 'class="deletelink"' not in _change_page(admin_client, customer)
    assert _delete_status(admin_client, customer) == 403
