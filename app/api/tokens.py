"""Flask-JWT-Extended wired to the token service: who a REST request's token names,
whether it is revoked, and each of its failures in the one error shape."""
from __future__ import annotations

import jwt as pyjwt
from flask import Flask, request

from ..errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked, error_response
from ..extensions import jwt
from ..models import User
from ..services import tokens
from ..services.tokens import REQUIRED_CLAIMS


def register_jwt_callbacks(app: Flask) -> None:  # noqa: ARG001 (the callbacks go on the shared `jwt`)
    """Flask-JWT-Extended's own failures, in the one error shape."""

    @jwt.user_lookup_loader
    def _load_user(_header: dict, claims: dict) -> User | None:
        return tokens.user_of(claims)

    @jwt.user_lookup_error_loader
    def _user_gone(_header: dict, _claims: dict):
        return error_response(TokenInvalid("The token's user no longer exists"))

    @jwt.unauthorized_loader
    def _missing(_reason: str):
        return error_response(AuthError("Authentication required: send an Authorization: Bearer token"))

    @jwt.invalid_token_loader
    def _invalid(_reason: str):
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
        return (all(claim in raw for claim in REQUIRED_CLAIMS) and raw["type"] in ("access", "refresh")
                and isinstance(raw["jti"], str) and bool(raw["jti"]))

    @jwt.token_verification_failed_loader
    def _incomplete(_header: dict, _claims: dict):
        return error_response(TokenInvalid("Invalid token"))

    @jwt.token_in_blocklist_loader
    def _is_revoked(_header: dict, claims: dict) -> bool:
        return tokens.is_revoked(claims["jti"])

    @jwt.revoked_token_loader
    def _revoked(_header: dict, _claims: dict):
        return error_response(TokenRevoked())
