"""Flask's JSON, with a body nested too deeply to read treated as one that is not JSON.

`json.loads` recurses once per level of nesting and raises RecursionError (not
ValueError) past about a thousand; 100 000 levels fit in 200 kB, well inside
MAX_CONTENT_LENGTH. Flask's `request.get_json()` only catches ValueError, so
such a body became a 500 (and `get_json(silent=True)`, as the login throttle's
key function uses it, raised instead of answering None). As a ValueError it is
a 400 `bad_request`, or None when silent, like any other unreadable body.

No separate depth limit is set: what `json.loads` can read (under a thousand
levels) reaches only schemas that take no nested structure where they expect a
scalar or a list of ids, and refuse it without walking into it.
webargs (flask-smorest's `@blp.arguments`) parses bodies with the standard
library itself; `app.patches.JsonBodyParser` does the same there.
"""
from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class SafeJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
