"""Limits on the wire, against live servers: packets over the size limit (WebSocket and
long-polling), binary packets and events the server does not take, and one user
flooding while others chat, on gunicorn as in production.

The flood test measures the other users' ack round trips and prints p50/p95/max
(run with -s to see them); it asserts only generous bounds (FLOOD_P95_BOUND,
FLOOD_MAX_BOUND), as the issue asks.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import socketio
import websocket

from e2e.live import WAIT, Api, LiveServer, LiveSocket, User, make_room, wait_until, whole_history

pytestmark = pytest.mark.e2e

MAX_PACKET = 64 * 1024  # SOCKETIO_MAX_HTTP_BUFFER_SIZE's default
HUGE = 32 * 1024 * 1024  # more than any loopback socket buffers hold
NO_ACK_WAIT = 1.0  # seconds to wait for acks that must not come
BLAST_SOCKETS = 3
FLOOD_EVENTS = 20_000  # the flooder's budget, per way of flooding
FLOOD_SECONDS = 15.0  # and its time budget
VICTIM_TIMEOUT = 30.0  # an ack slower than this counts as a failure
VICTIM_INTERVAL = 0.1  # a victim sends every 100 ms...
VICTIM_SENDS = 80  # ...this many times: 8 s, under the 100-a-minute limit they are held to too
FLOOD_P95_BOUND = 2.0  # seconds; generous, so CI machines pass; the printout shows the real figures
FLOOD_MAX_BOUND = 5.0  # no single ack held up longer (under 1 s measured; 7-8 s before the in-flight cap)


def texts(api: Api, user: User, task_id: int) -> list[str]:
    return [m["message"] for m in reversed(api.messages(user, task_id))]


def message(task_id: int, text: str, **extra: Any) -> dict:
    return {"taskId": task_id, "message": text, **extra}


# ---- packet size ---------------------------------------------------------------------------
def test_a_packet_over_the_limit_closes_that_websocket_only(live_server: LiveServer, api, live_socket):
    room = make_room(api)
    sender = live_socket(live_server).connect(room.owner.token)
    sender_elsewhere = live_socket(live_server, "/").connect(room.owner.token)  # another connection, same user
    other = live_socket(live_server).connect(room.member.token)
    assert other.call("join_task", room.task_id)["ok"] is True

    big = message(room.task_id, "x" * (MAX_PACKET + 1024))
    sender.client.emit("send_message", big, namespace="/tasks")
    wait_until(lambda: not sender.connected, what="the oversized sender's connection closed")

    assert other.call("send_message", message(room.task_id, "still served"))["ok"] is True
    assert sender_elsewhere.call("send_message", message(room.task_id, "other tab"))["ok"] is True
    assert texts(api, room.owner, room.task_id) == ["still served", "other tab"]
    assert [e["message"]["message"] for e in other.events("new_message")] == ["still served", "other tab"]


def test_a_websocket_message_far_over_the_limit_is_refused_while_it_is_read(live_server: LiveServer, api,
                                                                          live_socket):
    """The server stops reading at the limit and hangs up, so the rest of a 32 MB message
    meets a closed connection: it is never held in the server's memory."""
    room = make_room(api)
    other = live_socket(live_server).connect(room.member.token)
    ws = websocket.create_connection(live_server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=WAIT)
    try:
        assert ws.recv().startswith("0{")  # Engine.IO open
        ws.send("40/tasks," + json.dumps({"token": room.owner.token}))
        assert ws.recv().startswith("40/tasks,")
        payload = '42/tasks,["send_message",' + json.dumps(message(room.task_id, "x" * HUGE)) + "]"
        with pytest.raises((OSError, websocket.WebSocketException)):
            ws.send(payload)
            ws.recv()  # (had the send gone through) the server would close after reading it all
    finally:
        ws.close()
    assert other.call("send_message", message(room.task_id, "still served"))["ok"] is True
    assert texts(api, room.owner, room.task_id) == ["still served"]


def test_a_message_just_under_the_packet_limit_is_a_validation_error(live_server: LiveServer, api, live_socket):
    """Under 64 KiB the packet is read, and the text's own limit (4000) answers."""
    room = make_room(api)
    sender = live_socket(live_server).connect(room.owner.token)
    ack = sender.call("send_message", message(room.task_id, "x" * (MAX_PACKET - 1024)))
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack
    assert sender.connected
    assert texts(api, room.owner, room.task_id) == []


class Polling:
    """A bare Engine.IO long-polling session, driven with requests: so that the test
    decides whether a GET is waiting on the server when the big POST arrives."""

    def __init__(self, server: LiveServer):
        self.base = server.url + "/socket.io/?EIO=4&transport=polling"
        self.http = requests.Session()
        response = self.http.get(self.base, timeout=WAIT)
        assert response.status_code == 200, response.text
        self.sid = json.loads(response.text[1:])["sid"]
        self.url = f"{self.base}&sid={self.sid}"

    def post(self, body: str) -> requests.Response:
        return self.http.post(self.url, data=body.encode(), timeout=WAIT, headers={"Connection": "close"})

    def get(self) -> requests.Response:
        return requests.get(self.url, timeout=WAIT + 30)

    def close(self) -> None:
        self.http.close()


def open_polling(server: LiveServer, user: User) -> Polling:
    polling = Polling(server)
    assert polling.post("40/tasks," + json.dumps({"token": user.token})).status_code == 200
    opened = polling.get()
    assert opened.status_code == 200 and opened.text.startswith("40/tasks,"), opened.text
    return polling


@pytest.mark.parametrize("get_waiting", [True, False], ids=["get-waiting", "no-get-waiting"])
def test_a_polling_post_over_the_limit_is_refused(live_server: LiveServer, api, live_socket, get_waiting):
    """A browser always has a GET waiting; a hostile client need not. Either way the
    POST is answered 400 at once, the session ends, nothing is stored."""
    room = make_room(api)
    other = live_socket(live_server).connect(room.member.token)
    polling = open_polling(live_server, room.owner)
    waiting = None
    try:
        if get_waiting:
            waiting = ThreadPoolExecutor(1)
            pending = waiting.submit(polling.get)
            time.sleep(0.2)  # let the GET reach the server and wait there
        big = '42/tasks,1' + json.dumps(["send_message", message(room.task_id, "P" * (MAX_PACKET + 1024))])
        response = polling.post(big)  # within WAIT, or requests raises ReadTimeout
        assert response.status_code == 400, response.text
        if waiting is not None:
            assert pending.result(timeout=WAIT).status_code == 200  # it carried the close
        assert polling.get().status_code == 400  # the session is gone
    finally:
        polling.close()
        if waiting is not None:
            waiting.shutdown(wait=False)

    assert other.call("send_message", message(room.task_id, "still served"))["ok"] is True
    assert texts(api, room.owner, room.task_id) == ["still served"]


# ---- dropped: binary packets, unknown and reserved events ------------------------------------
def test_binary_packets_unknown_and_reserved_events_get_no_answer_live(live_server: LiveServer, api, live_socket):
    """Over the wire, through Engine.IO's own message handler (which the test client skips)."""
    room = make_room(api)
    sock = live_socket(live_server).connect(room.owner.token)
    watcher = live_socket(live_server, "/").connect(room.member.token)
    assert sock.call("join_task", room.task_id)["ok"] is True
    assert watcher.call("join_task", room.task_id)["ok"] is True

    answered: list[Any] = []
    for event, data in (
        ("send_message", message(room.task_id, "with a blob", blob=b"\x00\x01" * 512)),
        ("send_message", {"taskId": room.task_id, "message": b"bytes"}),
        ("no_such_event", message(room.task_id, "unknown")),
        ("connect", {"token": room.member.token}),
        ("disconnect", "client namespace disconnect"),
    ):
        sock.client.emit(event, data, namespace="/tasks", callback=lambda *args: answered.append(args))
    time.sleep(NO_ACK_WAIT)
    assert answered == []
    assert sock.connected

    ack = sock.call("send_message", message(room.task_id, "plain text"))
    assert ack["ok"] is True and ack["data"]["userId"] == room.owner.id, ack  # still Alice, still registered
    assert texts(api, room.owner, room.task_id) == ["plain text"]
    watcher.wait_for("new_message", lambda e: e["message"]["message"] == "plain text")
    assert watcher.events("user_left") == []


# ---- flood -------------------------------------------------------------------------------------
class Victim:
    """Sends a message every VICTIM_INTERVAL and times each ack."""

    def __init__(self, sock: LiveSocket, task_id: int, label: str):
        self.sock, self.task_id, self.label = sock, task_id, label
        self.latencies: list[float] = []
        self.failures: list[Any] = []

    def run(self, count: int) -> None:
        for n in range(count):
            started = time.monotonic()
            try:
                ack = self.sock.client.call("send_message", message(self.task_id, f"{self.label} {n}"),
                                            namespace=self.sock.namespace, timeout=VICTIM_TIMEOUT)
            except Exception as exc:  # a timeout is a failure to report, not a crash of the thread
                ack = {"ok": False, "exception": repr(exc)}
            elapsed = time.monotonic() - started
            self.latencies.append(elapsed)
            if not ack.get("ok"):
                self.failures.append(ack)
            time.sleep(max(0.0, VICTIM_INTERVAL - elapsed))

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    def summary(self) -> str:
        return (f"{self.label}: n={len(self.latencies)} p50={self.percentile(0.5) * 1000:.1f}ms "
                f"p95={self.percentile(0.95) * 1000:.1f}ms max={max(self.latencies) * 1000:.1f}ms")


class Acks:
    """The flooder's ack codes, counted from the client threads that receive them."""

    def __init__(self) -> None:
        self.codes: Counter = Counter()
        self._lock = threading.Lock()

    def record(self, ack: Any = None) -> None:
        code = "ok" if isinstance(ack, dict) and ack.get("ok") else (
            ack.get("error", {}).get("code") if isinstance(ack, dict) else repr(ack))
        with self._lock:
            self.codes[code] += 1


def blast(sockets: list[LiveSocket], task_id: int, acks: Acks, deadline: float) -> int:
    """Emit send_message as fast as the sockets take it, round robin, without waiting for
    acks, until every socket is cut off, FLOOD_EVENTS are out or the deadline passes."""
    emitted = 0
    while emitted < FLOOD_EVENTS and time.monotonic() < deadline:
        live = [s for s in sockets if s.connected]
        if not live:
            break
        for sock in live:
            try:
                sock.client.emit("send_message", message(task_id, f"blast {emitted}"), namespace=sock.namespace,
                                 callback=acks.record)
                emitted += 1
            except (socketio.exceptions.BadNamespaceError, KeyError):
                # Cut off between the check and the emit: python-socketio's client says so
                # with BadNamespaceError, or, when its disconnect clears the pending acks
                # while the emit registers one, with a KeyError of its own.
                pass
    return emitted


def hammer(sock: LiveSocket, task_id: int, acks: Acks, deadline: float) -> int:
    """Send one after another, each after the previous ack, as fast as the acks come back,
    until cut off or the deadline: a client that ignores rate_limited."""
    sent = 0
    while sent < FLOOD_EVENTS and time.monotonic() < deadline and sock.connected:
        answered = threading.Event()

        def record(ack: Any = None) -> None:
            acks.record(ack)
            answered.set()

        try:
            sock.client.emit("send_message", message(task_id, f"hammer {sent}"), namespace=sock.namespace,
                             callback=record)
        except socketio.exceptions.BadNamespaceError:
            break
        sent += 1
        while not answered.wait(0.01):  # the ack, or the hang-up (after which no ack comes)
            if not sock.connected or time.monotonic() > deadline:
                return sent
    return sent


def test_one_user_flooding_is_cut_off_and_others_stay_served(gunicorn_server: LiveServer, live_socket):
    """Alice floods send_message from several sockets: some blast without waiting for
    acks, one sends the next as soon as each ack (mostly rate_limited) comes back. Bob,
    in her task, and Carol, in another, send a message every 100 ms meanwhile."""
    api = Api(gunicorn_server.url)
    try:
        room = make_room(api, "Flooded")  # Alice (the flooder) and Bob in one task
        quiet = make_room(api, "Quiet")  # Carol's own task
        blasters = [live_socket(gunicorn_server).connect(room.owner.token) for _ in range(BLAST_SOCKETS)]
        hammerer = live_socket(gunicorn_server, "/").connect(room.owner.token)
        same_task = live_socket(gunicorn_server).connect(room.member.token)
        other_task = live_socket(gunicorn_server, "/").connect(quiet.owner.token)
        assert same_task.call("join_task", room.task_id)["ok"] is True
        assert other_task.call("join_task", quiet.task_id)["ok"] is True

        baseline = Victim(same_task, room.task_id, "same task, before the flood")
        baseline.run(10)
        victims = [Victim(same_task, room.task_id, "same task"), Victim(other_task, quiet.task_id, "other task")]
        acks = Acks()
        with ThreadPoolExecutor(len(victims) + 2) as pool:
            running = [pool.submit(v.run, VICTIM_SENDS) for v in victims]
            time.sleep(0.5)  # the victims are under way when the flood starts
            deadline = time.monotonic() + FLOOD_SECONDS
            hammering = pool.submit(hammer, hammerer, room.task_id, acks, deadline)
            blasting = pool.submit(blast, blasters, room.task_id, acks, deadline)
            hammered = hammering.result(timeout=FLOOD_SECONDS + WAIT)
            blasted = blasting.result(timeout=FLOOD_SECONDS + WAIT)
            for future in running:
                future.result(timeout=VICTIM_SENDS * (VICTIM_INTERVAL + VICTIM_TIMEOUT))
        time.sleep(0.5)  # acks still on their way
        flooder_open = [s for s in (*blasters, hammerer) if s.connected]

        print(f"\nflood: {blasted} events blasted from {BLAST_SOCKETS} sockets, {hammered} hammered from one; "
              f"acks {dict(acks.codes)}; flooder sockets still open: {len(flooder_open)}")
        for victim in [baseline, *victims]:
            print(victim.summary())

        for victim in victims:
            assert victim.failures == [], (victim.label, victim.failures[:5])
            assert victim.percentile(0.95) < FLOOD_P95_BOUND, victim.summary()
            assert max(victim.latencies) < FLOOD_MAX_BOUND, victim.summary()
        assert flooder_open == [], "a flooder socket is still connected"
        assert acks.codes["rate_limited"] > 0, acks.codes
        assert set(acks.codes) <= {"ok", "rate_limited"}, acks.codes
        # The hammering socket was hung up by its refusals: more than RATE_LIMIT_REFUSALS (100) answered.
        assert hammered > 100, hammered

        by_user = Counter(m["userId"] for m in whole_history(api, room.owner, room.task_id))
        assert acks.codes["ok"] <= by_user[room.owner.id] <= 100, (by_user, acks.codes)  # 100 a minute
        assert by_user[room.member.id] == len(baseline.latencies) + VICTIM_SENDS
        history = whole_history(api, quiet.owner, quiet.task_id)
        assert Counter(m["userId"] for m in history) == {quiet.owner.id: VICTIM_SENDS}
    finally:
        api.close()


