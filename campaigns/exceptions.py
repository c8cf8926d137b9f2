class CampaignError(Exception):
    """Base of every error a campaigns service raises on purpose; its message is fit to show."""


class TransitionError(CampaignError):
    """A status change the campaign's state machine does not allow."""


class NotReadyError(CampaignError):
    """A campaign that cannot be scheduled yet; ``problems`` lists why."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class ChannelError(CampaignError):
    """A channel could not deliver a message."""


class TransientChannelError(ChannelError):
    """Worth retrying later (timeouts, 5xx, rate limits).

    ``retry_after``: seconds the provider asked us to wait (its Retry-After), when it said; ``throttled``:
    the provider refused for our sending rate (HTTP 429), which slows every worker sending through it.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, throttled: bool = False):
        self.retry_after = retry_after
        self.throttled = throttled
        super().__init__(message)


class PermanentChannelError(ChannelError):
    """Never retry (bad address, opted out at the carrier, rejected content)."""

    def __init__(self, message: str, *, opted_out: bool = False):
        self.opted_out = opted_out
        super().__init__(message)


class ChannelNotConfiguredError(PermanentChannelError):
    """The provider's credentials or sender are missing: refused before anything leaves the process.

    Permanent for the message as it stands (a retry fails the same way until settings change).
    """
