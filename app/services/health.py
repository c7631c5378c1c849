"""What /health reports."""
from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db

log = logging.getLogger(__name__)


def check() -> dict[str, str]:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health: database unavailable: %s", type(exc).__name__)
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass  # the connection is gone: the failed ROLLBACK discarded it
        return {"status": "unavailable", "database": "unavailable"}
    return {"status": "ok", "database": "ok"}
