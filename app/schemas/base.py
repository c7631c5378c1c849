"""The base of every schema: fields named in snake_case in Python, in camelCase on the wire."""
from __future__ import annotations

from marshmallow import Schema, fields


def camel(name: str) -> str:
    """`created_at` → `createdAt`. A trailing underscore, Python's way of naming a field
    after a keyword or builtin (`from_`, `all_`), is dropped; `canRead` stays as it is."""
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


class CamelSchema(Schema):
    """Each field is read and written under the camelCase of its attribute name, unless
    it names its key itself (`data_key=`). Marshmallow binds the fields of each schema
    instance before it computes the keys, and apispec documents the bound fields, so the
    OpenAPI document shows the same keys."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if field_obj.data_key is None:
            field_obj.data_key = camel(field_name)
