"""Tokens to users, for both doors.

REST routes use Flask-JWT-Extended's `jwt_required` and `current_user`; the
socket connect handler (and `refresh_token`) calls `session_from_token`. Both
check the blocklist and answer with the same error codes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from flask import Flask, current_app, request
from flask_jwt_extended import create_access_token, create_refresh_token

from .errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked, error_response
from .extensions import db, jwt
from .models import User
from .schemas import MAX_DB_INT


@dataclass(frozen=True)
class Actor:
    """The user acting, as the services need them: an id and a display name."""

    id: int
    name: str

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(id=user.id, name=user.display_name)


def issue_tokens(user: User) -> dict[str, str]:
    identity = str(user.id)
    return {
        "access_token": create_access_token(identity=identity),
        "refresh_token": create_refresh_token(identity=identity),
    }


def issue_access_token(user_id: int) -> str:
    return create_access_token(identity=str(user_id))


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


_REQUIRED_CLAIMS = ["exp", "iat", "jti", "sub", "type"]


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
            options={"require": _REQUIRED_CLAIMS, "verify_aud": False},
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
    token = rest.strip() if scheme.lower() == "bearer" else token.strip()
    if not token:
        raise AuthError("Authentication error: No token provided")
    return token


def session_from_token(token: Any) -> Session:
    """An unexpired, unrevoked access token of an existing user, or an AuthError
    whose code says which: auth_required, token_expired, token_revoked, token_invalid."""
    from .services import tokens  # services import this module

    claims = decode_claims(_bare_token(token))
    try:
        user_id = user_id_from_claims(claims)
    except TokenInvalid:  # a subject that is not an id: worded like every other refusal
        raise TokenInvalid("Authentication error: Invalid token") from None
    actor, revoked = tokens.actor_and_revocation(user_id, claims["jti"])
    if revoked:
        raise TokenRevoked("Authentication error: Token revoked")
    if actor is None:
        raise TokenInvalid("Authentication error: Invalid token")
    return Session(actor=actor, jti=claims["jti"], expires_at=float(claims["exp"]))


def register_jwt_callbacks(app: Flask) -> None:
    """Flask-JWT-Extended's own failures, in the one error shape."""

    @jwt.user_lookup_loader
    def _load_user(_header: dict, claims: dict) -> User | None:
        return db.session.get(User, user_id_from_claims(claims))

    @jwt.user_lookup_error_loader
    def _user_gone(_header: dict, _claims: dict):
        return error_response(TokenInvalid("The token's user no longer exists"))

    @jwt.unauthorized_loader
    def _missing(reason: str):
        return error_response(AuthError("Authentication required: send an Authorization: Bearer token"))

    @jwt.invalid_token_loader
    def _invalid(reason: str):
        return error_response(TokenInvalid("Invalid token"))

    @jwt.expired_token_loader
    def _expired(_header: dict, _claims: dict):
        return error_response(TokenExpired())

    @jwt.token_verification_loader
    def _complete(_header: dict, _claims: dict) -> bool:
        # Flask-JWT-Extended fills in a missing `type` and `jti` before we see the
        # claims; the token as sent (its signature already verified) must carry them.
        sent = request.headers.get("Authorization", "").partition(" ")[2].strip()
        try:
            raw = pyjwt.decode(sent, options={"verify_signature": False})
        except pyjwt.InvalidTokenError:
            return False
        return (all(claim in raw for claim in _REQUIRED_CLAIMS) and raw["type"] in ("access", "refresh")
                and isinstance(raw["jti"], str) and bool(raw["jti"]))

    @jwt.token_verification_failed_loader
    def _incomplete(_header: dict, _claims: dict):
        return error_response(TokenInvalid("Invalid token"))

    @jwt.token_in_blocklist_loader
    def _is_revoked(_header: dict, claims: dict) -> bool:
        from .services import tokens

        return tokens.is_revoked(claims["jti"])

    @jwt.revoked_token_loader
    def _revoked(_header: dict, _claims: dict):
        return error_response(TokenRevoked())
