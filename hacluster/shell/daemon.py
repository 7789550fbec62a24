"""The daemon: a thin asyncio shell around the pure membership core.

Theory of operation
-------------------
Link readers, signal handlers and the API put *inputs* on one queue.  A single driver task
takes them one at a time, feeds them to the core with the monotonic time, and carries out
the effects the core returns: bytes to send, log lines, state changes.  Nothing else
touches the core.  When no input arrives before the core's next deadline, the driver feeds
it a ``Tick``; and since a flood of packets must never starve the timers, a due deadline is
served before the next queued input.

The queue is bounded: when peers (or an attacker) send faster than the core can verify,
packets beyond the bound are dropped and counted, and memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hacluster.config import LoadedConfig, load_config
from hacluster.core.effects import (
    Input,
    NodeStateChanged,
    Notice,
    PacketReceived,
    PingReplied,
    Send,
    SendPings,
    Stopped,
    StopRequested,
    Tick,
)
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.membership import Membership
from hacluster.core.settings import LinkSpec
from hacluster.errors import ConfigError
from hacluster.shell import generation, logs, realtime, sdnotify
from hacluster.shell.ipc import ApiServer
from hacluster.shell.links import Link, make_link
from hacluster.shell.links.ping import PingLink

logger = logging.getLogger(__name__)

QUEUE_MAX = 4096
"""Inputs waiting for the driver; beyond this, packets are dropped and counted."""


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class _Reload:
    """SIGHUP: re-read the configuration."""


class Daemon:
    def __init__(self, config: LoadedConfig, node: str) -> None:
        self.config = config
        self.node = NodeName(node)
        self._queue: asyncio.Queue[Input | _Reload] = asyncio.Queue(QUEUE_MAX)
        self._links: dict[LinkName, Link] = {}
        self._ping: PingLink | None = None
        self._queue_overflows = 0
        self._started_ms = now_ms()
        self._warnings: list[str] = list(config.warnings)
        self.generation = 0
        self.core: Membership | None = None
        self._api: ApiServer | None = None

    async def run(self) -> int:
        """Run until a graceful stop completes; returns the exit status."""
        config = self.config
        self.generation = generation.next_generation(Path(config.state_dir), config.hbgenmethod)
        if config.realtime:
            self._warnings += realtime.enable(config.rtprio)
        settings = config.membership_settings(
            self.generation, wall_offset_ms=int(time.time() * 1000) - now_ms()
        )
        self.core = Membership(settings, random.Random(), now_ms())
        for warning in config.warnings:
            logger.warning("config %s", warning)
        loop = asyncio.get_running_loop()
        for sig, item in (
            (signal.SIGTERM, StopRequested()),
            (signal.SIGINT, StopRequested()),
            (signal.SIGHUP, _Reload()),
        ):
            loop.add_signal_handler(sig, self._enqueue, item)
        try:
            await self._open_links(settings.links)
            if settings.ping_nodes:
                self._ping = PingLink(settings.ping_nodes, self._on_ping_reply)
                await self._ping.open()
            self._api = ApiServer(
                Path(config.api_socket), {"status": self._api_status, "ping": lambda _r: {"pong": True}}
            )
            await self._api.start()
            self._execute(self.core.start(now_ms()))
            sdnotify.notify("READY=1")
            await self._drive()
        finally:
            sdnotify.notify("STOPPING=1")
            await self._close()
        return 0

    # --- the driver ---------------------------------------------------------------------

    async def _drive(self) -> None:
        core = self.core
        assert core is not None
        queue = self._queue
        while not core.stopped:
            wait_ms = core.next_deadline_ms() - now_ms()
            if wait_ms <= 0:
                self._execute(core.handle(Tick(), now_ms()))
                continue
            if queue.empty():
                try:
                    async with asyncio.timeout(wait_ms / 1000):
                        item = await queue.get()
                except TimeoutError:
                    continue
            else:
                item = queue.get_nowait()
            if isinstance(item, _Reload):
                self._reload()
                continue
            self._execute(core.handle(item, now_ms()))

    def _execute(self, effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                for link in self._links.values():
                    if effect.link is None or effect.link == link.name:
                        link.send(effect.data, effect.classic)
            elif isinstance(effect, Notice):
                fields = " ".join(f"{k}={v}" for k, v in effect.fields)
                logger.log(
                    int(effect.level), "%s [%s%s]", effect.text, effect.code, f" {fields}" if fields else ""
                )
            elif isinstance(effect, SendPings):
                if self._ping is not None:
                    self._ping.send_pings()
            elif isinstance(effect, NodeStateChanged | Stopped):
                pass  # membership listeners (resource manager) subscribe here later
            else:  # pragma: no cover - the Effect union is closed
                raise AssertionError(f"unknown effect {effect!r}")

    def _enqueue(self, item: Input | _Reload) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._queue_overflows += 1
            if self._queue_overflows in (1, 10, 100) or self._queue_overflows % 1000 == 0:
                logger.warning("input queue full, packet dropped overflows=%d", self._queue_overflows)

    def _deliver(self, link: LinkName, data: bytes) -> None:
        self._enqueue(PacketReceived(link, data))

    def _on_ping_reply(self, node: NodeName, address: str) -> None:
        self._enqueue(PingReplied(node, address))

    # --- links and reload ---------------------------------------------------------------

    async def _open_links(self, specs: tuple[LinkSpec, ...]) -> None:
        for spec in specs:
            link = make_link(spec)
            await link.open(self._deliver)
            self._links[spec.name] = link
            logger.info("link open name=%s kind=%s device=%s", spec.name, spec.kind.value, spec.device)

    def _reload(self) -> None:
        assert self.core is not None
        try:
            config = load_config(self.config.path, self.node)
        except ConfigError as exc:
            for problem in exc.problems:
                logger.error("config reload refused, keeping the running configuration: %s", problem)
            return
        settings = config.membership_settings(
            self.generation, wall_offset_ms=int(time.time() * 1000) - now_ms()
        )
        self.config = config
        logs.configure(
            node=self.node,
            debug=config.debug,
            logfile=config.logfile,
            debugfile=config.debugfile,
            logfacility=config.logfacility,
        )
        self._execute(self.core.reconfigure(settings, now_ms()))
        asyncio.get_running_loop().create_task(self._relink(settings.links))

    async def _relink(self, specs: tuple[LinkSpec, ...]) -> None:
        wanted = {spec.name: spec for spec in specs}
        for name in list(self._links):
            if name not in wanted or self._links[name].spec != wanted[name]:
                await self._links.pop(name).close()
                logger.info("link closed name=%s reason=reconfigured", name)
        try:
            await self._open_links(tuple(spec for name, spec in wanted.items() if name not in self._links))
        except OSError as exc:
            logger.error("link open failed after reload error=%s", exc)

    async def _close(self) -> None:
        for link in self._links.values():
            with contextlib.suppress(Exception):
                await link.close()
        self._links.clear()
        if self._ping is not None:
            await self._ping.close()
        if self._api is not None:
            await self._api.close()

    # --- the API --------------------------------------------------------------------------

    def _api_status(self, _request: dict[str, Any]) -> dict[str, Any]:
        assert self.core is not None
        return status_document(self, now_ms())

    def link_counters(self) -> list[dict[str, Any]]:
        return [{"name": name, **asdict(link.statistics())} for name, link in self._links.items()]

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @property
    def queue_overflows(self) -> int:
        return self._queue_overflows

    @property
    def uptime_ms(self) -> int:
        return now_ms() - self._started_ms


def status_document(daemon: Daemon, at_ms: int) -> dict[str, Any]:
    """The JSON document ``hacrm status --json`` prints; its shape is in docs/status-json.md."""
    assert daemon.core is not None
    stats = daemon.core.statistics(at_ms)
    nodes = []
    for node in stats.nodes:
        links = [
            {
                "name": link.name,
                "state": link.state,
                "last_heard_ms_ago": link.last_heard_ms_ago,
                "gap_ms": {
                    "p50": link.gap_p50_ms,
                    "p99": link.gap_p99_ms,
                    "max": link.gap_max_ms,
                    "samples": link.gap_samples,
                },
            }
            for link in node.links
        ]
        nodes.append(
            {
                "name": node.name,
                "state": node.state,
                "type": node.type,
                "local": node.name == stats.node,
                "generation": node.generation,
                "dead_interval_ms": node.dead_interval_ms,
                "last_heard_ms_ago": node.last_heard_ms_ago,
                "recommended_deadtime_ms": node.recommended_deadtime_ms,
                "links": links,
            }
        )
    return {
        "cluster": {
            "node": stats.node,
            "state": stats.state,
            "generation": stats.generation,
            "comm_up": stats.comm_up,
            "keepalive_ms": stats.keepalive_ms,
            "deadtime_ms": stats.deadtime_ms,
            "pid": os.getpid(),
            "uptime_ms": daemon.uptime_ms,
            "config": str(daemon.config.path),
        },
        "nodes": nodes,
        "links": daemon.link_counters(),
        "packets": {
            "received": stats.received,
            "sent": stats.sent,
            "dropped": dict(stats.dropped),
            "queue_overflows": daemon.queue_overflows,
            "retransmit_requests_sent": stats.retransmit_requests_sent,
            "retransmissions_sent": stats.retransmissions_sent,
        },
        "warnings": daemon.warnings,
    }
