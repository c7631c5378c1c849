"""REST: /api/auth (register, login, refresh, me) and how every route treats tokens."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from app.extensions import db
from app.models import User

from toolkit.rest import assert_error

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_body(**overrides) -> dict:
    body = {"email": "dana@example.com", "password": PASSWORD, "firstName": "Dana", "lastName": "Scully"}
    body.update(overrides)
    return body


# ---- register -------------------------------------------------------------------
def test_register_returns_201_with_user_and_tokens(client):
    response = client.post("/api/auth/register", json=register_body(email="Dana@Example.COM"))

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"user", "accessToken", "refreshToken"}
    user = body["user"]
    assert set(user) == {"id", "email", "firstName", "lastName", "createdAt"}
    assert type(user["id"]) is int
    assert user["email"] == "dana@example.com"
    assert (user["firstName"], user["lastName"]) == ("Dana", "Scully")
    assert user["createdAt"].endswith("Z")
    assert "password" not in response.get_data(as_text=True).lower()

    me = client.get("/api/auth/me", headers=bearer(body["accessToken"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == user["id"]


def test_register_trims_names(client):
    response = client.post("/api/auth/register", json=register_body(firstName="  Dana ", lastName=" Scully  "))
    assert response.status_code == 201
    user = response.get_json()["user"]
    assert (user["firstName"], user["lastName"]) == ("Dana", "Scully")


def test_register_same_email_in_other_case_is_409_conflict(client):
    assert client.post("/api/auth/register", json=register_body(email="dana@example.com")).status_code == 201

    response = client.post("/api/auth/register", json=register_body(email="DANA@Example.com", firstName="Other"))

    error = assert_error(response, 409, "conflict")
    assert "email" in error["details"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short123"}, "password"),
        ({"password": "123456789"}, "password"),  # 9 characters: one short of the minimum
        ({"firstName": "   "}, "firstName"),
        ({"lastName": "x" * 101}, "lastName"),
        ({"email": 42}, "email"),
    ],
)
def test_register_invalid_fields_are_422_with_details(client, overrides, field):
    response = client.post("/api/auth/register", json=register_body(**overrides))

    error = assert_error(response, 422, "validation_error")
    assert field in error["details"]
    assert isinstance(error["details"][field], list)


def test_register_missing_fields_are_all_reported(client):
    error = assert_error(client.post("/api/auth/register", json={}), 422, "validation_error")
    assert {"email", "password", "firstName", "lastName"} <= set(error["details"])


def test_register_password_of_exactly_ten_characters_is_accepted(client):
    response = client.post("/api/auth/register", json=register_body(password="0123456789"))
    assert response.status_code == 201


def test_register_failure_creates_no_user(client):
    client.post("/api/auth/register", json=register_body(password="short"))
    login = client.post("/api/auth/login", json={"email": "dana@example.com", "password": "short"})
    assert login.status_code == 401


# ---- login ----------------------------------------------------------------------
def test_login_returns_user_and_tokens(client, alice):
    response = client.post("/api/auth/login", json={"email": alice.email.upper(), "password": PASSWORD})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"user", "accessToken", "refreshToken"}
    assert body["user"]["id"] == alice.id
    assert body["user"]["email"] == alice.email
    assert client.get("/api/auth/me", headers=bearer(body["accessToken"])).status_code == 200


def test_login_wrong_password_and_unknown_email_get_the_same_answer(client, alice):
    wrong_password = client.post("/api/auth/login", json={"email": alice.email, "password": "wrong password!"})
    unknown_email = client.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.get_json() == unknown_email.get_json()
    assert_error(wrong_password, 401, "invalid_credentials")


def test_login_missing_fields_is_422(client):
    error = assert_error(client.post("/api/auth/login", json={"email": "a@example.com"}), 422, "validation_error")
    assert "password" in error["details"]


# ---- refresh --------------------------------------------------------------------
def test_refresh_with_refresh_token_gives_a_working_access_token(client, alice):
    response = client.post("/api/auth/refresh", headers=bearer(alice.refresh_token))

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"accessToken"}
    me = client.get("/api/auth/me", headers=bearer(body["accessToken"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == alice.id


def test_refresh_refuses_an_access_token(client, alice):
    assert_error(client.post("/api/auth/refresh", headers=bearer(alice.token)), 401, "token_invalid")


def test_refresh_without_token_is_401_auth_required(client):
    assert_error(client.post("/api/auth/refresh"), 401, "auth_required")


def test_refresh_token_is_not_an_access_token(client, alice):
    assert_error(client.get("/api/auth/me", headers=bearer(alice.refresh_token)), 401, "token_invalid")
    assert_error(client.get("/api/tasks", headers=bearer(alice.refresh_token)), 401, "token_invalid")


def test_expired_refresh_token_is_401_token_expired(app, client, alice):
    with app.app_context():
        token = create_refresh_token(identity=str(alice.id), expires_delta=timedelta(seconds=-1))
    assert_error(client.post("/api/auth/refresh", headers=bearer(token)), 401, "token_expired")


# ---- me -------------------------------------------------------------------------
def test_me_returns_the_token_user(client, alice, bob):
    response = client.get("/api/auth/me", headers=bob.headers)

    assert response.status_code == 200
    assert response.get_json() == {
        "id": bob.id,
        "email": bob.email,
        "firstName": "Bob",
        "lastName": "Editor",
        "createdAt": response.get_json()["createdAt"],
    }


# ---- tokens, on every protected route ---------------------------------------------
PROTECTED = [
    ("get", "/api/auth/me"),
    ("get", "/api/tasks"),
    ("post", "/api/tasks"),
    ("get", "/api/tasks/1"),
    ("patch", "/api/tasks/1"),
    ("delete", "/api/tasks/1"),
    ("get", "/api/tasks/1/members"),
    ("post", "/api/tasks/1/members"),
    ("patch", "/api/tasks/1/members/1"),
    ("delete", "/api/tasks/1/members/1"),
    ("get", "/api/tasks/1/messages"),
    ("post", "/api/tasks/1/messages"),
    ("get", "/api/tasks/1/activity"),
]


@pytest.mark.parametrize("method, path", PROTECTED)
def test_missing_token_is_401_auth_required(client, method, path):
    assert_error(getattr(client, method)(path, json={}), 401, "auth_required")


@pytest.mark.parametrize("method, path", PROTECTED)
def test_garbage_token_is_401_token_invalid(client, method, path):
    assert_error(getattr(client, method)(path, json={}, headers=bearer("not.a.jwt")), 401, "token_invalid")


@pytest.mark.parametrize("method, path", PROTECTED)
def test_expired_token_is_401_token_expired(app, client, alice, method, path):
    with app.app_context():
        token = create_access_token(identity=str(alice.id), expires_delta=timedelta(seconds=-1))
    assert_error(getattr(client, method)(path, json={}, headers=bearer(token)), 401, "token_expired")


def test_authorization_header_without_bearer_is_401_auth_required(client, alice):
    assert_error(client.get("/api/auth/me", headers={"Authorization": alice.token}), 401, "auth_required")


def test_token_signed_with_another_key_is_401_token_invalid(client, alice):
    import jwt as pyjwt

    forged = pyjwt.encode({"sub": str(alice.id), "type": "access", "fresh": False}, "another-key-" + "y" * 32)
    assert_error(client.get("/api/auth/me", headers=bearer(forged)), 401, "token_invalid")


@pytest.mark.parametrize("subject", ["alice", "", "-1", "0", "\u00b2", "99999999999", str(2**31)])
def test_token_whose_subject_is_no_user_id_is_401_token_invalid(app, client, subject):
    with app.app_context():
        token = create_access_token(identity=subject)
    assert_error(client.get("/api/auth/me", headers=bearer(token)), 401, "token_invalid")


def test_token_of_a_deleted_user_is_401_token_invalid(app, client, alice):
    with app.app_context():
        db.session.delete(db.session.get(User, alice.id))
        db.session.commit()

    assert_error(client.get("/api/auth/me", headers=alice.headers), 401, "token_invalid")
    assert_error(client.post("/api/tasks", json={"title": "x"}, headers=alice.headers), 401, "token_invalid")
    assert_error(client.post("/api/auth/refresh", headers=bearer(alice.refresh_token)), 401, "token_invalid")
