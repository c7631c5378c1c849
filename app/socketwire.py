"""How Socket.IO packets are written: text only, JSON by orjson.

No event of this server takes or sends binary data, so python-socketio's scan of
every payload for bytes (to build a binary packet) is skipped (`TextPacket`).
Encoding a broadcast is done once per namespace and room, by orjson, which is
several times faster than the standard library on these payloads. Decoding stays
with the standard library: it keeps what a client sends readable exactly as
before (orjson refuses a lone surrogate escape, which the validation answers
with a `validation_error`, rather than dropping the packet).
"""
from __future__ import annotations

import json
from typing import Any

import orjson
from socketio import packet

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


class FastJSON:
    """The `json` module python-socketio and python-engineio call: `dumps` and `loads`."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=_ORJSON_OPTIONS).decode()
        except (TypeError, orjson.JSONEncodeError):
            # What orjson will not write (a lone surrogate, an integer past 64 bits)
            # the standard library writes as it always did.
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return json.loads(text, **kwargs)


class TextPacket(packet.Packet):  # type: ignore[misc]  # python-socketio ships no types: Packet is Any here
    uses_binary_events = False
    json = FastJSON
