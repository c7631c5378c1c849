"""Random JSON at every socket event and every REST body (hypothesis).

Each value is drawn from a recursive strategy: null, booleans, integers (huge and negative
too, and the world's real ids), floats (NaN and infinities too), text (NUL, lone surrogates,
HTML, digit look-alikes, real tokens), lists, and objects whose keys are random or the real
ones (taskId, messageId, message, clientId, emoji, ...), their values mostly nearly right (the
real id, or text with one bad character in it) so that the bad part reaches the deeper checks
and the database. For every input:

- no 5xx and no `internal_error`: a refusal is the client's error, with a stable code;
- a refused input changed nothing stored (every row of every table, before and after);
- a refused socket event reaches no one else in the room, and the socket stays connected;
- after each target, a valid event or request still succeeds.

Accepted input may change the database; that is fine. Hypothesis is derandomized (the same
examples every run, no example database) and bounded (`EXAMPLES` per target, 150 unless
FUZZ_EXAMPLES says otherwise; about 26 targets, under a minute on SQLite).

One test function per door, looping over its targets, each target a `@given` function
defined inside it: the world (users, a task, messages, sockets) is made once by the
function-scoped fixtures and shared by all examples, which hypothesis cannot do with
fixtures passed to a `@given` test (its function-scoped-fixture health check). Shared
state is the point here: examples run against a server that earlier examples changed.
"""
from __future__ import annotations

import io
import json
import os
from urllib.parse import urlencode

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.extensions import db
from toolkit.database import snapshot
from toolkit.env import NO_LIMITS
from toolkit.sockets import NS, emit

# Rate limits out of the way: these tests send many events on purpose.
pytestmark = pytest.mark.settings(**NO_LIMITS)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
KEYS = ["taskId", "messageId", "message", "clientId", "emoji", "replyTo", "attachments", "mentions",
        "lastMessageId", "token", "refreshToken", "title", "description", "status", "userId", "role", "ids",
        "email", "password", "firstName", "lastName", "before", "after", "around", "limit"]


def fuzz_settings(examples: int = EXAMPLES):
    return hsettings(
        max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ---- strategies ----------------------------------------------------------------------------------------
CHARS = st.characters(exclude_categories=(), include_characters="\x00\ud800\udfff<>&\"'")
ID_KEYS = {"taskId", "messageId", "replyTo", "lastMessageId", "userId", "before", "after", "around", "limit"}
LIST_KEYS = {"attachments", "mentions", "ids"}
LOOKALIKES = [0, -1, 2**31, 2**63, -(2**63), 10**30, 1.0, 1.5, True, False, None, " 1 ", "1e3", "١", "²", "０",
              "-1", "9" * 40, "+1", ""]
# The right id, spelled in digits that str.isdigit() accepts but are not ASCII (int() reads
# some of them, and refuses superscripts), or padded.
DIGIT_SCRIPTS = [
    lambda n: str(n).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    lambda n: str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")),
    lambda n: str(n).translate(str.maketrans("0123456789", "०१२३४५६७८९")),
    lambda n: f" {n} ", lambda n: f"{n}\n", lambda n: f"0{n}", lambda n: f"{n}.0",
]


def json_values(ids: list[int], words: list[str]) -> st.SearchStrategy:
    """Any JSON value, biased towards what this server reads: its ids, its keys, its words."""
    special_ints = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30, *ids])
    special_text = st.sampled_from([
        "", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\ud83d", "<script>alert(1)</script>", "1e3", " 12 ",
        "١٢", "²", "０", "-1", "9" * 40, "todo", "done", "owner", "viewer", "editor", "👍", "x" * 4001,
        *[str(i) for i in ids], *words,
    ])
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), special_ints,
        st.floats(allow_nan=True, allow_infinity=True), st.text(CHARS, max_size=20), special_text,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(CHARS, max_size=8)), children, max_size=4),
        ),
        max_leaves=6,
    )


def plausible(key: str, right: dict, ids: list[int], words: list[str]) -> st.SearchStrategy:
    """A value that is nearly right for `key`, so that the input gets past the first checks
    and its bad part (a NUL in the text, a look-alike id) reaches the deeper ones."""
    if key in ID_KEYS or key in LIST_KEYS:
        good = right.get(key, ids[0])
        one = st.one_of(st.just(good), st.just(str(good)), st.sampled_from(ids), st.sampled_from(LOOKALIKES),
                        st.sampled_from(DIGIT_SCRIPTS).map(lambda script: script(good)))
        return st.lists(one, max_size=3) if key in LIST_KEYS else one
    spoiled = st.builds(lambda a, bad, b: a + bad + b, st.text(max_size=5),
                        st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\x1b", "<script>", "\u202e"]),
                        st.text(max_size=5))
    return st.one_of(spoiled, st.text(CHARS, max_size=20), st.sampled_from([
        *words, "todo", "in_progress", "done", "owner", "editor", "commenter", "viewer", "👍", "x" * 4000,
        "x" * 4001, "y" * 65, "z" * 33, " ", "",
    ]))


def objects(values: st.SearchStrategy, keys: list[str], right: dict, ids: list[int],
            words: list[str]) -> st.SearchStrategy:
    """An object with some of the target's real keys (their values mostly nearly right,
    sometimes anything) and maybe a stray key."""
    return st.builds(
        lambda real, extra: {**extra, **real},
        st.fixed_dictionaries({}, optional={
            key: st.one_of(plausible(key, right, ids, words), plausible(key, right, ids, words), values)
            for key in keys
        }),
        st.dictionaries(st.text(max_size=6), values, max_size=2),
    )


def bodies(w, keys: list[str]) -> st.SearchStrategy:
    """What a socket event's argument or a REST body may be: mostly an object with the real keys."""
    values = json_values(w["ids"], w["words"])
    shaped = objects(values, keys, w["right"], w["ids"], w["words"])
    return st.one_of(shaped, shaped, values)


class Stored:
    """What is stored, as `snapshot` reads it. Nothing else writes between two examples,
    so a refused example's `after` is the next one's `before` (half the reads). Each
    example forgets it first, so an accepted or failing example leaves nothing stale."""

    def __init__(self, app):
        with app.app_context():
            # One connection for all the reads, in autocommit mode so that each sees every commit.
            self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.app, self.last = app, None

    def before(self):
        if self.last is None:
            self.last = snapshot(self.app, self.connection)
        return self.last

    def after(self):
        self.last = snapshot(self.app, self.connection)
        return self.last

    def close(self):
        self.connection.close()

    def forget(self):
        self.last = None


# ---- the world -------------------------------------------------------------------------------------------
@pytest.fixture
def world(request, app, client, alice, bob, carol, register, task, add_member, make_task, room_of):
    dan = register("Dan", "Viewer")
    add_member(alice, task, dan, "viewer")
    T = task["id"]
    base = f"/api/tasks/{T}"
    first = client.post(f"{base}/messages", json={"message": "first", "mentions": [bob.id]},
                        headers=alice.headers).get_json()
    bobs = client.post(f"{base}/messages", json={"message": "Bob's"}, headers=bob.headers).get_json()
    client.post(f"{base}/messages/{first['id']}/reactions", json={"emoji": "👍"}, headers=bob.headers)
    upload = client.post(f"{base}/attachments", data={"file": (io.BytesIO(b"x"), "a.txt")},
                         headers=bob.headers, content_type="multipart/form-data").get_json()
    other = make_task(carol, "Carol's")
    listener, sender = (peer.sock for peer in room_of(alice, bob))
    ids = [T, other["id"], first["id"], bobs["id"], upload["id"], alice.id, bob.id, carol.id, dan.id]
    # The nearly right value of each id key: what a valid payload of Bob's would hold.
    right = {"taskId": T, "messageId": bobs["id"], "replyTo": first["id"], "lastMessageId": 0,
             "userId": carol.id, "attachments": upload["id"], "mentions": alice.id, "ids": 1, "limit": 10}
    words = [bob.token, alice.token, bob.refresh_token, bob.email, bob.password, "Bob's"]
    stored = Stored(app)
    request.addfinalizer(stored.close)
    return {"app": app, "stored": stored, "client": client, "alice": alice, "bob": bob, "carol": carol, "T": T,
            "first": first["id"], "bobs": bobs["id"], "listener": listener, "sender": sender, "ids": ids,
            "words": words, "right": right}


# ---- the socket door -----------------------------------------------------------------------------------
SOCKET_EVENTS = {
    "join_task": ["taskId", "lastMessageId"],
    "leave_task": ["taskId"],
    "send_message": ["taskId", "message", "clientId", "replyTo", "attachments", "mentions"],
    "edit_message": ["messageId", "message"],
    "delete_message": ["messageId"],
    "add_reaction": ["messageId", "emoji"],
    "remove_reaction": ["messageId", "emoji"],
    "mark_read": ["taskId", "messageId"],
    "typing_start": ["taskId"],
    "typing_stop": ["taskId"],
    "refresh_token": ["token"],
}


def _socket_check(w, event: str, keys: list[str]):
    sender, listener = w["sender"], w["listener"]
    arguments = st.one_of(
        bodies(w, keys).map(lambda body: (body,)),
        bodies(w, keys).map(lambda body: (body,)),
        st.lists(json_values(w["ids"], w["words"]), max_size=3).map(tuple),  # no argument, or several
    )

    @fuzz_settings()
    @given(args=arguments)
    def check(args):
        before = w["stored"].before()
        w["stored"].forget()  # until shown unchanged
        ack = emit(sender, event, *args)
        mine = sender.get_received(NS)
        heard = listener.get_received(NS)
        context = (event, args, ack)
        assert isinstance(ack, dict) and ack.get("ok") in (True, False), context
        assert sender.is_connected(NS), context
        if ack["ok"]:
            return  # accepted: it may store and announce what it likes
        error = ack["error"]
        assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), context
        assert error["code"] not in ("internal_error", "unavailable"), context
        assert [e["args"][0]["code"] for e in mine if e["name"] == "error"] == [error["code"]], context
        assert heard == [], ("a refused event reached the room", context, heard)
        assert w["stored"].after() == before, ("a refused event changed what is stored", context)

    return check


def test_fuzz_every_socket_event(world):
    w = world
    sender, listener = w["sender"], w["listener"]
    failures: list[tuple] = []

    for event, keys in SOCKET_EVENTS.items():
        try:
            _socket_check(w, event, keys)()
        except Exception as err:  # keep going: report every event that breaks, not just the first
            failures.append((event, repr(err)[:3000]))
        # The server still answers this socket: a valid event succeeds.
        text = f"still here after {event}"
        ack = emit(sender, "send_message", {"taskId": w["T"], "message": text})
        assert ack["ok"] is True and ack["data"]["message"] == text, (event, ack)
        sender.get_received(NS), listener.get_received(NS)
        w["stored"].forget()

    assert failures == []


# ---- the REST door -----------------------------------------------------------------------------------
def rest_targets(w) -> list[tuple[str, str, str, list[str]]]:
    """(name, method, path, keys) of every REST route that reads a JSON body."""
    T, M, F = w["T"], w["bobs"], w["first"]
    return [
        ("register", "post", "/api/auth/register", ["email", "password", "firstName", "lastName"]),
        ("login", "post", "/api/auth/login", ["email", "password"]),
        ("refresh", "post", "/api/auth/refresh", ["refreshToken", "token"]),
        ("logout", "post", "/api/auth/logout", ["refreshToken"]),
        ("create task", "post", "/api/tasks", ["title", "description", "status"]),
        ("update task", "patch", f"/api/tasks/{T}", ["title", "description", "status"]),
        ("add member", "post", f"/api/tasks/{T}/members", ["email", "userId", "role"]),
        ("update member", "patch", f"/api/tasks/{T}/members/{w['carol'].id}", ["role"]),
        ("send message", "post", f"/api/tasks/{T}/messages",
         ["message", "clientId", "replyTo", "attachments", "mentions"]),
        ("edit message", "patch", f"/api/tasks/{T}/messages/{M}", ["message"]),
        ("add reaction", "post", f"/api/tasks/{T}/messages/{F}/reactions", ["emoji"]),
        ("mark read", "post", f"/api/tasks/{T}/read", ["messageId"]),
        ("notifications read", "post", "/api/notifications/read", ["ids"]),
    ]


def _headers(w, name: str) -> dict[str, str]:
    """Who sends: Alice manages the task; logout and refresh get a fresh token each time
    (an accepted logout revokes the one it was sent with); the rest is Bob."""
    if name in ("register", "login"):
        return {}
    if name in ("logout", "refresh"):
        with w["app"].app_context():
            make = create_refresh_token if name == "refresh" else create_access_token
            return {"Authorization": f"Bearer {make(identity=str(w['carol'].id))}"}
    if name in ("update task", "add member", "update member"):
        return w["alice"].headers
    return w["bob"].headers


def _dumps(body) -> str:
    """JSON as Python writes it, NaN and Infinity included (a hostile client may send them)."""
    return json.dumps(body, allow_nan=True)


def _check_answer(response, context) -> None:
    assert response.status_code < 500, (context, response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.mimetype == "application/json", context
        error = response.get_json()["error"]
        assert error["code"] != "internal_error" and isinstance(error["message"], str), context


def _rest_check(w, name: str, method: str, path: str, keys: list[str]):
    client = w["client"]

    @fuzz_settings()
    @given(body=bodies(w, keys))
    def check(body):
        headers = _headers(w, name)
        before = w["stored"].before()
        w["stored"].forget()  # until shown unchanged
        response = getattr(client, method)(path, data=_dumps(body), content_type="application/json",
                                           headers=headers)
        context = (name, body)
        heard = w["listener"].get_received(NS) + w["sender"].get_received(NS)
        _check_answer(response, context)
        if response.status_code >= 400:
            assert heard == [], ("a refused body was announced", context, heard)
            assert w["stored"].after() == before, ("a refused body changed what is stored", context,
                                                   response.get_json())

    return check


def test_fuzz_every_rest_body(world):
    w = world
    failures: list[tuple] = []

    for name, method, path, keys in rest_targets(w):
        try:
            _rest_check(w, name, method, path, keys)()
        except Exception as err:
            failures.append((name, repr(err)[:3000]))
        # Still answering: a valid request works.
        sent = w["client"].post(f"/api/tasks/{w['T']}/messages", json={"message": f"after {name}"},
                                headers=w["alice"].headers)
        assert sent.status_code == 201, (name, sent.get_json())
        w["listener"].get_received(NS), w["sender"].get_received(NS)
        w["stored"].forget()

    assert failures == []


def test_fuzz_raw_bodies_and_query_strings(world):
    """Bytes that may not be JSON at all, under every content type a client might claim; and
    random query strings on the routes that read one."""
    w = world
    client = w["client"]
    T = w["T"]
    failures: list[tuple] = []

    raw = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                    st.sampled_from([b"[" * 5000, b"{" * 5000, b'{"message": ' + b"9" * 5000 + b"}", b"\xff\xfe",
                                     b'{"message": "a"', b"NaN", b"null", b'{"message": "\\ud800"}']))
    content_types = st.sampled_from(["application/json", "application/json; charset=utf-16", "text/plain",
                                     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                     "application/vnd.api+json"])

    @fuzz_settings()
    @given(body=raw, content_type=content_types,
           route=st.sampled_from([("post", f"/api/tasks/{T}/messages"), ("post", "/api/tasks"),
                                  ("post", "/api/auth/login"), ("post", "/api/notifications/read"),
                                  ("patch", f"/api/tasks/{T}"), ("post", f"/api/tasks/{T}/read")]))
    def check_raw(body, content_type, route):
        before = snapshot(w["app"])
        response = getattr(client, route[0])(route[1], data=body, content_type=content_type,
                                             headers=w["alice"].headers)
        _check_answer(response, (route, body[:80], content_type))
        if response.status_code >= 400:
            assert snapshot(w["app"]) == before, (route, body[:80])

    query_values = st.one_of(st.text(max_size=12), st.integers().map(str), st.sampled_from(
        ["", "0", "-1", "1e3", "١", "²", "\x00", "99999999999999999999", str(w["bobs"]), "50", "101"]))

    @fuzz_settings()
    @given(query=st.dictionaries(st.sampled_from(["before", "after", "around", "limit", "x"]), query_values,
                                 max_size=3),
           path=st.sampled_from([f"/api/tasks/{T}/messages", "/api/notifications", f"/api/tasks/{T}/activity"]))
    def check_query(query, path):
        before = snapshot(w["app"])
        response = client.get(f"{path}?{urlencode(query)}", headers=w["bob"].headers)
        _check_answer(response, (path, query))
        assert snapshot(w["app"]) == before

    for check in (check_raw, check_query):
        try:
            check()
        except Exception as err:
            failures.append((check.__name__, repr(err)[:3000]))
    assert failures == []
    assert client.get("/api/tasks", headers=w["bob"].headers).status_code == 200
