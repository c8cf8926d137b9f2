import os

import pytest
from django.db import connection

from tests.factories import ClerkFactory, DisclosureFactory, StoreFactory


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def frozen_minute():
    """Rate limits count per clock minute: keep every request of a test inside one."""
    import time_machine

    with time_machine.travel("2026-03-02 10:00:05Z", tick=False):
        yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Rate-limit counters live in the shared cache; every test starts from zero."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _postgres_required(request):
    """A test marked ``postgres`` fails on CI without PostgreSQL, and is skipped locally."""
    if request.node.get_closest_marker("postgres") is None:
        return
    request.getfixturevalue("db") if "transactional_db" not in request.fixturenames else None
    if connection.vendor != "postgresql":
        message = "needs PostgreSQL (set DATABASE_URL or run scripts/test)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium"}


@pytest.fixture
def store(db):
    return StoreFactory(code="nyc-5th", name="Fifth Avenue", time_zone="America/New_York")


@pytest.fixture
def clerk(store):
    return ClerkFactory(store=store)


@pytest.fixture
def disclosures(db):
    return {
        "email": DisclosureFactory(channel="email", version=1, text="Email me news and offers. Leave any time."),
        "sms": DisclosureFactory(
            channel="sms",
            version=1,
            text="Marketing texts, up to 4/month. Msg & data rates may apply. Reply STOP to opt out.",
        ),
    }


@pytest.fixture
def celery_eager():
    """Tasks run in-process when enqueued (after commit), as a worker would run them."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def http_stub(monkeypatch):
    """Every HTTP request the provider libraries make is answered here (and recorded); none leaves."""
    import botocore.httpsession
    import requests.adapters

    from tests.http_stub import HttpStub

    stub = HttpStub()
    monkeypatch.setattr(
        requests.adapters.HTTPAdapter, "send", lambda adapter, request, **kw: stub.requests_send(adapter, request)
    )
    monkeypatch.setattr(
        botocore.httpsession.URLLib3Session, "send", lambda session, request: stub.botocore_send(session, request)
    )
    return stub
