"""Locks, semaphores and events that cost little in the gevent worker.

Where gevent has patched `threading` (the gunicorn worker), `threading.Lock` is
gevent's `LockType`, whose `acquire` is Python code over a semaphore, and
`threading.BoundedSemaphore` and `threading.Event` are the standard library's,
written in Python on a Condition. On the chat path they are taken several times
per message, and together cost several percent of the worker's CPU under S1
(bench/ANALYSIS.md). gevent's own semaphore and event are compiled and act the
same for how this server uses them (`with`, `acquire(timeout=...)`, `wait`).
Elsewhere (`flask run`, the tests) these are the standard library's.

gevent is imported only where it has patched the process: `flask run` never loads it.
"""
from __future__ import annotations

import sys
import threading
from typing import Any


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def lock() -> Any:
    """A lock that is not reentrant."""
    if _gevent_patched():
        from gevent.lock import Semaphore

        return Semaphore(1)
    return threading.Lock()


def bounded_semaphore(size: int) -> Any:
    if _gevent_patched():
        from gevent.lock import BoundedSemaphore

        return BoundedSemaphore(size)
    return threading.BoundedSemaphore(size)


def event() -> Any:
    if _gevent_patched():
        from gevent.event import Event

        return Event()
    return threading.Event()
