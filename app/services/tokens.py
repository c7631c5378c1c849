"""Revocation: logout gives tokens up; every door checks the blocklist.

A revoked token is kept until it would have expired anyway, then purged: after
its `exp` nobody accepts it, revoked or not.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from ..auth import Actor, decode_claims
from ..errors import TokenExpired, ValidationError
from ..extensions import db
from ..hotdb import read_one
from ..models import RevokedToken, User, display_name, utcnow
from ..realtime import notify


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
    user. Returns the revoked jtis, for the caller to close the sockets that use them.
    A refresh token that is not this user's valid refresh token is refused and
    nothing is revoked; one that has already expired needs no revoking."""
    revoked = [_row(access_claims, actor.id)]
    if refresh_token is not None:
        try:
            claims = decode_claims(refresh_token, token_type="refresh")
        except TokenExpired:
            claims = None
        except Exception:
            raise ValidationError(details={"refreshToken": ["Not a valid refresh token."]}) from None
        if claims is not None:
            if str(claims.get("sub")) != str(actor.id):
                raise ValidationError(details={"refreshToken": ["Not a valid refresh token."]})
            revoked.append(_row(claims, actor.id))
    purge_expired(commit=False)
    for row in revoked:
        db.session.merge(row)  # a second logout with the same token is harmless
    try:
        db.session.commit()
    except IntegrityError:  # the same token revoked concurrently: it is revoked either way
        db.session.rollback()
    jtis = [row.jti for row in revoked]
    notify.tokens_revoked(jtis)
    return jtis


def _row(claims: dict[str, Any], user_id: int) -> RevokedToken:
    return RevokedToken(
        jti=claims["jti"], type=claims["type"], user_id=user_id,
        expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc),
    )


def purge_expired(commit: bool = True) -> int:
    """Forget revocations of tokens that have expired: nobody accepts those anyway."""
    result = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    if commit:
        db.session.commit()
    return result.rowcount or 0
