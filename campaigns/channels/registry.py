"""Channel name -> backend; a new channel is one module plus one ``channel_register`` call."""

from __future__ import annotations

from campaigns.channels.base import ChannelBackend

_factories: dict[str, type] = {}


def channel_register(name: str, factory) -> None:
    _factories[name] = factory


def channel_get(name: str, **options) -> ChannelBackend:
    if not _factories:
        _register_defaults()
    try:
        factory = _factories[name]
    except KeyError:
        raise LookupError(f"No channel backend for {name!r}.") from None
    from campaigns.channels.null import NullChannel, null_channels

    if name in null_channels():  # benchmarks: the real payloads, counted instead of sent
        return NullChannel(factory(**options))
    return factory(**options)


def _register_defaults() -> None:
    from campaigns.channels.email import EmailChannel
    from campaigns.channels.push import PushChannel
    from campaigns.channels.sms import SmsChannel

    channel_register("email", EmailChannel)
    channel_register("sms", SmsChannel)
    channel_register("push", PushChannel)
