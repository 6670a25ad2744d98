"""The botocore `after-call` handler that reads each AWS answer's `Date` header into agent.shared.clock.CLOCK.

`after-call` fires for every answer botocore parsed, errors included (a "Signature expired" answer carries a Date
too), and for the credential chain's own STS calls (clients copy the session's handlers). Public botocore API:
the handler receives `http_response` (an AWSResponse with `headers`).
"""

from __future__ import annotations

import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from agent.shared.clock import CLOCK, ClockSkew


def note_date(http_response: Any = None, clock: ClockSkew = CLOCK, **_: Any) -> None:
    """Compare the answer's `Date` (RFC 7231 IMF-fixdate) with the local clock; a missing or bad one is ignored."""
    local = time.time()
    headers = getattr(http_response, "headers", None)
    value = headers.get("Date") if headers is not None else None
    if not isinstance(value, str) or len(value) > 64:  # no real Date is longer; a stand-in's junk is not parsed
        return
    try:
        server = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return
    if server.tzinfo is None:  # "-0000": RFC 7231's Date is always GMT
        server = server.replace(tzinfo=UTC)
    clock.note(server.timestamp(), local)
