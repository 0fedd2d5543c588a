"""The live policy of a proxy process: the current version, the disclaimer tracker, the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ..config import PolicyConfig
from .disclaimer import DisclaimerTracker
from .engine import Policy


def utc_now() -> datetime:
    return datetime.now(UTC)


class PolicyRuntime:
    """The policy state every connection reads before each decision, so a reload applies at once.

    ``clock`` returns an aware datetime; tests replace it to cross a day boundary.
    """

    def __init__(self, config: PolicyConfig, clock: Callable[[], datetime] = utc_now) -> None:
        self.policy = Policy(config)
        self.disclaimers = DisclaimerTracker()
        self.clock = clock
        self.version = 1

    def replace(self, config: PolicyConfig) -> None:
        """Make ``config`` the policy for every decision from now on."""
        self.policy = Policy(config)
        self.version += 1

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        """Return the current date in the disclaimer time zone."""
        zone = ZoneInfo(self.policy.config.disclaimer.timezone)
        return self.clock().astimezone(zone).date()
