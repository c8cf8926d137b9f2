"""manage.py demo_seed: the data the demo starts with, loaded twice without changing."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count

from customers.models import (
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    Customer,
    DisclosureText,
    MergeProposal,
    ProductCategory,
    Purchase,
    Store,
    StoreMembership,
    Suppression,
)
from customers.roles import CLERK, MARKETING
from customers.selectors import customer_is_reachable, suppressed_channels
from customers.services.consent import _GRANT_REQUIREMENTS, consent_fold

pytestmark = pytest.mark.django_db


def rows(queryset) -> list:
    return sorted(tuple(str(value) for value in row) for row in queryset)


def fingerprint() -> dict:
    return {
        "stores": rows(Store.objects.values_list("code", "time_zone")),
        "users": rows(get_user_model().objects.values_list("username", "is_staff")),
        "memberships": StoreMembership.objects.count(),
        "customers": rows(Customer.objects.values_list("email", "phone", "source", "first_name")),
        "evidence": ConsentEvidence.objects.count(),
        "states": rows(ConsentState.objects.values_list("customer__email", "channel", "status")),
        "purchases": rows(Purchase.objects.values_list("external_ref", "amount", "channel")),
        "purchase_categories": rows(Purchase.objects.values_list("external_ref", "categories__name")),
        "disclosures": DisclosureText.objects.count(),
        "suppressions": Suppression.objects.count(),
        "merge_proposals": MergeProposal.objects.count(),
    }


@pytest.fixture
def seeded():
    out = StringIO()
    call_command("demo_seed", stdout=out)
    return out.getvalue()


def test_demo_seed_twice_gives_the_same_data(seeded):
    first = fingerprint()
    out = StringIO()
    call_command("demo_seed", stdout=out)
    assert fingerprint() == first
    assert "already loaded" in out.getvalue()


def test_demo_data_is_varied_its_consent_proven_and_its_logins_work(seeded, client):
    _logins_work_and_are_printed(seeded, client)
    stores = {store.code: store for store in Store.objects.all()}
    assert len(stores) == 4
    assert {s.time_zone for s in stores.values()} >= {"America/New_York", "America/Los_Angeles", "Europe/London"}
    assert any(s.state == "FL" for s in stores.values())
    assert set(DisclosureText.objects.values_list("channel", flat=True)) == {"email", "sms"}
    assert 250 <= Customer.objects.count() <= 350
    sources = dict(Customer.objects.values_list("source").annotate(n=Count("id")))
    assert set(sources) == {"web", "store", "import"}
    statuses = set(ConsentState.objects.filter(channel="email").values_list("status", flat=True))
    assert {"pending", "granted", "withdrawn"} <= statuses
    assert Suppression.objects.filter(channel="email", reason="hard_bounce").exists()
    granted_but_suppressed = [
        c
        for c in Customer.objects.filter(consent_states__channel="email", consent_states__status="granted")
        if "email" in suppressed_channels(c)
    ]
    assert granted_but_suppressed
    assert not customer_is_reachable(customer=granted_but_suppressed[0], channel="email")
    assert set(Purchase.objects.values_list("channel", flat=True)) == {"store", "online"}
    assert Purchase.objects.filter(customer__isnull=True).exists()
    # what was bought, some of it running out: the till's tick boxes and the replenishment journey have data
    assert ProductCategory.objects.filter(replenish_after_days__isnull=False).count() >= 3
    assert Purchase.objects.filter(categories__replenish_after_days__isnull=False).distinct().count() > 50
    assert Purchase.objects.filter(customer__isnull=False, categories__isnull=True).exists()
    assert MergeProposal.objects.filter(status="open").count() == 1
    assert Customer.objects.filter(erased_at__isnull=False).count() == 1
    grants = ConsentEvidence.objects.filter(action="grant", customer__erased_at__isnull=True)
    assert {g.method for g in grants} >= {ConsentMethod.CHECKOUT, ConsentMethod.WEB_FORM, ConsentMethod.IMPORT}
    for grant in grants:
        for field in _GRANT_REQUIREMENTS[grant.method]:
            assert getattr(grant, field if field != "disclosure" else "disclosure_id"), (grant.method, field)
    for state in ConsentState.objects.select_related("customer"):
        entries = ConsentEvidence.objects.filter(customer=state.customer, channel=state.channel).order_by("id")
        assert consent_fold(list(entries))["status"] == state.status


def _logins_work_and_are_printed(seeded, client):
    user_model = get_user_model()
    marketing = user_model.objects.get(username="marketing")
    assert marketing.is_staff
    assert marketing.groups.filter(name=MARKETING).exists()
    for store in Store.objects.all():
        assert StoreMembership.objects.filter(store=store, role="clerk", user__groups__name=CLERK).count() == 1
    assert StoreMembership.objects.filter(role="manager").count() == 1
    for line in seeded.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("marketing", "clerk-nyc", "manager-nyc"):
            assert user_model.objects.get(username=parts[0]).check_password(parts[1])
    assert "clerk-ldn" in seeded

    assert client.login(username="marketing", password="demo-marketing-pass")
    assert client.get("/admin/").status_code == 200
    client.logout()
    assert client.post("/till/login/", {"username": "clerk-nyc", "password": "demo-clerk-pass"}).status_code == 302
    assert client.get("/till/").status_code == 200
