"""Races between real processes on the test database (PostgreSQL), released together.

Threads share one interpreter and take turns at the GIL; processes, like web workers, do not. Each
worker is a function run in its own forked child with its own database connection: the child inherits
the test settings (so it uses the test database) and data committed by the parent before the race
(tests using it need ``transactional_db``). All children wait at a barrier and start at once.

    outcomes = race(lambda: purchase(...), lambda: merge(...))
    assert [o.error for o in outcomes] == [None, None]

A worker returns a picklable value (``Outcome.value``) or raises: the child reports the exception's
class name and message (``Outcome.error``) instead of a traceback, including PostgreSQL's deadlock
errors, so a test can assert that none surfaced.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import traceback
from collections.abc import Callable

from django.db import connections

#: seconds a race may take before its children are killed and the race fails
TIMEOUT = 60


@dataclasses.dataclass
class Outcome:
    value: object = None
    #: ``"ClassName: message"`` of the exception the worker raised, or ``None``
    error: str | None = None
    #: the full traceback, for an assertion message
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def _forget_inherited_connections() -> None:
    """Give the child new, empty connection slots, so it opens a connection of its own.

    ``close_all`` in the parent closes the connections it can see, but once a test session runs an
    event loop in the main thread (Playwright's sync API does), Django keeps connections in
    context-local storage, and a connection the parent still holds can be inherited open. Two
    processes writing to one socket corrupt each other; a child closing it ends the other's session.
    The inherited sockets are left alone (never used, never closed here).
    """
    from asgiref.local import Local

    connections._connections = Local(connections.thread_critical)


def _child(worker: Callable[[], object], barrier, sender) -> None:
    _forget_inherited_connections()
    try:
        barrier.wait(timeout=TIMEOUT)
        value = worker()
        outcome = Outcome(value=value)
    except BaseException as exc:  # everything is reported to the parent, nothing escapes the child
        outcome = Outcome(error=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc())
    finally:
        connections.close_all()
    try:
        sender.send(outcome)
    except Exception as exc:  # an unpicklable value
        sender.send(Outcome(error=f"unpicklable result: {exc!r}"))
    sender.close()


def race(*workers: Callable[[], object], timeout: float = TIMEOUT) -> list[Outcome]:
    """Run each worker in its own process, all released at once; returns their outcomes in order."""
    context = multiprocessing.get_context("fork")
    # A connection must never be shared across a fork: close the parent's; everyone opens their own.
    connections.close_all()
    barrier = context.Barrier(len(workers))
    pipes = [context.Pipe(duplex=False) for _ in workers]
    processes = []
    for worker, (_receiver, sender) in zip(workers, pipes, strict=True):
        process = context.Process(target=_run_child, args=(worker, barrier, sender), daemon=True)
        process.start()
        processes.append(process)
    outcomes = []
    for process, (receiver, _sender) in zip(processes, pipes, strict=True):
        if receiver.poll(timeout):
            outcomes.append(receiver.recv())
        else:
            outcomes.append(Outcome(error="timed out"))
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
    return outcomes


def _run_child(worker, barrier, sender) -> None:
    try:
        _child(worker, barrier, sender)
    finally:
        # Skip the parent's exit handlers (pytest's, the test database teardown): only the parent may.
        os._exit(0)


def errors(outcomes: list[Outcome]) -> list[str]:
    """The tracebacks of the outcomes that failed, for an assertion message."""
    return [o.detail or o.error for o in outcomes if not o.ok]
