"""Tokens on open sockets against live servers, with python-socketio clients.

- Logout ends the sockets that use the token, on both servers, well within a
  second (the REST answer comes after the sockets were told).
- With two gunicorn processes on one database, a logout made through one ends a
  socket held by the other: the other process's sweep finds the revocation.
- A token that expires while its socket is open ends the socket; a socket that
  renewed in place with `refresh_token` keeps its rooms past the old `exp`.

Measured delays are printed (`-s`); the assertions only bound them generously.
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import socketio

from e2e.live import Api, LiveSocket, forge_token, make_room, start_server

pytestmark = pytest.mark.e2e


def wait_disconnected(sock: LiveSocket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sock.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sock.connected, "the server did not disconnect the socket"


def logout_until_ended(api: Api, user, sock: LiveSocket, timeout: float) -> float:
    """Log `user` out through `api`; the seconds until `sock` heard `auth_expired`
    (token_revoked) and was disconnected, each awaited up to `timeout`."""
    started = time.monotonic()
    api.request("POST", "/api/auth/logout", user, expect=204)
    assert sock.wait_for("auth_expired", timeout=timeout) == {"code": "token_revoked"}
    wait_disconnected(sock, timeout=timeout)
    return time.monotonic() - started


def test_logout_ends_the_tokens_sockets_within_a_second(live_server, api, live_socket):
    room = make_room(api)
    mine = live_socket(live_server).connect(room.owner.token)
    assert mine.call("join_task", room.task_id)["ok"] is True
    watcher = live_socket(live_server).connect(room.member.token)
    assert watcher.call("join_task", room.task_id)["ok"] is True

    took = logout_until_ended(api, room.owner, mine, timeout=1.0)
    print(f"\n{live_server.kind}: logout to auth_expired and disconnect: {took:.3f} s")

    assert watcher.wait_for("user_left", lambda e: e["userId"] == room.owner.id)["taskId"] == room.task_id
    refused = live_socket(live_server)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(room.owner.token)
    assert refused.wait_connect_error()["data"] == {"code": "token_revoked"}


def test_a_logout_through_another_process_ends_the_socket_by_its_sweep(e2e_database_url, tmp_path, live_socket):
    first = start_server("gunicorn", e2e_database_url, tmp_path)
    second = start_server("gunicorn", e2e_database_url, tmp_path)
    api_first, api_second = Api(first.url), Api(second.url)
    try:
        room = make_room(api_first)
        sock = live_socket(second).connect(room.owner.token)
        assert sock.call("join_task", room.task_id)["ok"] is True

        # The sweep runs every second (AUTH_SWEEP_INTERVAL); the bound leaves room for a busy machine.
        took = logout_until_ended(api_first, room.owner, sock, timeout=5.0)
        print(f"\nlogout on one process to disconnect on the other: {took:.3f} s")
        api_second.request("GET", "/api/auth/me", room.owner, expect=401)
    finally:
        api_first.close()
        api_second.close()
        for server in (first, second):
            server.stop()
        for server in (first, second):
            assert "Traceback" not in server.log_text(), server.log_tail()


def test_a_token_that_expires_while_connected_ends_the_socket(live_server, api, live_socket):
    room = make_room(api)
    sock = live_socket(live_server).connect(forge_token(room.owner.id, expires_in=timedelta(seconds=2)))
    assert sock.call("join_task", room.task_id)["ok"] is True
    assert sock.wait_for("auth_expired", timeout=6.0) == {"code": "token_expired"}
    wait_disconnected(sock, timeout=2.0)


def test_refresh_token_keeps_the_socket_and_its_rooms_past_the_old_expiry(live_server, api, live_socket):
    room = make_room(api)
    sock = live_socket(live_server).connect(forge_token(room.owner.id, expires_in=timedelta(seconds=2)))
    assert sock.call("join_task", room.task_id)["ok"] is True
    renewed = sock.call("refresh_token", {"token": forge_token(room.owner.id, expires_in=timedelta(minutes=5))})
    assert renewed["ok"] is True, renewed

    time.sleep(3.0)  # past the first token's exp, and a few sweeps
    assert sock.connected and sock.events("auth_expired") == []
    other = live_socket(live_server).connect(room.member.token)
    assert other.call("send_message", {"taskId": room.task_id, "message": "still there?"})["ok"] is True
    assert sock.wait_for("new_message")["message"]["message"] == "still there?"
