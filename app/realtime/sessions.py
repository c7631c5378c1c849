"""Open sockets outlive their tokens: each event re-checks, and a watcher ends the
sockets whose token expired or was revoked while they were idle.

What an event needs is known without a query: the socket's user, its token's
expiry, and whether that token was revoked. Revocations reach this process as
they happen:
- a logout in this process ends its sockets before it answers (`notify.tokens_revoked`);
- on PostgreSQL, every revocation is announced by the database when it commits
  (a trigger's `NOTIFY taskchat_revoked`, migration 0005); the watcher listens and
  ends the sockets at once;
- the watcher also sweeps every `AUTH_SWEEP_SECONDS` (1 s by default): expired
  tokens, and the blocklist read for every open socket, which catches what was
  revoked while it could not listen.
Until the watcher listens and has swept once, and always on SQLite (which has no
such channel), each event reads the blocklist itself, as it must then.
"""
from __future__ import annotations

import logging
import time

import psycopg
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from ..actor import Actor
from ..errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked
from ..extensions import db, socketio
from ..services import tokens
from ..services.tokens import Session, session_from_token
from . import notify
from .presence import Registry, SocketKey

log = logging.getLogger(__name__)

CHANNEL = "taskchat_revoked"
# How long the watcher waits for a notification before it looks whether it is still needed.
_WAIT_SECONDS = 1.0
_CONNECT_TIMEOUT = 10


def opened(key: SocketKey, session: Session) -> bool:
    """Register a socket that passed connect; False when the user has too many."""
    if not notify.connected(key, session.actor, session.jti, session.expires_at):
        return False
    if notify.registry().start_auth_sweep():
        socketio.start_background_task(_watch, current_app._get_current_object())  # type: ignore[attr-defined]  # a LocalProxy, typed as Flask
    return True


def check(key: SocketKey) -> Actor:
    """Before every event: the socket's user, while its token is still good. If the
    token expired or was revoked, the socket hears `auth_expired` and is
    disconnected, and the event is refused."""
    registry = notify.registry()
    state = registry.socket(key)
    if state is None:  # an event raced the connect handler; treat as unauthenticated
        raise AuthError()
    if state.expires_at <= time.time():
        notify.auth_ended(key, TokenExpired.code)
        raise TokenExpired()
    if registry.token_revoked(state.jti) or (not registry.hears_revocations and tokens.is_revoked(state.jti)):
        notify.auth_ended(key, TokenRevoked.code)
        raise TokenRevoked()
    return state.actor


def renew(key: SocketKey, actor: Actor, token: str) -> Session:
    """`refresh_token`: the socket goes on with a new access token of the same user
    (one that would connect); its rooms stay. Anything else is refused, and the
    socket keeps the token it has."""
    session = session_from_token(token)
    if session.actor.id != actor.id:
        raise TokenInvalid("The new token belongs to another user")
    notify.registry().renew(key, session.jti, session.expires_at)
    return session


def _watch(app: Flask) -> None:
    """Runs while this process has sockets: listens for revocations (PostgreSQL)
    and sweeps every interval."""
    interval = app.config["AUTH_SWEEP_SECONDS"]
    token_lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()
    with app.app_context():
        registry = notify.registry()
        conninfo = _conninfo()
    listener: psycopg.Connection | None = None
    next_sweep = time.monotonic() + interval  # as before: the first sweep after one interval
    try:
        while True:
            try:
                listener, next_sweep = _watch_once(app, registry, conninfo, listener, next_sweep, interval,
                                                   token_lifetime)
            except Exception:
                log.exception("token watcher failed; it goes on")
                socketio.sleep(_WAIT_SECONDS)
            if registry.stop_auth_sweep_if_idle():
                return
    finally:
        if listener is not None:
            _close(listener)


def _watch_once(app: Flask, registry: Registry, conninfo: str | None, listener: psycopg.Connection | None,
                next_sweep: float, interval: float, token_lifetime: float
                ) -> tuple[psycopg.Connection | None, float]:
    """One turn: (re)listen, sweep when due, then wait for a notification (or sleep)."""
    if conninfo is not None and listener is None:
        listener = _listen(conninfo)
        if listener is not None:
            _catch_up(app, registry, listener)
    if time.monotonic() >= next_sweep:
        # While every revocation is announced, the sweep has only expiry to look for.
        _sweep_once(app, registry, read_blocklist=not registry.hears_revocations)
        registry.forget_revoked_before(time.monotonic() - token_lifetime)
        next_sweep = time.monotonic() + interval
    wait = min(_WAIT_SECONDS, max(0.0, next_sweep - time.monotonic()))
    if listener is None:
        socketio.sleep(wait)
        return listener, next_sweep
    try:
        jtis = [n.payload for n in listener.notifies(timeout=wait, stop_after=1)]
    except psycopg.Error as exc:
        log.warning("token watcher: lost the database (%s); sweeping until it is back", type(exc).__name__)
        registry.hears_revocations = False
        _close(listener)
        socketio.sleep(wait)
        return None, next_sweep
    if jtis:
        with app.app_context():
            notify.tokens_revoked(jtis)
    return listener, next_sweep


def _conninfo() -> str | None:
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _listen(conninfo: str) -> psycopg.Connection | None:
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn
    except psycopg.Error as exc:
        log.warning("token watcher: cannot listen for revocations (%s); sweeping", type(exc).__name__)
        return None


def _catch_up(app: Flask, registry: Registry, listener: psycopg.Connection) -> None:
    """Right after LISTEN: the open sockets' tokens revoked before it (announced to
    nobody here) end now; from here on every revocation is announced, and events
    stop reading the blocklist. Read on the listener's own connection, which is
    no pooled connection and no session of the app."""
    jtis = list({jti for _key, jti, _expires in registry.sessions()})
    try:
        revoked = [row[0] for row in listener.execute(
            "SELECT jti FROM revoked_tokens WHERE jti = ANY(%s)", (jtis,))] if jtis else []
    except psycopg.Error as exc:
        log.warning("token watcher: cannot read the blocklist (%s)", type(exc).__name__)
        return
    if revoked:
        with app.app_context():
            notify.tokens_revoked(revoked)
    registry.hears_revocations = True


def _close(conn: psycopg.Connection) -> None:
    try:
        conn.close()
    except psycopg.Error:
        pass


def _sweep_once(app: Flask, registry: Registry, read_blocklist: bool = True) -> bool:
    """End the sockets whose token expired or (with `read_blocklist`) is in the
    blocklist. True when the blocklist could be read, or was not needed."""
    try:
        with app.app_context():
            now = time.time()
            for key in registry.expired(now):
                notify.auth_ended(key, TokenExpired.code)
            if not read_blocklist:
                return True
            live = [(key, jti) for key, jti, expires_at in registry.sessions() if expires_at > now]
            if not live:
                return True
            revoked = tokens.revoked_among(jti for _key, jti in live)  # the app context's end removes the session
            for key, jti in live:
                if jti in revoked:
                    notify.auth_ended(key, TokenRevoked.code)
            return True
    except SQLAlchemyError as exc:
        # The database is down: expiry is still enforced (it needs no database);
        # revocations are caught at the next sweep or event.
        log.warning("token sweep: database unavailable (%s)", type(exc).__name__)
        return False
