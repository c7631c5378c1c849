"""A member whose client stops reading, against live gunicorn.

Under gunicorn a frame is written by the greenlet that sends it when the socket has
nothing queued (app/realtime/directwrite.py), never waiting on the client: once a
client's buffers are full, the rest of the frame and everything after it wait in
that socket's queue. So a reader that stalls holds up nobody (the sender's acks and
the other members' copies keep coming), and when it reads again it gets every frame
whole, in order, once.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import websocket

from .live import WAIT, Api, LiveSocket, make_room, start_server

pytestmark = pytest.mark.e2e

TEXT_LENGTH = 3900  # under MAX_MESSAGE_LENGTH (4000)


def _kernel_buffer_bytes() -> int:
    """The most a socket's send buffer may grow to (the third tcp_wmem figure)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


class RawSocket:
    """Engine.IO and Socket.IO spoken by hand over websocket-client, so that the test
    decides when (and whether) frames are read; a small receive buffer."""

    def __init__(self, url: str, token: str):
        self.ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)], timeout=WAIT,
        )
        assert self.ws.recv().startswith("0"), "Engine.IO open"
        self.ws.send("40/tasks," + json.dumps({"token": token}))
        assert self.next_packet().startswith("40/tasks,"), "Socket.IO connect"

    def next_packet(self) -> str:
        while True:
            text = self.ws.recv()
            if text == "2":  # Engine.IO ping
                self.ws.send("3")
                continue
            return text

    def call(self, ack_id: int, event: str, data: dict) -> dict:
        self.ws.send(f"42/tasks,{ack_id}" + json.dumps([event, data]))
        prefix = f"43/tasks,{ack_id}"
        while True:
            text = self.next_packet()
            if text.startswith(prefix):
                return json.loads(text[len(prefix):])[0]

    def events(self, name: str, until: int) -> list[dict]:
        """Read `name` events until one whose message id is `until`."""
        seen = []
        while True:
            text = self.next_packet()
            if not text.startswith("42/tasks,"):
                continue
            event, payload = json.loads(text[len("42/tasks,"):])
            if event == name:
                seen.append(payload)
                if payload["message"]["id"] == until:
                    return seen

    def close(self) -> None:
        self.ws.close(timeout=0.5)


def test_a_member_who_stops_reading_holds_up_nobody_and_loses_nothing(e2e_database_url, tmp_path):
    # The default message limit (100/minute) would stop the sender long before the
    # stalled reader's buffers fill; this test is about the writes, not the limit.
    server = start_server("gunicorn", e2e_database_url, tmp_path, env={"RATE_LIMIT_MESSAGES": "100000/minute"})
    api = Api(server.url)
    sockets: list[LiveSocket] = []
    stalled = None
    try:
        room = make_room(api, "Slow reader")
        stalled = RawSocket(server.url, room.member.token)
        assert stalled.call(1, "join_task", {"taskId": room.task_id})["ok"] is True
        sender, watcher = (LiveSocket(server.url).connect(room.owner.token) for _ in range(2))
        sockets += [sender, watcher]
        assert watcher.call("join_task", {"taskId": room.task_id})["ok"] is True

        # Well past what the kernel buffers of the stalled socket can hold.
        count = 2 * _kernel_buffer_bytes() // TEXT_LENGTH + 1
        acked = []
        for n in range(count):
            ack = sender.call("send_message", {"taskId": room.task_id, "message": f"{n:06d} " + "x" * TEXT_LENGTH})
            assert ack["ok"] is True, (n, ack)
            acked.append(ack["data"]["id"])

        watcher.wait_for("new_message", lambda d: d["message"]["id"] == acked[-1], timeout=WAIT * 4)
        assert [d["message"]["id"] for d in watcher.events("new_message")] == acked

        # Now the stalled member reads: every frame whole, in order, once.
        heard = stalled.events("new_message", until=acked[-1])
        assert [d["message"]["id"] for d in heard] == acked
        assert [d["message"]["message"][:6] for d in heard] == [f"{n:06d}" for n in range(count)]
        assert all(len(d["message"]["message"]) == TEXT_LENGTH + 7 for d in heard)
        assert "Traceback" not in server.log_text(), server.log_tail()
    finally:
        if stalled is not None:
            stalled.close()
        for sock in sockets:
            sock.disconnect()
        api.close()
        server.stop()
