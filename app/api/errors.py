"""REST errors, all in one shape: `{"error": {"code", "message", "details"?}}`."""
from __future__ import annotations

import logging
import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ..errors import (
    AppError,
    BadRequest,
    RateLimited,
    Unavailable,
    as_app_error,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ValidationError,
    error_response,
)

log = logging.getLogger(__name__)

_BY_STATUS: dict[int, type[AppError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    422: ValidationError,
}


def _rate_limited() -> RateLimited:
    """Flask-Limiter refused the request: when the breached window frees a slot."""
    from ..extensions import limiter

    breached = limiter.current_limit
    # The moving window frees its oldest hit at reset_time; RateLimited rounds up, at least 1 s.
    retry_after = breached.window.reset_time - time.time() if breached is not None else 1
    return RateLimited(retry_after, "Too many attempts; try again later")


def _respond(err: AppError) -> Response:
    response = error_response(err)
    if isinstance(err, RateLimited):
        response.headers["Retry-After"] = str(err.retry_after)
    return response


def _from_http(exc: HTTPException) -> AppError:
    if exc.code == 429:
        return _rate_limited()
    kind = _BY_STATUS.get(exc.code or 500)
    if kind is ValidationError:
        # webargs (through flask-smorest) puts the schema's messages here, keyed by location.
        messages = (getattr(exc, "data", None) or {}).get("messages") or {}
        details = messages.get("json", messages.get("query", messages)) if isinstance(messages, dict) else messages
        return ValidationError(details=details or None)
    if kind is None:
        err = AppError(exc.description or exc.name)
        err.status, err.code = exc.code or 500, exc.name.lower().replace(" ", "_")
        return err
    return kind()


def register(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(err: AppError):
        return _respond(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response = _respond(_from_http(exc))
        valid_methods = getattr(exc, "valid_methods", None)
        if valid_methods:  # a 405 must say what is allowed
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        err = as_app_error(exc)
        if isinstance(err, Unavailable):
            log.warning("%s %s: database unavailable (%s)", request.method, request.path, type(exc).__name__)
        else:
            log.error("%s %s failed", request.method, request.path, exc_info=exc)
        return _respond(err)
