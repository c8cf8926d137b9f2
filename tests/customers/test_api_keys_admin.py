"""API keys in the admin: the full key shown once after saving, revocable, managed only with permission."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.models import ApiKey
from customers.services.api_keys import api_key_authenticate, api_key_create
from tests.factories import MarketingUserFactory, UserFactory

pytestmark = pytest.mark.django_db

ADD = "admin:customers_apikey_add"
CHANGELIST = "admin:customers_apikey_changelist"


@pytest.fixture
def superuser(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(client, superuser):
    response = client.post(reverse(ADD), {"name": "Online shop"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    api_key = ApiKey.objects.get()
    assert api_key.created_by == superuser
    full_key = response.context["full_key"]
    assert full_key in response.content.decode()
    assert api_key_authenticate(full_key) == api_key
    listing = client.get(reverse(CHANGELIST)).content.decode()
    detail = client.get(reverse("admin:customers_apikey_change", args=[api_key.pk])).content.decode()
    assert api_key.prefix in listing
    assert full_key not in listing
    assert full_key not in detail


def test_a_key_name_is_escaped_and_a_blank_one_refused(client, superuser):
    assert client.post(reverse(ADD), {"name": "  "}).status_code == 200
    assert not ApiKey.objects.exists()

    response = client.post(reverse(ADD), {"name": "<script>x</script>"})

    assert "<script>x</script>" not in response.content.decode()


def test_the_revoke_action_stops_the_key(client, superuser):
    api_key, full_key = api_key_create(name="Shop")

    response = client.post(reverse(CHANGELIST), {"action": "revoke", "_selected_action": [api_key.pk]})

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api_key_authenticate(full_key) is None


def test_marketing_sees_keys_but_cannot_make_or_revoke_them(client):
    marketer = MarketingUserFactory()
    client.force_login(marketer)
    api_key, full_key = api_key_create(name="Shop")

    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.post(reverse(ADD), {"name": "Mine"}).status_code == 403
    client.post(reverse(CHANGELIST), {"action": "revoke", "_selected_action": [api_key.pk]})
    assert api_key_authenticate(full_key) is not None
    assert ApiKey.objects.count() == 1


def test_staff_granted_the_permissions_manage_keys(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["add_apikey", "change_apikey", "view_apikey"]))
    client.force_login(user)

    assert client.post(reverse(ADD), {"name": "Till system"}).status_code == 200
    assert ApiKey.objects.filter(name="Till system").exists()
