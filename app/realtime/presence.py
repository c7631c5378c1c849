"""Who is connected, who is in which task room, and who is typing: this process's view.

A socket lives in one process, so the socket table is local by nature. Presence
and typing are per user: a user with three tabs is online once, joins when the
first tab enters and leaves when the last one goes. With several processes each
counts its own sockets; a shared (Redis) registry is future work.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .. import cooperative
from ..actor import Actor

SocketKey = tuple[str, str]  # (namespace, sid)


@dataclass
class SocketState:
    actor: Actor
    jti: str = ""  # the token it connected (or last renewed) with
    expires_at: float = math.inf  # that token's `exp`, epoch seconds
    tasks: set[int] = field(default_factory=set)
    refusals: deque[float] = field(default_factory=deque)  # when rate_limited was answered


@dataclass
class Typing:
    name: str
    announced_at: float
    last_seen: float


class Registry:
    def __init__(self) -> None:
        self._lock = cooperative.lock()
        self._sockets: dict[SocketKey, SocketState] = {}
        self._by_user: dict[int, set[SocketKey]] = {}
        # task id -> user id -> how many of the user's sockets are in the room
        self._present: dict[int, dict[int, int]] = {}
        self._names: dict[int, str] = {}
        self._typing: dict[tuple[int, int], Typing] = {}
        self._sweeping = False
        self._auth_sweeping = False
        # Tokens this process has heard were revoked (logout here, the database's
        # notification, the sweep), with when it heard: an event checks here, not
        # in the database. Kept as long as a token can live, then forgotten.
        self._revoked: dict[str, float] = {}
        # True while the token watcher listens to the database's revocation
        # notifications and has swept since it began: until then, and on SQLite,
        # every event reads the blocklist itself.
        self.hears_revocations = False

    # ---- sockets ----------------------------------------------------------------
    def add_socket(self, key: SocketKey, actor: Actor, jti: str = "", expires_at: float = math.inf,
                   max_per_user: int | None = None) -> bool:
        """False, and nothing added, when the user already has `max_per_user` sockets."""
        with self._lock:
            keys = self._by_user.setdefault(actor.id, set())
            if max_per_user is not None and len(keys) >= max_per_user:
                if not keys:
                    self._by_user.pop(actor.id, None)
                return False
            self._sockets[key] = SocketState(actor, jti, expires_at)
            keys.add(key)
            self._names[actor.id] = actor.name
            return True

    def renew(self, key: SocketKey, jti: str, expires_at: float) -> bool:
        with self._lock:
            state = self._sockets.get(key)
            if state is None:
                return False
            state.jti, state.expires_at = jti, expires_at
            return True

    def expired(self, now: float) -> list[SocketKey]:
        """The sockets whose token's `exp` has passed."""
        with self._lock:
            return [key for key, state in self._sockets.items() if state.expires_at <= now]

    def sessions(self) -> list[tuple[SocketKey, str, float]]:
        """Every socket's token: (key, jti, expires_at)."""
        with self._lock:
            return [(key, state.jti, state.expires_at) for key, state in self._sockets.items()]

    def refused(self, key: SocketKey, now: float, window: float) -> int:
        """Count one more rate-limit refusal; returns how many fell within `window`."""
        with self._lock:
            state = self._sockets.get(key)
            if state is None:
                return 0
            state.refusals.append(now)
            while state.refusals and state.refusals[0] <= now - window:
                state.refusals.popleft()
            return len(state.refusals)

    def remove_socket(self, key: SocketKey) -> SocketState | None:
        """Forget the socket; its rooms must have been left first."""
        with self._lock:
            state = self._sockets.pop(key, None)
            if state is not None:
                keys = self._by_user.get(state.actor.id, set())
                keys.discard(key)
                if not keys:
                    self._by_user.pop(state.actor.id, None)
            return state

    def socket(self, key: SocketKey) -> SocketState | None:
        return self._sockets.get(key)

    def sockets_of(self, user_id: int) -> list[SocketKey]:
        with self._lock:
            return list(self._by_user.get(user_id, ()))

    # ---- rooms ------------------------------------------------------------------
    def enter(self, key: SocketKey, task_id: int) -> bool:
        """True when this is the user's first socket in the room."""
        with self._lock:
            state = self._sockets.get(key)
            if state is None or task_id in state.tasks:
                return False
            state.tasks.add(task_id)
            users = self._present.setdefault(task_id, {})
            users[state.actor.id] = users.get(state.actor.id, 0) + 1
            return users[state.actor.id] == 1

    def leave(self, key: SocketKey, task_id: int) -> bool:
        """True when this was the user's last socket in the room."""
        with self._lock:
            state = self._sockets.get(key)
            if state is None or task_id not in state.tasks:
                return False
            state.tasks.discard(task_id)
            users = self._present.get(task_id, {})
            count = users.get(state.actor.id, 1) - 1
            if count > 0:
                users[state.actor.id] = count
                return False
            users.pop(state.actor.id, None)
            if not users:
                self._present.pop(task_id, None)
            return True

    def online(self, task_id: int) -> list[dict[str, object]]:
        with self._lock:
            users = sorted(self._present.get(task_id, {}))
            return [{"userId": u, "userName": self._names.get(u, "")} for u in users]

    def drop_task(self, task_id: int) -> None:
        with self._lock:
            for state in self._sockets.values():
                state.tasks.discard(task_id)
            self._present.pop(task_id, None)
            for key in [k for k in self._typing if k[0] == task_id]:
                del self._typing[key]

    # ---- typing -----------------------------------------------------------------
    def typing_started(self, task_id: int, actor: Actor, now: float, throttle: float) -> bool:
        """True when `user_typing` should go out: first start, or the throttle has passed."""
        with self._lock:
            state = self._typing.get((task_id, actor.id))
            if state is not None and now - state.announced_at < throttle:
                state.last_seen = now
                return False
            self._typing[(task_id, actor.id)] = Typing(actor.name, now, now)
            return True

    def typing_stopped(self, task_id: int, user_id: int) -> bool:
        """True when the user was typing, so `user_stopped_typing` should go out."""
        with self._lock:
            return self._typing.pop((task_id, user_id), None) is not None

    def typing_expired(self, now: float, timeout: float) -> list[tuple[int, int]]:
        with self._lock:
            gone = [key for key, state in self._typing.items() if now - state.last_seen >= timeout]
            for key in gone:
                del self._typing[key]
            return gone

    def start_sweeping(self) -> bool:
        """True when the caller should start the typing sweeper (none is running)."""
        with self._lock:
            if self._sweeping:
                return False
            self._sweeping = True
            return True

    def stop_sweeping_if_idle(self) -> bool:
        """True when nobody types any more and the sweeper should end. Checked and
        cleared in one step, so a typing that starts meanwhile starts a new sweeper."""
        with self._lock:
            if self._typing:
                return False
            self._sweeping = False
            return True

    def abandon_sweeping(self) -> None:
        with self._lock:
            self._sweeping = False

    # ---- the token sweep ----------------------------------------------------------
    def start_auth_sweep(self) -> bool:
        """True when the caller should start the token sweeper (none is running)."""
        with self._lock:
            if self._auth_sweeping:
                return False
            self._auth_sweeping = True
            return True

    def stop_auth_sweep_if_idle(self) -> bool:
        """True when no socket is open and the sweeper should end (checked and
        cleared in one step, as for typing). From then on nobody listens for
        revocations, so the next socket's events read the blocklist until the
        next sweeper listens."""
        with self._lock:
            if self._sockets:
                return False
            self._auth_sweeping = False
            self.hears_revocations = False
            return True

    # ---- revoked tokens -------------------------------------------------------------
    def tokens_revoked(self, jtis: list[str], now: float) -> None:
        with self._lock:
            for jti in jtis:
                self._revoked[jti] = now

    def token_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def forget_revoked_before(self, moment: float) -> None:
        with self._lock:
            for jti in [jti for jti, heard in self._revoked.items() if heard < moment]:
                del self._revoked[jti]
