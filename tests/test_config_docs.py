"""`.env.example` and the README's settings table list exactly the declared settings.

app/config.py declares every setting once, in SETTINGS; these two documents are
written by hand, and these tests fail as soon as one of them forgets a setting,
keeps one that is gone, or loses a former name that is still accepted.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from app.config import SETTINGS, load_config

ROOT = Path(__file__).resolve().parent.parent
DECLARED = {setting.name for setting in SETTINGS}
LEGACY = {setting.name: setting.legacy for setting in SETTINGS if setting.legacy}
# `NAME=value`, or a commented-out `# NAME=value`; prose comments have no `NAME=`.
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def env_example_names() -> list[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return [match.group(1) for match in map(ASSIGNMENT.match, lines) if match]


def readme_settings_rows() -> dict[str, list[str]]:
    """The README's settings table: each row's setting name, and the former names
    written after it in parentheses (`NAME` (or `OLD`))."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split(" | ", 1)[0])
        assert names[0] not in rows, f"README lists {names[0]} twice"
        rows[names[0]] = names[1:]
    return rows


def test_env_example_lists_exactly_the_declared_settings():
    names = env_example_names()
    assert set(names) - DECLARED == set(), "in .env.example but not declared in app/config.py"
    assert DECLARED - set(names) == set(), "declared in app/config.py but missing from .env.example"


def test_env_example_sets_each_setting_once():
    lines = (ROOT / ".env.example").read_text().splitlines()
    uncommented = [line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)]
    assert sorted(uncommented) == sorted(set(uncommented))


def test_env_example_values_are_the_defaults(tmp_path):
    """Loaded as it stands, .env.example gives each setting its default: a copy of
    it changes nothing until a value is edited."""
    example = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    loaded = load_config(example, instance_path=str(tmp_path))
    defaults = load_config({}, instance_path=str(tmp_path))
    # A relative path in the file; the default is the same folder under the instance path.
    assert example["ATTACHMENTS_DIR"] == "instance/attachments"
    assert {name: loaded[name] for name in DECLARED - {"ATTACHMENTS_DIR"}} == {
        name: defaults[name] for name in DECLARED - {"ATTACHMENTS_DIR"}}


def test_readme_lists_exactly_the_declared_settings():
    rows = readme_settings_rows()
    assert set(rows) - DECLARED == set(), "in the README's settings table but not declared in app/config.py"
    assert DECLARED - set(rows) == set(), "declared in app/config.py but missing from the README's settings table"


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_readme_names_the_former_names_still_accepted(name):
    assert readme_settings_rows()[name] == ([LEGACY[name]] if name in LEGACY else [])
