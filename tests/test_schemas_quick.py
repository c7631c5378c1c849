"""A schema's `quick` load answers exactly as marshmallow does, or not at all.

`send_message` is validated first by `SendMessageIn.quick`, which handles the
commonest payload without marshmallow. Whatever it accepts must load to the same
data through the schema, and whatever the schema refuses it must leave to the
schema (so every refusal keeps its error details).
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from marshmallow import ValidationError as SchemaError

from app.schemas.fields import MAX_DB_INT
from app.schemas.inputs import MAX_CLIENT_ID_LENGTH, MAX_MESSAGE_LENGTH, SendMessageIn, _instance

KEYS = ("taskId", "message", "clientId", "replyTo", "attachments", "mentions", "task_id", "other")

# Near the edges of every rule: blank and spaced text, control characters, NUL, lone
# surrogates, the length limits, digit strings, booleans, the id bounds.
texts = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=" \t\n\x00\x1f\x7f\u2028\ud800a1٢²", max_size=8),
    st.sampled_from(["hello", "  spaced  ", " ", "", "x" * MAX_MESSAGE_LENGTH, " x" * MAX_MESSAGE_LENGTH,
                     "k" * MAX_CLIENT_ID_LENGTH, "k" * (MAX_CLIENT_ID_LENGTH + 1), "12", "0"]),
)
values = st.one_of(
    st.none(), st.booleans(), texts,
    st.integers(min_value=-2, max_value=3), st.sampled_from([MAX_DB_INT, MAX_DB_INT + 1, 2**70]),
    st.floats(allow_nan=True), st.lists(st.integers(min_value=0, max_value=3), max_size=2),
    st.sampled_from([[], {}, [None]]),
)
payloads = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))
# Right, then one key given any value: most examples reach the deeper rules.
ids = st.lists(st.integers(min_value=1, max_value=3), max_size=2)
plain = st.fixed_dictionaries(
    {"taskId": st.sampled_from([1, 2, MAX_DB_INT]), "message": st.sampled_from(["hello", " hi ", "x" * 4000])},
    optional={"clientId": st.sampled_from([None, "c-1", "k" * MAX_CLIENT_ID_LENGTH]),
              "replyTo": st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
              "attachments": st.one_of(st.none(), ids), "mentions": st.one_of(st.none(), ids), "other": values},
)
nearly_plain = st.tuples(plain, st.sampled_from(KEYS), st.one_of(values, texts)).map(
    lambda drawn: {**drawn[0], drawn[1]: drawn[2]})


def schema_load(data: dict):
    try:
        return _instance(SendMessageIn).load(data)
    except SchemaError:
        return "refused"


@hsettings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(st.one_of(plain, nearly_plain, payloads))
def test_what_quick_accepts_the_schema_loads_to_the_same_data(data):
    quick = SendMessageIn.quick(data)
    if quick is not None:
        assert quick == schema_load(data)


@pytest.mark.parametrize("data", [
    {"taskId": 3, "message": "hello"},
    {"taskId": 3, "message": "  hello  ", "clientId": "c-1"},
    {"taskId": 3, "message": "hello", "clientId": None, "replyTo": None, "attachments": [], "mentions": None},
    {"taskId": 3, "message": "hello", "clientId": "c-1", "unknown": "ignored"},
])
def test_plain_messages_are_loaded_quick_and_as_the_schema_loads_them(data):
    quick = SendMessageIn.quick(data)
    assert quick is not None, "the commonest payloads take the quick load"
    assert quick == schema_load(data)


@pytest.mark.parametrize("data", [
    {"taskId": "3", "message": "hello"},  # accepted by the schema, in its own way
    {"taskId": 3, "message": "hello", "replyTo": 7},
    {"taskId": 3, "message": "hello", "mentions": [2]},
    {"taskId": 3, "message": "hello", "attachments": ""},  # refused by the schema
    {"taskId": True, "message": "hello"},
    {"taskId": 3, "message": "   "},
    {"taskId": 3, "message": "a\x00b"},
    {"taskId": 3, "message": "hello", "clientId": "tab\there"},
    {"taskId": 3, "message": "x" * (MAX_MESSAGE_LENGTH + 1)},
])
def test_anything_else_is_left_to_the_schema(data):
    assert SendMessageIn.quick(data) is None
