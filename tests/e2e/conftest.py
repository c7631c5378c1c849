"""End-to-end fixtures: the real server as a subprocess, and real clients.

Each server kind (``flask run`` and gunicorn; see live.py) is started once per
run, on a free loopback port, and stopped at the end (SIGTERM, then SIGKILL).

The database is ``DATABASE_URL`` when it is set (CI's PostgreSQL, already
migrated; other tests may share it, so every test makes its own users with
unique emails and never assumes empty tables), else a temporary SQLite file
made by ``flask db upgrade``. ``JWT_SECRET_KEY`` is a known value, so tests can
forge tokens with PyJWT.

Every test that uses a live server fails if the server logged a traceback
while it ran, and a failing test shows the tail of the server's output.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from e2e.live import (
    BIN, ROOT, SERVER_KINDS, Api, LiveServer, LiveSocket, ServerPool, close_in_background, server_env, wait_closed,
)


@pytest.fixture(scope="session")
def e2e_database_url(tmp_path_factory) -> str:
    """DATABASE_URL as given (already migrated), or a fresh SQLite file made by the migrations."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'e2e.db'}"
    result = subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=server_env(url, APP_ENV="development"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}"
    return url


@pytest.fixture(scope="session")
def server_pool(e2e_database_url, tmp_path_factory) -> Iterator[ServerPool]:
    pool = ServerPool(e2e_database_url, tmp_path_factory.mktemp("e2e-servers"))
    yield pool
    wait_closed()
    pool.stop_all()


def _watch(server: LiveServer) -> Iterator[LiveServer]:
    """Yield the server to one test; fail the test if the server logged a traceback meanwhile."""
    start = server.log_size()
    yield server
    time.sleep(0.1)  # let the server finish writing what this test caused
    logged = server.log_text(start)
    assert server.alive(), f"the {server.kind} server died during the test\n{server.log_tail()}"
    assert "Traceback" not in logged, f"the {server.kind} server logged a traceback during the test:\n{logged}"


@pytest.fixture(params=SERVER_KINDS)
def live_server(request, server_pool) -> Iterator[LiveServer]:
    """Each test that uses it runs against both servers."""
    yield from _watch(server_pool.get(request.param))


@pytest.fixture
def gunicorn_server(server_pool) -> Iterator[LiveServer]:
    yield from _watch(server_pool.get("gunicorn"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LiveServer):
                report.sections.append((f"{value.kind} server output (tail)", value.log_tail()))


@pytest.fixture
def api(live_server) -> Iterator[Api]:
    api = Api(live_server.url)
    yield api
    api.close()


@pytest.fixture
def live_socket() -> Iterator[Callable[..., LiveSocket]]:
    """Make LiveSockets (not yet connected) for a server; all are disconnected at teardown."""
    made: list[LiveSocket] = []

    def make(server: LiveServer, namespace: str = "/tasks") -> LiveSocket:
        sock = LiveSocket(server.url, namespace)
        made.append(sock)
        return sock

    yield make
    close_in_background(made)
