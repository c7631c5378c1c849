"""Tokens and sessions: what connect accepts, logout, expiry and revocation on
open sockets, renewing in place (RFC 8725; OWASP WebSocket cheat sheet).

Tokens are forged here with PyJWT, signed with the test secret unless a test is
about the signature, so that every claim can be bent one at a time.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, UTC

import jwt
import pytest

from app import create_app
from app.extensions import db
from app.models import ChatMessage, RevokedToken
from toolkit.database import dialect
from toolkit.env import JWT_SECRET, app_env
from toolkit.sockets import emit, events, join, send


def forge(user_id: int, *, secret: str = JWT_SECRET, algorithm: str = "HS256", drop: tuple[str, ...] = (),
          **claims) -> str:
    """An access token as Flask-JWT-Extended makes it, with `claims` changed and `drop` left out."""
    now = int(time.time())
    body = {"fresh": False, "iat": now, "jti": str(uuid.uuid4()), "type": "access", "sub": str(user_id),
            "nbf": now, "exp": now + 600, **claims}
    for claim in drop:
        body.pop(claim, None)
    return jwt.encode(body, secret, algorithm=algorithm)


def unsigned(user_id: int) -> str:
    """`alg: none`: a header and a body, no signature."""
    return jwt.encode({"sub": str(user_id), "type": "access", "jti": "x", "iat": 0, "exp": 2**31},
                      key=None, algorithm="none")


@pytest.fixture
def connect_error(refused):
    """The `data` of the refused client's `connect_error`."""

    def attempt(auth, headers=None, namespace="/tasks") -> dict:
        error = refused(namespace, auth=auth, headers=headers)
        assert error["message"].startswith("Authentication error"), error
        return error["data"]

    return attempt


# ---- what connect accepts ---------------------------------------------------------
@pytest.mark.parametrize("namespace", ["/tasks", "/"])
@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"token": "   "}, {"token": None}, {"token": "Bearer "}])
def test_connect_without_a_token_is_auth_required(connect_error, auth, namespace):
    assert connect_error(auth, namespace=namespace)["code"] == "auth_required"


@pytest.mark.parametrize("auth", ["a-token-as-a-string", ["token"], 42, True])
def test_connect_with_an_auth_that_is_not_an_object_is_auth_required(connect_error, alice, auth):
    if isinstance(auth, str):
        auth = alice.token  # even a valid token, if not inside {token}
    assert connect_error(auth)["code"] == "auth_required"


def test_a_valid_token_connects_from_auth_or_the_authorization_header(socket, alice):
    assert socket(alice).is_connected("/tasks")
    assert socket(None, auth=None, headers={"Authorization": f"Bearer {alice.token}"}).is_connected("/tasks")
    assert socket(None, auth={"token": forge(alice.id)}).is_connected("/tasks")


@pytest.mark.parametrize("case", [
    "bad_signature", "alg_none", "hs512", "hs384", "nbf_in_future", "refresh_token",
    "no_jti", "no_type", "no_exp", "no_iat", "no_sub", "type_other", "sub_not_a_number", "sub_too_big",
    "user_gone", "garbage", "jti_not_a_string",
])
def test_every_other_bad_token_is_token_invalid_on_both_doors(connect_error, client, alice, case):
    token = {
        "bad_signature": lambda: forge(alice.id, secret="another-secret-" + "y" * 32),
        "alg_none": lambda: unsigned(alice.id),
        "hs512": lambda: forge(alice.id, algorithm="HS512"),
        "hs384": lambda: forge(alice.id, algorithm="HS384"),
        "nbf_in_future": lambda: forge(alice.id, nbf=int(time.time()) + 60),
        "refresh_token": lambda: alice.refresh_token,
        "no_jti": lambda: forge(alice.id, drop=("jti",)),
        "no_type": lambda: forge(alice.id, drop=("type",)),
        "no_exp": lambda: forge(alice.id, drop=("exp",)),
        "no_iat": lambda: forge(alice.id, drop=("iat",)),
        "no_sub": lambda: forge(alice.id, drop=("sub",)),
        "type_other": lambda: forge(alice.id, type="id"),
        "sub_not_a_number": lambda: forge(alice.id, sub="alice"),
        "sub_too_big": lambda: forge(alice.id, sub=str(2**40)),
        "user_gone": lambda: forge(alice.id + 1000),
        "garbage": lambda: "not.a.jwt",
        "jti_not_a_string": lambda: forge(alice.id, jti=12345),
    }[case]()
    assert connect_error({"token": token})["code"] == "token_invalid"
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "token_invalid"


def test_an_expired_token_is_refused_with_zero_leeway(connect_error, client, alice):
    # One second past `exp`: any leeway (Flask-JWT-Extended's default is 0, PyJWT's
    # callers often allow 10-60 s) would let it through.
    token = forge(alice.id, exp=int(time.time()) - 1, iat=int(time.time()) - 60, nbf=int(time.time()) - 60)
    assert connect_error({"token": token})["code"] == "token_expired"
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (401, "token_expired")


@pytest.mark.parametrize("settings", [{"JWT_ALGORITHM": "HS512"}])
def test_the_configured_algorithm_is_the_only_one_accepted(connect_error, socket, alice):
    assert connect_error({"token": forge(alice.id, algorithm="HS256")})["code"] == "token_invalid"
    assert socket(None, auth={"token": forge(alice.id, algorithm="HS512")}).is_connected("/tasks")


# ---- logout -----------------------------------------------------------------------------
def logout(client, user, refresh_token=None, token=None):
    body = {"refreshToken": refresh_token} if refresh_token is not None else None
    return client.post("/api/auth/logout", json=body,
                       headers={"Authorization": f"Bearer {token or user.token}"})


def test_logout_revokes_the_access_token_for_rest_and_sockets(connect_error, client, alice):
    assert logout(client, alice).status_code == 204
    response = client.get("/api/auth/me", headers=alice.headers)
    assert (response.status_code, response.get_json()["error"]["code"]) == (401, "token_revoked")
    assert connect_error({"token": alice.token})["code"] == "token_revoked"
    # A second logout with the same token is refused like any other use of it.
    assert logout(client, alice).status_code == 401


def test_logout_with_the_refresh_token_revokes_both(client, alice):
    assert logout(client, alice, alice.refresh_token).status_code == 204
    response = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {alice.refresh_token}"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (401, "token_revoked")


def test_logout_without_the_refresh_token_leaves_it_usable(client, alice):
    assert logout(client, alice).status_code == 204
    response = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {alice.refresh_token}"})
    assert response.status_code == 200
    new = response.get_json()["accessToken"]
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200


@pytest.mark.parametrize("which", ["bob's", "an access token", "garbage", "empty"])
def test_logout_refuses_a_refresh_token_that_is_not_the_users_and_revokes_nothing(app, client, alice, bob, which):
    refresh = {"bob's": bob.refresh_token, "an access token": alice.token, "garbage": "x.y.z", "empty": ""}[which]
    response = logout(client, alice, refresh)
    assert (response.status_code, response.get_json()["error"]["code"]) == (422, "validation_error")
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200
    with app.app_context():
        assert db.session.query(RevokedToken).count() == 0


def test_logout_needs_a_valid_access_token(client, alice):
    assert client.post("/api/auth/logout").status_code == 401
    response = client.post("/api/auth/logout", headers={"Authorization": f"Bearer {alice.refresh_token}"})
    assert response.status_code == 401


def test_logout_ends_the_open_sockets_of_that_token_at_once(socket, client, alice, bob, task):
    mine = socket(alice)
    join(mine, task["id"])
    other_token = client.post("/api/auth/login", json={"email": alice.email, "password": alice.password})
    other_device = socket(None, auth={"token": other_token.get_json()["accessToken"]})
    watcher = socket(bob)
    join(watcher, task["id"])
    watcher.get_received("/tasks")

    assert logout(client, alice).status_code == 204

    # No waiting: logout answers after the sockets were told and cut off.
    assert received(mine, "auth_expired") == [{"code": "token_revoked"}]
    assert not mine.is_connected("/tasks")
    assert other_device.is_connected("/tasks")  # another token of the same user
    assert [e["userId"] for e in events(watcher, "user_left")] == [alice.id]
    assert send(watcher, task["id"], "still here")["ok"] is True


def revoke_elsewhere(app, token: str) -> None:
    """What another server process's logout leaves behind: a row in the blocklist.
    (A second app in this process would take over the shared Socket.IO server.)"""
    claims = jwt.decode(token, options={"verify_signature": False})
    with app.app_context():
        db.session.add(RevokedToken(jti=claims["jti"], type="access", user_id=int(claims["sub"]),
                                    expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
        db.session.commit()


def received(sock, name: str, namespace: str = "/tasks") -> list:
    """Like `events`, but also after the server has disconnected the socket."""
    return [p["args"][0] for p in sock.queue if p["namespace"] == namespace and p["name"] == name]


def test_a_revocation_made_by_another_process_reaches_an_idle_socket_by_the_sweep(app, socket, alice):
    sock = socket(alice)
    revoke_elsewhere(app, alice.token)
    deadline = time.monotonic() + 10  # the sweep runs every second; this is a bound, not the measure
    while sock.is_connected("/tasks") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sock.is_connected("/tasks")
    assert received(sock, "auth_expired") == [{"code": "token_revoked"}]


def test_a_revoked_token_is_refused_at_the_next_event(app, socket, alice, task):
    """SQLite has no channel to announce a revocation: each event reads the blocklist."""
    if dialect(app) == "postgresql":
        pytest.skip("PostgreSQL announces revocations: see the test below")
    app.config["AUTH_SWEEP_SECONDS"] = 3600  # no sweep: the event itself must notice
    sock = socket(alice)
    revoke_elsewhere(app, alice.token)
    ack = send(sock, task["id"], "after logout")
    assert ack["ok"] is False and ack["error"]["code"] == "token_revoked"
    assert received(sock, "auth_expired") == [{"code": "token_revoked"}]
    assert not sock.is_connected("/tasks")
    with app.app_context():
        assert db.session.query(ChatMessage).count() == 0


def test_a_revocation_by_another_process_ends_the_socket_as_the_database_announces_it(app, socket, alice, task):
    """PostgreSQL announces each revocation as it commits; this process ends the token's
    sockets then, without the sweep and without any event reading the blocklist."""
    if dialect(app) != "postgresql":
        pytest.skip("SQLite has no channel to announce a revocation: see the test above")
    app.config["AUTH_SWEEP_SECONDS"] = 3600  # no sweep: only the announcement can do it
    sock = socket(alice)
    with app.app_context():
        registry = app.extensions["taskchat_presence"]
    deadline = time.monotonic() + 10  # a bound for a busy machine, not the measure
    while not registry.hears_revocations and time.monotonic() < deadline:
        time.sleep(0.01)
    assert registry.hears_revocations, "the watcher listens once the socket is open"

    revoke_elsewhere(app, alice.token)
    revoked_at = time.monotonic()
    while sock.is_connected("/tasks") and time.monotonic() < deadline:
        time.sleep(0.005)
    print(f"\nrevocation committed elsewhere to socket ended: {time.monotonic() - revoked_at:.3f} s")
    assert not sock.is_connected("/tasks")
    assert received(sock, "auth_expired") == [{"code": "token_revoked"}]
    with app.app_context():
        assert db.session.query(ChatMessage).count() == 0


# ---- expiry while connected ------------------------------------------------------------------
def test_an_event_after_expiry_is_refused_and_the_socket_closed(app, socket, alice, task):
    app.config["AUTH_SWEEP_SECONDS"] = 3600
    sock = socket(None, auth={"token": forge(alice.id, exp=int(time.time()) + 2)})
    assert join(sock, task["id"])["ok"] is True
    time.sleep(2.2)
    ack = send(sock, task["id"], "too late")
    assert ack["ok"] is False and ack["error"]["code"] == "token_expired"
    assert received(sock, "auth_expired") == [{"code": "token_expired"}]
    assert not sock.is_connected("/tasks")


def test_an_idle_socket_is_closed_by_the_sweep_after_expiry(socket, alice):
    sock = socket(None, auth={"token": forge(alice.id, exp=int(time.time()) + 1)})
    deadline = time.monotonic() + 10
    while sock.is_connected("/tasks") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sock.is_connected("/tasks")
    assert received(sock, "auth_expired") == [{"code": "token_expired"}]


# ---- renewing in place ----------------------------------------------------------------
def test_refresh_token_renews_in_place_and_the_socket_keeps_its_rooms(app, client, socket, alice, bob, task):
    app.config["AUTH_SWEEP_SECONDS"] = 0.2
    sock = socket(None, auth={"token": forge(alice.id, exp=int(time.time()) + 2)})
    join(sock, task["id"])
    renewed = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {alice.refresh_token}"})
    new_token = renewed.get_json()["accessToken"]
    ack = emit(sock, "refresh_token", {"token": new_token})
    assert ack["ok"] is True
    expected_exp = jwt.decode(new_token, options={"verify_signature": False})["exp"]
    assert datetime.fromisoformat(ack["data"]["expiresAt"].replace("Z", "+00:00")) == datetime.fromtimestamp(
        expected_exp, UTC)

    time.sleep(2.5)  # past the first token's exp, and several sweeps
    assert sock.is_connected("/tasks")
    assert events(sock, "auth_expired") == []
    watcher = socket(bob)
    assert send(watcher, task["id"], "do you still hear me?")["ok"] is True
    assert [m["message"]["message"] for m in events(sock, "new_message")] == ["do you still hear me?"]
    assert send(sock, task["id"], "yes")["ok"] is True


def test_after_renewing_logout_of_the_new_token_ends_the_socket(client, socket, alice):
    sock = socket(alice)
    new_token = client.post("/api/auth/refresh",
                            headers={"Authorization": f"Bearer {alice.refresh_token}"}).get_json()["accessToken"]
    assert emit(sock, "refresh_token", {"token": new_token})["ok"] is True
    assert logout(client, alice).status_code == 204  # the old token: the socket no longer uses it
    assert sock.is_connected("/tasks")
    assert logout(client, alice, token=new_token).status_code == 204
    assert received(sock, "auth_expired") == [{"code": "token_revoked"}]
    assert not sock.is_connected("/tasks")


@pytest.mark.parametrize("which, code", [
    ("another user's", "token_invalid"), ("a refresh token", "token_invalid"), ("expired", "token_expired"),
    ("revoked", "token_revoked"), ("garbage", "token_invalid"),
])
def test_refresh_token_refuses_a_token_that_would_not_connect_and_keeps_the_old_one(
        client, socket, alice, bob, task, which, code):
    sock = socket(alice)
    join(sock, task["id"])
    token = {
        "another user's": lambda: bob.token,
        "a refresh token": lambda: alice.refresh_token,
        "expired": lambda: forge(alice.id, exp=int(time.time()) - 1),
        "revoked": lambda: _revoked_token(client, alice),
        "garbage": lambda: "not-a-token",
    }[which]()
    ack = emit(sock, "refresh_token", {"token": token})
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert sock.is_connected("/tasks")
    assert send(sock, task["id"], "still alice, still joined")["ok"] is True


def _revoked_token(client, user) -> str:
    token = client.post("/api/auth/login", json={"email": user.email, "password": user.password}).get_json()[
        "accessToken"]
    assert logout(client, user, token=token).status_code == 204
    return token


@pytest.mark.parametrize("payload", [None, {}, {"token": ""}, {"token": 5}, "token", [1]])
def test_refresh_token_with_a_malformed_payload_is_a_validation_error(socket, alice, payload):
    sock = socket(alice)
    ack = emit(sock, "refresh_token", payload) if payload is not None else emit(sock, "refresh_token")
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error"
    assert sock.is_connected("/tasks")


# ---- revocations are stored, and purged when they no longer matter -------------------------
def test_revocations_survive_a_restart(database_url, tmp_path, client, alice):
    assert logout(client, alice).status_code == 204
    restarted = create_app(env=app_env(database_url, ATTACHMENTS_DIR=str(tmp_path / "restarted")))
    try:
        response = restarted.test_client().get("/api/auth/me", headers=alice.headers)
        assert (response.status_code, response.get_json()["error"]["code"]) == (401, "token_revoked")
    finally:
        with restarted.app_context():
            db.session.remove()
            db.engine.dispose()


def test_expired_revocations_are_purged_by_logout_and_by_the_command(app, client, alice, bob):
    past = datetime.now(UTC) - timedelta(minutes=1)
    with app.app_context():
        db.session.add_all([
            RevokedToken(jti="long-gone-1", type="access", user_id=alice.id, expires_at=past),
            RevokedToken(jti="long-gone-2", type="refresh", user_id=alice.id, expires_at=past),
        ])
        db.session.commit()
    assert logout(client, alice).status_code == 204
    with app.app_context():
        assert sorted(t.jti for t in db.session.query(RevokedToken)) == sorted(
            [jwt.decode(alice.token, options={"verify_signature": False})["jti"]])
        db.session.add(RevokedToken(jti="long-gone-3", type="access", user_id=bob.id, expires_at=past))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["purge-revoked"])
    assert result.exit_code == 0 and "deleted 1 expired revocations" in result.output
    response = client.get("/api/auth/me", headers=alice.headers)  # the live revocation stays
    assert response.get_json()["error"]["code"] == "token_revoked"
