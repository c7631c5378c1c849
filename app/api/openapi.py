"""What the OpenAPI document (/api/openapi.json) says beyond what apispec reads by itself.

apispec documents marshmallow's own fields and validators. taskchat's fields (app/schemas/fields.py)
check more than their base class shows (an `Id` is an integer or a string of digits within
the database's range, a `Text` is trimmed and must not be blank), so each states its rules
through an `openapi()` method, next to the code that enforces them; rules across the fields
of a body sit on its schema as `openapi_rules`.

Which token an operation takes is documented per operation by `token_required`, the same
decorator that demands it: nothing declares a token for the whole API, so /health, register
and login are documented as open, as they are.
"""
from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask_jwt_extended import jwt_required
from flask_smorest import Api, Blueprint

ACCESS_TOKEN = "bearerAuth"
REFRESH_TOKEN = "refreshBearerAuth"
SECURITY_SCHEMES = {
    ACCESS_TOKEN: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "The access token (`accessToken` of register, login and refresh).",
    },
    REFRESH_TOKEN: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "The refresh token (`refreshToken` of register and login).",
    },
}


def token_required(*, refresh: bool = False) -> Callable:
    """`jwt_required`, and the operation's `security` in the document: the access token,
    or with `refresh` the refresh token."""
    scheme = REFRESH_TOKEN if refresh else ACCESS_TOKEN

    def decorate(view: Callable) -> Callable:
        return Blueprint.doc(security=[{scheme: []}])(jwt_required(refresh=refresh)(view))

    return decorate


def _own_field_properties(
    self: OpenAPIConverter,  # noqa: ARG001 (apispec binds the function to the converter as a method)
    field: Any, ret: dict[str, Any], **kwargs: Any,
) -> dict[str, Any]:
    """apispec's attribute function for the fields of app/schemas/fields.py that say more."""
    describe = getattr(field, "openapi", None)
    if describe is None:
        return {}
    properties = describe()
    if "description" in properties and ret.get("description"):
        properties["description"] = f"{ret['description']}; {properties['description']}"
    return properties


class _Converter(OpenAPIConverter):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.add_attribute_function(_own_field_properties)

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema = super().schema2jsonschema(schema)
        jsonschema.update(deepcopy(getattr(resolve_schema_cls(schema), "openapi_rules", {})))
        return jsonschema


class DocumentPlugin(MarshmallowPlugin):
    Converter = _Converter


def init_document(api: Api, app: Any) -> None:
    """`api.init_app`, with the converter above and the two kinds of token."""
    api.init_app(app, spec_kwargs={"marshmallow_plugin": DocumentPlugin()})
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
