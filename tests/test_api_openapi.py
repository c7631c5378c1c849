"""The OpenAPI document (/api/openapi.json) says what the server does: the error shape with
its extra fields, which operations take which token, the rules of ids and texts, and the
rules across the fields of a body. tests/test_api_schemathesis.py runs the whole document
against the app; these tests pin each of those points on its own."""
from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app import create_app
from app.schemas.fields import MAX_DB_INT, Id, Text, Token

from toolkit.env import app_env


@pytest.fixture
def doc(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def validator(doc: dict, schema: dict):
    """A validator of `schema` (which may $ref the document's components), reading patterns
    as JSON Schema does (ECMA-262), not as Python does."""
    return jsonschema_rs.Draft4Validator({**schema, "components": doc["components"]})


def error_schema(doc: dict) -> dict:
    return {"$ref": "#/components/schemas/ErrorOut"}


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


# ---- errors: every field they carry is documented ----------------------------------------
@pytest.mark.parametrize("settings", [{"LOGIN_RATE_LIMIT_IP": "2/minute"}])
def test_a_429_answer_matches_the_documented_error_shape(client, doc, settings):
    body = {"email": "nobody@example.com", "password": "wrong password"}
    answers = [client.post("/api/auth/login", json=body) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 429]
    error = answers[-1].get_json()
    assert error["error"]["retryAfter"] >= 1
    assert validator(doc, error_schema(doc)).is_valid(error), error


def test_a_503_answer_matches_the_documented_error_shape(doc):
    broken = create_app(env=app_env("sqlite:////nonexistent-dir/taskchat/x.db"))

    answer = broken.test_client().post("/api/auth/login", json={"email": "a@example.com", "password": "x" * 12})

    assert answer.status_code == 503
    error = answer.get_json()
    assert error["error"]["retryable"] is True
    assert validator(doc, error_schema(doc)).is_valid(error), error


# ---- tokens: documented per operation, as the server demands them -------------------------
def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_no_token_is_required_for_the_whole_api(doc):
    assert "security" not in doc


def test_an_operation_documents_a_token_exactly_when_it_answers_401_without_one(client, doc):
    schemes = doc["components"]["securitySchemes"]
    mismatches = []
    for path, method, operation in operations(doc):
        answer = client.open(_filled(path), method=method.upper(), json={})
        documented = [name for requirement in operation.get("security", []) for name in requirement]
        assert all(name in schemes for name in documented)
        if bool(documented) != (answer.status_code == 401):
            mismatches.append((method, path, documented, answer.status_code))

    assert mismatches == []
    security = {(m, p): o.get("security") for p, m, o in operations(doc)}
    assert security[("get", "/health")] is None
    assert security[("post", "/api/auth/register")] is None
    assert security[("post", "/api/auth/login")] is None
    assert security[("post", "/api/auth/refresh")] == [{"refreshBearerAuth": []}]
    assert security[("post", "/api/auth/logout")] == [{"bearerAuth": []}]


def test_refresh_takes_the_refresh_token_and_not_the_access_token(client, alice):
    refresh = {"Authorization": f"Bearer {alice.refresh_token}"}

    assert client.post("/api/auth/refresh", headers=refresh).status_code == 200
    assert client.post("/api/auth/refresh", headers=alice.headers).status_code in (401, 422)


# ---- ids and texts: typed and bounded ------------------------------------------------------
def test_id_fields_are_integers_from_1_to_2_31_minus_1_or_the_same_digits(doc):
    schemas = doc["components"]["schemas"]
    query = {p["name"]: p["schema"] for p in doc["paths"]["/api/tasks/{task_id}/messages"]["get"]["parameters"]}
    fields = [
        schemas["MessageBodyIn"]["properties"]["replyTo"],
        schemas["MessageBodyIn"]["properties"]["attachments"]["items"],
        schemas["MessageBodyIn"]["properties"]["mentions"]["items"],
        schemas["MarkReadBodyIn"]["properties"]["messageId"],
        schemas["NotificationsReadIn"]["properties"]["ids"]["items"],
        query["before"], query["around"],
    ]
    for field in fields:
        integer, digits = field["anyOf"]
        assert integer == {"type": "integer", "minimum": 1, "maximum": MAX_DB_INT}
        assert digits["type"] == "string" and digits["pattern"]
    assert query["after"]["anyOf"][0]["minimum"] == 0
    assert schemas["MessageBodyIn"]["properties"]["replyTo"]["nullable"] is True


def test_text_fields_document_their_blank_rule_and_length(doc):
    schemas = doc["components"]["schemas"]
    message = schemas["MessageBodyIn"]["properties"]["message"]
    title = schemas["TaskCreateIn"]["properties"]["title"]
    description = schemas["TaskCreateIn"]["properties"]["description"]
    emoji = schemas["ReactionBodyIn"]["properties"]["emoji"]

    def accepts(field, text):
        return validator(doc, field).is_valid(text)

    assert accepts(message, "hi") and accepts(message, "  " + "x" * 4000 + "\n")
    assert not accepts(message, "   ") and not accepts(message, "x" * 4001) and not accepts(message, "")
    assert accepts(title, "x" * 200) and not accepts(title, "x" * 201)
    assert accepts(description, "") and accepts(description, "  ")
    assert accepts(emoji, "👍") and not accepts(emoji, " ") and not accepts(emoji, "x" * 33)
    assert "4000" in message["description"]


def test_the_document_holds_a_notifications_read_body_to_ids_or_all_true(doc):
    schema = {"$ref": "#/components/schemas/NotificationsReadIn"}

    valid = [body for body in ({"ids": [1]}, {"ids": []}, {"all": True}, {}, {"all": False}, {"ids": [1], "all": True})
             if validator(doc, schema).is_valid(body)]

    assert valid == [{"ids": [1]}, {"ids": []}, {"all": True}]


def test_the_document_holds_a_task_update_to_one_field_at_least(doc):
    schema = {"$ref": "#/components/schemas/TaskUpdateIn"}

    valid = [body for body in ({"title": "t"}, {"status": "done"}, {"description": ""}, {}, {"other": 1})
             if validator(doc, schema).is_valid(body)]

    assert valid == [{"title": "t"}, {"status": "done"}, {"description": ""}]


# ---- the documented rules of each custom field are the rules it enforces ------------------
FIELDS = {
    "id": Id(), "id from 0": Id(minimum=0),
    "text": Text(max_length=5), "blank text": Text(max_length=5, allow_blank=True),
    "token": Token(max_length=5),
}
# Every kind of character the rules tell apart: Python's blanks, JSON Schema's blanks that
# Python does not strip (U+FEFF) and the other way round (U+001C, U+0085), controls, NUL.
CHARACTERS = st.sampled_from(list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\ufeff\x00\x01\x7fa0é👍٣"))
VALUES = st.one_of(
    st.text(CHARACTERS, max_size=8), st.text(max_size=8), st.integers(min_value=-3, max_value=MAX_DB_INT + 3),
    st.sampled_from([MAX_DB_INT, MAX_DB_INT + 1, 0, 2**63])
    .flatmap(lambda n: st.sampled_from([n, str(n), "0" + str(n)])),
    st.integers(0, 10**20).map(str), st.booleans(), st.none(), st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=1),
)

EDGES = ["2147483647", "02147483647", "2147483648", "0", "00", "", " ", "\ufeff", "\x1cx\x1c", "x\x00", "12345",
         " 12345 ", "123456", "1234\n", 2147483647, 2147483648, 0, 1, True, 1.0, None]


def _accepted(field, value) -> bool:
    try:
        field.deserialize(value)
    except Exception:  # marshmallow's ValidationError: refused
        return False
    return True


@pytest.mark.parametrize("name", FIELDS)
def test_a_custom_field_accepts_exactly_what_its_documented_schema_allows(name):
    field = FIELDS[name]
    from apispec import APISpec

    from app.api.openapi import DocumentPlugin

    plugin = DocumentPlugin()
    APISpec("t", "1", "3.0.3", plugins=[plugin])
    documented = jsonschema_rs.Draft4Validator(plugin.converter.field2property(field))

    def agree(value):
        assert _accepted(field, value) == documented.is_valid(value), (value, json.dumps(value))

    for value in EDGES:
        agree(value)
    hypothesis_settings(max_examples=400, derandomize=True, suppress_health_check=list(HealthCheck), deadline=None)(
        given(VALUES)(agree)
    )()
