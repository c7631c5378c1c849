"""Group commit: requests that arrive while the database is busy go together.

Under load, most of what a chat send costs this process is not its statement's
work in PostgreSQL but the round trip around it: psycopg's execute, the wait on
the socket, the wake-up, and a commit in the server. A `Batcher` lets the first
request run at once, alone, and gathers every request that arrives while
`in_flight` batches are running; when one finishes, the requests gathered so far
go as the next batch, in one call of `run`. At low load every request is a
batch of one and waits for nothing; under load the cost of a round trip is
shared by everything that queued behind it.

No thread or greenlet of its own: a request's own caller runs the batch that
holds it (the first one to find a free turn, the "leader"), and a leader that
finishes wakes the oldest waiting request to lead the next batch.

`run(items)` answers one result per item, in order; a result that is an
exception is raised to that item's caller alone. An exception from `run` itself
reaches every caller of the batch. Two items with the same `key` never share a
batch (the chat send's statement locks one row per task; see chat_fast.py).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from . import cooperative

T = TypeVar("T")
R = TypeVar("R")


class _Request(Generic[T, R]):
    __slots__ = ("item", "key", "done", "result", "error", "wake")

    def __init__(self, item: T, key: Hashable) -> None:
        self.item = item
        self.key = key
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None
        self.wake = cooperative.event()


class Batcher(Generic[T, R]):
    def __init__(
        self, run: Callable[[list[T]], Sequence[R | BaseException]], *,
        key: Callable[[T], Hashable], max_size: int, in_flight: int,
    ) -> None:
        self._run = run
        self._key = key
        self._max_size = max_size
        self._in_flight = in_flight
        self._running = 0
        self._pending: list[_Request[T, R]] = []
        self._lock = cooperative.lock()
        self.sizes: dict[int, int] = {}  # batch size -> how many batches of that size ran (tests read it)

    def submit(self, item: T) -> R:
        request: _Request[T, R] = _Request(item, self._key(item))
        with self._lock:
            self._pending.append(request)
        try:
            while True:
                # Cleared before looking: a wake-up that comes after the look is kept.
                request.wake.clear()
                with self._lock:
                    if request.done:
                        break
                    batch = self._take() if self._running < self._in_flight else None
                if batch is None:
                    request.wake.wait()
                else:
                    self._lead(batch)
        except BaseException:
            with self._lock:  # killed while waiting: its item must not run later unseen
                if request in self._pending:
                    self._pending.remove(request)
            raise
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]

    def _take(self) -> list[_Request[T, R]] | None:
        """The next batch, oldest first (under the lock)."""
        if not self._pending:
            return None
        batch: list[_Request[T, R]] = []
        keys: set[Hashable] = set()
        rest: list[_Request[T, R]] = []
        for request in self._pending:
            if len(batch) < self._max_size and request.key not in keys:
                keys.add(request.key)
                batch.append(request)
            else:
                rest.append(request)
        self._pending = rest
        self._running += 1
        self.sizes[len(batch)] = self.sizes.get(len(batch), 0) + 1
        return batch

    def _lead(self, batch: list[_Request[T, R]]) -> None:
        try:
            try:
                results: Sequence[Any] = self._run([r.item for r in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            except Exception as error:  # noqa: BLE001 - an error of `run` is every caller's (see above)
                results = [error] * len(batch)
            except BaseException:
                # The leader itself is being stopped: the others hear an error,
                # not the leader's own exit.
                for request in batch:
                    request.error = RuntimeError("the batch was interrupted")
                raise
            for request, result in zip(batch, results, strict=True):  # same length: checked above
                if isinstance(result, BaseException):
                    request.error = result
                else:
                    request.result = result
        finally:
            with self._lock:
                self._running -= 1
                for request in batch:
                    request.done = True
                following = self._pending[0] if self._pending else None
            for request in batch:
                request.wake.set()
            if following is not None:
                following.wake.set()  # to lead the next batch
