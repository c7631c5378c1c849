"""One error shape for both doors.

Services raise `AppError` subclasses; the REST error handler turns them into
`{"error": {"code", "message", "details"?}}` with `status`, and the socket
namespace into the ack `{"ok": false, "error": {...}}` plus the `error` event.
"""
from __future__ import annotations

import math
from typing import Any

import psycopg
from flask import Response, jsonify
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class AppError(Exception):
    code = "internal_error"
    status = 500
    message = "Internal server error"

    def __init__(self, message: str | None = None, details: Any = None, **extra: Any):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        body.update(self.extra)
        return body


class BadRequest(AppError):
    code, status, message = "bad_request", 400, "The request could not be read"


class ValidationError(AppError):
    code, status, message = "validation_error", 422, "Invalid request data"


class AuthError(AppError):
    code, status, message = "auth_required", 401, "Authentication required"


class InvalidCredentials(AuthError):
    code, message = "invalid_credentials", "Invalid email or password"


class TokenInvalid(AuthError):
    code, message = "token_invalid", "Invalid token"


class TokenExpired(AuthError):
    code, message = "token_expired", "Token has expired"


class TokenRevoked(AuthError):
    code, message = "token_revoked", "Token has been revoked"


class TooManyConnections(AuthError):
    code, status, message = "too_many_connections", 429, "Too many open connections for this user"


class Forbidden(AppError):
    code, status, message = "forbidden", 403, "You do not have permission to do this"


class NotFound(AppError):
    code, status, message = "not_found", 404, "Not found"


class MethodNotAllowed(AppError):
    code, status, message = "method_not_allowed", 405, "Method not allowed"


class Conflict(AppError):
    code, status, message = "conflict", 409, "Conflict"


class MessageDeleted(Conflict):
    code, message = "message_deleted", "This message was deleted"


class ClientIdReused(Conflict):
    code, message = "client_id_reused", "This clientId was already used for a message in another task"


class PayloadTooLarge(AppError):
    code, status, message = "payload_too_large", 413, "Payload too large"


class UnsupportedMediaType(AppError):
    code, status, message = "unsupported_media_type", 415, "This file type is not allowed"


class RateLimited(AppError):
    """Carries `retryAfter` (whole seconds, at least 1) beside code and message."""

    code, status, message = "rate_limited", 429, "Too many requests; slow down"

    def __init__(self, retry_after: float, message: str | None = None):
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message, retryAfter=self.retry_after)


class Unavailable(AppError):
    """The database (or another dependency) failed; nothing was stored, try again."""

    code, status, message = "unavailable", 503, "The service is temporarily unavailable; try again"

    def __init__(self, message: str | None = None):
        super().__init__(message, retryable=True)


class InternalError(AppError):
    pass


def as_app_error(exc: BaseException) -> AppError:
    """What the client is told about any failure. Our own errors as they are; a
    database that cannot be reached (or is locked) as `unavailable`, retryable;
    anything else as a bare `internal_error`, never its message, SQL or traceback."""
    if isinstance(exc, AppError):
        return exc
    # TimeoutError: every pooled connection stayed busy for `pool_timeout`.
    # psycopg's own: from the hot path's connections (app/hotdb.py), not wrapped by SQLAlchemy.
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, psycopg.OperationalError,
                        psycopg.InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return Unavailable()
    return InternalError()


def error_response(err: AppError) -> Response:
    """The REST answer for an error: `{"error": {...}}` with its status."""
    response = jsonify({"error": err.to_dict()})
    response.status_code = err.status
    return response


# The words the web frontend already shows for these cases.
NO_TASK_ACCESS = "No access to this task"
NO_SEND_PERMISSION = "No permission to send messages"
