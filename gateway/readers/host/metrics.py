"""Reading the host's figures from procfs and sysfs. Each function returns points' fields or
raises OSError/ValueError; a source the board does not have returns None (skipped quietly)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

#: get_throttled bits (Raspberry Pi firmware): now (0..3) and since boot (16..19).
THROTTLE_BITS = {"under_voltage": 0, "freq_capped": 1, "throttled": 2, "soft_temp_limit": 3}
OCCURRED_SHIFT = 16
_THROTTLED_FILES = ("devices/platform/soc/soc:firmware/get_throttled",
                    "devices/platform/*/*firmware*/get_throttled",
                    "devices/platform/*firmware*/get_throttled",
                    "devices/platform/*/*/*firmware*/get_throttled")


def load_average(proc: pathlib.Path) -> dict:
    parts = (proc / "loadavg").read_text().split()
    if len(parts) < 3:
        raise ValueError(f"{proc / 'loadavg'}: expected three load averages, got {parts!r}")
    return {"load1": float(parts[0]), "load5": float(parts[1]), "load15": float(parts[2])}


def uptime_s(proc: pathlib.Path) -> float:
    return float((proc / "uptime").read_text().split()[0])


def memory(proc: pathlib.Path) -> dict:
    values = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    total = values.get("MemTotal")
    if not total:
        raise ValueError(f"{proc / 'meminfo'}: no MemTotal")
    available = values.get("MemAvailable", values.get("MemFree", 0))
    out = {"total_bytes": total, "available_bytes": available,
           "used_pct": 100.0 * (total - available) / total}
    if "SwapTotal" in values:
        out["swap_used_bytes"] = values["SwapTotal"] - values.get("SwapFree", 0)
    return out


def network(proc: pathlib.Path, wanted: list[str]) -> dict[str, dict]:
    out = {}
    for line in (proc / "net/dev").read_text().splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or (wanted and name not in wanted) or (not wanted and name == "lo"):
            continue
        c = rest.split()
        if len(c) < 16:
            raise ValueError(f"{proc / 'net/dev'}: short line for {name}")
        out[name] = {"rx_bytes": int(c[0]), "rx_packets": int(c[1]), "rx_errors": int(c[2]),
                     "tx_bytes": int(c[8]), "tx_packets": int(c[9]), "tx_errors": int(c[10])}
    return out


def thermal_zones(sys: pathlib.Path) -> dict[str, float] | None:
    """Temperature of each thermal zone by its type (cpu-thermal on a Pi), or None if none."""
    base = sys / "class/thermal"
    zones = sorted(base.glob("thermal_zone*")) if base.is_dir() else []
    out = {}
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip() or zone.name
            millideg = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue  # some zones (disabled sensors) cannot be read; the others still can
        name = kind if kind not in out else f"{kind}-{zone.name}"
        out[name] = millideg / 1000.0
    return out or None


def throttling(sys: pathlib.Path, vcgencmd: str | None = None) -> dict | None:
    """Raspberry Pi under-voltage and throttling flags, or None where the board has none."""
    flags = None
    for pattern in _THROTTLED_FILES:
        for path in sorted(sys.glob(pattern)):
            flags = int(path.read_text().strip(), 16)
            break
        if flags is not None:
            break
    if flags is None:
        tool = vcgencmd or shutil.which("vcgencmd")
        if tool is None:
            return None
        answer = subprocess.run([tool, "get_throttled"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        key, _, value = answer.partition("=")
        if key != "throttled":
            raise ValueError(f"vcgencmd get_throttled answered {answer!r}")
        flags = int(value, 16)
    out: dict = {"flags": flags}
    for name, bit in THROTTLE_BITS.items():
        out[name] = bool(flags >> bit & 1)
        out[f"{name}_occurred"] = bool(flags >> (bit + OCCURRED_SHIFT) & 1)
    return out


def filesystem(path: str) -> tuple[int, dict]:
    """(device id, fields) for the filesystem holding ``path``."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize  # what an unprivileged process may still use
    used = total - st.f_bfree * st.f_frsize
    return os.stat(path).st_dev, {
        "total_bytes": total, "free_bytes": free, "used_bytes": used,
        "used_pct": 100.0 * used / (used + free) if used + free else 0.0}


def own_rss_bytes(proc: pathlib.Path) -> int:
    for line in (proc / "self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"{proc / 'self/status'}: no VmRSS")
