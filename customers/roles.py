"""The three staff roles and their permissions, kept in one place and re-applied after each migrate."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

MARKETING = "Marketing"
STORE_MANAGER = "Store manager"
CLERK = "Clerk"

# Models whose rows are history: staff may view them, never edit or delete them by hand.
_READ_ONLY_MODELS = {
    "consentevidence",
    "consentstate",
    "consentconfirmation",
    "ledgerentry",
    "redemption",
    "delivery",
    "deliveryevent",
    "auditevent",
    "tierchange",
    "surveyresponse",
    "smscost",
}
# Keys let outside systems write purchases and profiles: marketing sees them; making or revoking one
# is for superusers and for staff granted the permission by name.
_VIEW_ONLY_MODELS = {"apikey"}
_MARKETING_APPS = ("customers", "loyalty", "campaigns")


def roles_ensure() -> dict[str, Group]:
    """Create or refresh the Marketing, Store manager and Clerk groups; idempotent."""
    marketing, _ = Group.objects.get_or_create(name=MARKETING)
    manager, _ = Group.objects.get_or_create(name=STORE_MANAGER)
    clerk, _ = Group.objects.get_or_create(name=CLERK)
    permissions = Permission.objects.filter(content_type__app_label__in=_MARKETING_APPS).select_related("content_type")
    marketing_perms = [
        p for p in permissions if p.content_type.model not in _READ_ONLY_MODELS or p.codename.startswith("view_")
    ]
    marketing_perms = [p for p in marketing_perms if not p.codename.startswith("delete_customer")]
    marketing_perms = [
        p for p in marketing_perms if p.content_type.model not in _VIEW_ONLY_MODELS or p.codename.startswith("view_")
    ]
    marketing.permissions.set(marketing_perms)
    # Store staff work from the till pages only; they hold no admin permissions.
    manager.permissions.set([])
    clerk.permissions.set([])
    return {MARKETING: marketing, STORE_MANAGER: manager, CLERK: clerk}
