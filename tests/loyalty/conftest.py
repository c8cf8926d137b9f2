import pytest

from loyalty.services import account_enrol
from tests.factories import CustomerFactory
from tests.factories.loyalty import ProgrammeFactory


@pytest.fixture
def programme(db):
    return ProgrammeFactory()


@pytest.fixture
def customer(db):
    return CustomerFactory(phone="+14155550123", email="ada@example.com", first_name="Ada")


@pytest.fixture
def account(customer, programme):
    return account_enrol(customer=customer, programme=programme)[0]
