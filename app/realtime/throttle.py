"""Per-user rate limits on socket events, shared by all of the user's sockets.

Moving windows: a user may send at most `amount` events of a kind within any
`seconds` (every limit of the kind's setting applies, e.g. `100/minute;1000/hour`).

Kept in this process's memory by default, in `windows.MovingWindows`: O(1)
amortised per event and nothing in between. Not the `limits` library's `memory://`
storage: that one runs a timer thread that, every 10 ms while events keep coming,
rescans every key it holds, which took about a quarter of a gevent worker's CPU
under load. With `REDIS_URL` set, the `limits` library's moving
windows in Redis count instead, so that every process counts the same events.

A socket that keeps hammering after being refused (more than `RATE_LIMIT_REFUSALS`
refusals within a minute) is disconnected.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..actor import Actor
from ..errors import RateLimited
from . import notify
from .presence import SocketKey
from .windows import MovingWindows

log = logging.getLogger(__name__)

# Which setting bounds which kind of event.
KINDS = {
    "messages": "RATE_LIMIT_MESSAGES",
    "typing": "RATE_LIMIT_TYPING",
    "joins": "RATE_LIMIT_JOINS",
    "other": "RATE_LIMIT_OTHER",
}
REFUSAL_WINDOW_SECONDS = 60.0


class MemoryThrottle:
    """This process's own count (no `REDIS_URL`)."""

    def __init__(self, items: dict[str, Sequence[RateLimitItem]]):
        self.windows = MovingWindows(
            {kind: [(item.amount, item.get_expiry()) for item in kind_items] for kind, kind_items in items.items()}
        )

    def hit(self, kind: str, user_id: int) -> float | None:
        """None when counted; else the seconds until the user may try again."""
        return self.windows.hit(kind, user_id)


class RedisThrottle:
    """The count every process shares, in Redis, by the `limits` library."""

    def __init__(self, url: str, prefix: str, items: dict[str, Sequence[RateLimitItem]]):
        self.storage = storage_from_string(url, key_prefix=prefix)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.items = items

    def hit(self, kind: str, user_id: int) -> float | None:
        who = str(user_id)
        for item in self.items[kind]:
            if not self.limiter.hit(item, kind, who):
                return self.limiter.get_window_stats(item, kind, who).reset_time - time.time()
        return None


def init_app(app: Flask) -> None:
    items: dict[str, Sequence[RateLimitItem]] = {
        kind: parse_many(app.config[setting]) for kind, setting in KINDS.items()
    }
    url = app.config.get("REDIS_URL")
    if url:
        # The Redis keys' prefix; a test (or a second deployment on the same Redis) gives its own.
        prefix = app.config.get("RATE_LIMIT_KEY_PREFIX") or "taskchat-socket"
        throttle: MemoryThrottle | RedisThrottle = RedisThrottle(url, prefix, items)
    else:
        throttle = MemoryThrottle(items)
    app.extensions["taskchat_throttle"] = throttle


def check(actor: Actor, kind: str) -> None:
    """Count one event of `kind` for the user; RateLimited when over any limit."""
    retry_after = current_app.extensions["taskchat_throttle"].hit(kind, actor.id)
    if retry_after is not None:
        raise RateLimited(retry_after, f"Too many {kind} events; try again later")


def refused(key: SocketKey) -> None:
    """A rate-limit refusal was answered; past the allowance, the socket is cut off."""
    count = notify.registry().refused(key, time.monotonic(), REFUSAL_WINDOW_SECONDS)
    if count > current_app.config["RATE_LIMIT_REFUSALS"]:
        log.warning("a socket disconnected after %d rate-limit refusals in a minute", count)
        notify.hang_up(key)
