"""A member whose client stops reading, against live gunicorn.

Under gunicorn a frame is written by the greenlet that sends it when the socket has
nothing queued (app/patches.py), never waiting on the client: once a
client's buffers are full, the rest of the frame and everything after it wait in
that socket's queue. So a reader that stalls holds up nobody (the sender's acks and
the other members' copies keep coming), and when it reads again it gets every frame
whole, in order, once.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from e2e.live import WAIT, Api, LiveSocket, RawSocket, make_room, start_server

pytestmark = pytest.mark.e2e

TEXT_LENGTH = 3900  # under MAX_MESSAGE_LENGTH (4000)


def _kernel_buffer_bytes() -> int:
    """The most a socket's send buffer may grow to (the third tcp_wmem figure)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def test_a_member_who_stops_reading_holds_up_nobody_and_loses_nothing(e2e_database_url, tmp_path):
    # The default message limit (100/minute) would stop the sender long before the
    # stalled reader's buffers fill, and a reader that stops reading stops answering
    # pings (test_live_heartbeat.py): this test is about the writes, not those.
    server = start_server("gunicorn", e2e_database_url, tmp_path, env={"RATE_LIMIT_MESSAGES": "100000/minute",
                                                                          "SOCKETIO_PING_INTERVAL": "600"})
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
