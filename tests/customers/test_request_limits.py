"""Requests above Django's size limits get a plain 400 and change nothing."""

import pytest
from django.test import override_settings
from django.urls import reverse

from customers.models import Customer


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_an_oversized_capture_post_is_refused_without_writing(client, clerk):
    client.force_login(clerk)
    response = client.post(
        reverse("till:capture"),
        {"email": "big@example.com", "first_name": "x" * (3 * 1024 * 1024), "consent_email": "on"},
    )
    assert response.status_code == 400
    assert b"Nothing was changed" in response.content
    assert not Customer.objects.exists()


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_too_many_fields_are_refused(client, clerk):
    client.force_login(clerk)
    fields = {f"field{n}": "x" for n in range(1500)} | {"email": "many@example.com"}
    response = client.post(reverse("till:capture"), fields)
    assert response.status_code == 400
    assert not Customer.objects.exists()
