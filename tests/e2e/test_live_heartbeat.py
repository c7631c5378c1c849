"""The heartbeat, against both live servers, with a short ping interval and timeout
(SOCKETIO_PING_INTERVAL, SOCKETIO_PING_TIMEOUT) so that several go by in a test.

A quiet connection that answers pings stays open however long nothing is said (under
gunicorn pings are written directly, not through Engine.IO's writer queue, whose
writer used to close a WebSocket with nothing queued for interval + timeout); a client
that stops answering pings is closed, on both servers.
"""
from __future__ import annotations

import time

import pytest
import websocket

from e2e.live import SERVER_KINDS, WAIT, Api, LiveSocket, RawSocket, make_room, start_server

pytestmark = pytest.mark.e2e

INTERVAL, TIMEOUT = 1, 1  # seconds
QUIET = 4 * (INTERVAL + TIMEOUT)  # several heartbeats, and well past interval + timeout


@pytest.fixture(params=SERVER_KINDS)
def fast_heartbeat_server(request, e2e_database_url, tmp_path):
    server = start_server(request.param, e2e_database_url, tmp_path,
                          env={"SOCKETIO_PING_INTERVAL": str(INTERVAL), "SOCKETIO_PING_TIMEOUT": str(TIMEOUT)})
    yield server
    server.stop()


def _closed_by_server(raw: RawSocket) -> bool:
    """Read (answering no ping) until the server says goodbye: Engine.IO's close packet,
    a WebSocket close frame, or the end of the connection."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            packet = raw.next_packet(answer_pings=False)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return True
        if packet in ("1", ""):  # Engine.IO CLOSE; "" is websocket-client's close frame
            return True
    return False


def test_a_quiet_connection_stays_open_and_a_silent_client_is_closed(fast_heartbeat_server):
    server = fast_heartbeat_server
    api = Api(server.url)
    sockets: list[LiveSocket] = []
    silent = None
    try:
        room = make_room(api, "Heartbeat")
        owner = LiveSocket(server.url).connect(room.owner.token)
        member = LiveSocket(server.url).connect(room.member.token)
        sockets += [owner, member]
        for sock in sockets:
            assert sock.call("join_task", {"taskId": room.task_id})["ok"] is True
        silent = RawSocket(server.url, room.member.token)  # never answers a ping

        time.sleep(QUIET)

        assert owner.connected and member.connected, "a connection that answers pings was closed"
        ack = owner.call("send_message", {"taskId": room.task_id, "message": "still here"})
        assert ack["ok"] is True, ack
        member.wait_for("new_message", lambda d: d["message"]["id"] == ack["data"]["id"])

        # The silent client had pings and answered none: the server has closed it.
        assert _closed_by_server(silent), "a client that answered no ping is still connected"
        assert "Traceback" not in server.log_text(), server.log_tail()
    finally:
        if silent is not None:
            silent.close()
        for sock in sockets:
            sock.disconnect()
        api.close()


def test_a_client_closed_by_the_heartbeat_during_a_broadcast_takes_only_itself(fast_heartbeat_server):
    """The server notices an unanswered ping when it next writes to that client, often
    inside someone else's event (a broadcast to the room): the disconnect that follows
    must end that client's session, not the sender's."""
    server = fast_heartbeat_server
    api = Api(server.url)
    sender = None
    silent = None
    try:
        room = make_room(api, "Heartbeat broadcast")
        sender = LiveSocket(server.url).connect(room.owner.token)
        assert sender.call("join_task", {"taskId": room.task_id})["ok"] is True
        silent = RawSocket(server.url, room.member.token)
        assert silent.call(1, "join_task", {"taskId": room.task_id})["ok"] is True  # then answers no ping

        acks = []
        for n in range(int(QUIET / 0.1)):  # a message every 100 ms (within the 100/minute limit), past its end
            acks.append(sender.call("send_message", {"taskId": room.task_id, "message": f"beat {n}"}))
            time.sleep(0.1)

        assert [a for a in acks if not a["ok"]] == [], "the sender lost its session"
        assert _closed_by_server(silent)
        online = sender.call("join_task", {"taskId": room.task_id})["data"]["online"]
        assert [u["userId"] for u in online] == [room.owner.id], "the closed client still shows as online"
        assert "Traceback" not in server.log_text(), server.log_tail()
    finally:
        if silent is not None:
            silent.close()
        if sender is not None:
            sender.disconnect()
        api.close()
