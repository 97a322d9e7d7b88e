"""``POST /api/v2/query`` on a live gateway: the official influxdb-client writes points with its
write API and reads them back with its query API; Flux errors, auth, dialects, limits."""

import json
import time

import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from gateway.query.lexer import MAX_SOURCE

pytestmark = pytest.mark.integration

FLUX = "application/vnd.flux"


def query(gateway, body, content_type=FLUX, token=None):
    status, headers, text = gateway.request(
        "POST", "/api/v2/query?org=any", body=body, headers={"Content-Type": content_type},
        token=gateway.tokens["query"] if token is None else token)
    return status, headers, text.decode()


@pytest.fixture(scope="module")
def base(gateway):
    """Twelve points of two devices, written by the client's write API, one minute apart."""
    start = (time.time_ns() // 10**9 - 1800) * 10**9
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["write"], org="any") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="raw", record=[
            Point("qapi").tag("dev", f"d{i % 2}").field("v", float(i)).time(start + i * 60 * 10**9, WritePrecision.NS)
            for i in range(12)])
    return start


def test_client_reads_back_what_it_wrote(gateway, base):
    flux = ('from(bucket: "raw") |> range(start: -2h)\n'
            '  |> filter(fn: (r) => r._measurement == "qapi" and r._field == "v")')
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["query"], org="any") as client:
        tables = client.query_api().query(flux)
    assert len(tables) == 2
    by_dev = {t.records[0].values["dev"]: t.records for t in tables}
    assert sorted(by_dev) == ["d0", "d1"]
    for dev, offset in (("d0", 0), ("d1", 1)):
        records = by_dev[dev]
        assert [r.get_value() for r in records] == [float(i) for i in range(offset, 12, 2)]
        assert [int(r.get_time().timestamp()) for r in records] == \
            [base // 10**9 + i * 60 for i in range(offset, 12, 2)]
        assert {(r.get_measurement(), r.get_field()) for r in records} == {("qapi", "v")}
    # The group key is the series: the client sees it from the #group annotation.
    assert [c.label for c in tables[0].get_group_key()] == ["_start", "_stop", "_field", "_measurement", "dev"]


def test_client_reads_an_aggregate(gateway, base):
    flux = ('from(bucket: "raw") |> range(start: -2h) |> filter(fn: (r) => r._measurement == "qapi")\n'
            '  |> group() |> sum()')
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["admin"], org="any") as client:
        tables = client.query_api().query(flux)
    assert [[r.get_value() for r in t.records] for t in tables] == [[float(sum(range(12)))]]


def test_flux_error_names_line_and_column(gateway):
    status, headers, body = query(gateway, 'from(bucket: "raw")\n  |> range(start: -1h)\n  |> nope()')
    assert status == 400 and headers["Content-Type"] == "application/json"
    err = json.loads(body)
    assert err["code"] == "invalid"
    assert "line 3, column 6" in err["message"] and "nope" in err["message"]
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["query"], org="any") as client:
        with pytest.raises(ApiException) as e:
            client.query_api().query('from(bucket: "raw") |> range(start: )')
    assert e.value.status == 400 and "line 1, column" in json.loads(e.value.body)["message"]


def test_query_needs_a_query_token(gateway):
    flux = 'from(bucket: "raw") |> range(start: -1m) |> limit(n: 1)'
    status, _, body = gateway.request("POST", "/api/v2/query", body=flux,
                                      headers={"Content-Type": FLUX})
    assert status == 401 and json.loads(body)["code"] == "unauthorized"
    status, _, body = query(gateway, flux, token=gateway.tokens["write"])
    assert status == 403 and "insufficient permissions for query" in json.loads(body)["message"]
    assert query(gateway, flux, token="gw_" + "x" * 43)[0] == 401
    assert query(gateway, flux, token=gateway.tokens["admin"])[0] == 200


def test_json_body_with_dialect(gateway, base):
    flux = ('from(bucket: "raw") |> range(start: -2h) |> filter(fn: (r) => r._measurement == "qapi")'
            ' |> group() |> count()')
    # InfluxDB's defaults: a header row, no annotations, the result named in each row.
    status, headers, body = query(gateway, json.dumps({"query": flux, "type": "flux"}), "application/json")
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert body == ",result,table,_value\r\n,_result,0,12\r\n\r\n"
    status, _, body = query(gateway, json.dumps({
        "query": flux, "dialect": {"header": False, "annotations": ["datatype"], "delimiter": ";"}}),
        "application/json")
    assert status == 200 and body == "#datatype;string;long;long\r\n;_result;0;12\r\n\r\n"
    status, _, body = query(gateway, json.dumps({
        "query": flux, "dialect": {"annotations": ["group", "datatype", "default"]}}), "application/json")
    assert status == 200 and body.split("\r\n") == [
        "#group,false,false,false", "#datatype,string,long,long", "#default,_result,,",
        ",result,table,_value", ",,0,12", "", ""]


@pytest.mark.parametrize("dialect, problem", [
    ({"delimiter": "ab"}, "dialect.delimiter"),
    ({"annotations": ["datatype", "colour"]}, "dialect.annotations"),
    ({"commentPrefix": "%"}, "dialect.commentPrefix"),
    ({"dateTimeFormat": "unix"}, "dialect.dateTimeFormat"),
    ({"header": "yes"}, "dialect.header"),
    ({"quoteChar": "'"}, "unknown field 'quoteChar'"),
])
def test_dialect_the_renderer_cannot_write_is_refused(gateway, dialect, problem):
    status, _, body = query(gateway, json.dumps({"query": 'from(bucket: "raw") |> range(start: -1m)',
                                                 "dialect": dialect}), "application/json")
    assert status == 400 and problem in json.loads(body)["message"]


def test_bad_requests(gateway):
    status, _, body = query(gateway, 'from(bucket: "nowhere") |> range(start: -1h)')
    assert status == 404 and json.loads(body) == {
        "code": "not found", "message": 'failed to initialize execute state: could not find bucket "nowhere"'}
    status, _, body = query(gateway, json.dumps({"query": "SELECT 1", "type": "influxql"}), "application/json")
    assert status == 400 and "'influxql' is not supported" in json.loads(body)["message"]
    assert query(gateway, "{not json", "application/json")[0] == 400
    assert query(gateway, b"from(bucket: \"\xff\")", FLUX)[0] == 400
    assert query(gateway, "x", "text/plain")[0] == 415
    status, _, body = query(gateway, "x" * (MAX_SOURCE + 1))
    assert status == 413 and json.loads(body)["code"] == "request too large"
    status, _, body = query(gateway, 'from(bucket: "raw") |> range(start: -1h) |> to(bucket: "rollup")')
    assert status == 400 and "read-only" in json.loads(body)["message"]


def test_query_errors_are_counted(gateway):
    def counted():
        _, _, text = gateway.request("GET", "/metrics", token=gateway.tokens["query"])
        for line in text.decode().splitlines():
            if line.startswith('gateway_ingest_bad_total{reader="http",reason="bad_query"}'):
                return float(line.split()[-1])
        return 0.0

    before = counted()
    assert query(gateway, "from(")[0] == 400
    assert counted() == before + 1
