"""Store-and-forward replication: streams that send the store's points to upstreams.

See docs/replication.md. Modules: ``config`` (the ``[[replication]]`` tables), ``position``
``source`` (what a stream reads from the store), ``batching`` (points to byte-bounded
bodies), ``http`` (the client with a limit on every phase), ``sender`` (answers to outcomes),
one sender module per upstream kind (``influxdb``, ``remote_write``), ``status`` and
``registry`` (the figures), and ``stream`` (the component that runs them). Backoff is
``gateway.backoff``, shared with the MQTT reader.
"""
