"""The replacements of library code in app/patches.py, each against the release it was written for.

The version check: the table of releases is requirements.txt's pins; the
installed libraries pass; any other release refuses to start, in one message.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app, patches
from app.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


# ---- the version check ------------------------------------------------------------------------
def test_the_releases_written_for_are_the_pins_of_requirements_txt():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    assert {name: pins.get(name.lower()) for name in patches.WRITTEN_FOR} == patches.WRITTEN_FOR


def test_the_installed_libraries_are_the_releases_written_for():
    assert patches.installed_versions() == patches.WRITTEN_FOR
    patches.check_versions()


def test_the_releases_written_for_pass():
    patches.check_versions(installed=dict(patches.WRITTEN_FOR))


def test_another_release_is_refused_in_one_message_naming_each_library():
    installed = {**patches.WRITTEN_FOR, "python-socketio": "5.19.0", "gevent": None}
    with pytest.raises(patches.LibraryVersionError) as refused:
        patches.check_versions(installed=installed)
    message = str(refused.value)
    assert isinstance(refused.value, ConfigError)  # surfaced at start as every refused setting is
    assert "python-socketio 5.19.0 is installed, written for 5.18.1" in message
    assert "gevent is not installed, written for 26.9.0" in message
    assert "Flask-Limiter" not in message and "psycopg" not in message  # only the libraries that differ
    assert "requirements.txt" in message and "tests/test_patches.py" in message and "WRITTEN_FOR" in message
    assert "\n" not in message


def test_create_app_refuses_another_release(monkeypatch):
    monkeypatch.setattr(patches, "installed_versions", lambda: {**patches.WRITTEN_FOR, "Flask-Limiter": "4.2.0"})
    with pytest.raises(patches.LibraryVersionError, match="Flask-Limiter 4.2.0 is installed, written for 4.1.1"):
        create_app(env={"APP_ENV": "testing", "DATABASE_URL": "sqlite://"})


def test_the_server_refuses_to_start_on_another_release_with_one_line(tmp_path):
    """A release of python-engineio found first on the path (only its metadata: the
    version check reads no code) and `wsgi.py`, which `flask run` and gunicorn load,
    exits with one line."""
    dist = tmp_path / "python_engineio-4.16.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: python-engineio\nVersion: 4.16.0\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "APP_ENV": "development",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"}
    done = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [(
        "taskchat: refusing to start: installed libraries are not the releases whose code app/patches.py "
        "replaces: python-engineio 4.16.0 is installed, written for 4.15.1. Install requirements.txt; or, to "
        "move to the installed release, check each replacement in app/patches.py that names the library "
        "against the release's code, run tests/test_patches.py, then update WRITTEN_FOR there and the pin "
        "in requirements.txt"
    )]
