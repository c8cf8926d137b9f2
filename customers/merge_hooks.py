"""What apps above customers do when two profiles merge (loyalty combines the accounts).

An app calls ``profile_merge_hook_register("loyalty.accounts", fn)`` from its ``AppConfig.ready``;
``customers.services.profiles.customer_merge`` calls every ``fn(*, survivor, other, user)`` inside its
transaction, with both profiles locked and ``other.merged_into`` already set. A hook that raises
undoes the whole merge. customers never imports those apps.
"""

from __future__ import annotations

from collections.abc import Callable

ProfileMergeHook = Callable[..., None]  # (*, survivor, other, user) -> None

_hooks: dict[str, ProfileMergeHook] = {}


def profile_merge_hook_register(name: str, hook: ProfileMergeHook) -> None:
    """Register (or replace, by name, so a reloaded app does not add twice) a merge hook."""
    _hooks[name] = hook


def profile_merge_hook_unregister(name: str) -> None:
    _hooks.pop(name, None)


def profile_merge_hooks_run(*, survivor, other, user) -> None:
    """Call every registered hook in registration order (the caller holds the merge transaction)."""
    for hook in list(_hooks.values()):
        hook(survivor=survivor, other=other, user=user)
