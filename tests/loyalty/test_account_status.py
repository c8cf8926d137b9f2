"""Staff status changes of an account go through one service, which checks the move under the row lock."""

import pytest

from loyalty.exceptions import LoyaltyError
from loyalty.models import AccountStatusChange, LoyaltyAccount
from loyalty.services import account_status_change
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_suspend_then_reactivate_records_each_move(account):
    user = UserFactory()
    account_status_change(account=account, status="suspended", reason="Card reported stolen", user=user)
    account_status_change(account=account, status="active", reason="New card issued", user=user)
    assert LoyaltyAccount.objects.get(pk=account.pk).status == "active"
    moves = AccountStatusChange.objects.filter(account=account).order_by("id")
    assert [(m.from_status, m.to_status, m.changed_by) for m in moves] == [
        ("active", "suspended", user),
        ("suspended", "active", user),
    ]


def test_closing_sets_closed_at_and_is_final(account):
    account_status_change(account=account, status="closed", reason="Customer asked", user=None)
    stored = LoyaltyAccount.objects.get(pk=account.pk)
    assert stored.status == "closed"
    assert stored.closed_at is not None
    with pytest.raises(LoyaltyError, match="closed account cannot become active"):
        account_status_change(account=account, status="active", reason="Oops", user=None)


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        ("active", "Already active", "active account cannot become active"),
        ("frozen", "Typo", "Unknown account status"),
        ("suspended", "   ", "Say why"),
        ("suspended", "x" * 301, "Say why"),
    ],
)
def test_a_refused_change_changes_nothing(account, status, reason, message):
    with pytest.raises(LoyaltyError, match=message):
        account_status_change(account=account, status=status, reason=reason, user=None)
    stored = LoyaltyAccount.objects.get(pk=account.pk)
    assert (stored.status, stored.closed_at) == ("active", None)
    assert not AccountStatusChange.objects.exists()


def test_a_merged_account_is_refused(account, customer, programme):
    from loyalty.services import account_enrol
    from tests.factories import CustomerFactory

    other = account_enrol(customer=CustomerFactory(), programme=programme)[0]
    LoyaltyAccount.objects.filter(pk=account.pk).update(merged_into=other)
    with pytest.raises(LoyaltyError, match="merged"):
        account_status_change(account=account, status="suspended", reason="x", user=None)
    assert not AccountStatusChange.objects.exists()
