"""psycopg's wait for the server, done the gevent way (gunicorn only).

psycopg runs every query as a generator that says what it waits for (the socket
readable, writable, or either) and a wait function that waits for it. Under
gevent's monkey-patching psycopg picks `wait_poll`, built on `select.poll`, which
gevent emulates: each wait builds a poll object, a watcher per descriptor, a
result object and a timer. Measured under S1 that emulation cost about twice the
CPU of the query itself. `wait_gevent` waits on one libev I/O watcher, with a
timer only when the caller set a deadline (`notifies(timeout=...)`).

Written for psycopg 3.3 (`psycopg.waiting.wait(gen, fileno, interval, timeout)`,
looked up by `Connection.wait` at each call) and gevent 26.
"""
from __future__ import annotations

from time import monotonic
from typing import Any

import psycopg
from psycopg import waiting
from psycopg.errors import _WaitTimeout


class _Expired(Exception):
    pass


def wait_gevent(gen: Any, fileno: int, interval: float | None = 0.0, timeout: float | None = None) -> Any:  # noqa: ARG001 (psycopg's signature)
    """`psycopg.waiting.wait`, on a gevent I/O watcher.

    `interval` (psycopg's periodic wake-up, for Ctrl-C in a blocking program) is not
    needed here: a greenlet waits without holding anything up. On readiness the
    generator is told that everything it waited for is ready: psycopg's generators
    then flush or read without blocking, and try again if there was nothing."""
    from gevent import get_hub
    from gevent.socket import wait as wait_on_watcher

    hub = get_hub()
    deadline = None if timeout is None else monotonic() + timeout
    try:
        state = next(gen)
        while True:
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                raise _WaitTimeout("wait timeout expired")
            watcher = hub.loop.io(fileno, int(state))  # libev's READ=1, WRITE=2: psycopg's Wait.R, Wait.W
            try:
                wait_on_watcher(watcher, remaining, _Expired)
            except _Expired:
                gen.send(waiting.READY_NONE)
                continue
            finally:
                watcher.close()
            state = gen.send(waiting.Ready(int(state)))
    except StopIteration as stop:
        return stop.value


def install() -> None:
    """Use `wait_gevent` for every psycopg connection of this process."""
    if not psycopg.__version__.startswith("3."):
        raise RuntimeError(f"gevent_psycopg was written for psycopg 3, found {psycopg.__version__}")
    waiting.wait = wait_gevent
