"""Accounts and tokens."""
from __future__ import annotations

import hashlib

from flask import current_app, request
from flask_jwt_extended import current_user, get_jwt
from flask_smorest import Blueprint

from ..extensions import limiter
from ..schemas.inputs import LoginIn, LogoutIn, RegisterIn
from ..schemas.outputs import AccessTokenOut, AuthOut, UserOut
from ..services import accounts, tokens
from ..services.tokens import issue_access_token, issue_tokens
from .openapi import token_required

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")


# ---- throttling (Flask-Limiter): every attempt counts, before its body is read ------
# Flask-Limiter counts a decorated route when the view is called: these decorators sit
# above @blp.arguments, so a malformed body (422) counts too, while a CORS preflight,
# which Flask answers without calling the view, does not (methods= says so again).
# The client is the TCP peer (request.remote_addr), unless TRUSTED_PROXY_COUNT says
# how many proxies' X-Forwarded-For entries to believe. The account is the email as
# login looks it up (normalized), hashed: neither Redis keys nor the limiter's log
# line carry an address. An unknown email is counted like a known one, so the 429
# says nothing about who has an account. These functions must never raise: an
# exception inside Flask-Limiter counts as a storage failure.
def _client_key() -> str:
    return "ip:" + (request.remote_addr or "unknown")


def _login_email() -> str | None:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        return None  # LoginIn refuses it (422); the per-IP limit still counts it
    return accounts.normalize_email(email)


def _account_key() -> str:
    email = _login_email() or ""
    return "account:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _rate(setting: str):
    return lambda: current_app.config[setting]


@blp.post("/register")
@limiter.limit(_rate("REGISTER_RATE_LIMIT_IP"), key_func=_client_key, methods=["POST"])
@blp.arguments(RegisterIn)
@blp.response(201, AuthOut)
def register(data):
    user = accounts.register(**data)
    return {"user": user, **issue_tokens(user)}


@blp.post("/login")
@limiter.limit(_rate("LOGIN_RATE_LIMIT_IP"), key_func=_client_key, methods=["POST"])
@limiter.limit(
    _rate("LOGIN_RATE_LIMIT_ACCOUNT"), key_func=_account_key, methods=["POST"], exempt_when=lambda: not _login_email()
)
@blp.arguments(LoginIn)
@blp.response(200, AuthOut)
def login(data):
    user = accounts.authenticate(**data)
    return {"user": user, **issue_tokens(user)}


@blp.post("/refresh")
@token_required(refresh=True)
@blp.response(200, AccessTokenOut)
def refresh():
    """Send the refresh token as the Bearer token; get a new access token."""
    return {"access_token": issue_access_token(current_user.id)}


@blp.post("/logout")
@token_required()
@blp.arguments(LogoutIn, required=False)
@blp.response(204)
def logout(data):
    """Revoke the access token sent as Bearer, and the refresh token if given as
    `refreshToken`. Sockets that use them hear `auth_expired` and are disconnected."""
    tokens.logout(accounts.actor_of(current_user), get_jwt(), (data or {}).get("refresh_token"))


@blp.get("/me")
@token_required()
@blp.response(200, UserOut)
def me():
    return current_user
