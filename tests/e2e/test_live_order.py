"""Order under concurrency, against both live servers: many sockets send into one
task at once, and a member watching the room sees the ids in increasing order,
each `previousId` naming the message it saw just before, with nothing missing.

This is what the task's write lock (services/ordering.py) buys: ids are
allocated in commit order, and one process broadcasts in that order.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from e2e.live import WAIT, LiveServer, make_room

pytestmark = pytest.mark.e2e

SENDERS_PER_USER = 3
MESSAGES_PER_SENDER = 15


def test_concurrent_sends_reach_the_room_in_id_order(live_server: LiveServer, api, live_socket):
    room = make_room(api, "Order")
    watcher = live_socket(live_server, "/").connect(room.owner.token)
    assert watcher.call("join_task", {"taskId": room.task_id})["ok"] is True
    senders = [  # several sockets per user, on both namespaces
        live_socket(live_server, ("/tasks", "/")[i % 2]).connect(user.token)
        for user in (room.owner, room.member)
        for i in range(SENDERS_PER_USER)
    ]

    def send_all(index: int) -> list[int]:
        sock = senders[index]
        ids = []
        for n in range(MESSAGES_PER_SENDER):
            ack = sock.call("send_message", {"taskId": room.task_id, "message": f"sender {index} message {n}"})
            assert ack["ok"] is True, ack
            ids.append(ack["data"]["id"])
        return ids

    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        acked = [i for ids in pool.map(send_all, range(len(senders)), timeout=WAIT * MESSAGES_PER_SENDER) for i in ids]
    total = len(senders) * MESSAGES_PER_SENDER
    assert len(set(acked)) == total

    last = max(acked)
    watcher.wait_for("new_message", lambda d: d["message"]["id"] == last, timeout=WAIT * 2)
    seen = [d["message"] for d in watcher.events("new_message")]
    ids = [m["id"] for m in seen]
    assert ids == sorted(acked), "the room hears every message once, in id order"
    assert [m["previousId"] for m in seen] == [None] + ids[:-1], "each previousId is the message heard before"
    page = api.request("GET", f"/api/tasks/{room.task_id}/messages", room.owner, params={"after": 0, "limit": 100})
    assert [m["id"] for m in page["items"]] == ids and page["hasMore"] is False
