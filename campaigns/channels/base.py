"""The channel protocol: check a recipient, build a payload (pure), send it, classify failures.

Payload building does no I/O so it can be tested alone and timed; ``send`` is the only call that
leaves the process, and it raises ``TransientChannelError`` or ``PermanentChannelError`` only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class SendResult:
    provider_id: str = ""
    detail: dict = dataclasses.field(default_factory=dict)


class ChannelBackend(Protocol):
    channel: str

    def recipient_address(self, customer) -> str | None:
        """The address to use for ``customer``, or ``None`` when there is none."""

    def build_payload(self, *, rendered: Any, to: Any, metadata: dict, links: dict) -> Any:
        """A provider payload for one message; no I/O."""

    def send(self, payload: Any) -> SendResult:
        """Hand the payload to the provider."""
