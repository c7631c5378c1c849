"""Moving-window rate limits kept in this process's memory, O(1) amortised per hit.

Why not the `limits` library's `memory://` storage: it starts a timer thread that,
every 10 ms while hits keep coming, rescans every key it holds to drop old entries.
Under load that rescan alone took about a quarter of a gevent worker's CPU. Here
nothing runs between hits:

* Per (kind, user) an entry holds, for each limit item of the kind, a deque of the
  times of the hits it counted, oldest on the left, never longer than the item's
  amount. A hit drops the timestamps that left the window (from the left), is refused
  when the deque is still full, and is otherwise appended.
* Entries live in one `OrderedDict` per kind, in the order they were last hit (a hit
  moves its entry to the end). All items of a kind share one longest window, so the
  entries at the front are the first to have nothing left in any window: each hit
  drops at most a few of those. Memory stays bounded by the users active within the
  longest window (plus what a few hits have not yet dropped); no pass over every key.

Semantics are those of `limits`' `MovingWindowRateLimiter` over its memory storage:
a hit is refused when `amount` hits were counted within the last `seconds` (a hit
exactly `seconds` old still counts); a refused hit is not counted by the item that
refused it nor by the items after it, but stays counted by the items before it
(they were hit first, as `limits` hits them one after the other). The wait returned
with a refusal is when the oldest counted hit leaves the window.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Hashable, Mapping, Sequence

from .. import cooperative

# How many entries at the front of a kind's order one hit may drop: more than the one
# entry a hit can add, so the dropping keeps up, and few enough that no hit pays for a
# long idle stretch at once.
DROP_PER_HIT = 4


class _Entry:
    """One (kind, key): when it was last hit, and a deque of counted hits per limit item."""

    __slots__ = ("last", "stamps")

    def __init__(self, now: float, items: int):
        self.last = now
        self.stamps: tuple[deque[float], ...] = tuple(deque() for _ in range(items))


class MovingWindows:
    """Per kind of event, limits given as (amount, seconds) pairs, all of which apply."""

    def __init__(self, limits: Mapping[str, Sequence[tuple[int, float]]], clock=time.monotonic):
        self._limits = {kind: tuple((int(amount), float(seconds)) for amount, seconds in items)
                        for kind, items in limits.items()}
        self._longest = {kind: max((seconds for _, seconds in items), default=0.0)
                         for kind, items in self._limits.items()}
        self._entries: dict[str, OrderedDict[Hashable, _Entry]] = {kind: OrderedDict() for kind in self._limits}
        self._lock = cooperative.lock()
        self.clock = clock

    def hit(self, kind: str, key: Hashable) -> float | None:
        """Count one hit of `kind` for `key`: None when counted, else the seconds until
        the limit that refused it has room again."""
        limits = self._limits[kind]
        entries = self._entries[kind]
        with self._lock:
            now = self.clock()  # read under the lock: the order of entries is the order of their times
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = _Entry(now, len(limits))
            else:
                entry.last = now
                entries.move_to_end(key)
            self._drop_idle(entries, now - self._longest[kind])

            for stamps, (amount, seconds) in zip(entry.stamps, limits, strict=True):
                horizon = now - seconds
                while stamps and stamps[0] < horizon:
                    stamps.popleft()
                if len(stamps) >= amount:
                    return (stamps[0] if stamps else now) + seconds - now
                stamps.append(now)
            return None

    @staticmethod
    def _drop_idle(entries: OrderedDict, horizon: float) -> None:
        """Drop up to DROP_PER_HIT entries at the front that were last hit before
        `horizon`: every hit they counted has left even the longest window."""
        for _ in range(DROP_PER_HIT):
            oldest = next(iter(entries.values()))  # never empty: the entry just hit is in it
            if oldest.last >= horizon:
                return
            entries.popitem(last=False)

    def __len__(self) -> int:
        """How many (kind, key) entries are held."""
        with self._lock:
            return sum(len(entries) for entries in self._entries.values())
