"""Socket.IO connect: who gets in, on which namespace, and what a refused client is told."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from app.extensions import db, socketio
from app.models import User as UserRow
from toolkit.sockets import events

NAMESPACES = ["/tasks", "/"]


def token_for(app, user_id, expires_delta=None) -> str:
    with app.app_context():
        return create_access_token(identity=str(user_id), expires_delta=expires_delta)


def assert_auth_error(error: dict, code: str) -> None:
    assert error["message"].startswith("Authentication error"), error
    assert error["data"] == {"code": code}, error


def joins(sock, task_id, namespace):
    return sock.emit("join_task", task_id, namespace=namespace, callback=True)


# ---- accepted ------------------------------------------------------------------------------
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_connects_with_the_token_in_auth(socket, alice, task, namespace):
    sock = socket(alice, namespace=namespace)

    assert sock.is_connected(namespace)
    # The connection is really authenticated as Alice: she may join her own task.
    assert joins(sock, task["id"], namespace)["data"]["role"] == "owner"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_connects_with_the_authorization_bearer_header(socket, alice, task, namespace):
    sock = socket(None, namespace=namespace, auth=None, headers={"Authorization": f"Bearer {alice.token}"})

    assert sock.is_connected(namespace)
    assert joins(sock, task["id"], namespace)["data"]["role"] == "owner"


def test_the_header_identifies_the_right_user(socket, alice, bob, task):
    """Two clients, one per door: each is the user of its own token."""
    by_header = socket(None, auth=None, headers=bob.headers)
    by_auth = socket(alice)
    joins(by_auth, task["id"], "/tasks")

    assert joins(by_header, task["id"], "/tasks")["data"]["role"] == "editor"
    [joined] = events(by_auth, "user_joined")
    assert (joined["userId"], joined["userName"]) == (bob.id, "Bob Editor")


def test_a_connected_socket_emits_nothing_on_its_own(socket, alice):
    sock = socket(alice)
    assert sock.get_received("/tasks") == []


# ---- refused -------------------------------------------------------------------------------
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_no_token_is_refused(refused, namespace):
    assert_auth_error(refused(namespace), "auth_required")


@pytest.mark.parametrize("auth", [{}, {"token": ""}, {"token": None}, {"token": 123}, {"other": "x"}])
def test_an_auth_without_a_usable_token_is_refused(refused, auth):
    assert_auth_error(refused(auth=auth), "auth_required")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_bad_token_is_refused(refused, namespace):
    assert_auth_error(refused(namespace, auth={"token": "not.a.jwt"}), "token_invalid")


def test_a_bad_bearer_header_is_refused(refused):
    assert_auth_error(refused(headers={"Authorization": "Bearer nonsense"}), "token_invalid")


def test_a_token_signed_with_another_key_is_refused(refused, alice):
    header, payload, _signature = alice.token.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    assert_auth_error(refused(auth={"token": forged}), "token_invalid")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_an_expired_token_is_refused(app, refused, alice, namespace):
    expired = token_for(app, alice.id, expires_delta=timedelta(seconds=-1))
    assert_auth_error(refused(namespace, auth={"token": expired}), "token_expired")


def test_an_expired_token_in_the_header_is_refused(app, refused, alice):
    expired = token_for(app, alice.id, expires_delta=timedelta(seconds=-1))
    assert_auth_error(refused(headers={"Authorization": f"Bearer {expired}"}), "token_expired")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_refresh_token_is_refused(refused, alice, namespace):
    assert_auth_error(refused(namespace, auth={"token": alice.refresh_token}), "token_invalid")


def test_a_refresh_token_in_the_header_is_refused(app, refused, alice):
    with app.app_context():
        token = create_refresh_token(identity=str(alice.id))
    assert_auth_error(refused(headers={"Authorization": f"Bearer {token}"}), "token_invalid")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_token_of_a_deleted_user_is_refused(app, refused, register, namespace):
    gone = register("Gone", "Soon")
    with app.app_context():
        db.session.delete(db.session.get(UserRow, gone.id))
        db.session.commit()

    assert_auth_error(refused(namespace, auth={"token": gone.token}), "token_invalid")


def test_a_token_of_a_user_that_never_existed_is_refused(app, refused):
    assert_auth_error(refused(auth={"token": token_for(app, 999_999)}), "token_invalid")


@pytest.mark.parametrize("subject", ["alice", "0", "-1", "9" * 30, "\u00b2"])
def test_a_token_whose_subject_is_not_an_id_is_refused(app, refused, subject):
    with app.app_context():
        token = create_access_token(identity=subject)
    assert_auth_error(refused(auth={"token": token}), "token_invalid")


def test_a_valid_header_does_not_rescue_a_bad_auth_token(refused, alice):
    """`auth.token` is the one looked at when given; a bad one is not silently replaced."""
    assert_auth_error(refused(auth={"token": "garbage"}, headers=alice.headers), "token_invalid")


def test_an_unknown_namespace_is_refused(app, client, alice):
    sock = socketio.test_client(app, namespace="/nope", auth={"token": alice.token}, flask_test_client=client)
    assert not sock.is_connected("/nope")


def test_a_refused_client_does_not_disturb_the_connected_ones(socket, refused, alice, bob, task):
    first = socket(alice)
    joins(first, task["id"], "/tasks")
    refused(auth={"token": "bad"})
    second = socket(bob)

    assert joins(second, task["id"], "/tasks")["ok"] is True
    assert [e["userId"] for e in events(first, "user_joined")] == [bob.id]
