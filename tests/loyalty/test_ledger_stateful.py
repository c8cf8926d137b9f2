"""The ledger against a model: balance = sum, never negative, keys are no-ops on replay, FIFO expiry."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from loyalty.exceptions import InsufficientPoints
from loyalty.models import LedgerEntry, LoyaltyAccount
from loyalty.selectors import ledger_balance
from loyalty.services import account_enrol, points_expire_account, points_expiring
from loyalty.services.accounts import account_lock, ledger_append
from tests.factories import CustomerFactory
from tests.factories.loyalty import ProgrammeFactory

EXPIRY_DAYS = 90


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def open_account(self):
        programme = ProgrammeFactory(name="Stateful", points_expire_after_days=EXPIRY_DAYS)
        self.account, _ = account_enrol(customer=CustomerFactory(), programme=programme)
        self.now = datetime(2026, 1, 1, 12, tzinfo=UTC)
        self.lots: list[list] = []  # [expires_at, remaining], oldest first
        self.used: list[tuple[str, str, int]] = []
        self.counter = 0

    def _append(self, kind, points, key):
        with transaction.atomic():
            locked = account_lock(self.account)
            return ledger_append(account=locked, kind=kind, points=points, idempotency_key=key, occurred_at=self.now)

    def _key(self):
        self.counter += 1
        return f"op-{self.counter}"

    @property
    def model_balance(self):
        return sum(remaining for _, remaining in self.lots)

    @rule(points=st.integers(min_value=1, max_value=500))
    def earn(self, points):
        key = self._key()
        _, created = self._append(LedgerEntry.Kind.EARN, points, key)
        assert created
        self.lots.append([self.now + timedelta(days=EXPIRY_DAYS), points])
        self.used.append((key, LedgerEntry.Kind.EARN, points))

    @rule(points=st.integers(min_value=1, max_value=800))
    def spend(self, points):
        key = self._key()
        if points > self.model_balance:
            with pytest.raises(InsufficientPoints):
                self._append(LedgerEntry.Kind.REDEEM, -points, key)
            return
        self._append(LedgerEntry.Kind.REDEEM, -points, key)
        self.used.append((key, LedgerEntry.Kind.REDEEM, -points))
        for lot in self.lots:  # first in, first out
            taken = min(lot[1], points)
            lot[1] -= taken
            points -= taken

    @rule(data=st.data())
    def replay_a_key(self, data):
        if not self.used:
            return
        key, kind, points = data.draw(st.sampled_from(self.used))
        before = LedgerEntry.objects.filter(account=self.account).count()
        _, created = self._append(kind, points, key)
        assert not created
        assert LedgerEntry.objects.filter(account=self.account).count() == before

    @rule(days=st.integers(min_value=1, max_value=120))
    def time_passes(self, days):
        self.now += timedelta(days=days)

    @rule()
    def expire(self):
        due = sum(remaining for expires_at, remaining in self.lots if expires_at <= self.now)
        assert points_expire_account(account=self.account, now=self.now) == due
        for lot in self.lots:
            if lot[0] <= self.now:
                lot[1] = 0
        assert points_expire_account(account=self.account, now=self.now) == 0

    @invariant()
    def balance_is_the_sum_and_never_negative(self):
        if not hasattr(self, "account"):
            return
        cached = LoyaltyAccount.objects.get(pk=self.account.pk).points_balance
        assert cached == ledger_balance(self.account) == self.model_balance
        assert cached >= 0

    @invariant()
    def expiring_soon_follows_fifo(self):
        if not hasattr(self, "account"):
            return
        horizon = self.now + timedelta(days=30)
        expected = sum(remaining for expires_at, remaining in self.lots if expires_at <= horizon)
        assert points_expiring(account=self.account, until=horizon) == expected


@pytest.mark.django_db
def test_ledger_state_machine():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
