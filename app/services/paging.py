"""Keyset pages: `{"items", "hasMore"}` for every list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from ..extensions import db


@dataclass
class Page:
    items: list[Any]
    has_more: bool


def fetch_page(query: Select[Any], limit: int) -> Page:
    """One query: ask for a row more than the page holds to know if there is more."""
    rows = list(db.session.scalars(query.limit(limit + 1)))
    return Page(items=rows[:limit], has_more=len(rows) > limit)
