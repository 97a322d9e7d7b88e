"""The data model: one definition of the value types and series keys for every layer."""

import subprocess
import sys

import pytest

from gateway import batch, codec, datamodel, lineprotocol
from gateway.store import native


def test_batches_do_not_need_the_line_protocol_module():
    # batch.py and lineprotocol.py used to import each other; both now build on datamodel.
    code = ("import sys, gateway.batch; "
            "sys.exit('gateway.lineprotocol' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_every_layer_uses_the_data_models_type_codes():
    for module in (batch, codec):
        assert (module.FLOAT, module.INT, module.UINT, module.BOOL, module.STRING) == (
            datamodel.FLOAT, datamodel.INT, datamodel.UINT, datamodel.BOOL, datamodel.STRING)
    assert native.STRING == datamodel.STRING
    assert batch.UInt is datamodel.UInt
    assert lineprotocol.series_key is datamodel.series_key


@pytest.mark.parametrize("measurement, tags, field", [
    ("cpu", {}, "v"),
    ("a b,c", {"z": "1", "a=b": "x y", "empty": ""}, "f=1 2"),
    ("m\\n", {"t": "back\\slash"}, "f"),
])
def test_series_keys_round_trip(measurement, tags, field):
    key = datamodel.series_key(measurement, tags, field)
    assert datamodel.split_series_key(key) == (
        measurement, {k: v for k, v in tags.items() if v}, field)
