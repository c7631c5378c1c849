"""Tokens: issuing them, reading them, and revoking them.

REST routes use Flask-JWT-Extended's `jwt_required` and `current_user` (wired to
this module in app/api/tokens.py); the socket connect handler (and
`refresh_token`) calls `session_from_token`. Both check the blocklist and answer
with the same error codes. Logout gives tokens up; a revoked token is kept until
it would have expired anyway, then purged: after its `exp` nobody accepts it,
revoked or not.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import jwt as pyjwt
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import CursorResult, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from .. import aftercommit
from ..actor import Actor
from ..errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked, ValidationError
from ..extensions import db
from ..hotdb import read_one
from ..models import MAX_DB_INT, RevokedToken, User, display_name, utcnow
from .events import TokensRevoked

def issue_tokens(user: User) -> dict[str, str]:
    identity = str(user.id)
    return {
        "access_token": create_access_token(identity=identity),
        "refresh_token": create_refresh_token(identity=identity),
    }


def issue_access_token(user_id: int) -> str:
    token: str = create_access_token(identity=str(user_id))
    return token


def user_id_from_claims(claims: dict[str, Any]) -> int:
    sub = claims.get("sub")
    # ASCII digits only ("²".isdigit() is true), and an id the users table can hold:
    # PostgreSQL refuses a larger integer outright, which would be a 500.
    if not isinstance(sub, str) or not (sub.isascii() and sub.isdigit()) or not 1 <= int(sub) <= MAX_DB_INT:
        raise TokenInvalid()
    return int(sub)


@dataclass(frozen=True)
class Session:
    """What an open socket keeps of its token: who, which token, and until when."""

    actor: Actor
    jti: str
    expires_at: float  # epoch seconds


REQUIRED_CLAIMS = ["exp", "iat", "jti", "sub", "type"]


def decode_claims(token: str, token_type: str = "access") -> dict[str, Any]:
    """Verify a token as RFC 8725 asks: only the configured algorithm (so neither
    `alg: none` nor a key-confusion trick), the signature, `exp` with zero leeway,
    a future `nbf` refused, every claim we rely on present, and the token type.
    Flask-JWT-Extended's `decode_token` fills in a missing `type` and `jti`, so
    PyJWT is called directly. Revocation is checked by the caller (it needs the
    database)."""
    config = current_app.config
    try:
        claims = pyjwt.decode(
            token, config["JWT_SECRET_KEY"], algorithms=[config["JWT_ALGORITHM"]], leeway=0,
            options={"require": REQUIRED_CLAIMS, "verify_aud": False},
        )
    except pyjwt.ExpiredSignatureError:
        raise TokenExpired("Authentication error: Token expired") from None
    except (pyjwt.InvalidTokenError, ValueError, TypeError):
        raise TokenInvalid("Authentication error: Invalid token") from None
    if claims.get("type") != token_type or not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise TokenInvalid("Authentication error: Invalid token")
    if not isinstance(claims.get("exp"), (int, float)) or isinstance(claims.get("exp"), bool):
        raise TokenInvalid("Authentication error: Invalid token")
    return claims


def _bare_token(token: Any) -> str:
    if not isinstance(token, str) or not token.strip():
        raise AuthError("Authentication error: No token provided")
    scheme, _, rest = token.strip().partition(" ")
    bare = rest.strip() if scheme.lower() == "bearer" else token.strip()
    if not bare:
        raise AuthError("Authentication error: No token provided")
    return bare


def session_from_token(token: Any) -> Session:
    """An unexpired, unrevoked access token of an existing user, or an AuthError
    whose code says which: auth_required, token_expired, token_revoked, token_invalid."""
    claims = decode_claims(_bare_token(token))
    try:
        user_id = user_id_from_claims(claims)
    except TokenInvalid:  # a subject that is not an id: worded like every other refusal
        raise TokenInvalid("Authentication error: Invalid token") from None
    actor, revoked = actor_and_revocation(user_id, claims["jti"])
    if revoked:
        raise TokenRevoked("Authentication error: Token revoked")
    if actor is None:
        raise TokenInvalid("Authentication error: Invalid token")
    return Session(actor=actor, jti=claims["jti"], expires_at=float(claims["exp"]))


def user_of(claims: dict[str, Any]) -> User | None:
    """The user a verified token names, if they still exist."""
    return db.session.get(User, user_id_from_claims(claims))


def is_revoked(jti: str) -> bool:
    return db.session.get(RevokedToken, jti) is not None


_USER_AND_REVOCATION = select(
    User.id, User.first_name, User.last_name,
    select(RevokedToken.jti).where(RevokedToken.jti == bindparam("jti")).exists().label("revoked"),
).where(User.id == bindparam("user_id"))


def actor_and_revocation(user_id: int, jti: str) -> tuple[Actor | None, bool]:
    """At connect, in one statement: the token's user (None if gone) and whether the
    token is revoked. It runs for every socket that connects, so on a hot connection
    (app/hotdb.py) where there is one."""
    row = read_one(_USER_AND_REVOCATION, {"user_id": user_id, "jti": jti})
    if row is None:
        return None, is_revoked(jti)
    uid, first_name, last_name, revoked = row
    return Actor(id=uid, name=display_name(uid, first_name, last_name)), bool(revoked)


def revoked_among(jtis: Iterable[str]) -> set[str]:
    """Which of these tokens are revoked: one query for a sweep of open sockets."""
    wanted = list(set(jtis))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(db.session.scalars(select(RevokedToken.jti).where(RevokedToken.jti.in_(chunk))))
    return found


def logout(actor: Actor, access_claims: dict[str, Any], refresh_token: str | None = None) -> list[str]:
    """Revoke the access token in use and, if given, the refresh token of the same
    user. Returns the revoked jtis; once the revocation commits, this process's sockets
    that use them end (`TokensRevoked`). A refresh token that is not this user's valid refresh token is refused and
    nothing is revoked; one that has already expired needs no revoking."""
    revoked = [_row(access_claims, actor.id)]
    if refresh_token is not None:
        try:
            claims = decode_claims(refresh_token, token_type="refresh")
        except TokenExpired:
            claims = None
        except Exception:  # noqa: BLE001 (a token that cannot be read, whatever the reason, is refused)
            raise ValidationError(details={"refreshToken": ["Not a valid refresh token."]}) from None
        if claims is not None:
            if str(claims.get("sub")) != str(actor.id):
                raise ValidationError(details={"refreshToken": ["Not a valid refresh token."]})
            revoked.append(_row(claims, actor.id))
    purge_expired(commit=False)
    for row in revoked:
        db.session.merge(row)  # a second logout with the same token is harmless
    jtis = [row.jti for row in revoked]
    aftercommit.record(TokensRevoked(jtis))
    try:
        db.session.commit()
    except IntegrityError:  # the same token revoked concurrently: it is revoked either way,
        db.session.rollback()  # by that other commit, so the sockets still end
        aftercommit.committed(TokensRevoked(jtis))
    return jtis


def _row(claims: dict[str, Any], user_id: int) -> RevokedToken:
    return RevokedToken(
        jti=claims["jti"], type=claims["type"], user_id=user_id,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


def purge_expired(commit: bool = True) -> int:
    """Forget revocations of tokens that have expired: nobody accepts those anyway."""
    # A DELETE's result is a CursorResult, which has the rowcount (typed as the base Result).
    result = cast("CursorResult[Any]", db.session.execute(
        delete(RevokedToken).where(RevokedToken.expires_at < utcnow())
    ))
    if commit:
        db.session.commit()
    return result.rowcount or 0
