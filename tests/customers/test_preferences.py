"""The customer's own weekly limit is stored on the profile, validated, and can be cleared."""

import pytest

from customers.models import Customer
from customers.services.preferences import InvalidPreference, customer_frequency_set
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_weekly_choice_is_stored_and_cleared():
    customer = CustomerFactory()
    customer_frequency_set(customer=customer, max_messages_per_week=1)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week == 1
    customer_frequency_set(customer=customer, max_messages_per_week=None)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week is None


@pytest.mark.parametrize("bad", [0, -1, 22, "1", True, 1.5])
def test_bad_weekly_choice_is_refused_and_changes_nothing(bad):
    customer = CustomerFactory()
    customer_frequency_set(customer=customer, max_messages_per_week=3)
    with pytest.raises(InvalidPreference):
        customer_frequency_set(customer=customer, max_messages_per_week=bad)
    assert Customer.objects.get(pk=customer.pk).max_messages_per_week == 3
