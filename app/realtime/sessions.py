"""Open sockets outlive their tokens: each event re-checks, and a sweeper ends
the sockets whose token expired, or was revoked in another process, while idle.

Logout in this process ends its sockets at once (`notify.tokens_revoked`); the
sweeper catches the rest within `AUTH_SWEEP_INTERVAL` (1 s by default).
"""
from __future__ import annotations

import logging
import time

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from ..auth import Actor, Session, session_from_token
from ..errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked
from ..extensions import socketio
from ..services import tokens
from . import notify
from .presence import SocketKey

log = logging.getLogger(__name__)


def opened(key: SocketKey, session: Session) -> bool:
    """Register a socket that passed connect; False when the user has too many."""
    if not notify.connected(key, Actor.of(session.user), session.jti, session.expires_at):
        return False
    if notify.registry().start_auth_sweep():
        socketio.start_background_task(_sweep, current_app._get_current_object())
    return True


def check(key: SocketKey) -> Actor:
    """Before every event: the socket's user, while its token is still good. If the
    token expired or was revoked, the socket hears `auth_expired` and is
    disconnected, and the event is refused."""
    state = notify.registry().socket(key)
    if state is None:  # an event raced the connect handler; treat as unauthenticated
        raise AuthError()
    if state.expires_at <= time.time():
        notify.auth_ended(key, TokenExpired.code)
        raise TokenExpired()
    if tokens.is_revoked(state.jti):
        notify.auth_ended(key, TokenRevoked.code)
        raise TokenRevoked()
    return state.actor


def renew(key: SocketKey, actor: Actor, token: str) -> Session:
    """`refresh_token`: the socket goes on with a new access token of the same user
    (one that would connect); its rooms stay. Anything else is refused, and the
    socket keeps the token it has."""
    session = session_from_token(token)
    if session.user.id != actor.id:
        raise TokenInvalid("The new token belongs to another user")
    notify.registry().renew(key, session.jti, session.expires_at)
    return session


def _sweep(app: Flask) -> None:
    interval = app.config["AUTH_SWEEP_SECONDS"]
    with app.app_context():
        registry = notify.registry()
    while True:
        socketio.sleep(interval)
        try:
            with app.app_context():
                _sweep_once(registry)
        except SQLAlchemyError as exc:
            # The database is down: expiry is still enforced (it needs no database);
            # revocations are caught at the next sweep or event.
            log.warning("token sweep: database unavailable (%s)", type(exc).__name__)
        except Exception:
            log.exception("token sweep failed")
        if registry.stop_auth_sweep_if_idle():
            return


def _sweep_once(registry) -> None:
    now = time.time()
    sessions = registry.sessions()
    live = []
    for key, jti, expires_at in sessions:
        if expires_at <= now:
            notify.auth_ended(key, TokenExpired.code)
        else:
            live.append((key, jti))
    if not live:
        return
    revoked = tokens.revoked_among(jti for _key, jti in live)  # the app context's end removes the session
    for key, jti in live:
        if jti in revoked:
            notify.auth_ended(key, TokenRevoked.code)
