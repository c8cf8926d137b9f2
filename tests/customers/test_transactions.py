"""atomic_retry: a lock conflict is run again, a bounded number of times, only at the outermost level."""

import multiprocessing

import psycopg.errors
import pytest
from django.db import OperationalError, connection

from customers.lock_objects import customers_lock
from customers.transactions import atomic_retry, is_lock_conflict
from tests.concurrency import errors, race
from tests.factories import CustomerFactory


def _conflict(cause=psycopg.errors.DeadlockDetected) -> OperationalError:
    exc = OperationalError("conflict")
    exc.__cause__ = cause("conflict")
    return exc


def test_deadlocks_and_serialization_failures_are_conflicts_other_errors_are_not():
    assert is_lock_conflict(_conflict(psycopg.errors.DeadlockDetected))
    assert is_lock_conflict(_conflict(psycopg.errors.SerializationFailure))
    assert not is_lock_conflict(_conflict(psycopg.errors.LockNotAvailable))
    assert not is_lock_conflict(OperationalError("server closed the connection"))


def test_a_conflict_is_retried_until_the_service_succeeds(transactional_db):
    calls = []

    @atomic_retry
    def service():
        calls.append(connection.in_atomic_block)
        if len(calls) < 3:
            raise _conflict()
        return "done"

    assert service() == "done"
    assert calls == [True, True, True]  # each attempt in a transaction of its own


def test_retries_are_bounded(transactional_db):
    calls = []

    @atomic_retry(attempts=4)
    def service():
        calls.append(1)
        raise _conflict()

    with pytest.raises(OperationalError):
        service()
    assert len(calls) == 4


def test_other_errors_are_not_retried(transactional_db):
    calls = []

    @atomic_retry
    def service():
        calls.append(1)
        raise _conflict(psycopg.errors.LockNotAvailable)

    with pytest.raises(OperationalError):
        service()
    assert calls == [1]


def test_inside_a_callers_transaction_a_conflict_is_left_to_the_caller(db):
    calls = []

    @atomic_retry
    def service():
        calls.append(1)
        raise _conflict()

    with pytest.raises(OperationalError):
        service()
    assert calls == [1]


@pytest.mark.postgres
def test_a_real_deadlock_between_two_processes_ends_with_both_done(transactional_db):
    first, second = CustomerFactory(), CustomerFactory()
    # Both hold their first lock before either asks for the second: PostgreSQL must abort one of them.
    both_hold_one = multiprocessing.get_context("fork").Barrier(2)

    def opposite_order(a, b):
        attempts = []

        @atomic_retry
        def lock_both():
            attempts.append(1)
            customers_lock([a.pk])
            if len(attempts) == 1:
                both_hold_one.wait(timeout=30)
            customers_lock([b.pk])
            return len(attempts)

        return lock_both

    outcomes = race(opposite_order(first, second), opposite_order(second, first))

    assert all(o.ok for o in outcomes), errors(outcomes)
    assert sorted(o.value for o in outcomes) == [1, 2]  # the aborted one ran again, once
