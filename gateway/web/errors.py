"""HTTP errors in InfluxDB's JSON shape, counted by reason.

v2 endpoints answer ``{"code": ..., "message": ...}``; the v1 endpoints answer ``{"error": ...}``
as InfluxDB 1.x does. Every error raised in a handler is an :class:`ApiError`; its ``reason``
is the label it is counted under on ``/metrics``.
"""

from __future__ import annotations

from flask import jsonify, request

#: InfluxDB's error code names by HTTP status.
CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not found",
         405: "method not allowed", 408: "request timeout", 413: "request too large",
         415: "unsupported media type", 422: "unprocessable entity", 500: "internal error",
         503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.retry_after = retry_after


def error_response(status: int, message: str, *, v1: bool | None = None, retry_after: int | None = None):
    if v1 is None:
        v1 = request.path == "/write" or request.path == "/query"
    body = {"error": message} if v1 else {"code": CODES.get(status, "internal error"), "message": message}
    response = jsonify(body)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response
