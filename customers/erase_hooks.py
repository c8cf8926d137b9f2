"""What apps above customers do when a person is erased (loyalty closes the account).

An app calls ``profile_erase_hook_register("loyalty.accounts", fn)`` from its ``AppConfig.ready``;
``customers.services.profiles.customer_erase`` calls every ``fn(*, customer, user)`` inside its
transaction, after the profile itself was pseudonymised and only on the first erasure. A hook that
raises undoes the whole erasure. customers never imports those apps.
"""

from __future__ import annotations

from collections.abc import Callable

ProfileEraseHook = Callable[..., None]  # (*, customer, user) -> None

_hooks: dict[str, ProfileEraseHook] = {}


def profile_erase_hook_register(name: str, hook: ProfileEraseHook) -> None:
    """Register (or replace, by name, so a reloaded app does not add twice) an erasure hook."""
    _hooks[name] = hook


def profile_erase_hook_unregister(name: str) -> None:
    _hooks.pop(name, None)


def profile_erase_hooks_run(*, customer, user) -> None:
    """Call every registered hook in registration order (the caller holds the erasure transaction)."""
    for hook in list(_hooks.values()):
        hook(customer=customer, user=user)
