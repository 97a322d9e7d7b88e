"""Loading, validation errors with line numbers and key paths, defaults, rendering."""

import textwrap

import pytest

from gateway import config as cfg
from gateway.config.locate import key_lines
from gateway.errors import ConfigError


def load(text):
    return cfg.load_text(textwrap.dedent(text), "gw.toml")


def problems(text):
    with pytest.raises(ConfigError) as e:
        load(text)
    return [(p.line, p.path, p.message) for p in e.value.problems]


def test_no_file_defaults_are_useful():
    c = cfg.defaults()
    assert c.http.listen == "127.0.0.1:8080"
    assert set(c.store.buckets) >= {"raw", "rollup"}
    assert float(c.store.wal_sync) == 1.0


def test_values_are_typed():
    c = load("""
        [gateway]
        log_level = "debug"
        [store]
        wal_sync = "always"
        head_max_age = "5m"
        [store.buckets.raw]
        max_size = "1GiB"
        [store.buckets.archive]
        max_size = "100MiB"
        retention = "90d"
    """)
    assert c.gateway.log_level == "debug"
    assert c.store.wal_sync == "always"
    assert float(c.store.head_max_age) == 300
    assert c.store.buckets["raw"].max_size == 2**30
    assert float(c.store.buckets["raw"].retention) == 30 * 86400  # the built-in's, not given
    assert "rollup" in c.store.buckets  # defaults stay unless overridden
    assert float(c.store.buckets["archive"].retention) == 90 * 86400


def test_three_mistakes_are_all_reported_with_lines_and_paths():
    found = problems("""
        [gateway]
        data_dri = "/srv/gw"

        [store]
        wal_sync = "soon"

        [store.buckets.raw]
        max_size = -3
    """)
    assert found == [
        (3, "gateway.data_dri", "unknown key 'data_dri'; did you mean 'data_dir'?"),
        (6, "store.wal_sync", "must be a duration such as \"10s\" or one of 'always', got 'soon'"),
        (9, "store.buckets.raw.max_size", "size must not be negative, got -3"),
    ]


def test_unknown_section_suggests_nearest():
    [(line, path, message)] = problems("""
        [stor]
        wal_sync = "1s"
    """)
    assert (line, path) == (2, "stor")
    assert "did you mean 'store'" in message


def test_wrong_types_and_enums():
    found = problems("""
        [gateway]
        log_level = "loud"
        hardware = 3
        [http]
        listen = "localhost"
    """)
    assert [p for _, p, _ in found] == ["gateway.log_level", "gateway.hardware", "http.listen"]
    assert "one of 'debug', 'info', 'warning', 'error'" in found[0][2]


def test_invalid_toml_has_a_line():
    [(line, path, message)] = problems("""
        [gateway]
        log_level = info
    """)
    assert line == 3 and message.startswith("invalid TOML")


def test_key_lines_follow_tables_arrays_and_dotted_keys():
    lines = key_lines(textwrap.dedent("""\
        a = 1
        [t]
        b.c = 2
        [[arr]]
        x = 1
        [[arr]]
        x = 2
        [arr.sub]
        y = 3
        s = \"\"\"
        x = 9
        \"\"\"
        z = 4
    """))
    assert lines["a"] == 1 and lines["t.b.c"] == 3
    assert lines["arr[0].x"] == 5 and lines["arr[1].x"] == 7
    assert lines["arr[1].sub.y"] == 9
    assert "arr[1].sub.x" not in lines  # inside a multi-line string
    assert lines["arr[1].sub.z"] == 13


def test_a_built_in_bucket_table_changes_only_the_keys_it_gives():
    c = load("""
        [store.buckets.rollup]
        max_size = "1GiB"
    """)
    rollup = c.store.buckets["rollup"]
    assert rollup.max_size == 2**30
    assert float(rollup.retention) == 365 * 86400      # not dropped: a year of rollups
    assert float(rollup.head_max_age) == 4 * 3600       # 240-point blocks, not 15-point ones
    assert float(c.store.buckets["raw"].retention) == 30 * 86400


def test_retention_none_removes_the_age_limit_and_survives_a_render():
    c = load("""
        [store.buckets.raw]
        retention = "none"
        [store.buckets.archive]
        max_size = "100MiB"
    """)
    assert c.store.buckets["raw"].retention is None
    assert c.store.buckets["raw"].max_size == 256 * 2**20
    assert c.store.buckets["archive"].retention is None
    again = cfg.load_text(cfg.render(c))
    assert again.store.buckets == c.store.buckets


def test_render_round_trips():
    c = load("""
        [store]
        wal_sync = "250ms"
        [store.buckets.raw]
        max_size = "2GiB"
        retention = "14d"
    """)
    again = cfg.load_text(cfg.render(c))
    assert again.store == c.store
    assert cfg.render(again) == cfg.render(c)
    assert cfg.render(cfg.defaults()) == cfg.render(cfg.load_text(cfg.render(cfg.defaults())))


# ---- what `gateway run` would refuse or could not use, found when the file is checked ----

def test_a_reader_writing_to_an_unknown_bucket_is_refused():
    found = problems("""
        [[readers.mqtt]]
        client_id = "a"
        bucket = "archive"
        [[readers.mqtt.subscriptions]]
        topic = "x"
        format = "value"
        measurement = "x"
    """)
    assert found == [(4, "readers.mqtt[0].bucket",
                      "unknown bucket 'archive' (the store has raw, rollup; "
                      "add [store.buckets.archive] to create it)")]
    load("""
        [store.buckets.archive]
        max_size = "1MiB"
        [[readers.mqtt]]
        bucket = "archive"
        [[readers.mqtt.subscriptions]]
        topic = "x"
        format = "value"
        measurement = "x"
    """)


@pytest.mark.parametrize("retention, message", [
    ("200000d", "duration '200000d' is too long: at most 106751d (what a 64-bit count of "
                "nanoseconds holds)"),
    ("0s", "must be longer than 0s, got '0s'; write retention = \"none\" for no age limit"),
])
def test_retentions_that_cannot_work_are_refused(retention, message):
    found = problems(f"""
        [store.buckets.raw]
        retention = "{retention}"
    """)
    assert found == [(3, "store.buckets.raw.retention", message)]


def test_the_longest_duration_fits_in_int64_nanoseconds():
    longest = cfg.parse_duration("106751d")
    assert longest.ns < 2**63
    assert load('[store.buckets.raw]\nretention = "36500d"').store.buckets["raw"].retention.ns \
        == 36500 * 86400 * 10**9


def test_two_mqtt_readers_with_one_client_id_on_one_broker_are_refused():
    reader = """
        [[readers.mqtt]]
        server = "mqtt://{host}:1883"
        {client_id}
        [[readers.mqtt.subscriptions]]
        topic = "x"
        format = "value"
        measurement = "x"
    """
    found = problems(reader.format(host="127.0.0.1", client_id="") +
                     reader.format(host="127.0.0.1", client_id=""))
    assert found == [(10, "readers.mqtt[1].client_id",
                      "client id 'gateway' is already used by readers.mqtt[0] on "
                      "mqtt://127.0.0.1:1883; give each reader its own client_id")]
    load(reader.format(host="127.0.0.1", client_id="") +
         reader.format(host="127.0.0.1", client_id='client_id = "second"'))
    load(reader.format(host="127.0.0.1", client_id="") + reader.format(host="10.0.0.2", client_id=""))


def test_a_byte_order_mark_before_the_first_key_is_ignored(tmp_path):
    path = tmp_path / "gw.toml"
    path.write_bytes(b'\xef\xbb\xbf[gateway]\nlog_level = "debug"\n')
    assert cfg.load_file(path).gateway.log_level == "debug"


def test_the_image_default_configuration_says_real_hardware():
    import pathlib
    image_config = pathlib.Path(__file__).resolve().parents[2] / "image/overlay/usr/lib/edge-gateway/gateway.toml"
    config = cfg.load_file(image_config)
    assert config.gateway.hardware == "real"
    # ... and serves LAN devices on the standard port with the first-boot password file.
    listener = config.readers["mqtt"][0].listener
    assert listener.listen == "0.0.0.0:1883" and listener.password_file == "/etc/gateway/lan.passwd"
