"""``gateway run``: the daemon."""

from __future__ import annotations

import asyncio
import logging
import pathlib

from gateway import __version__, clock as wall_clock
from gateway.commands.common import add_store_options, load_config
from gateway.runtime import Context, Supervisor

log = logging.getLogger("gateway")


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the gateway daemon",
                       description="Run the gateway until SIGTERM or SIGINT.")
    add_store_options(p)
    p.set_defaults(func=run)


def component_factories(config) -> list:
    """The components of a running gateway, in the order they start (the store first, then
    the control socket through which CLI commands reach it, the task scheduler, the readers)."""
    from gateway.hardware.emulated import control as rig_control
    from gateway.readers import kind_module
    from gateway.store import Store
    from gateway.store.control import ControlServer
    from gateway.tasks.default import specs
    from gateway.tasks.scheduler import TaskScheduler, task_directory
    from gateway.web import component as web

    task_specs = specs(config)   # a task that does not compile stops the start here
    factories = [lambda ctx: Store(ctx.data_dir, ctx.config.store, wall_clock=ctx.clock,
                                   max_held=int(ctx.config.clock.max_held)),
                 lambda ctx: ControlServer(ctx.store),
                 lambda ctx: TaskScheduler(ctx.store, task_specs, task_directory(ctx.data_dir),
                                           ctx.config.scheduler)]
    rig_socket = rig_control.path_from_environment()
    if rig_socket:  # a HIL rig drives the emulated hardware from outside (hil/README.md)
        factories.append(lambda ctx: rig_control.RigControl(rig_socket, ctx.config.gateway.hardware,
                                                            ctx.clock))
    for kind, configs in config.readers.items():
        module = kind_module(kind)
        for reader_config in configs:
            factories.append(lambda ctx, m=module, c=reader_config: m.create(c, ctx))
    for stream_config in config.replication:
        factories.append(lambda ctx, c=stream_config: _replication_stream(c, ctx))
    factories.append(web.create)  # last: it shows every other component
    return factories


def _replication_stream(config, context):
    from gateway.replication.stream import ReplicationStream

    # Its flush interval and backoff wait on the gateway's clock: the system's, or a HIL rig's
    # emulated clock, which the rig may advance to play a long outage in seconds.
    source = context.clock.source
    return ReplicationStream(config, context.store, sleep=source.sleep, monotonic=source.monotonic)


async def serve(config) -> str | None:
    """Runs the gateway until it is told to stop; returns why it stopped on its own, or None."""
    data_dir = pathlib.Path(config.gateway.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    context = Context(config=config, data_dir=str(data_dir), clock=wall_clock.from_config(config))
    supervisor = Supervisor(context, component_factories(config))
    await supervisor.run()
    return supervisor.failure


def run(args) -> int:
    config = load_config(args)
    log.info("gateway %s starting (config: %s, data: %s)", __version__,
             args.config or "built-in defaults", config.gateway.data_dir)
    failure = asyncio.run(serve(config))
    if failure:
        # a non-zero status makes the service manager restart the gateway
        log.error("gateway stopped: %s", failure)
        return 1
    log.info("gateway stopped")
    return 0
