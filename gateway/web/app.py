"""The Flask application factory and what its handlers share (:class:`WebState`)."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from gateway.bridge import LoopBridge
from gateway.web.counters import HttpCounters
from gateway.web.errors import ApiError, error_response
from gateway.web.tokens import TokenStore

log = logging.getLogger("gateway.web")


@dataclasses.dataclass
class WebState:
    """The gateway as the request threads see it. Components are read through ``bridge``."""

    config: object
    context: object
    bridge: LoopBridge
    tokens: TokenStore
    counters: HttpCounters = dataclasses.field(default_factory=HttpCounters)
    started_at: float = dataclasses.field(default_factory=time.time)
    #: Day sparklines by bucket and series key, recomputed at most once a minute by one
    #: request thread at a time (the lock guards the decision who recomputes).
    day_sparklines: dict = dataclasses.field(default_factory=dict)
    sparkline_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def store(self):
        return self.context.components["store"]

    def store_open(self) -> bool:
        store = self.context.components.get("store")
        return bool(store is not None and store.health().get("running"))


def create_app(state: WebState) -> Flask:
    from gateway.web import influx, metrics, status

    app = Flask(__name__)
    app.config.update(
        GATEWAY=state,
        SECRET_KEY=os.urandom(32),  # sessions end with the process; nothing to keep on disk
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=None,  # the write handlers apply http.max_body themselves
        JSON_SORT_KEYS=False,
    )
    app.register_blueprint(influx.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(status.bp)
    app.extensions["gateway_metrics"] = metrics.registry_for(state)

    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        state.counters.error(e.reason)
        return error_response(e.status, e.message, retry_after=e.retry_after)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        state.counters.error(f"http_{e.code}")
        response = error_response(e.code or 500, e.description or e.name)
        if getattr(e, "valid_methods", None):
            response.headers["Allow"] = ", ".join(e.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        # The path only: a v1 query string may carry a token.
        log.error("%s %s failed: %r", request.method, request.path, e, exc_info=e)
        state.counters.error("internal")
        return error_response(500, f"internal error: {type(e).__name__}")

    @app.after_request
    def count(response):
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        state.counters.request(endpoint, response.status_code)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return app
