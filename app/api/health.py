"""Liveness and readiness: does the database answer?"""
from __future__ import annotations

from flask_smorest import Blueprint

from ..schemas.outputs import HealthOut
from ..services import health

blp = Blueprint("health", __name__, description="Health")


@blp.get("/health")
@blp.response(200, HealthOut)
@blp.alt_response(503, schema=HealthOut, description="The database does not answer")
def check():
    report = health.check()
    return report, 200 if report["status"] == "ok" else 503
