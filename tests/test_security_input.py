"""Hostile input at both doors: every client event and every REST body or URL gets a
clear error with a stable code, nothing stored changes, and the connection keeps working.

- Malformed ids in every id field of every event (missing, null, booleans, floats, huge,
  negative, zero, lists, objects, and strings that only look like ids: '1e3', ' 12 ',
  Arabic-Indic or superscript digits): `validation_error`. Well-formed ids that name
  nothing, or something the user may not reach, get the service's answer instead
  (`forbidden`, `not_found`, `validation_error`: see `test_well_formed_ids_that_name_nothing_...`).
- Text: wrong types, blank, over the limit, NUL and lone surrogates: `validation_error`,
  the same on SQLite and PostgreSQL (PostgreSQL cannot store NUL in text, and a lone
  surrogate cannot be encoded as UTF-8 at all, so both are refused as input).
- HTML is text: stored unchanged, sent back in JSON, escaped by JSON only.
- REST bodies: the same rules, 422 `validation_error`; ids in URLs that no database row
  can have: 404 `not_found`, never 500.

`snapshot(app)` (every row of every table) is compared before and after each refused input.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from toolkit.database import snapshot
from toolkit.env import NO_LIMITS
from toolkit.rest import assert_error
from toolkit.sockets import NS, emit, events
from toolkit.wire import MAX_ID

# Rate limits out of the way: these tests send many refused events on purpose.
pytestmark = pytest.mark.settings(**NO_LIMITS)


# ---- helpers -------------------------------------------------------------------------------------
def arabic(number: int) -> str:
    """The digits of `number` in Arabic-Indic script: str.isdigit() is true, int() reads them."""
    return str(number).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def fullwidth(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "０１２３４５６７８９"))


MISSING = object()  # the key left out


def bad_ids(real: int) -> dict[str, object]:
    """Values that are not a positive 32-bit id; several spell the real, existing id."""
    return {
        "missing": MISSING, "null": None, "true": True, "false": False, "a float": 1.5,
        "a whole float": float(real), "infinity": float("inf"), "NaN": float("nan"),
        "zero": 0, "negative": -1, "negative real": -real, "2**31": 2**31, "2**63": 2**63, "10**30": 10**30,
        "a string": "abc", "empty string": "", "blank string": "  ", "'1e3'": "1e3",
        "padded real": f" {real} ", "signed real": f"+{real}", "negative string": "-1", "hex": "0x10",
        "a float string": f"{real}.0", "40 digits": "9" * 40, "Arabic-Indic digits of real": arabic(real),
        "fullwidth digits of real": fullwidth(real), "superscript two": "²", "a list": [real],
        "an empty list": [], "an object": {"id": real}, "an operator object": {"$gt": 0},
    }


def put(payload: dict, path: tuple, value: object) -> dict:
    """`payload` with the value at `path` (a key, or a key and a list index) replaced."""
    payload = json.loads(json.dumps(payload))
    key = path[0]
    if len(path) == 2:
        if value is MISSING:
            payload[key] = []
        else:
            payload[key][path[1]] = value
    elif value is MISSING:
        payload.pop(key, None)
    else:
        payload[key] = value
    return payload


def refused(sock, ack, code: str = "validation_error") -> dict:
    """A failure ack in the one shape, and the same error as an `error` event."""
    assert isinstance(ack, dict) and ack.get("ok") is False, ack
    error = ack["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code, ack
    assert isinstance(error["message"], str) and error["message"]
    assert [e["code"] for e in events(sock, "error", NS)] == [code]
    return error


# ---- the world: Alice owns the task, Bob edits, Dan views, Carol is outside ----------------------
@pytest.fixture
def world(app, client, alice, bob, carol, register, task, add_member, room_of):
    dan = register("Dan", "Viewer")
    add_member(alice, task, dan, "viewer")
    base = f"/api/tasks/{task['id']}"
    first = client.post(f"{base}/messages", json={"message": "first"}, headers=alice.headers).get_json()
    mine = client.post(f"{base}/messages", json={"message": "Bob's"}, headers=bob.headers).get_json()
    listener, sender = (peer.sock for peer in room_of(alice, bob))
    return {
        "app": app, "client": client, "alice": alice, "bob": bob, "carol": carol, "dan": dan, "task": task,
        "T": task["id"], "M": mine["id"], "first": first["id"], "listener": listener, "sender": sender,
    }


def valid_payloads(w) -> dict[str, dict]:
    """A good payload of each event, for Bob, built around the world's ids."""
    return {
        "join_task": {"taskId": w["T"], "lastMessageId": 0},
        "leave_task": {"taskId": w["T"]},
        "send_message": {"taskId": w["T"], "message": "hello", "clientId": "c-1", "replyTo": w["first"],
                         "attachments": [], "mentions": [w["alice"].id]},
        "edit_message": {"messageId": w["M"], "message": "edited"},
        "delete_message": {"messageId": w["M"]},
        "add_reaction": {"messageId": w["M"], "emoji": "👍"},
        "remove_reaction": {"messageId": w["M"], "emoji": "👍"},
        "mark_read": {"taskId": w["T"], "messageId": w["M"]},
        "typing_start": {"taskId": w["T"]},
        "typing_stop": {"taskId": w["T"]},
        "refresh_token": {"token": w["bob"].token},
    }


EVENTS = ["join_task", "leave_task", "send_message", "edit_message", "delete_message", "add_reaction",
          "remove_reaction", "mark_read", "typing_start", "typing_stop", "refresh_token"]

# Every id field of every event: (event, path); a path is a key, or a key and a list index.
ID_FIELDS = [
    ("join_task", ("taskId",)), ("join_task", ("lastMessageId",)), ("leave_task", ("taskId",)),
    ("send_message", ("taskId",)), ("send_message", ("replyTo",)), ("send_message", ("attachments", 0)),
    ("send_message", ("mentions", 0)), ("edit_message", ("messageId",)), ("delete_message", ("messageId",)),
    ("add_reaction", ("messageId",)), ("remove_reaction", ("messageId",)), ("mark_read", ("taskId",)),
    ("mark_read", ("messageId",)), ("typing_start", ("taskId",)), ("typing_stop", ("taskId",)),
]
# Values that are fine where the field is optional: left out, null, or (lastMessageId) 0.
OPTIONAL = {
    ("join_task", ("lastMessageId",)): {"missing", "null", "zero"},
    ("send_message", ("replyTo",)): {"missing", "null"},
    ("send_message", ("attachments", 0)): {"missing"},
    ("send_message", ("mentions", 0)): {"missing"},
}
JUNK_PAYLOADS = {
    "no argument": (), "null": (None,), "true": (True,), "a float": (1.5,), "a word": ("hello",),
    "an empty list": ([],), "an empty object": ({},), "nested junk": ({"a": [{"b": [None, {"c": []}]}]},),
    "the keys nested one level down": ({"data": {"taskId": 1, "messageId": 1}},),
}


def _real_id(w, event: str, path: tuple) -> int:
    key = path[0]
    if key == "taskId":
        return w["T"]
    if key in ("mentions",):
        return w["alice"].id
    return w["M"]


@pytest.mark.parametrize("event, path", ID_FIELDS, ids=[f"{e}.{'.'.join(map(str, p))}" for e, p in ID_FIELDS])
def test_every_id_field_of_every_event_refuses_malformed_ids(world, event, path):
    w = world
    sender, listener = w["sender"], w["listener"]
    good = valid_payloads(w)[event]
    if path[0] in ("attachments", "mentions"):
        good = put(good, (path[0],), [0])  # a list with one slot to spoil
    problems = []
    before = snapshot(w["app"])

    for label, value in bad_ids(_real_id(w, event, path)).items():
        if label in OPTIONAL.get((event, path), ()):
            continue
        ack = emit(sender, event, put(good, path, value))
        received = sender.get_received(NS)
        errors = [e["args"][0] for e in received if e["name"] == "error"]
        if not (isinstance(ack, dict) and ack.get("ok") is False and ack["error"]["code"] == "validation_error"
                and path[0] in (ack["error"].get("details") or {})
                and [e["code"] for e in errors] == [ack["error"]["code"]]):
            problems.append((label, ack))
        if listener.get_received(NS):
            problems.append((label, "the room heard something"))
        if snapshot(w["app"]) != before:
            problems.append((label, "something stored changed"))
            before = snapshot(w["app"])

    assert problems == []
    assert sender.is_connected(NS)
    valid = valid_payloads(w)[event]
    if event == "typing_stop":
        emit(sender, "typing_start", {"taskId": w["T"]})
    assert emit(sender, event, valid)["ok"] is True, "the socket keeps working after the bad ones"


@pytest.mark.parametrize("event", ["join_task", "leave_task"])
def test_a_bare_task_id_is_held_to_the_same_rules(world, event):
    """join_task and leave_task also take the id alone, as the original did."""
    w = world
    before = snapshot(w["app"])
    for label, value in bad_ids(w["T"]).items():
        ack = emit(w["sender"], event) if value is MISSING else emit(w["sender"], event, value)
        error = refused(w["sender"], ack)
        assert "taskId" in error["details"], label
    assert snapshot(w["app"]) == before
    assert w["listener"].get_received(NS) == []
    assert emit(w["sender"], event, w["T"])["ok"] is True


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("args", JUNK_PAYLOADS.values(), ids=JUNK_PAYLOADS.keys())
def test_every_event_refuses_payloads_of_the_wrong_shape(world, event, args):
    w = world
    before = snapshot(w["app"])

    ack = emit(w["sender"], event, *args)

    refused(w["sender"], ack)
    assert w["listener"].get_received(NS) == []
    assert snapshot(w["app"]) == before
    assert w["sender"].is_connected(NS)
    if event == "typing_stop":
        emit(w["sender"], "typing_start", {"taskId": w["T"]})
    assert emit(w["sender"], event, valid_payloads(w)[event])["ok"] is True


# ---- text fields ------------------------------------------------------------------------------------
TEXT_FIELDS = {  # (event, key): (maximum length, required, a token: compared as sent, no control characters)
    ("send_message", "message"): (4000, True, False),
    ("edit_message", "message"): (4000, True, False),
    ("send_message", "clientId"): (64, False, True),
    ("add_reaction", "emoji"): (32, True, True),
    ("remove_reaction", "emoji"): (32, True, True),
}


def bad_texts(maximum: int, required: bool, token: bool) -> dict[str, object]:
    bad = {
        "a number": 7, "a float": 1.5, "true": True, "a list": ["hi"], "an empty list": [], "an object": {"text": "hi"},
        "empty": "", "blank": " \n\t ", f"{maximum + 1} characters": "x" * (maximum + 1),
        "a NUL": "a\x00b", "only a NUL": "\x00", "a lone high surrogate": "a\ud800b", "a lone low surrogate": "\udfff",
        "half an emoji": "\ud83d", "an emoji's halves swapped": "\udc4d\ud83d",
    }
    if required:
        bad.update({"missing": MISSING, "null": None})
    if token:
        bad.update({"a newline": "a\nb", "DEL": "a\x7fb", "an escape": "\x1b[31m"})
    else:
        bad["far too long"] = "y" * 60_000  # under the 64 KiB packet limit, far over the text limit
    return bad


@pytest.mark.parametrize("event, key", TEXT_FIELDS, ids=[f"{e}.{k}" for e, k in TEXT_FIELDS])
def test_every_text_field_refuses_wrong_types_oversize_nul_and_lone_surrogates(world, event, key):
    w = world
    sender = w["sender"]
    good = valid_payloads(w)[event]
    problems = []
    before = snapshot(w["app"])

    for label, value in bad_texts(*TEXT_FIELDS[(event, key)]).items():
        ack = emit(sender, event, put(good, (key,), value))
        errors = [e["args"][0]["code"] for e in sender.get_received(NS) if e["name"] == "error"]
        if not (ack.get("ok") is False and ack["error"]["code"] == "validation_error"
                and key in ack["error"].get("details", {}) and errors == ["validation_error"]):
            problems.append((label, ack))
        if w["listener"].get_received(NS) or snapshot(w["app"]) != before:
            problems.append((label, "stored or announced"))

    assert problems == []
    assert emit(sender, event, good)["ok"] is True


def test_a_message_of_exactly_4000_characters_is_accepted_and_4001_refused(world):
    w = world
    exact = "é" * 4000

    ack = emit(w["sender"], "send_message", {"taskId": w["T"], "message": f"  {exact}\n"})

    assert ack["ok"] is True, ack
    assert ack["data"]["message"] == exact, "trimmed, then measured"
    edit = emit(w["sender"], "edit_message", {"messageId": ack["data"]["id"], "message": exact + "!"})
    refused(w["sender"], edit)


@pytest.mark.parametrize("field", ["attachments", "mentions"])
def test_an_oversized_id_list_is_refused_before_its_items(world, field):
    """30 000 bad items would otherwise be 30 000 error messages: an ack of megabytes,
    sent again as the `error` event, and as much again over REST."""
    w = world
    ack = emit(w["sender"], "send_message", {"taskId": w["T"], "message": "hi", field: [0] * 30000})
    error = refused(w["sender"], ack)
    assert error["details"] == {field: [f"Longer than maximum length {10 if field == 'attachments' else 50}."]}
    assert len(json.dumps(ack)) < 500
    response = w["client"].post(f"/api/tasks/{w['T']}/messages", json={"message": "hi", field: [0] * 30000},
                                headers=w["bob"].headers)
    assert_error(response, 422, "validation_error")
    assert len(response.get_data()) < 500


def test_the_refresh_token_event_refuses_bad_tokens_and_keeps_the_socket_and_its_rooms(world, register):
    w = world
    sender = w["sender"]
    cases = {
        "missing": ({}, "validation_error"), "null": ({"token": None}, "validation_error"),
        "a number": ({"token": 7}, "validation_error"), "a list": ({"token": [w["bob"].token]}, "validation_error"),
        "an object": ({"token": {"token": w["bob"].token}}, "validation_error"),
        "empty": ({"token": ""}, "validation_error"), "5000 characters": ({"token": "a" * 5000}, "validation_error"),
        # A string that is not this user's valid access token is an auth failure, not a crash.
        "garbage": ({"token": "not.a.jwt"}, "token_invalid"), "blank": ({"token": "   "}, "auth_required"),
        "a NUL": ({"token": w["bob"].token + "\x00"}, "token_invalid"),
        "a lone surrogate": ({"token": "\ud800" + w["bob"].token}, "token_invalid"),
        "a refresh token": ({"token": w["bob"].refresh_token}, "token_invalid"),
        "someone else's token": ({"token": w["alice"].token}, "token_invalid"),
    }
    before = snapshot(w["app"])
    for label, (payload, code) in cases.items():
        ack = emit(sender, "refresh_token", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (label, ack)
        sender.get_received(NS)
    assert snapshot(w["app"]) == before
    assert sender.is_connected(NS)

    assert emit(sender, "refresh_token", {"token": w["bob"].token})["ok"] is True
    # Still in the room: the listener's message reaches the sender.
    emit(w["listener"], "send_message", {"taskId": w["T"], "message": "still there?"})
    assert [e["message"]["message"] for e in events(sender, "new_message", NS)] == ["still there?"]


# ---- well-formed ids that name nothing ------------------------------------------------------------
ABSENT = MAX_ID  # a well-formed id no row has


def test_well_formed_ids_that_name_nothing_or_something_out_of_reach(world, make_task):
    """The id is an id, so the service answers, with the code that says why:
    - a task one is not a member of, or that does not exist: `forbidden` (the same answer
      for both, so membership does not leak);
    - a message that does not exist, or belongs to a task one is not a member of: `not_found`;
    - a message id that must belong to the event's task (replyTo, mark_read's messageId) and
      does not: `validation_error` naming the field; likewise attachments that are not the
      sender's unsent uploads to the task, and mentions of non-members;
    - leaving a task one never joined is harmless: `ok`, nothing happens."""
    w = world
    other = make_task(w["carol"], "Carol's own")
    carols = w["client"].post(f"/api/tasks/{other['id']}/messages", json={"message": "private"},
                              headers=w["carol"].headers).get_json()
    T, M = w["T"], w["M"]
    cases = [
        ("join_task", {"taskId": ABSENT}, "forbidden", None),
        ("join_task", {"taskId": other["id"]}, "forbidden", None),
        ("send_message", {"taskId": ABSENT, "message": "x"}, "forbidden", None),
        ("send_message", {"taskId": other["id"], "message": "x"}, "forbidden", None),
        ("send_message", {"taskId": T, "message": "x", "replyTo": ABSENT}, "validation_error", "replyTo"),
        ("send_message", {"taskId": T, "message": "x", "replyTo": carols["id"]}, "validation_error", "replyTo"),
        ("send_message", {"taskId": T, "message": "x", "attachments": [ABSENT]}, "validation_error", "attachments"),
        ("send_message", {"taskId": T, "message": "x", "mentions": [ABSENT]}, "validation_error", "mentions"),
        ("send_message", {"taskId": T, "message": "x", "mentions": [w["carol"].id]}, "validation_error", "mentions"),
        ("edit_message", {"messageId": ABSENT, "message": "x"}, "not_found", None),
        ("edit_message", {"messageId": carols["id"], "message": "x"}, "not_found", None),
        ("delete_message", {"messageId": ABSENT}, "not_found", None),
        ("delete_message", {"messageId": carols["id"]}, "not_found", None),
        ("add_reaction", {"messageId": ABSENT, "emoji": "👍"}, "not_found", None),
        ("add_reaction", {"messageId": carols["id"], "emoji": "👍"}, "not_found", None),
        ("remove_reaction", {"messageId": ABSENT, "emoji": "👍"}, "not_found", None),
        ("mark_read", {"taskId": ABSENT, "messageId": M}, "forbidden", None),
        ("mark_read", {"taskId": other["id"], "messageId": carols["id"]}, "forbidden", None),
        ("mark_read", {"taskId": T, "messageId": ABSENT}, "validation_error", "messageId"),
        ("mark_read", {"taskId": T, "messageId": carols["id"]}, "validation_error", "messageId"),
        ("typing_start", {"taskId": ABSENT}, "forbidden", None),
        ("typing_stop", {"taskId": other["id"]}, "forbidden", None),
    ]
    before = snapshot(w["app"])
    for event, payload, code, field in cases:
        error = refused(w["sender"], emit(w["sender"], event, payload), code)
        if field:
            assert field in error["details"], (event, payload, error)
    assert w["listener"].get_received(NS) == []
    assert snapshot(w["app"]) == before

    assert emit(w["sender"], "leave_task", {"taskId": ABSENT}) == {"ok": True, "data": {"taskId": ABSENT}}
    assert emit(w["sender"], "leave_task", {"taskId": other["id"]})["ok"] is True
    assert w["listener"].get_received(NS) == [] and snapshot(w["app"]) == before


# ---- valid but unusual Unicode is kept exactly -------------------------------------------------------
EXOTIC = "👍🏽 e\u0301 ﷺ \u202eevil\u202c zw\u200dj \u2028 𝔘𝔫𝔦 \x01\x1f 한국어 עִבְרִית"


def test_unusual_but_valid_unicode_is_stored_and_returned_exactly(world):
    """Only NUL and lone surrogates are refused: astral characters, combining marks, bidi
    controls, zero-width joiners, line separators and other control characters in text are
    real characters, stored and returned as sent (after trimming the ends)."""
    w = world
    ack = emit(w["sender"], "send_message", {"taskId": w["T"], "message": EXOTIC, "clientId": "ü-👍🏽-ñ"})
    assert ack["ok"] is True, ack
    assert ack["data"]["message"] == EXOTIC and ack["data"]["clientId"] == "ü-👍🏽-ñ"
    react = emit(w["sender"], "add_reaction", {"messageId": ack["data"]["id"], "emoji": "👩‍👩‍👧‍👦"})
    assert react["data"]["reactions"][0]["emoji"] == "👩‍👩‍👧‍👦"
    history = w["client"].get(f"/api/tasks/{w['T']}/messages", headers=w["alice"].headers).get_json()["items"]
    stored = next(m for m in history if m["id"] == ack["data"]["id"])
    assert stored["message"] == EXOTIC
    assert stored["reactions"][0]["emoji"] == "👩‍👩‍👧‍👦"


# ---- HTML is text ------------------------------------------------------------------------------------
HTML = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(document.cookie)">',
    "</textarea><svg/onload=alert(1)>&amp;&lt;&#x3C;",
    "javascript:alert('x') \"quoted\" 'single' `back`",
]


def _raw_json_has_no_html_encoding(response, value: str) -> None:
    """The answer is JSON, and the string in it is escaped by JSON only: no entity encoding."""
    assert response.mimetype == "application/json"
    raw = response.get_data(as_text=True)
    assert json.dumps(value)[1:-1] in raw, "the string as JSON writes it"
    if "&lt;" not in value:
        assert "&lt;" not in raw and "\\u003c" not in raw.lower()


@pytest.mark.parametrize("html", HTML)
def test_html_in_a_message_is_stored_as_text_and_returned_as_json(world, html):
    w = world
    ack = emit(w["sender"], "send_message", {"taskId": w["T"], "message": html})

    assert ack["ok"] is True and ack["data"]["message"] == html
    [heard] = events(w["listener"], "new_message", NS)
    assert heard["message"]["message"] == html
    response = w["client"].get(f"/api/tasks/{w['T']}/messages", headers=w["alice"].headers)
    assert response.get_json()["items"][0]["message"] == html
    _raw_json_has_no_html_encoding(response, html)

    edited = emit(w["sender"], "edit_message", {"messageId": ack["data"]["id"], "message": html + " (edited)"})
    assert edited["data"]["message"] == html + " (edited)"
    [update] = events(w["listener"], "message_updated", NS)
    assert update["message"]["message"] == html + " (edited)"
    versions = w["client"].get(f"/api/tasks/{w['T']}/messages/{ack['data']['id']}/history", headers=w["alice"].headers)
    assert [v["message"] for v in versions.get_json()["versions"]] == [html, html + " (edited)"]


def test_html_in_rest_bodies_names_and_reactions_is_kept_as_text(client, register, make_task):
    html = HTML[1]
    user = register(first_name="<b>Ann</b>", last_name=html)
    task = make_task(user, title=html, description=HTML[0])
    base = f"/api/tasks/{task['id']}"

    sent = client.post(f"{base}/messages", json={"message": html, "clientId": "<i>c</i>"}, headers=user.headers)
    reacted = client.post(f"{base}/messages/{sent.get_json()['id']}/reactions", json={"emoji": "<b>"},
                          headers=user.headers)

    assert sent.status_code == 201 and sent.get_json()["message"] == html
    assert sent.get_json()["clientId"] == "<i>c</i>"
    _raw_json_has_no_html_encoding(sent, html)
    assert reacted.get_json()["reactions"][0]["emoji"] == "<b>"
    got = client.get(base, headers=user.headers)
    assert got.get_json()["title"] == html and got.get_json()["description"] == HTML[0]
    _raw_json_has_no_html_encoding(got, html)
    me = client.get("/api/auth/me", headers=user.headers).get_json()
    assert (me["firstName"], me["lastName"]) == ("<b>Ann</b>", html)
    assert sent.get_json()["user"]["lastName"] == html


# ---- REST bodies: the same rules ---------------------------------------------------------------------
def rest_text_cases(w) -> list[tuple[str, str, dict, str]]:
    """(method, path, a good body, the text field to spoil) for every REST body with text."""
    T, M = w["T"], w["M"]
    return [
        ("post", f"/api/tasks/{T}/messages", {"message": "hi", "clientId": "r-1"}, "message"),
        ("post", f"/api/tasks/{T}/messages", {"message": "hi", "clientId": "r-1"}, "clientId"),
        ("patch", f"/api/tasks/{T}/messages/{M}", {"message": "changed"}, "message"),
        ("post", f"/api/tasks/{T}/messages/{M}/reactions", {"emoji": "🎉"}, "emoji"),
        ("post", "/api/tasks", {"title": "New", "description": "d"}, "title"),
        ("post", "/api/tasks", {"title": "New", "description": "d"}, "description"),
        ("patch", f"/api/tasks/{T}", {"title": "Renamed", "description": "d"}, "title"),
        ("patch", f"/api/tasks/{T}", {"title": "Renamed", "description": "d"}, "description"),
        ("post", "/api/auth/register", {"email": "new@example.com", "password": "long enough pw",
                                        "firstName": "N", "lastName": "M"}, "firstName"),
        ("post", "/api/auth/register", {"email": "new@example.com", "password": "long enough pw",
                                        "firstName": "N", "lastName": "M"}, "lastName"),
        ("post", "/api/auth/register", {"email": "new@example.com", "password": "long enough pw",
                                        "firstName": "N", "lastName": "M"}, "email"),
        ("post", "/api/auth/login", {"email": w["bob"].email, "password": w["bob"].password}, "email"),
    ]


UNSTORABLE = {"a NUL": "a\x00b", "a lone high surrogate": "a\ud800b", "a lone low surrogate": "\udfffz",
              "half an emoji": "x\ud83d"}


@pytest.mark.parametrize("spoil", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_nul_and_lone_surrogates_in_rest_bodies_are_422_and_store_nothing(world, spoil):
    """The same answer on SQLite and PostgreSQL: refused before the database sees it."""
    w = world
    client, bob = w["client"], w["bob"]
    problems = []
    before = snapshot(w["app"])

    for method, path, good, field in rest_text_cases(w):
        body = dict(good, **{field: good[field][:1] + spoil if field != "email" else spoil + good[field]})
        response = getattr(client, method)(path, json=body, headers=bob.headers)
        body_json = response.get_json(silent=True) or {}
        if response.status_code != 422 or field not in (body_json.get("error", {}).get("details") or {}):
            problems.append((method, path, field, response.status_code, body_json))
        if snapshot(w["app"]) != before:
            problems.append((method, path, field, "stored"))
            before = snapshot(w["app"])

    assert problems == []
    assert w["listener"].get_received(NS) == []
    # The same requests, unspoiled, work.
    for method, path, good, _field in rest_text_cases(w)[:4]:
        assert getattr(client, method)(path, json=good, headers=bob.headers).status_code in (200, 201)


@pytest.mark.parametrize("route", ["register", "login"])
def test_a_lone_surrogate_in_a_password_is_422_not_a_crash(world, route):
    """A password is only hashed, so any real character is allowed (a NUL too), but a lone
    surrogate cannot be encoded for the hash: 422 on both routes, for any email alike."""
    w = world
    before = snapshot(w["app"])
    for email in (w["bob"].email, "nobody@example.com"):
        body = {"email": email, "password": "long enough \ud800 pw", "firstName": "N", "lastName": "M"}
        error = assert_error(w["client"].post(f"/api/auth/{route}", json=body), 422, "validation_error")
        assert "password" in error["details"]
    assert snapshot(w["app"]) == before


def test_a_nul_in_a_password_is_just_a_character(client, register):
    response = client.post("/api/auth/register", json={"email": "nul@example.com", "password": "long\x00enough pw",
                                                        "firstName": "N", "lastName": "M"})
    assert response.status_code == 201, response.get_json()
    assert client.post("/api/auth/login", json={"email": "nul@example.com", "password": "long\x00enough pw"}
                       ).status_code == 200
    assert client.post("/api/auth/login", json={"email": "nul@example.com", "password": "longenough pw"}
                       ).status_code == 401


def rest_id_cases(w) -> list[tuple[str, str, dict, tuple]]:
    """(method, path, a good body, the id field to spoil) for every REST body with ids."""
    T = w["T"]
    return [
        ("post", f"/api/tasks/{T}/members", {"userId": w["carol"].id, "role": "viewer"}, ("userId",)),
        ("post", f"/api/tasks/{T}/messages", {"message": "hi", "replyTo": w["first"]}, ("replyTo",)),
        ("post", f"/api/tasks/{T}/messages", {"message": "hi", "attachments": [0]}, ("attachments", 0)),
        ("post", f"/api/tasks/{T}/messages", {"message": "hi", "mentions": [w["alice"].id]}, ("mentions", 0)),
        ("post", f"/api/tasks/{T}/read", {"messageId": w["M"]}, ("messageId",)),
        ("post", "/api/notifications/read", {"ids": [1]}, ("ids", 0)),
    ]


def test_malformed_ids_in_rest_bodies_are_422_and_store_nothing(world):
    w = world
    client, alice = w["client"], w["alice"]
    problems = []
    before = snapshot(w["app"])

    for method, path, good, field in rest_id_cases(w):
        optional = {"missing", "null"} if field[0] in ("replyTo", "attachments", "mentions", "ids") else set()
        if field[0] in ("attachments", "mentions", "ids"):
            optional = {"missing"}
        for label, value in bad_ids(w["T"]).items():
            if label in optional:
                continue
            response = getattr(client, method)(path, json=put(good, field, value), headers=alice.headers)
            details = ((response.get_json(silent=True) or {}).get("error") or {}).get("details") or {}
            if response.status_code != 422 or field[0] not in details:
                problems.append((path, field, label, response.status_code, response.get_json(silent=True)))
            if snapshot(w["app"]) != before:
                problems.append((path, field, label, "stored"))
                before = snapshot(w["app"])

    assert problems == []


@pytest.mark.parametrize("body, content_type", [
    ("{", "application/json"), ('{"message": "hi"', "application/json"), ("\xff\xfe{}", "application/json"),
    ('{"message": "hi"} trailing', "application/json"), ("[" * 50 + "]" * 49, "application/json"),
    # Python's json raises RecursionError for deep nesting, and a bare ValueError for an
    # integer of more than 4300 digits: both were a 500.
    ("[" * 100_000 + "]" * 100_000, "application/json"),
    ('{"message": "hi", "n": %s}' % ("9" * 5000), "application/json"),
])
def test_an_unreadable_json_body_is_400_bad_request(world, body, content_type):
    w = world
    before = snapshot(w["app"])
    response = w["client"].post(f"/api/tasks/{w['T']}/messages", data=body, content_type=content_type,
                                headers=w["bob"].headers)
    assert_error(response, 400, "bad_request")
    assert snapshot(w["app"]) == before


@pytest.mark.parametrize("body", ["null", "[]", '"hi"', "7", "true", '[{"message": "hi"}]'])
def test_a_json_body_that_is_not_an_object_is_422(world, body):
    w = world
    before = snapshot(w["app"])
    for path in (f"/api/tasks/{w['T']}/messages", "/api/tasks", f"/api/tasks/{w['T']}/read",
                 "/api/notifications/read", "/api/auth/login", "/api/auth/register"):
        response = w["client"].post(path, data=body, content_type="application/json", headers=w["bob"].headers)
        assert_error(response, 422, "validation_error")
    assert snapshot(w["app"]) == before


def test_json_that_python_reads_but_no_id_can_be_is_refused(world):
    """NaN, Infinity and an integer of 5000 digits: JSON as Python reads it, never an id
    (the last is refused by the parser itself: Python caps int() at 4300 digits)."""
    w = world
    before = snapshot(w["app"])
    path = f"/api/tasks/{w['T']}/read"
    for raw in ("NaN", "Infinity", "-Infinity", "1e400", "9" * 5000):
        response = w["client"].post(path, data='{"messageId": %s}' % raw, content_type="application/json",
                                    headers=w["bob"].headers)
        assert response.status_code in (400, 422), (raw[:10], response.status_code, response.get_json())
        assert response.get_json()["error"]["code"] in ("bad_request", "validation_error")
    assert snapshot(w["app"]) == before


# ---- ids in URLs ---------------------------------------------------------------------------------
URL_IDS = ["99999999999999999999", "-1", "abc", "0", str(MAX_ID + 1), str(2**63), "1e3", "%201", "%D9%A1",
           "%C2%B2", "1.0", "0x1", "%00", "%ED%A0%80"]


@pytest.mark.parametrize("bad", URL_IDS)
def test_ids_in_urls_that_no_row_can_have_are_404_never_500(world, bad):
    w = world
    T, M = w["T"], w["M"]
    routes = [
        ("get", "/api/tasks/{x}"), ("patch", "/api/tasks/{x}"), ("delete", "/api/tasks/{x}"),
        ("get", "/api/tasks/{x}/messages"), ("post", "/api/tasks/{x}/messages"),
        ("post", "/api/tasks/{x}/read"), ("post", "/api/tasks/{x}/attachments"), ("get", "/api/tasks/{x}/activity"),
        ("get", "/api/tasks/{x}/members"), ("post", "/api/tasks/{x}/members"),
        ("patch", f"/api/tasks/{T}/members/{{x}}"), ("delete", f"/api/tasks/{T}/members/{{x}}"),
        ("patch", f"/api/tasks/{T}/messages/{{x}}"), ("delete", f"/api/tasks/{T}/messages/{{x}}"),
        ("get", f"/api/tasks/{T}/messages/{{x}}/history"), ("post", f"/api/tasks/{T}/messages/{{x}}/reactions"),
        ("delete", f"/api/tasks/{T}/messages/{{x}}/reactions/%F0%9F%91%8D"),
        ("get", f"/api/tasks/{T}/attachments/{{x}}"), ("get", f"/api/tasks/{{x}}/messages/{M}/history"),
    ]
    before = snapshot(w["app"])
    for method, template in routes:
        response = getattr(w["client"], method)(template.format(x=bad), json={"message": "x", "emoji": "👍"},
                                                 headers=w["alice"].headers)
        assert_error(response, 404, "not_found")
    assert snapshot(w["app"]) == before


@pytest.mark.parametrize("query", [
    "before=abc", "before=-1", "before=0", "after=-1", "around=0", "before=%C2%B2", "after=%D9%A1",
    "around=99999999999999999999", "limit=0", "limit=101", "limit=-5", "limit=abc", "limit=%C2%B2",
    "limit=1e3", "before=1&after=1", "after=%00",
])
def test_malformed_history_queries_are_422(world, query):
    response = world["client"].get(f"/api/tasks/{world['T']}/messages?{query}", headers=world["alice"].headers)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("emoji", ["a%00b", "%0A", "%7F", "x" * 33, "%20%20", "%09"])
def test_the_emoji_in_a_reaction_url_is_held_to_the_body_rules(world, emoji):
    """DELETE …/reactions/<emoji> validates the emoji like POST's body does (a NUL in it
    reached PostgreSQL, which refuses it: a 500 on PostgreSQL only)."""
    w = world
    base = f"/api/tasks/{w['T']}/messages/{w['M']}/reactions"
    assert w["client"].post(base, json={"emoji": "👍"}, headers=w["bob"].headers).status_code == 200
    before = snapshot(w["app"])

    error = assert_error(w["client"].delete(f"{base}/{emoji}", headers=w["bob"].headers), 422, "validation_error")

    assert "emoji" in error["details"]
    assert snapshot(w["app"]) == before
    assert w["client"].delete(f"{base}/{quote('👍')}", headers=w["bob"].headers).get_json()["reactions"] == []


@pytest.mark.parametrize("raw_name, status", [
    (b"a\x00b.txt", 201), (b"<img src=x onerror=alert(1)>.txt", 201),
    # werkzeug cannot read a part header that is not UTF-8: the part is not there at all.
    (b"c\xed\xa0\x80.txt", 422), (b"d\xff\xfe.txt", 422),
])
def test_an_upload_name_with_nul_bad_utf8_or_html_never_crashes(world, raw_name, status):
    """A file name is the client's words too: a NUL is dropped from it (control
    characters are), HTML is kept as text, and a header that is not UTF-8 is a 422."""
    w = world
    boundary = "----taskchat-boundary"
    body = (f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="file"; filename="' + raw_name
            + b'"\r\nContent-Type: text/plain\r\n\r\nhello\r\n' + f"--{boundary}--\r\n".encode())
    before = snapshot(w["app"])

    response = w["client"].post(f"/api/tasks/{w['T']}/attachments", data=body, headers=w["bob"].headers,
                                content_type=f"multipart/form-data; boundary={boundary}")

    if status == 422:
        assert_error(response, 422, "validation_error")
        assert snapshot(w["app"]) == before
        return
    assert response.status_code == 201, response.get_json()
    name = response.get_json()["name"]
    assert name == raw_name.decode().replace("\x00", "")
    download = w["client"].get(response.get_json()["url"], headers=w["alice"].headers)
    assert download.status_code == 200 and download.data == b"hello"
