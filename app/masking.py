"""Values as they may be logged: secrets hidden, the passwords inside URLs masked.

`loggable(name, value)` is the text one setting may be logged as. A name that says
it holds a secret (SECRET_KEY, JWT_SECRET_KEY, a ..._PASSWORD) shows only whether it
is set; any other value is shown as text, with the password of every URL in it
(database, Redis) replaced by `***`.
"""
from __future__ import annotations

import re
from typing import Any

# Names whose values are secrets: shown as "***" (so the log says they are set), never their value.
# PASSWORD_HASH_METHOD names an algorithm, not a password.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD(?!_HASH)|PASSWD|CREDENTIAL|PRIVATE|_KEY$|^KEY$")
_URL_PASSWORD = re.compile(r"^([\w+.-]+://[^:/@]*):[^?#]*@")
# A query parameter such as ?password=... (libpq reads it) or ?sslpassword=...
_SECRET_QUERY = re.compile(r"([?&][^=&#]*(?:pass|secret|token|key)[^=&#]*=)[^&#]*", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a setting of this name holds a secret, whose value is never logged."""
    return bool(_SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """A URL with its password replaced by ***, the rest as written. The user part's
    password is taken to run to the last @ before the query (a stray @ or / in it hides
    more, never less); a query parameter such as ?password= or ?sslpassword= too."""
    return _SECRET_QUERY.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", url))


def loggable(name: str, value: Any) -> str:
    """The text the setting `name` may be logged as: `***` (or `(not set)`) for a
    secret, else the value with URL passwords masked, collections comma-joined."""
    if is_secret_name(name):
        return "***" if value else "(not set)"
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, (frozenset, set)):
        return ",".join(sorted(map(str, value)))
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    return str(value)
