"""What the API answers with, over REST and Socket.IO alike: the keys of its JSON, its times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


def assert_recent(timestamp: str) -> None:
    """An ISO 8601 UTC time ("…Z") within the last half minute (or the next)."""
    assert timestamp.endswith("Z"), timestamp
    when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - when) < timedelta(seconds=30)
