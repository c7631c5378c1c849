"""Per-user rate limits on socket events, shared by all of the user's sockets.

Moving windows from the `limits` library, kept in memory, or in Redis when
`REDIS_URL` is set so that every process counts the same events. A socket that
keeps hammering after being refused (more than `RATE_LIMIT_REFUSALS` refusals
within a minute) is disconnected.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..auth import Actor
from ..errors import RateLimited
from . import notify
from .presence import SocketKey

log = logging.getLogger(__name__)

# Which setting bounds which kind of event.
KINDS = {
    "messages": "RATE_LIMIT_MESSAGES",
    "typing": "RATE_LIMIT_TYPING",
    "joins": "RATE_LIMIT_JOINS",
    "other": "RATE_LIMIT_OTHER",
}
REFUSAL_WINDOW_SECONDS = 60.0


@dataclass
class Throttle:
    storage: Storage
    limiter: MovingWindowRateLimiter
    items: dict[str, list[RateLimitItem]]


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    # The Redis keys' prefix; a test (or a second deployment on the same Redis) gives its own.
    prefix = app.config.get("RATE_LIMIT_KEY_PREFIX") or "taskchat-socket"
    storage = storage_from_string(url, key_prefix=prefix) if url else storage_from_string("memory://")
    items = {kind: parse_many(app.config[setting]) for kind, setting in KINDS.items()}
    app.extensions["taskchat_throttle"] = Throttle(storage, MovingWindowRateLimiter(storage), items)


def check(actor: Actor, kind: str) -> None:
    """Count one event of `kind` for the user; RateLimited when over any limit."""
    throttle: Throttle = current_app.extensions["taskchat_throttle"]
    who = str(actor.id)
    for item in throttle.items[kind]:
        if not throttle.limiter.hit(item, kind, who):
            reset_at = throttle.limiter.get_window_stats(item, kind, who).reset_time
            raise RateLimited(reset_at - time.time(), f"Too many {kind} events; try again later")


def refused(key: SocketKey) -> None:
    """A rate-limit refusal was answered; past the allowance, the socket is cut off."""
    count = notify.registry().refused(key, time.monotonic(), REFUSAL_WINDOW_SECONDS)
    if count > current_app.config["RATE_LIMIT_REFUSALS"]:
        log.warning("a socket disconnected after %d rate-limit refusals in a minute", count)
        notify.hang_up(key)
