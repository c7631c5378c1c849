"""Accounts and tokens."""
from __future__ import annotations

from flask_jwt_extended import current_user, get_jwt, jwt_required
from flask_smorest import Blueprint

from ..auth import Actor, issue_access_token, issue_tokens
from ..schemas import AccessTokenOut, AuthOut, LoginIn, LogoutIn, RegisterIn, UserOut
from ..services import accounts, tokens

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")


@blp.post("/register")
@blp.arguments(RegisterIn)
@blp.response(201, AuthOut)
def register(data):
    user = accounts.register(**data)
    return {"user": user, **issue_tokens(user)}


@blp.post("/login")
@blp.arguments(LoginIn)
@blp.response(200, AuthOut)
def login(data):
    user = accounts.authenticate(**data)
    return {"user": user, **issue_tokens(user)}


@blp.post("/refresh")
@jwt_required(refresh=True)
@blp.response(200, AccessTokenOut)
def refresh():
    """Send the refresh token as the Bearer token; get a new access token."""
    return {"access_token": issue_access_token(current_user.id)}


@blp.post("/logout")
@jwt_required()
@blp.arguments(LogoutIn, required=False)
@blp.response(204)
def logout(data):
    """Revoke the access token sent as Bearer, and the refresh token if given as
    `refreshToken`. Sockets that use them hear `auth_expired` and are disconnected."""
    tokens.logout(Actor.of(current_user), get_jwt(), (data or {}).get("refresh_token"))


@blp.get("/me")
@jwt_required()
@blp.response(200, UserOut)
def me():
    return current_user
