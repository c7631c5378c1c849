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

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any


@functools.cache
def _kinds() -> tuple[Callable[[], Any], Callable[[int], Any], Callable[[], Any]]:
    """The lock, bounded semaphore and event classes, chosen at their first use: the
    gunicorn worker has patched the process before it imports the app."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent.event import Event
        from gevent.lock import BoundedSemaphore, Semaphore

        return (lambda: Semaphore(1)), BoundedSemaphore, Event
    return threading.Lock, threading.BoundedSemaphore, threading.Event


def lock() -> Any:
    """A lock that is not reentrant."""
    return _kinds()[0]()


def bounded_semaphore(size: int) -> Any:
    return _kinds()[1](size)


def event() -> Any:
    return _kinds()[2]()
