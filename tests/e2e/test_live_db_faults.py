"""The database goes away in the middle of a burst of sends, and comes back.

A private PostgreSQL cluster (pgcluster.py) serves a gunicorn server with the
production gevent worker. Four users on two tasks send messages with clientIds
over Socket.IO; half-way through, the cluster is stopped (`pg_ctl stop -m fast`:
every open connection is cut, as in a failover). While it is down, sends are
refused as `unavailable` and retryable, nothing is broadcast, /health is 503, a
REST send is 503 and a new socket is refused with `unavailable`. Then the cluster
starts again and the same worker process, never restarted, serves on: every
failed send is retried with its clientId and every message is stored exactly
once, and each room heard exactly the messages whose send was acked as new.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from e2e.live import WAIT, Api, LiveServer, LiveSocket, close_in_background, start_server, wait_until
from e2e.pgcluster import PgCluster
from toolkit.wire import UNAVAILABLE

pytestmark = pytest.mark.e2e

OK_BEFORE_STOP = 40  # sends acked ok (all senders together) before the database is stopped
FAILS_WHILE_DOWN = 3  # each sender sends at least this many while the database is down
MAX_SENDS = 80  # per sender: the bound of the burst
BACKOFF = 0.05  # seconds a sender waits after a refused send, as a client would
BOUND = 20.0  # seconds: the generous bound on each phase of the test
# What must never reach a server log: the symptoms of a session or pool that did not recover.
BAD_LOG_LINES = (
    "Traceback", "PendingRollbackError", "invalid transaction is rolled back", "QueuePool limit",
    "internal_error", "Worker exiting", "WORKER TIMEOUT",
)


# ---- the cluster and the server --------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    reason = PgCluster.unavailable_reason()
    if reason:
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    made = PgCluster.create()
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory) -> Iterator[LiveServer]:
    """gunicorn (gevent worker, APP_ENV=production) on the private cluster. The message
    limit is lifted: the burst and its retries are not what is tested here."""
    url = cluster.migrated_database("taskchat_faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RATE_LIMIT_MESSAGES", "100000/minute")
        mp.setenv("RATE_LIMIT_JOINS", "100000/minute")
        live = start_server("gunicorn", url, tmp_path_factory.mktemp("faults-server"))
    yield live
    live.stop()


@pytest.fixture
def watched(server, cluster) -> Iterator[LiveServer]:
    """The server for one test; the cluster is running again afterwards whatever happened."""
    start = server.log_size()
    yield server
    if not cluster.is_running():
        cluster.start()
    time.sleep(0.1)
    assert server.alive(), f"the server died during the test\n{server.log_tail()}"
    logged = server.log_text(start)
    bad = [line for line in logged.splitlines() if any(mark in line for mark in BAD_LOG_LINES)]
    assert not bad, "the server logged:\n" + "\n".join(bad[:20]) + "\n\n" + logged[-5000:]


def worker_pids(server: LiveServer) -> list[int]:
    """gunicorn's worker processes: the children of the master."""
    path = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return sorted(int(pid) for pid in path.read_text().split())


def health(server: LiveServer) -> requests.Response:
    return requests.get(server.url + "/health", timeout=5, headers={"Connection": "close"})


def wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + BOUND
    while (status := health(server).status_code) != 200:
        assert time.monotonic() < deadline, f"/health still {status} {BOUND}s after the database came back"
        time.sleep(0.1)


# ---- the senders ---------------------------------------------------------------
@dataclass
class Attempt:
    client_id: str
    text: str
    started: float
    ack: Any = None


@dataclass
class Sender:
    """One user's socket sending to one task, one message at a time, each with a new clientId."""

    name: str
    sock: LiveSocket
    task_id: int
    attempts: list[Attempt] = field(default_factory=list)
    retries: list[Attempt] = field(default_factory=list)
    crashed: list[BaseException] = field(default_factory=list)

    def call(self, attempt: Attempt) -> Any:
        try:
            return self.sock.call("send_message", {"taskId": self.task_id, "message": attempt.text,
                                                   "clientId": attempt.client_id})
        except socketio.exceptions.TimeoutError:
            return {"ok": False, "error": f"no ack within {WAIT}s"}

    def burst(self, stop: threading.Event) -> None:
        try:
            for i in range(MAX_SENDS):
                if stop.is_set():
                    return
                attempt = Attempt(f"{self.name}-{i}-{uuid.uuid4().hex[:8]}", f"{self.name} says {i}", time.monotonic())
                self.attempts.append(attempt)
                attempt.ack = self.call(attempt)
                if not (isinstance(attempt.ack, dict) and attempt.ack.get("ok")):
                    time.sleep(BACKOFF)
        except BaseException as exc:  # reported by the main thread
            self.crashed.append(exc)

    def retry_failed(self) -> None:
        """Each refused send again, same clientId and text, until it is acked (bounded)."""
        try:
            for first in self.attempts:
                if first.ack.get("ok"):
                    continue
                for _ in range(5):
                    again = Attempt(first.client_id, first.text, time.monotonic())
                    again.ack = self.call(again)
                    self.retries.append(again)
                    if again.ack.get("ok"):
                        break
                    time.sleep(0.2)
        except BaseException as exc:
            self.crashed.append(exc)

    def ok(self) -> int:
        return sum(1 for a in list(self.attempts) if isinstance(a.ack, dict) and a.ack.get("ok"))

    def sent_since(self, moment: float) -> int:
        return sum(1 for a in list(self.attempts) if a.started >= moment and a.ack is not None)


def run_all(senders: list[Sender], method: str, *args) -> list[threading.Thread]:
    """Each sender's `method` in a thread of its own, all at once."""
    threads = [threading.Thread(target=getattr(s, method), args=args, daemon=True, name=s.name) for s in senders]
    for thread in threads:
        thread.start()
    return threads


def join_all(threads: list[threading.Thread]) -> None:
    deadline = time.monotonic() + BOUND
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a sender did not finish within the bound"


def stored(cluster: PgCluster, task_ids: list[int]) -> list[tuple[int, int, str | None, str]]:
    """(id, task_id, client_id, message) of every message of the tasks, read from the database itself."""
    with cluster.connect("taskchat_faults") as conn:
        return conn.execute(
            "SELECT id, task_id, client_id, message FROM task_chat WHERE task_id = ANY(%s) ORDER BY id", (task_ids,)
        ).fetchall()


# ---- the test ---------------------------------------------------------------------
def test_database_stops_mid_burst_and_comes_back_to_the_same_worker(watched: LiveServer, cluster: PgCluster):
    server = watched
    api = Api(server.url)
    users = {name: api.register(name.title(), "Faults") for name in ("alice", "bob", "carol", "dave")}
    task_a = api.create_task(users["alice"], "Faults A")["id"]
    task_b = api.create_task(users["alice"], "Faults B")["id"]
    api.add_member(users["alice"], task_a, users["bob"])
    api.add_member(users["alice"], task_b, users["carol"])
    api.add_member(users["alice"], task_a, users["dave"])
    api.add_member(users["alice"], task_b, users["dave"])
    rooms = {"alice": [task_a, task_b], "bob": [task_a], "carol": [task_b], "dave": [task_a, task_b]}
    sockets = {}
    for name, user in users.items():
        sockets[name] = LiveSocket(server.url).connect(user.token)
        for task_id in rooms[name]:
            assert sockets[name].call("join_task", task_id)["ok"] is True
    senders = [
        Sender("alice", sockets["alice"], task_a), Sender("bob", sockets["bob"], task_a),
        Sender("carol", sockets["carol"], task_b), Sender("dave", sockets["dave"], task_b),
    ]
    workers = worker_pids(server)
    assert len(workers) == 1, workers
    assert health(server).status_code == 200
    rest_client_id = f"rest-{uuid.uuid4().hex[:8]}"
    late = LiveSocket(server.url)

    try:
        # 1. The burst; the database stops in the middle of it.
        stop_sending = threading.Event()
        threads = run_all(senders, "burst", stop_sending)
        wait_until(lambda: sum(s.ok() for s in senders) >= OK_BEFORE_STOP, BOUND, f"{OK_BEFORE_STOP} sends acked ok")
        cluster.stop("fast")
        down_since = time.monotonic()
        wait_until(lambda: all(s.sent_since(down_since) >= FAILS_WHILE_DOWN for s in senders),
                   BOUND, "every sender sent while the database was down")

        # 2. While it is down: /health, a REST send and a new socket.
        response = health(server)
        assert response.status_code == 503, response.text
        assert response.json() == {"status": "unavailable", "database": "unavailable"}
        response = requests.post(
            f"{server.url}/api/tasks/{task_a}/messages", headers=users["bob"].headers, timeout=10,
            json={"message": "over REST while down", "clientId": rest_client_id},
        )
        assert response.status_code == 503, response.text
        assert response.json() == {"error": UNAVAILABLE}
        with pytest.raises(socketio.exceptions.ConnectionError):
            late.connect(users["carol"].token)
        assert late.connect_errors == [{"message": UNAVAILABLE["message"], "data": {"code": "unavailable"}}], \
            late.connect_errors
        stop_sending.set()
        join_all(threads)
        assert not any(s.crashed for s in senders), [s.crashed for s in senders]
    finally:
        # 3. The database comes back; the worker is the same process, never restarted.
        if not cluster.is_running():
            cluster.start()
    wait_healthy(server)
    assert worker_pids(server) == workers, "the gunicorn worker was replaced"
    assert server.log_text().count("Booting worker") == 1, "the gunicorn worker was restarted"

    # Every ack of the burst: ok, or unavailable and retryable; nothing else, nothing internal.
    attempts = [a for s in senders for a in s.attempts]
    refused = [a for a in attempts if not a.ack.get("ok")]
    assert all(a.ack == {"ok": False, "error": UNAVAILABLE} for a in refused), \
        [a.ack for a in refused if a.ack != {"ok": False, "error": UNAVAILABLE}][:5]
    assert len(refused) >= FAILS_WHILE_DOWN * len(senders)
    assert sum(1 for a in attempts if a.ack.get("ok")) >= OK_BEFORE_STOP
    for s in senders:  # the `error` event of each refusal says the same as its ack
        assert all(e == UNAVAILABLE for e in s.sock.events("error")), s.sock.events("error")

    # 4. Retries with the same clientIds, the REST send too, and a new socket.
    threads = run_all(senders, "retry_failed")
    join_all(threads)
    assert not any(s.crashed for s in senders), [s.crashed for s in senders]
    retries = [a for s in senders for a in s.retries]
    assert len(retries) == len(refused), "each refused send needed exactly one retry"
    assert all(a.ack.get("ok") for a in retries), [a.ack for a in retries if not a.ack.get("ok")][:5]
    response = requests.post(
        f"{server.url}/api/tasks/{task_a}/messages", headers=users["bob"].headers, timeout=10,
        json={"message": "over REST while down", "clientId": rest_client_id},
    )
    assert response.status_code == 201, response.text
    rest_message_id = response.json()["id"]
    late = LiveSocket(server.url).connect(users["carol"].token)
    assert late.call("join_task", task_b)["ok"] is True

    # 5. No exhausted pool: a second burst, all senders at once, all acked ok.
    stop_sending = threading.Event()
    more = [Sender(f"{s.name}2", s.sock, s.task_id) for s in senders]
    threads = run_all(more, "burst", stop_sending)
    wait_until(lambda: sum(len(s.attempts) for s in more) >= 40 or not any(t.is_alive() for t in threads),
               BOUND, "a second burst")
    stop_sending.set()
    join_all(threads)
    assert all(a.ack.get("ok") for s in more for a in s.attempts), [a.ack for s in more for a in s.attempts][:5]

    # Every message stored exactly once: each clientId of every send, the REST one included.
    rows = stored(cluster, [task_a, task_b])
    client_ids = [row[2] for row in rows]
    sent = {a.client_id: (s.task_id, a.text) for s in senders + more for a in s.attempts}
    sent[rest_client_id] = (task_a, "over REST while down")
    assert len(client_ids) == len(set(client_ids)), "a message was stored twice"
    assert {row[2]: (row[1], row[3]) for row in rows} == sent
    # Each ok ack names the stored message of its clientId.
    by_client_id = {row[2]: row[0] for row in rows}
    oks = [a for s in senders + more for a in s.attempts + s.retries if a.ack.get("ok")]
    assert all(a.ack["data"]["id"] == by_client_id[a.client_id] for a in oks)

    # Each room heard exactly the sends acked as new (duplicate: false), each once, and
    # nothing that is not stored. A late retry of a message that did commit is acked as
    # a duplicate and announced by nobody, so those are not expected.
    announced = {a.ack["data"]["id"]: a.ack["data"]["taskId"] for a in oks if a.ack["data"]["duplicate"] is False}
    announced[rest_message_id] = task_a
    expected = {name: {i for i, t in announced.items() if t in rooms[name]} for name in rooms}
    for name, sock in sockets.items():
        wait_until(lambda: {e["message"]["id"] for e in sock.events("new_message")} >= expected[name],
                   BOUND, f"{name} heard every message of their rooms")
    time.sleep(0.3)  # let stray broadcasts arrive
    stored_ids = set(by_client_id.values())
    for name, sock in sockets.items():
        heard = [e["message"]["id"] for e in sock.events("new_message")]
        assert len(heard) == len(set(heard)), f"{name} heard a message twice"
        assert set(heard) == expected[name], (name, set(heard) ^ expected[name])
        assert set(heard) <= stored_ids

    # 6. A restart while nobody sends goes unnoticed: the pool's connections, cut by the
    # restart, are found dead when checked out (pool_pre_ping) and replaced.
    cluster.stop("fast")
    cluster.start()
    quiet = [Sender(f"{s.name}3", s.sock, s.task_id) for s in senders]
    # One send each, all at once.
    threads = [threading.Thread(target=lambda q=q: q.attempts.append(attempt_once(q)), daemon=True) for q in quiet]
    for thread in threads:
        thread.start()
    join_all(threads)
    assert [a.ack.get("ok") for q in quiet for a in q.attempts] == [True] * len(quiet), \
        [a.ack for q in quiet for a in q.attempts]
    assert worker_pids(server) == workers
    close_in_background(list(sockets.values()) + [late])
    api.close()


def attempt_once(sender: Sender) -> Attempt:
    attempt = Attempt(f"{sender.name}-{uuid.uuid4().hex[:8]}", f"{sender.name} after a quiet restart", time.monotonic())
    attempt.ack = sender.call(attempt)
    return attempt
