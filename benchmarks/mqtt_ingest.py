"""MQTT ingest: messages/s and points/s the gateway stores durably, beside a bare paho subscriber.

For each case (QoS 0 and 1, line protocol and JSON payloads) a fresh mosquitto on loopback gets
a backlog of N messages queued for a persistent session, then the subscriber connects and
drains it. The bare subscriber is paho's ``loop_forever`` counting messages (auto-ack); the
gateway is the MQTT reader with the real Store (WAL sync as configured, default 1 s) in one
asyncio loop, timed from its first message to the moment the last message is stored *and*
acknowledged. Each figure is the median of ``--repeat`` runs.

The LAN path (``--paths lan``): paho publishers send to mosquitto and, in the same run, to the
gateway's own LAN endpoint (``gateway run`` in a child process, acking after the WAL sync and
passing every message on to a mosquitto). QoS 1: publishing rate until the last PUBACK; QoS 0:
until a subscriber on the broker has every message (through the gateway: passed on by it). Cases:
one publisher with a large in-flight window, and 50 publishers with paho's default of 20 (each
waits for a sync, so that figure shows the commit policy's latency). After each gateway run the
store is checked to hold every message.

    .venv/bin/python benchmarks/mqtt_ingest.py [--messages 100000] [--repeat 3] [--wal-sync 1s]
        [--paths reader,lan] [--lan-messages 50000] [--lan-window 40000] [--lan-cases one,many]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from gateway.config import load_text
from gateway.runtime import Context

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEVICES = 50
TOPIC_PREFIX = "bench"


def _broker_module():
    # The harness runs the HIL rigs' broker (hil/rigs/mosquitto.py): the repository root first.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    path = ROOT / "tests" / "readers" / "mqtt" / "mqtt_harness.py"
    spec = importlib.util.spec_from_file_location("mqtt_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def payloads(fmt: str, n: int, base_ns: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        device = f"d{i % DEVICES}"
        ts = base_ns + i * 1000
        t = 20 + (i % 100) / 10
        h = 40 + (i % 37) / 10
        if fmt == "line":
            body = f"env,device={device} temperature={t},humidity={h} {ts}"
        else:
            body = json.dumps({"ts": ts, "device": device, "temperature": t, "humidity": h})
        out.append((f"{TOPIC_PREFIX}/{fmt}/{device}", body.encode()))
    return out


def _session_client(client_id: str, port: int, protocol: str, on_message=None) -> paho.Client:
    if protocol == "5":
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=MQTTProtocolVersion.MQTTv5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = 40000
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
    else:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=MQTTProtocolVersion.MQTTv311, clean_session=False)
        c.connect("127.0.0.1", port)
    if on_message is not None:
        c.on_message = on_message
    return c


def create_session(client_id: str, port: int, protocol: str, topic: str, qos: int) -> None:
    """Makes the broker hold a session with one subscription, then leaves it offline."""
    c = _session_client(client_id, port, protocol)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.loop_start()
    c.subscribe(topic, qos)
    if not done.wait(10):
        raise RuntimeError("no SUBACK")
    c.disconnect()
    c.loop_stop()


def publish_backlog(port: int, messages: list[tuple[str, bytes]], qos: int) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    # In chunks: a QoS 1 message holds its packet id until acked, and there are 65535 ids.
    for start in range(0, len(messages), 20000):
        infos = [c.publish(topic, body, qos=qos) for topic, body in messages[start:start + 20000]]
        for info in infos:
            info.wait_for_publish(60)
    time.sleep(0.2 if qos == 0 else 0)
    c.disconnect()
    c.loop_stop()


def run_bare(port: int, client_id: str, protocol: str, n: int) -> tuple[float, float, float, float]:
    """Messages/s of paho's loop_forever draining the backlog, and its CPU µs per message."""
    state = {"count": 0, "first": None, "last": None, "cpu0": 0.0, "cpu1": 0.0}

    def on_message(client, userdata, message):
        if state["first"] is None:
            state["first"] = time.perf_counter()
            state["cpu0"] = time.process_time()
        state["count"] += 1
        if state["count"] == n:
            state["last"] = time.perf_counter()
            state["cpu1"] = time.process_time()
            client.disconnect()

    c = _session_client(client_id, port, protocol, on_message)
    c.loop_forever()
    if state["last"] is None:
        raise RuntimeError(f"bare subscriber got {state['count']} of {n}")
    rate = n / (state["last"] - state["first"])
    cpu_us = (state["cpu1"] - state["cpu0"]) / n * 1e6
    return rate, rate, rate, cpu_us


async def run_gateway(port: int, client_id: str, protocol: str, fmt: str, qos: int, n: int,
                      data_dir: str, wal_sync: str) -> tuple[float, float, float, float]:
    """(messages/s stored, points/s stored, messages/s received, CPU µs per message of the
    whole process, store threads included), all from the first message."""
    from gateway.readers.mqtt import create
    from gateway.store import Store

    json_options = ('[readers.mqtt.subscriptions.json]\ntime_key = "ts"\ntime_format = "unix_ns"\n'
                    'tag_keys = ["device"]\n')
    config = load_text(f'''
[store]
wal_sync = "{wal_sync}"
[[readers.mqtt]]
server = "mqtt://127.0.0.1:{port}"
client_id = "{client_id}"
protocol = "{protocol}"
[[readers.mqtt.subscriptions]]
topic = "{TOPIC_PREFIX}/{fmt}/+"
qos = {qos}
format = "{fmt}"
{'measurement = "env"' if fmt == "json" else ""}
{json_options if fmt == "json" else ""}
''')
    context = Context(config=config, data_dir=data_dir)
    store = Store(data_dir, config.store)
    context.components["store"] = store
    await store.start(context)
    reader = create(config.readers["mqtt"][0], context)
    first = last = None
    cpu0 = 0.0
    original = reader._message

    def timed(message, generation):
        nonlocal first, last, cpu0
        if first is None:
            first = time.perf_counter()
            cpu0 = time.process_time()
        original(message, generation)
        if reader.messages_received == n:
            last = time.perf_counter()

    reader.connection._on_message = timed
    await reader.start(context)
    try:
        while reader.messages_stored < n:
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - first
        cpu_us = (time.process_time() - cpu0) / n * 1e6
        points = reader.points_stored
    finally:
        await reader.stop()
        await store.stop()
    if reader.bad_messages:
        raise RuntimeError(f"{reader.bad_messages} bad messages: {reader.health()['dead_letters'][:2]}")
    if points != 2 * n:
        raise RuntimeError(f"stored {points} points of {2 * n} (too old: {reader.points_too_old})")
    return n / elapsed, points / elapsed, n / (last - first), cpu_us


def one_case(broker_mod, protocol: str, fmt: str, qos: int, n: int, wal_sync: str,
             tmp: pathlib.Path, run: int):
    # An hour ago (inside the raw bucket's retention), a fresh stretch of time per run.
    base_ns = (time.time_ns() // 10**9 - 3600) * 10**9 + run * 10**11
    messages = payloads(fmt, n, base_ns)
    extra = "queue_qos0_messages true\n"
    results = {}
    for who in ("bare", "gateway"):
        broker = broker_mod.Mosquitto(tmp / f"{protocol}-{fmt}-{qos}-{run}-{who}", extra=extra)
        broker.start()
        try:
            client_id = f"bench-{who}"
            create_session(client_id, broker.port, protocol, f"{TOPIC_PREFIX}/{fmt}/+", qos)
            publish_backlog(broker.port, messages, qos)
            if who == "bare":
                results[who] = run_bare(broker.port, client_id, protocol, n)
            else:
                data_dir = tmp / f"data-{protocol}-{fmt}-{qos}-{run}"
                results[who] = asyncio.run(run_gateway(broker.port, client_id, protocol, fmt, qos,
                                                       n, str(data_dir), wal_sync))
        finally:
            broker.stop()
    return results


def _lan_publish(port: int, publishers: int, window: int, n: int, qos: int, base_ns: int,
                 delivered: threading.Event | None) -> float:
    """Seconds from the first publish until every PUBACK (QoS 1) or, for QoS 0, until
    ``delivered`` is set by the subscriber."""
    share = n // publishers
    clients, done, windows = [], [], []
    for k in range(publishers):
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"lan-bench-{k}")
        # paho scans every message in flight at each PUBACK once its own window is in use, so
        # a window of thousands is kept here instead (paho's own limit off); small windows are
        # paho's.
        own = window > 20
        c.max_inflight_messages_set(0 if own else window)
        slots = threading.Semaphore(window if own else n)
        finished = threading.Event()
        count = [0]

        def on_publish(client, userdata, mid, rc, props, count=count, finished=finished, slots=slots):
            slots.release()
            count[0] += 1
            if count[0] == share:
                finished.set()

        c.on_publish = on_publish
        c.username_pw_set("bench", "bench")
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
        done.append(finished)
        windows.append(slots)
    start = time.perf_counter()

    def publish_share(k: int) -> None:
        c, slots = clients[k], windows[k]
        for i in range(share):
            slots.acquire()
            j = k * share + i
            c.publish(f"{TOPIC_PREFIX}/lan/d{j % DEVICES}",
                      f"lan,device=d{j % DEVICES} seq={j}i {base_ns + j}", qos=qos)

    threads = [threading.Thread(target=publish_share, args=(k,)) for k in range(publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waits = [delivered] if qos == 0 else done
    for event in waits:
        if not event.wait(600):
            raise RuntimeError("messages not acknowledged/delivered within 600 s")
    elapsed = time.perf_counter() - start
    for c in clients:
        c.disconnect()
        c.loop_stop()
    return elapsed


def _subscriber(port: int, n: int) -> tuple[paho.Client, threading.Event]:
    got, delivered, subscribed = [0], threading.Event(), threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="lan-bench-subscriber")

    def on_message(client, userdata, message):
        got[0] += 1
        if got[0] == n:
            delivered.set()

    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(f"{TOPIC_PREFIX}/lan/#", 0)
    if not subscribed.wait(10):
        raise RuntimeError("no SUBACK")
    return c, delivered


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lan_case(broker_mod, tmp: pathlib.Path, qos: int, publishers: int, window: int, n: int,
             wal_sync: str, run: int, forward: bool = True) -> dict[str, float]:
    """{"mosquitto": msg/s, "gateway": msg/s, "gateway_cpu_us": the gateway's CPU time per
    message while publishing} for one case."""
    n -= n % publishers
    base_ns = (time.time_ns() // 10**9 - 3600) * 10**9 + run * 10**11
    rates = {}
    for target in ("mosquitto", "gateway"):
        where = tmp / f"lan-{qos}-{publishers}-{run}-{target}"
        broker = broker_mod.Mosquitto(where / "mosquitto")
        broker.start()
        gateway = None
        try:
            port = broker.port
            if target == "gateway":
                port = broker_mod.free_port()
                config = where / "gateway.toml"
                config.write_text(f'''
[store]
wal_sync = "{wal_sync}"
[[readers.mqtt]]
server = "{broker.url}"
client_id = "lan-bench-gateway"
[readers.mqtt.listener]
listen = "127.0.0.1:{port}"
allow_anonymous = true
forward = {"true" if forward else "false"}
receive_maximum = 65535
max_messages_per_second = 1000000
[[readers.mqtt.subscriptions]]
topic = "{TOPIC_PREFIX}/lan/#"
format = "line"
''')
                log = open(where / "gateway.log", "wb")
                gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config",
                                            str(config), "--data-dir", str(where / "data")],
                                           stdout=log, stderr=subprocess.STDOUT)
                deadline = time.monotonic() + 30
                while b"devices publish to" not in (where / "gateway.log").read_bytes():
                    if gateway.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((where / "gateway.log").read_text())
                    time.sleep(0.05)
            if qos == 0 and not forward:
                raise ValueError("QoS 0 is timed at a subscriber: it needs forwarding")
            subscriber, delivered = _subscriber(broker.port, n) if qos == 0 else (None, None)
            try:
                cpu0 = _cpu_seconds(gateway.pid) if gateway is not None else 0.0
                rates[target] = n / _lan_publish(port, publishers, window, n, qos, base_ns, delivered)
                if gateway is not None:
                    rates["gateway_cpu_us"] = (_cpu_seconds(gateway.pid) - cpu0) / n * 1e6
            finally:
                if subscriber is not None:
                    subscriber.disconnect()
                    subscriber.loop_stop()
        finally:
            if gateway is not None:
                os.kill(gateway.pid, signal.SIGTERM)
                gateway.wait(30)
            broker.stop()
        if gateway is not None:
            stored = _stored_count(where / "data", where / "gateway.toml")
            if stored != n:
                raise RuntimeError(f"the gateway stored {stored} of {n} messages")
    return rates


def _stored_count(data_dir: pathlib.Path, config_path: pathlib.Path) -> int:
    from gateway.config import load_file
    from gateway.store import Store

    async def count():
        store = Store(str(data_dir), load_file(config_path).store)
        await store.open()
        try:
            return sum(len(c.timestamps) for c in await store.scan("raw", measurement="lan"))
        finally:
            await store.close()

    return asyncio.run(count())


def main_reader(args, broker_mod, tmp: pathlib.Path) -> None:
    protocols = ("3.1.1", "5") if args.protocol == "both" else (args.protocol,)
    print(f"MQTT ingest: {args.messages} queued messages drained per run, 2 points per message, "
          f"WAL sync {args.wal_sync}, median of {args.repeat} runs (machine shared with other work)")
    print("stored = first message received -> last message durable and acked; "
          "received = first -> last message decoded")
    print("CPU = process CPU time per message (all threads) while draining: bare paho vs gateway")
    header = (f"{'mqtt':>5} {'qos':>3} {'payload':>7} | {'bare msg/s':>10} | {'stored msg/s':>12} "
              f"{'points/s':>9} {'ratio':>5} | {'received msg/s':>14} {'ratio':>5} | "
              f"{'CPU us/msg bare':>15} {'gateway':>7}")
    print(header)
    print("-" * len(header))
    for protocol in protocols:
        for qos in (int(q) for q in args.qos.split(",")):
            for fmt in args.payloads.split(","):
                bare, stored, points, received, cpu_bare, cpu_gw = [], [], [], [], [], []
                for run in range(args.repeat):
                    r = one_case(broker_mod, protocol, fmt, qos, args.messages, args.wal_sync,
                                 tmp, run)
                    bare.append(r["bare"][0])
                    stored.append(r["gateway"][0])
                    points.append(r["gateway"][1])
                    received.append(r["gateway"][2])
                    cpu_bare.append(r["bare"][3])
                    cpu_gw.append(r["gateway"][3])
                b, g = statistics.median(bare), statistics.median(stored)
                p, rx = statistics.median(points), statistics.median(received)
                print(f"{protocol:>5} {qos:>3} {fmt:>7} | {b:>10,.0f} | {g:>12,.0f} {p:>9,.0f} "
                      f"{g / b:>5.2f} | {rx:>14,.0f} {rx / b:>5.2f} | "
                      f"{statistics.median(cpu_bare):>15.1f} {statistics.median(cpu_gw):>7.1f}",
                      flush=True)


def main_lan(args, broker_mod, tmp: pathlib.Path) -> None:
    print(f"\nLAN path: paho publishers -> mosquitto, and -> the gateway's endpoint (acks after the "
          f"WAL sync, {args.wal_sync}; messages passed on to mosquitto), {args.lan_messages} "
          f"messages per case, median of {args.repeat} runs (machine shared with other work)")
    print("QoS 1: first publish -> last PUBACK; QoS 0: first publish -> last message at a "
          "subscriber of mosquitto")
    print("ratio = the median of each run's gateway/mosquitto ratio; CPU = the gateway process's "
          "CPU time per message (all threads), first publish -> last PUBACK or delivery")
    header = (f"{'qos':>3} {'publishers':>10} {'window':>6} | {'mosquitto msg/s':>15} | "
              f"{'gateway msg/s':>13} {'ratio':>5} | {'CPU us/msg':>10}")
    print(header)
    print("-" * len(header))
    for qos in (int(q) for q in args.qos.split(",")):
        cases = {"one": (1, args.lan_window, args.lan_messages),
                 "many": (50, 20, args.lan_messages_many)}
        for publishers, window, n in (cases[c] for c in args.lan_cases.split(",")):
            runs = [lan_case(broker_mod, tmp, qos, publishers, window, n, args.wal_sync, run,
                             forward=not args.lan_no_forward)
                    for run in range(args.repeat)]
            m = statistics.median(r["mosquitto"] for r in runs)
            g = statistics.median(r["gateway"] for r in runs)
            ratio = statistics.median(r["gateway"] / r["mosquitto"] for r in runs)
            cpu = statistics.median(r["gateway_cpu_us"] for r in runs)
            print(f"{qos:>3} {publishers:>10} {window:>6} | {m:>15,.0f} | {g:>13,.0f} "
                  f"{ratio:>5.2f} | {cpu:>10.1f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wal-sync", default="1s")
    parser.add_argument("--protocol", choices=("3.1.1", "5", "both"), default="both")
    parser.add_argument("--payloads", default="line,json", help="comma-separated: line, json")
    parser.add_argument("--qos", default="0,1", help="comma-separated: 0, 1")
    parser.add_argument("--paths", default="reader,lan", help="comma-separated: reader, lan")
    parser.add_argument("--lan-messages", type=int, default=50_000, help="one publisher's case")
    parser.add_argument("--lan-messages-many", type=int, default=10_000, help="50 publishers' case")
    parser.add_argument("--lan-window", type=int, default=40_000,
                        help="in-flight window of the single publisher")
    parser.add_argument("--lan-cases", default="one,many",
                        help="comma-separated: one (one publisher, --lan-window), "
                             "many (50 publishers, window 20)")
    parser.add_argument("--lan-no-forward", action="store_true",
                        help="the gateway does not pass messages on (QoS 1 only): its ack path alone")
    args = parser.parse_args()
    broker_mod = _broker_module()
    paths = args.paths.split(",")
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmpdir:
        tmp = pathlib.Path(tmpdir)
        if "reader" in paths:
            main_reader(args, broker_mod, tmp)
        if "lan" in paths:
            main_lan(args, broker_mod, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
