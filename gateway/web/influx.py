"""InfluxDB's HTTP API where clients already exist for it: v2 and v1 writes, v2 Flux queries,
/health, /ping, /ready. A write answers 204 only once its points are durable (the store's group
commit); a query runs through the query engine (docs/query.md) on the request's own thread,
which reaches the store on the event loop only for its reads, so ingest never waits for it."""

from __future__ import annotations

import json
import time
import zlib

from flask import Blueprint, Response, current_app, jsonify, request

from gateway import __version__
from gateway.bridge import LoopUnavailable
from gateway.errors import StoreError
from gateway.lineprotocol import parse
from gateway.query import FluxError, Limits, compile_query, run_query_in_thread
from gateway.query.lexer import MAX_SOURCE
from gateway.query.output import ANNOTATIONS, annotated_csv
from gateway.web.auth import check
from gateway.web.errors import ApiError

bp = Blueprint("influx", __name__)

#: Precision names of the v2 API, and the v1 spellings mapped onto them.
V2_PRECISIONS = {"ns": "ns", "us": "us", "ms": "ms", "s": "s"}
V1_PRECISIONS = {"n": "ns", "ns": "ns", "u": "us", "us": "us", "µ": "us", "ms": "ms", "s": "s"}
#: Seconds a client is asked to wait when the store cannot take writes.
RETRY_AFTER_S = 5


def _state():
    return current_app.config["GATEWAY"]


@bp.post("/api/v2/write")
def write_v2():
    return _write(_required("bucket", "bucket"), _precision(V2_PRECISIONS))


@bp.post("/write")
def write_v1():
    return _write(_required("db", "database"), _precision(V1_PRECISIONS))


def _required(param: str, what: str) -> str:
    check("write")
    value = request.args.get(param)
    if not value:
        raise ApiError(400, f"{what} is required (query parameter '{param}')", "bad_request")
    return value


def _precision(names: dict[str, str]) -> str:
    given = request.args.get("precision")
    if not given:
        return "ns"
    try:
        return names[given]
    except KeyError:
        raise ApiError(400, f"invalid precision {given!r}: use one of {', '.join(names)}",
                       "bad_precision") from None


def _read_body(max_body: int) -> bytes:
    length = request.content_length
    if length is not None and length > max_body:
        raise ApiError(413, f"request body is {length} bytes, more than the limit of {max_body}",
                       "too_large")
    body = request.stream.read(max_body + 1)
    if len(body) > max_body:
        raise ApiError(413, f"request body is more than the limit of {max_body} bytes", "too_large")
    return body


def _gunzip(body: bytes, cap: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as e:
        raise ApiError(400, f"body is not valid gzip: {e}", "bad_gzip") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise ApiError(413, f"gzip body decompresses to more than the limit of {cap} bytes",
                       "too_large")
    if not inflater.eof:
        raise ApiError(400, "gzip body is truncated", "bad_gzip")
    return out


def _line_text(body: bytes, number: int) -> str:
    start = 0
    for _ in range(number - 1):
        start = body.find(b"\n", start) + 1
        if start == 0:
            return ""
    end = body.find(b"\n", start)
    text = body[start:end if end >= 0 else len(body)]
    return text[:200].decode("utf-8", "replace")


def _write(bucket: str, precision: str):
    state = _state()
    http = state.config.http
    if bucket not in state.config.store.buckets:
        raise ApiError(404, f'bucket "{bucket}" not found', "unknown_bucket")
    body = _read_body(http.max_body)
    received = len(body)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, http.max_decompressed)
    elif encoding not in ("", "identity"):
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r} (use gzip or none)",
                       "bad_encoding")
    # Lines without a timestamp get the gateway's time: a held one before the clock is
    # synchronised (gateway/clock.py); lines with one are the client's and stay as they are.
    result = parse(body, precision=precision, default_time_ns=state.context.clock.now_ns())
    written = refused = 0
    problem = None
    if result.points:
        try:
            # The connection is the sender: a client sends its next batch on it once this
            # one is answered (the commit policy, gateway/store/commit.py).
            sender = ("http", request.environ.get("REMOTE_ADDR"), request.environ.get("REMOTE_PORT"))
            outcome = state.bridge.run(state.store.write, result.batch, bucket, True, sender)
        except (StoreError, LoopUnavailable) as e:
            raise ApiError(503, f"the store cannot take writes now: {e}", "unavailable",
                           retry_after=RETRY_AFTER_S) from None
        written = outcome.points
        refused = outcome.refused + outcome.too_old
        problem = outcome.problem
    state.counters.write(received_bytes=received, lines=result.lines, points=written,
                         bad_lines=result.bad_lines)
    if result.errors:
        first = result.errors[0]
        text = _line_text(body, first.line)
        reason = str(first).split(": ", 1)[-1]
        for e in result.errors:
            state.counters.bad_line(bucket=bucket, line=e.line, column=e.column,
                                    reason=str(e).split(": ", 1)[-1], text=_line_text(body, e.line))
        more = f" (and {result.bad_lines - 1} more bad lines)" if result.bad_lines > 1 else ""
        message = (f"unable to parse '{text}': line {first.line}, column {first.column}: "
                   f"{reason}{more}")
        if written:
            message = f"partial write error ({written} written): {message}"
        raise ApiError(400, message, "bad_line")
    if refused:
        raise ApiError(422, f"partial write: {problem} ({written} written, dropped={refused})",
                       "refused")
    return _no_content()


def _no_content(**headers) -> Response:
    response = Response(status=204, headers=headers)
    del response.headers["Content-Type"]
    return response


# ---- Flux queries -----------------------------------------------------------------------------

#: InfluxDB's dialect defaults (an absent dialect, or a Flux body): a header row, no annotations.
DEFAULT_DIALECT = {"header": True, "annotations": [], "delimiter": ",", "commentPrefix": "#",
                   "dateTimeFormat": "RFC3339"}


@bp.post("/api/v2/query")
def query_v2():
    check("query")
    state = _state()
    source, dialect = _query_request(_read_body(state.config.http.max_body))
    if len(source) > MAX_SOURCE:
        raise ApiError(413, f"the query is {len(source)} characters long; at most {MAX_SOURCE} "
                            f"are accepted", "too_large")
    header, annotations, delimiter = _dialect(dialect)
    seconds = float(state.config.http.timeout)
    try:
        query = compile_query(source, limits=Limits(seconds=seconds))
    except FluxError as e:
        raise ApiError(400, f"compilation failed: {e}", "bad_query") from None
    for plan in query.plans:
        if plan.bucket not in state.config.store.buckets:
            raise ApiError(404, f'failed to initialize execute state: could not find bucket '
                                f'"{plan.bucket}"', "unknown_bucket")
    try:
        results, _ = run_query_in_thread(query, state.store, state.bridge, origin="http")
    except FluxError as e:
        raise ApiError(400, f"runtime error: {e}", "bad_query") from None
    except (StoreError, LoopUnavailable) as e:
        raise ApiError(503, f"the store cannot answer queries now: {e}", "unavailable",
                       retry_after=RETRY_AFTER_S) from None
    text = "".join(annotated_csv(results, header=header, annotations=annotations,
                                 delimiter=delimiter))
    return Response(text, status=200, content_type="text/csv; charset=utf-8")


def _query_request(body: bytes) -> tuple[str, dict]:
    """(Flux source, dialect) of a query body: Flux itself or InfluxDB's JSON request."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {e.start})", "bad_request") from None
    content_type = request.mimetype
    if content_type == "application/vnd.flux":
        return text, {}
    if content_type not in ("application/json", ""):
        raise ApiError(415, f"unsupported Content-Type {content_type!r} (use application/json "
                            f"or application/vnd.flux)", "bad_content_type")
    try:
        req = json.loads(text)
    except ValueError as e:
        raise ApiError(400, f"request body is not valid JSON: {e}", "bad_request") from None
    if not isinstance(req, dict) or not isinstance(req.get("query"), str):
        raise ApiError(400, 'request body must be a JSON object with a "query" string',
                       "bad_request")
    kind = req.get("type") or "flux"
    if kind != "flux":
        raise ApiError(400, f'query type {kind!r} is not supported: use "flux"', "bad_request")
    extern = req.get("extern")
    if isinstance(extern, dict):   # the client libraries send an empty Flux file
        extern = extern.get("body") or extern.get("imports")
    if extern:
        raise ApiError(400, '"extern" (query parameters) is not supported: put the values into '
                            'the Flux text', "bad_request")
    if req.get("params"):
        raise ApiError(400, '"params" is not supported: put the values into the Flux text',
                       "bad_request")
    if req.get("now") is not None:
        raise ApiError(400, '"now" is not supported: the query runs at the gateway\'s time',
                       "bad_request")
    dialect = req.get("dialect") or {}
    if not isinstance(dialect, dict):
        raise ApiError(400, '"dialect" must be a JSON object', "bad_dialect")
    return req["query"], dialect


def _dialect(given: dict) -> tuple[bool, list[str], str]:
    """(header, annotations, delimiter) of InfluxDB's ``dialect``; 400 for what the annotated
    CSV renderer cannot write."""
    d = {**DEFAULT_DIALECT, **{k: v for k, v in given.items() if v is not None}}
    unknown = set(given) - set(DEFAULT_DIALECT)
    if unknown:
        raise ApiError(400, f"dialect: unknown field {sorted(unknown)[0]!r} (known: "
                            f"{', '.join(DEFAULT_DIALECT)})", "bad_dialect")
    if not isinstance(d["header"], bool):
        raise ApiError(400, "dialect.header must be true or false", "bad_dialect")
    annotations = d["annotations"]
    if not isinstance(annotations, list) or any(a not in ANNOTATIONS for a in annotations):
        raise ApiError(400, f"dialect.annotations must be a list of {', '.join(ANNOTATIONS)}",
                       "bad_dialect")
    delimiter = d["delimiter"]
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ApiError(400, "dialect.delimiter must be one character (not a quote or a line "
                            "break)", "bad_dialect")
    if d["commentPrefix"] != "#":
        raise ApiError(400, 'dialect.commentPrefix: only "#" is supported', "bad_dialect")
    if d["dateTimeFormat"] not in ("RFC3339", "RFC3339Nano"):
        raise ApiError(400, "dialect.dateTimeFormat must be RFC3339 or RFC3339Nano",
                       "bad_dialect")
    return d["header"], annotations, delimiter


# ---- liveness, as InfluxDB answers it ---------------------------------------------------------

def _uptime(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"


@bp.get("/health")
def health():
    state = _state()
    ok = state.store_open()
    body = {"name": "edge-gateway", "version": __version__, "commit": "",
            "status": "pass" if ok else "fail", "checks": [],
            "message": "ready for queries and writes" if ok else "the store is not open"}
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    return response


@bp.route("/ping", methods=["GET", "HEAD"])
def ping():
    return _no_content(**{"X-Influxdb-Build": "OSS", "X-Influxdb-Version": __version__})


@bp.get("/ready")
def ready():
    state = _state()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.started_at))
    return jsonify({"status": "ready", "started": started,
                    "up": _uptime(time.time() - state.started_at)})
