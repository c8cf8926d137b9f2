"""Apps above customers act on merges and erasures through hooks called inside the same transaction."""

import pytest

from customers.erase_hooks import profile_erase_hook_register, profile_erase_hook_unregister
from customers.merge_hooks import profile_merge_hook_register, profile_merge_hook_unregister
from customers.models import Customer
from customers.services import customer_erase, customer_merge
from tests.factories import CustomerFactory, MarketingUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls():
    seen = []

    def on_merge(*, survivor, other, user):
        # The merge is already visible inside its transaction when the hook runs.
        seen.append(("merge", survivor.pk, other.pk, Customer.objects.get(pk=other.pk).merged_into_id, user))

    def on_erase(*, customer, user):
        seen.append(("erase", customer.pk, Customer.objects.get(pk=customer.pk).erased_at is not None, user))

    profile_merge_hook_register("test.recorder", on_merge)
    profile_merge_hook_register("test.recorder", on_merge)  # by name: registering again does not add twice
    profile_erase_hook_register("test.recorder", on_erase)
    yield seen
    profile_merge_hook_unregister("test.recorder")
    profile_erase_hook_unregister("test.recorder")


@pytest.fixture
def failing():
    def boom(**kwargs):
        raise RuntimeError("downstream failed")

    profile_merge_hook_register("test.failing", boom)
    profile_erase_hook_register("test.failing", boom)
    yield
    profile_merge_hook_unregister("test.failing")
    profile_erase_hook_unregister("test.failing")


def test_merge_and_erase_call_the_registered_hooks_once(calls):
    user = MarketingUserFactory()
    survivor, other = CustomerFactory(), CustomerFactory()
    customer_merge(survivor=survivor, other=other, user=user)
    customer_erase(customer=survivor, user=user)
    customer_erase(customer=survivor, user=user)  # already erased: nothing runs again
    assert calls == [("merge", survivor.pk, other.pk, survivor.pk, user), ("erase", survivor.pk, True, user)]


def test_a_failing_hook_undoes_the_merge_and_the_erasure(calls, failing):
    user = MarketingUserFactory()
    survivor, other = CustomerFactory(), CustomerFactory(email="keep@example.com")
    with pytest.raises(RuntimeError):
        customer_merge(survivor=survivor, other=other, user=user)
    other.refresh_from_db()
    assert other.merged_into_id is None
    with pytest.raises(RuntimeError):
        customer_erase(customer=other, user=user)
    other.refresh_from_db()
    assert (other.erased_at, other.email) == (None, "keep@example.com")
