"""Origins: CORS_ORIGINS parsing, and the origin check on Socket.IO and REST.

python-engineio switches its origin check off when given `[]`, so no value of
CORS_ORIGINS may become one. A browser page from a foreign origin (or a sandboxed
one, `Origin: null`) gets HTTP 400 on the Socket.IO polling handshake, a WebSocket
that closes before the Engine.IO open packet, and no CORS headers on REST. Clients
that send no Origin at all (not browsers: scripts, mobile apps) are let in; they
still need a token for everything but /health.

The in-process tests go through the whole WSGI stack (Flask's test client calls the
Engine.IO middleware); the live ones run `flask run` and gunicorn as they run for real.
"""
from __future__ import annotations

import pytest
import requests
import websocket

from app.config import DEFAULT_CORS_ORIGINS, ConfigError, load_config, parse_origins
from app.extensions import socketio
from e2e.live import ServerPool

ALLOWED = "http://localhost:3000"
FOREIGN = ("https://evil.example", "null", "http://localhost:3000.evil.example", "http://localhost:3002",
           "https://localhost:3000")
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "test-secret-key-" + "k" * 32, "ALLOW_SQLITE_IN_PRODUCTION": "1",
              "CORS_ORIGINS": "http://localhost:3000,https://app.example.com"}


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


# ---- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, "", " ", ",", ",,,", " , , ", "\t,\n"])
def test_an_empty_origin_list_means_the_defaults_never_an_empty_list(value):
    assert parse_origins(value) == list(DEFAULT_CORS_ORIGINS)


@pytest.mark.parametrize("value", ["", ",,,", " "])
def test_engineio_never_gets_an_empty_list(value, database_url):
    """`[]` would switch python-engineio's origin check off; what the server really holds."""
    from app import create_app

    app = create_app(env={"APP_ENV": "testing", "DATABASE_URL": database_url, "CORS_ORIGINS": value})
    assert app.config["CORS_ORIGINS"] == list(DEFAULT_CORS_ORIGINS)
    assert socketio.server.eio.cors_allowed_origins == list(DEFAULT_CORS_ORIGINS)


@pytest.mark.parametrize(("value", "expected"), [
    ("https://app.example.com", ["https://app.example.com"]),
    (" https://App.Example.com/ ,http://localhost:3000,", ["https://app.example.com", "http://localhost:3000"]),
    ("http://127.0.0.1:9553,http://[::1]:3000", ["http://127.0.0.1:9553", "http://[::1]:3000"]),
    ("https://a.example.com,https://a.example.com", ["https://a.example.com"]),
])
def test_origins_are_read_as_browsers_send_them(value, expected):
    assert parse_origins(value) == expected


@pytest.mark.parametrize("value", [
    "app.example.com", "null", "https://app.example.com/path", "ftp://app.example.com", "https://",
    "https://user@app.example.com", "https://app.example.com:99999", "https://app example.com",
    "https://app.example.com?x=1", "http://localhost:3000,nonsense", "*.example.com", "https://-bad.example",
])
def test_malformed_origins_stop_the_start(value):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        parse_origins(value)
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_config({"CORS_ORIGINS": value})


@pytest.mark.parametrize("value", ["*", "https://app.example.com,*", " * "])
def test_every_origin_is_refused_in_production(value):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_config({**PRODUCTION, "DATABASE_URL": "postgresql://db/taskchat", "JWT_SECRET_KEY": "j" * 40,
                     "CORS_ORIGINS": value})


# ---- Socket.IO polling handshake, in process ----------------------------------------------
def handshake(client, origin: str | None):
    return client.get(HANDSHAKE, headers={"Origin": origin} if origin is not None else {})


ENVIRONMENTS = pytest.mark.parametrize("settings", [{}, {"APP_ENV": "development"}, PRODUCTION],
                                       ids=["testing", "development", "production"])


@ENVIRONMENTS
@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_origin_gets_400_on_the_polling_handshake(client, origin):
    response = handshake(client, origin)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert not response.get_data(as_text=True).startswith("0{"), "no Engine.IO session was opened"
    assert "Access-Control-Allow-Origin" not in response.headers


@ENVIRONMENTS
def test_a_listed_origin_and_no_origin_get_a_session(client):
    allowed = handshake(client, ALLOWED)
    assert allowed.status_code == 200 and allowed.get_data(as_text=True).startswith("0{")
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    bare = handshake(client, None)  # not a browser: nothing to protect from
    assert bare.status_code == 200 and bare.get_data(as_text=True).startswith("0{")
    assert "Access-Control-Allow-Origin" not in bare.headers


@pytest.mark.parametrize("settings", [{"APP_ENV": "development", "CORS_ORIGINS": "*"}])
def test_every_origin_only_when_configured_outside_production(client):
    response = handshake(client, "https://anything.example")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://anything.example"


# ---- REST: no CORS headers for a foreign origin ------------------------------------------------
def preflight(client, path: str, origin: str, method: str = "POST"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": "authorization, content-type"})


@ENVIRONMENTS
@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_origin_gets_no_cors_headers_on_rest(client, alice, origin):
    for response in (
        client.get("/health", headers={"Origin": origin}),
        client.get("/api/tasks", headers={"Origin": origin, **alice.headers}),
        client.post("/api/auth/login", headers={"Origin": origin}, json={"email": alice.email, "password": "nope"}),
        preflight(client, "/api/auth/login", origin),
        preflight(client, "/api/tasks", origin, "GET"),
    ):
        assert cors_headers(response) == {}, (response.request.method, response.request.path, response.headers)


@ENVIRONMENTS
def test_a_listed_origin_gets_cors_headers_on_rest(client, alice):
    response = client.get("/api/tasks", headers={"Origin": ALLOWED, **alice.headers})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in response.headers.get("Vary", "")
    pre = preflight(client, "/api/auth/login", ALLOWED)
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}


# ---- live: flask run and gunicorn ----------------------------------------------------------------
@pytest.fixture(scope="module")
def live_pool(database_url, tmp_path_factory):
    pool = ServerPool(database_url, tmp_path_factory.mktemp("origin-servers"))
    yield pool
    pool.stop_all()


@pytest.fixture(params=["flask", "gunicorn"])
def live(request, live_pool):
    """A live server (live.py: flask run in development, gunicorn in production, each listing
    http://localhost:3000 and its own URL); the test fails if the server logged a traceback."""
    server = live_pool.get(request.param)
    start = server.log_size()
    yield server
    logged = server.log_text(start)
    assert server.alive(), server.log_tail()
    assert "Traceback" not in logged, logged


@pytest.mark.e2e
@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
def test_live_polling_handshake_refuses_a_foreign_origin(live, origin):
    headers = {"Connection": "close"}
    with requests.get(live.url + HANDSHAKE, headers={**headers, "Origin": origin}, timeout=5) as response:
        assert response.status_code == 400, response.text
        assert "Access-Control-Allow-Origin" not in response.headers
    with requests.get(live.url + HANDSHAKE, headers={**headers, "Origin": ALLOWED}, timeout=5) as response:
        assert response.status_code == 200 and response.text.startswith("0{"), response.text
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    with requests.get(live.url + HANDSHAKE, headers=headers, timeout=5) as response:
        assert response.status_code == 200 and response.text.startswith("0{"), response.text


def websocket_first_frame(url: str, origin: str) -> tuple[int | None, str]:
    """(HTTP status if the upgrade was refused, else None; the first frame, "" if closed first)."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        sock = websocket.create_connection(ws_url, origin=origin, timeout=5)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code, ""
    try:
        return None, sock.recv()
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return None, ""
    finally:
        sock.close()


@pytest.mark.e2e
@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
def test_live_websocket_handshake_refuses_a_foreign_origin(live, origin):
    """Refused with 400 (flask run refuses the upgrade), or upgraded and closed before the
    Engine.IO open packet (gevent-websocket upgrades before the app sees the request)."""
    status, first = websocket_first_frame(live.url, ALLOWED)
    assert status is None and first.startswith("0{"), (status, first)  # the control: a listed origin gets a session

    status, first = websocket_first_frame(live.url, origin)
    assert status == 400 or (status is None and not first.startswith("0")), (status, first)


@pytest.mark.e2e
def test_live_rest_gives_a_foreign_origin_no_cors_headers(live):
    for origin, expect in (("https://evil.example", False), ("null", False), (ALLOWED, True)):
        for method, path in (("GET", "/health"), ("OPTIONS", "/api/auth/login")):
            headers = {"Origin": origin, "Connection": "close", "Access-Control-Request-Method": "POST"}
            with requests.request(method, live.url + path, headers=headers, timeout=5) as response:
                assert response.status_code == 200
                found = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}
                if expect:
                    assert found["Access-Control-Allow-Origin"] == origin, (method, path, found)
                else:
                    assert found == {}, (origin, method, path, found)
