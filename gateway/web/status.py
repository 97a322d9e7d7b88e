"""The status pages (server-rendered) and the JSON API they refresh themselves from."""

from __future__ import annotations

import json
import os

from flask import (Blueprint, Response, current_app, jsonify, redirect, render_template, request,
                   session, url_for)

from gateway.bridge import LoopUnavailable
from gateway.errors import StoreError
from gateway.web import snapshot
from gateway.web.auth import check, check_csrf, csrf_token, current_scope_record
from gateway.web.errors import ApiError

bp = Blueprint("status", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")

#: Pages in navigation order: (endpoint, path, title).
PAGES = [("overview", "/", "Overview"), ("sensors", "/sensors", "Sensors"),
         ("storage", "/storage", "Storage"), ("ingest", "/ingest", "Ingest"),
         ("tasks", "/tasks", "Tasks"), ("replication", "/replication", "Replication"),
         ("configuration", "/config", "Configuration")]
#: Most series a sensors page lists.
MAX_SERIES = 500
OPENAPI = os.path.join(os.path.dirname(__file__), "openapi.json")


def _state():
    return current_app.config["GATEWAY"]


def _needs_sign_in() -> bool:
    return not _state().config.http.public_status


def _data(page: str):
    """The JSON of one page, computed on the event loop (sensors: on this thread)."""
    state = _state()
    try:
        if page == "overview":
            return state.bridge.run(snapshot.overview, state)
        if page == "sensors":
            bucket = request.args.get("bucket", "raw")
            if bucket not in state.config.store.buckets:
                raise ApiError(404, f'bucket "{bucket}" not found', "unknown_bucket")
            limit = _int_arg("limit", 100, 1, MAX_SERIES)
            return snapshot.sensors(state, bucket, limit)
        if page == "storage":
            return state.bridge.run(snapshot.storage, state)
        if page == "ingest":
            return state.bridge.run(snapshot.ingest, state)
        if page == "tasks":
            return state.bridge.run(snapshot.tasks, state)
        if page == "replication":
            return state.bridge.run(snapshot.replication, state)
        return state.bridge.run(snapshot.configuration, state)
    except (LoopUnavailable, StoreError) as e:
        raise ApiError(503, str(e), "unavailable", retry_after=5) from None


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}", "bad_request") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be between {lo} and {hi}, got {value}", "bad_request")
    return value


def _page(page: str):
    if _needs_sign_in() and current_scope_record() is None:
        return redirect(url_for("status.login", next=request.path))
    title = dict((e, t) for e, _, t in PAGES)[page]
    return render_template(f"{page}.html", page=page, title=title, pages=PAGES,
                           data=_data(page), api=url_for("status.api", page=page),
                           query=request.query_string.decode("ascii", "replace"),
                           signed_in=bool(session.get("token_id")), csrf=csrf_token())


def _register_pages():
    for endpoint, path, _ in PAGES:
        bp.add_url_rule(path, endpoint, lambda endpoint=endpoint: _page(endpoint))


_register_pages()


@bp.get("/api/status/<any(overview,sensors,storage,ingest,tasks,replication,configuration):page>")
def api(page: str):
    if _needs_sign_in():
        check("query")
    return jsonify(_data(page))


@bp.get("/api/openapi.json")
def openapi():
    with open(OPENAPI, encoding="utf-8") as f:
        return Response(f.read(), mimetype="application/json")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    target = request.args.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if request.method == "POST":
        check_csrf()
        record = _state().tokens.find(request.form.get("token", "").strip())
        if record is not None and record.allows("query"):
            session.clear()
            session["token_id"] = record.id
            csrf_token()
            return redirect(target)
        _state().counters.error("unauthorized")
        error = "That token is not valid for reading the status pages."
    return render_template("login.html", page="login", title="Sign in", pages=PAGES,
                           error=error, csrf=csrf_token(), target=target,
                           signed_in=bool(session.get("token_id"))), (401 if error else 200)


@bp.post("/logout")
def logout():
    check_csrf()
    session.clear()
    return redirect(url_for("status.overview"))


@bp.app_template_filter("tojson_compact")
def tojson_compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))
