"""Who is acting: the one value every service takes first, whichever door it came in by."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The user acting, as the services need them: an id and a display name."""

    id: int
    name: str
