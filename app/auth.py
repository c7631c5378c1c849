"""Tokens to users, for both doors.

REST routes use Flask-JWT-Extended's `jwt_required` and `current_user`; the
socket connect handler calls `user_from_token`. Both end in the same checks
and the same error codes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from flask import Flask
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException

from .errors import AuthError, TokenExpired, TokenInvalid, error_response
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


def user_from_token(token: Any) -> User:
    """An access token (not a refresh token) of an existing user, or an AuthError."""
    if not isinstance(token, str) or not token.strip():
        raise AuthError("Authentication error: No token provided")
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        claims = decode_token(token)
    except pyjwt.ExpiredSignatureError:
        raise TokenExpired("Authentication error: Token expired") from None
    except (pyjwt.InvalidTokenError, JWTExtendedException, ValueError, TypeError):
        raise TokenInvalid("Authentication error: Invalid token") from None
    if claims.get("type") != "access":
        raise TokenInvalid("Authentication error: Invalid token")
    try:
        user_id = user_id_from_claims(claims)
    except TokenInvalid:  # a subject that is not an id: worded like every other refusal
        raise TokenInvalid("Authentication error: Invalid token") from None
    user = db.session.get(User, user_id)
    if user is None:
        raise TokenInvalid("Authentication error: Invalid token")
    return user


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

    @jwt.revoked_token_loader
    def _revoked(_header: dict, _claims: dict):
        return error_response(AuthError("Token has been revoked"))
