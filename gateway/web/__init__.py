"""The status pages and the HTTP API (InfluxDB-compatible writes, Prometheus metrics, the JSON
API of the pages), a Flask app served by waitress inside the gateway process: see
:mod:`gateway.web.component`."""
