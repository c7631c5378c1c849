"""Flask-SocketIO test clients (the `socket` fixture's), on `/tasks` unless told otherwise."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NS = "/tasks"


def events(sock, name: str, ns: str = NS) -> list:
    """The payloads of every `name` event the socket received since last asked."""
    return [e["args"][0] for e in sock.get_received(ns) if e["name"] == name]


def emit(sock, event: str, *args, ns: str = NS):
    """Emit with an ack and return the ack."""
    return sock.emit(event, *args, namespace=ns, callback=True)


def send(sock, task_id, text, ns: str = NS, **extra) -> dict:
    """`send_message` with an ack; returns the ack."""
    return emit(sock, "send_message", {"taskId": task_id, "message": text, **extra}, ns=ns)


def drain(*socks, ns: str = NS) -> None:
    """Forget what the sockets received so far."""
    for sock in socks:
        sock.get_received(ns)


def join(sock, task_id, ns: str = NS) -> dict:
    """`join_task`, which must succeed; returns the ack."""
    ack = emit(sock, "join_task", task_id, ns=ns)
    assert ack["ok"] is True, ack
    return ack


def sent(sock, task_id, text, ns: str = NS, **extra) -> dict:
    """The message of a `send_message` that must succeed (the ack's data)."""
    ack = send(sock, task_id, text, ns=ns, **extra)
    assert ack["ok"] is True, ack
    return ack["data"]


def assert_refused(sock, ack, code: str, message: str | None = None, ns: str = NS) -> None:
    """The failure ack (with `message`, when given), and the same error as the one
    `error` event to that socket."""
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == code, ack
    if message is not None:
        assert ack["error"]["message"] == message, ack
    [event] = events(sock, "error", ns)
    assert (event["code"], event["message"]) == (ack["error"]["code"], ack["error"]["message"])


@dataclass
class Peer:
    """One socket and the namespace it is connected to, so that a test can hold `/` and
    `/tasks` clients alike."""

    sock: Any
    ns: str = NS

    def emit(self, event: str, *args) -> dict:
        return emit(self.sock, event, *args, ns=self.ns)

    def ok(self, event: str, payload: dict) -> dict:
        """The data of an event that must succeed."""
        ack = self.emit(event, payload)
        assert ack["ok"] is True, ack
        return ack["data"]

    def join(self, task_id) -> dict:
        return join(self.sock, task_id, ns=self.ns)

    def sent(self, task_id, text: str, **extra) -> dict:
        return sent(self.sock, task_id, text, ns=self.ns, **extra)

    def events(self, name: str) -> list:
        return events(self.sock, name, self.ns)

    def received(self) -> list:
        """Every event received since last asked, as the test client gives them."""
        return self.sock.get_received(self.ns)

    def heard(self) -> list[tuple[str, dict]]:
        """Every event received since last asked, as (name, payload)."""
        return [(e["name"], e["args"][0]) for e in self.received()]

    def names(self) -> list[str]:
        return [e["name"] for e in self.received()]

    def refused(self, ack: dict, code: str) -> None:
        """The failure ack, and the same error as an `error` event to this socket only,
        which received nothing else."""
        assert ack["ok"] is False, ack
        assert ack["error"]["code"] == code, ack
        assert [(e["name"], e["args"][0]["code"]) for e in self.received()] == [("error", code)]

    def disconnect(self) -> None:
        self.sock.disconnect(self.ns)


def fill(value, placeholders: dict):
    """A payload with each placeholder object in it (at any depth of lists and dicts)
    replaced by its real value: fill(({"taskId": TASK},), {TASK: 7})."""
    for placeholder, real in placeholders.items():
        if value is placeholder:
            return real
    if isinstance(value, list):
        return [fill(v, placeholders) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, placeholders) for k, v in value.items()}
    return value
