"""Who may do what: API tokens from the request, scopes, the browser session and CSRF.

API clients present a token as ``Authorization: Token <t>`` (or ``Bearer``); on the v1
endpoints the password carries it (``p=`` or basic auth), as InfluxDB 2's v1 compatibility
does. A browser signs in on ``/login`` with a token; the session cookie then holds the token's
id and scope (never the token), and every state-changing form carries a CSRF token bound to the
session.
"""

from __future__ import annotations

import functools
import hmac
import secrets

from flask import current_app, request, session

from gateway.web.errors import ApiError

V1_PATHS = frozenset({"/write", "/query"})


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme in ("token", "bearer") and value.strip():
        return value.strip()
    if scheme == "basic" and request.authorization is not None:
        return request.authorization.password or None
    if request.path in V1_PATHS:
        return request.args.get("p") or None
    return None


def current_scope_record():
    """The token record behind this request (header, v1 password or session), or None."""
    tokens = current_app.config["GATEWAY"].tokens
    token = presented_token()
    if token is not None:
        return tokens.find(token)
    token_id = session.get("token_id")
    if token_id:
        for record in tokens.records():
            if record.id == token_id:
                return record
    return None


def check(scope: str) -> None:
    """Raises 401 without a valid token, 403 when its scope does not cover ``scope``."""
    had_token = presented_token() is not None or bool(session.get("token_id"))
    record = current_scope_record()
    if record is None:
        raise ApiError(401, "unauthorized access" if had_token else
                       "unauthorized access: no token (send 'Authorization: Token <token>')",
                       "unauthorized")
    if not record.allows(scope):
        raise ApiError(403, f"insufficient permissions for {scope}: the token's scope is "
                            f"{record.scope}", "forbidden")


def requires(scope: str):
    def wrap(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            check(scope)
            return view(*args, **kwargs)
        return guarded
    return wrap


def csrf_token() -> str:
    token = session.get("csrf")
    if token is None:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(403, "the form's CSRF token is missing or stale: reload the page and "
                            "submit it again", "csrf")
