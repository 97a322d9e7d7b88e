"""Store-and-forward replication: streams that send the store's points to upstreams.

See docs/replication.md. Modules: ``config`` (the ``[[replication]]`` tables), ``position``
(a stream's durable place in the store), ``batching`` (points to byte-bounded bodies), one
``sender_<kind>`` per upstream kind, ``http`` (the client with timeouts on every phase),
``backoff``, ``status`` and ``stream`` (the component that runs them).
"""
