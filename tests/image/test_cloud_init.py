"""The provisioning examples in cloud-init/ are valid for the cloud-init and netplan of the image.

Each folder is a complete NoCloud seed (or the part of one a user copies): `user-data` is checked
with `cloud-init schema` and its top-level keys against the modules cloud-init knows (the schema
check alone lets unknown top-level keys pass); `network-config` is rendered by `netplan
generate`, the same renderer the image uses; every gateway.toml a user-data writes passes
`gateway check-config`.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from imagetools import CLOUD_INIT, REPO, require_tool, seed_dirs

GATEWAY_TOML = "/etc/gateway/gateway.toml"

# The top-level keys of cloud-config: those of the modules the installed cloud-init's schema
# references (Debian's python3, where the cloud-init package lives).
_KEYS_SCRIPT = """
import json
from cloudinit.config.schema import get_schema
schema = get_schema()
defs = schema.get("$defs") or schema["definitions"]
keys = set(schema.get("properties", {}))
for ref in schema["allOf"]:
    keys |= set(defs[ref["$ref"].rsplit("/", 1)[1]].get("properties", {}))
print(json.dumps(sorted(keys)))
"""


@pytest.fixture(scope="module")
def cloud_config_keys() -> set[str]:
    require_tool("cloud-init")
    out = subprocess.run(["/usr/bin/python3", "-c", _KEYS_SCRIPT], check=True,
                         capture_output=True, text=True).stdout
    keys = set(json.loads(out))
    assert {"users", "write_files", "hostname", "runcmd"} <= keys, "unexpected cloud-init schema"
    return keys


def unknown_top_level_keys(user_data: dict, known: set[str]) -> list[str]:
    return sorted(k for k in user_data if k not in known)


def schema_errors(path: pathlib.Path) -> str | None:
    """cloud-init's verdict on a user-data file: None when valid, else its message."""
    require_tool("cloud-init")
    proc = subprocess.run(["cloud-init", "schema", "--config-file", str(path)],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()


def netplan_errors(network_config: str, tmp_path: pathlib.Path) -> str | None:
    """netplan's verdict on a network-config (version 2) file, rendered as cloud-init would."""
    require_tool("netplan")
    root = tmp_path / "netplan-root"
    (root / "etc/netplan").mkdir(parents=True)
    config = yaml.safe_load(network_config)
    target = root / "etc/netplan/50-cloud-init.yaml"
    target.write_text(yaml.safe_dump({"network": config}))
    target.chmod(0o600)
    proc = subprocess.run(["netplan", "generate", "--root-dir", str(root)],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else proc.stderr.strip()


def embedded_gateway_configs(user_data: dict) -> list[str]:
    return [f["content"] for f in user_data.get("write_files", []) if f.get("path") == GATEWAY_TOML]


def check_config(toml_text: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    path = tmp_path / "gateway.toml"
    path.write_text(toml_text)
    return subprocess.run([sys.executable, "-m", "gateway", "check-config", str(path)],
                          capture_output=True, text=True, cwd=REPO)


def test_the_examples_are_all_there():
    names = {p.name for p in seed_dirs()}
    assert {"seed", "minimal", "wifi", "gateway", "read-only"} <= names
    assert (CLOUD_INIT / "seed" / "meta-data").is_file()
    assert (CLOUD_INIT / "seed" / "network-config").is_file()


@pytest.mark.parametrize("seed", seed_dirs(), ids=lambda p: p.name)
def test_user_data_is_valid_cloud_config(seed, cloud_config_keys):
    path = seed / "user-data"
    text = path.read_text()
    assert text.startswith("#cloud-config\n"), f"{path}: must start with #cloud-config"
    assert schema_errors(path) is None, schema_errors(path)
    user_data = yaml.safe_load(text)
    assert isinstance(user_data, dict)
    assert unknown_top_level_keys(user_data, cloud_config_keys) == [], \
        f"{path}: keys cloud-init does not know"


@pytest.mark.parametrize("seed", [p for p in seed_dirs() if (p / "network-config").exists()],
                         ids=lambda p: p.name)
def test_network_config_renders_with_netplan(seed, tmp_path):
    text = (seed / "network-config").read_text()
    assert yaml.safe_load(text)["version"] == 2
    assert netplan_errors(text, tmp_path) is None, netplan_errors(text, tmp_path)


def test_meta_data_names_an_instance():
    meta = yaml.safe_load((CLOUD_INIT / "seed" / "meta-data").read_text())
    assert meta["instance-id"]


@pytest.mark.parametrize("seed", [p for p in seed_dirs()
                                  if embedded_gateway_configs(yaml.safe_load((p / "user-data").read_text()))],
                         ids=lambda p: p.name)
def test_embedded_gateway_config_passes_check_config(seed, tmp_path):
    user_data = yaml.safe_load((seed / "user-data").read_text())
    for entry in user_data["write_files"]:
        if entry.get("path") == GATEWAY_TOML:
            # Secrets inside: readable by root only (the service hands it to the daemon).
            assert entry.get("permissions") == "0600", f"{seed.name}: {GATEWAY_TOML} must be 0600"
    for toml_text in embedded_gateway_configs(user_data):
        proc = check_config(toml_text, tmp_path)
        assert proc.returncode == 0, f"{seed.name}/user-data: {GATEWAY_TOML}:\n{proc.stderr}"


def test_the_full_example_configures_sensors_and_mqtt(tmp_path):
    user_data = yaml.safe_load((CLOUD_INIT / "gateway" / "user-data").read_text())
    (toml_text,) = embedded_gateway_configs(user_data)
    proc = check_config(toml_text, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "readers.i2c" in toml_text and "readers.mqtt" in toml_text


# The checks themselves catch what they are there for.

def test_an_unknown_top_level_key_is_caught(cloud_config_keys, tmp_path):
    path = tmp_path / "user-data"
    path.write_text("#cloud-config\nhostname: gw\nwrite_file:\n  - path: /etc/x\n    content: x\n")
    assert schema_errors(path) is None  # what cloud-init schema lets through...
    assert unknown_top_level_keys(yaml.safe_load(path.read_text()), cloud_config_keys) == ["write_file"]


def test_a_wrong_type_is_caught_by_the_schema(tmp_path):
    path = tmp_path / "user-data"
    path.write_text("#cloud-config\nhostname: [gw]\n")
    assert "hostname" in schema_errors(path)


def test_a_misspelt_wifi_key_is_caught_by_netplan(tmp_path):
    bad = "version: 2\nwifis:\n  wlan0:\n    dhcp4: true\n    acess-points: {}\n"
    assert "acess-points" in netplan_errors(bad, tmp_path)


def test_a_bad_gateway_config_is_caught(tmp_path):
    proc = check_config('[gateway]\ndata_dri = "/var/lib/gateway"\n', tmp_path)
    assert proc.returncode == 1
    assert "data_dri" in proc.stderr
