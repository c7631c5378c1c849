"""What marshmallow cannot tell apispec: "exactly one of these keys".

An input schema whose `Meta` names `exactly_one_of` (its validator enforces it) is
documented with `oneOf`, one `required` per key, so that the OpenAPI document refuses
a body with both keys or with neither, as the server does.
"""
from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from marshmallow import Schema


class ExactlyOneOf(BasePlugin):
    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        schema = kwargs.get("schema")
        if isinstance(schema, Schema):
            schema = type(schema)
        keys = getattr(getattr(schema, "Meta", None), "exactly_one_of", None)
        if not keys:
            return None
        return {"oneOf": [{"required": [key]} for key in keys]}
