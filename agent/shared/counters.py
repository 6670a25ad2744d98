"""Counters of what the agent costs: AWS API calls and database connections, read by /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class CallCounters:
    """Monotonic counts since start. Plain ints on the event loop thread: no locking needed."""

    aws_calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (service, operation, outcome)
    db_connections_opened: Counter[str] = field(default_factory=Counter)  # by target
    db_login_attempts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (target, outcome)

    def aws_call(self, service: str, operation: str, outcome: str) -> None:
        """Count one AWS API call; outcome is "success" or the failure's reason."""
        self.aws_calls[(service, operation, outcome)] += 1

    def db_connection_opened(self, target: str) -> None:
        """Count one new database connection (a full login)."""
        self.db_connections_opened[target] += 1

    def db_login_attempt(self, target: str, outcome: str) -> None:
        """Count one login attempt; outcome is "success" or the failure's reason (auth, throttled, ...)."""
        self.db_login_attempts[(target, outcome)] += 1


COUNTERS = CallCounters()
