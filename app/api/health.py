"""Liveness and readiness: does the database answer?"""
from __future__ import annotations

from flask import Blueprint, jsonify

from ..services import health

bp = Blueprint("health", __name__)


@bp.get("/health")
def check():
    report = health.check()
    return jsonify(report), 200 if report["status"] == "ok" else 503
