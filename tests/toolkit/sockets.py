"""Flask-SocketIO test clients (the `socket` fixture's), on `/tasks` unless told otherwise."""
from __future__ import annotations

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
