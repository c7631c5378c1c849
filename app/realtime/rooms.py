"""Which rooms each socket is in, kept beside python-socketio's own table.

python-socketio's manager keeps `rooms[namespace][room] -> {sid: eio_sid}` only, so
to find a socket's rooms it copies and scans every room of the namespace:
`basic_disconnect` does that for each socket that goes, and `get_rooms` for each
call. Here every socket has its own room, and its user another, so with 10,000
sockets that is over 20,000 rooms per disconnect; when many clients went at once
(a network blip, a load balancer restart, a benchmark ending) the worker spent
whole seconds per thousand disconnects in that scan and answered nothing else,
so pings went unanswered and more clients dropped.

`install` keeps a second index, (namespace, sid) -> rooms, updated in
`basic_enter_room` and `basic_leave_room` (every change of membership goes
through those two, remote ones of a message queue manager included), and answers
`basic_disconnect` and `get_rooms` from it: the cost of a socket's rooms, not of
all rooms. Written for python-socketio 5.18 (`socketio/base_manager.py`); the
rest of `basic_disconnect` (callbacks, pending connects and disconnects) is
repeated as it is there.
"""
from __future__ import annotations

from typing import Any


def install(manager: Any) -> None:
    rooms_of: dict[tuple[str, str], dict[Any, None]] = {}  # insertion-ordered sets
    enter_room, leave_room = manager.basic_enter_room, manager.basic_leave_room

    def basic_enter_room(sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        enter_room(sid, namespace, room, eio_sid=eio_sid)
        rooms_of.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(sid: str, namespace: str, room: Any) -> None:
        leave_room(sid, namespace, room)
        rooms = rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del rooms_of[(namespace, sid)]

    def basic_disconnect(sid: str, namespace: str, **kwargs: Any) -> None:
        if namespace not in manager.rooms:
            return
        for room in list(rooms_of.get((namespace, sid), ())):
            manager.basic_leave_room(sid, namespace, room)
        manager.callbacks.pop(sid, None)
        for pending in (manager.pending_connect, manager.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(sid: str, namespace: str) -> list[Any]:
        return [room for room in rooms_of.get((namespace, sid), ()) if room is not None]

    manager.basic_enter_room = basic_enter_room
    manager.basic_leave_room = basic_leave_room
    manager.basic_disconnect = basic_disconnect
    manager.get_rooms = get_rooms
