"""The daemon: a thin asyncio shell around the pure node core.

Theory of operation
-------------------
Link readers, agent tasks, signal handlers and the API put *inputs* on one queue.  A single
driver task takes them one at a time, feeds them to the core with the monotonic time, and
carries out the effects the core returns: bytes to send, agents to run, configuration to
persist, log lines.  Nothing else touches the core.  When no input arrives before the core's
next deadline, the driver feeds it a ``Tick``; and since a flood of packets must never starve
the timers, a due deadline is served before the next queued input.

Slow work runs beside the driver: an agent operation is a task whose result comes back as
an ``AgentFinished`` input.  Operator requests from the API are queued like everything else
and answered when the driver has applied them.

The queue is bounded: when peers (or an attacker) send faster than the core can verify,
packets beyond the bound are dropped and counted, and memory stays flat.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import importlib
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, assert_never

from hacluster.config import LoadedConfig
from hacluster.config.cluster import (
    ResourceSource,
    hacf_fence_devices,
    load_cluster,
    load_resources,
    resource_dir,
)
from hacluster.core.cib import ClusterConfig
from hacluster.core.crm import RmSettings
from hacluster.core.effects import (
    AgentFinished,
    ConfigAdopted,
    Effect,
    Fence,
    FenceFinished,
    KeyMessage,
    NodeInput,
    NodeStateChanged,
    Notice,
    OperatorInput,
    PacketReceived,
    PingReplied,
    ProposeConfig,
    Reconfigured,
    RunAgent,
    Send,
    SendPings,
    Stopped,
    StopRequested,
    Tick,
)
from hacluster.core.fence_devices import FenceDeviceSpec
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.node import NodeCore
from hacluster.core.settings import LinkSpec
from hacluster.errors import ConfigError, HAClusterError
from hacluster.shell import cibstore, generation, logs, realtime, sdnotify
from hacluster.shell.alerts import AlertRunner, specs_of
from hacluster.shell.executor import AgentSpec, Executor, OpRequest
from hacluster.shell.fencer import FenceDevice, Fencer
from hacluster.shell.history import History
from hacluster.shell.ipc import ApiError, ApiServer
from hacluster.shell.keyrotation import KeyRotation
from hacluster.shell.links import Link, make_link
from hacluster.shell.links.ping import PingLink
from hacluster.shell.status import status_document
from hacluster.shell.supervisor import Supervisor, agent_failed, fence_failed
from hacluster.shell.view import CoreView
from hacluster.shell.watchdog import Watchdog

if TYPE_CHECKING:
    from hacluster.shell.metrics import MetricsServer

logger = logging.getLogger(__name__)

QUEUE_MAX = 4096
DRAIN_BEFORE_TICK_MAX = 256
"""Inputs waiting for the driver; beyond this, packets are dropped and counted."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class _Reload:
    """SIGHUP: re-read the configuration."""


@dataclass(slots=True)
class _Operator:
    """An API request that changes the core; applied by the driver, answered via ``done``."""

    apply: Callable[[int], dict[str, Any]]
    done: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


QueueItem = NodeInput | _Reload | _Operator


class _InProcessAgent:
    """Calls one of our agent classes in the daemon's worker thread."""

    def __init__(self, agent_cls: Any) -> None:
        self._agent_cls = agent_cls

    def __call__(self, action: str, env: Mapping[str, str]) -> tuple[int, str | None, str]:
        result = self._agent_cls().run(action, env)
        return int(result.rc), result.exit_reason, result.output


def in_process_agents() -> dict[
    tuple[str, str], Callable[[str, Mapping[str, str]], tuple[int, str | None, str]]
]:
    """Our own agents run inside the daemon: no interpreter start on the failover path.

    See ``warm_agent_imports`` for the heavy imports they need.
    """
    from hacluster.agents import AGENTS

    return {("hacluster", name): _InProcessAgent(agent_cls) for name, agent_cls in AGENTS.items()}


def fence_device(spec: FenceDeviceSpec) -> FenceDevice:
    """The shell's view of a device: cluster-glue plugins get their ``stonith:`` prefix."""
    agent = spec.agent
    if not agent.startswith(("fence_", "stonith:")) and "/" not in agent:
        agent = f"stonith:{agent}"
    return FenceDevice(
        id=spec.id,
        agent=agent,
        params=spec.params,
        host_list=spec.host_list,
        host_map=spec.host_map,
        delay_base_ms=spec.delay_base_ms,
        delay_max_ms=spec.delay_max_ms,
        timeout_ms=spec.timeout_ms,
        retries=spec.retries,
    )


AGENT_IMPORTS: Final = {"IPaddr2": ("pyroute2",), "Filesystem": ("psutil",), "pgsql": ("psutil",)}


def warm_agent_imports(config: ClusterConfig) -> list[str]:
    """Import what our configured agents need before any link opens.

    The agents import pyroute2 and psutil lazily (meta-data must work without them).  Done by
    the first agent call in a worker thread, the import holds the GIL for about 200 ms, which
    froze the driver long enough for peers with deadtime 100 ms to declare a freshly started
    node dead.  Only what the configuration uses is imported: pyroute2 alone adds megabytes.
    """
    wanted = sorted(
        {
            module
            for p in config.primitives
            if p.agent_class == "ocf" and p.provider == "hacluster"
            for module in AGENT_IMPORTS.get(p.type, ())
        }
    )
    for module in wanted:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    return wanted


class Daemon:
    def __init__(self, config: LoadedConfig, node: str, resources: ResourceSource | None = None) -> None:
        self.config = config
        self.node = NodeName(node)
        self.resources = resources if resources is not None else load_resources(config)
        self._queue: collections.deque[QueueItem] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._links: dict[LinkName, Link] = {}
        self._ping: PingLink | None = None
        self._queue_overflows = 0
        self._spins = 0
        self._started_ms = now_ms()
        self._warnings: list[str] = list(config.warnings) + list(self.resources.warnings)
        self._supervisor: Supervisor[QueueItem] = Supervisor(self._enqueue_result)
        self.generation = 0
        self.core: NodeCore | None = None
        self._api: ApiServer | None = None
        self.executor = Executor(
            node_name=node,
            ocf_roots=(Path("/usr/lib/ocf"),),
            resource_d=(resource_dir(config),),
            rsc_tmp=Path(config.state_dir) / "rsctmp",
            in_process=in_process_agents(),
        )
        self.fencer = Fencer()
        self.history = History(Path(config.state_dir), node)
        """Every decision (INFO and above) for ``hacrm history``, alert hooks and metrics."""
        self.alerts = AlertRunner(specs_of(config))
        self.history.subscribe(self.alerts.submit)
        self._metrics: MetricsServer | None = None
        self.key_rotation = KeyRotation(self)
        """``hacrm cluster rotate-key``, and this node's part when another node runs it."""
        self.watchdog: Watchdog | None = None
        """ha.cf ``watchdog``: petted from the driver loop (``shell/watchdog.py``)."""
        self._clean_stop = False

    async def run(self) -> int:
        """Run until a graceful stop completes; returns the exit status."""
        config = self.config
        state_dir = Path(config.state_dir)
        self.generation = generation.next_generation(state_dir, config.hbgenmethod)
        if config.realtime:
            self._warnings += realtime.enable(config.rtprio)
        settings = config.membership_settings(
            self.generation, wall_offset_ms=int(time.time() * 1000) - now_ms()
        )
        # Keys this process's encrypted packets: a fresh one per start (codec.py says why).
        settings = dataclasses.replace(settings, session_id=os.urandom(16))
        cluster_config = cibstore.initial_config(state_dir, self.resources)
        warm_agent_imports(cluster_config)
        if config.watchdog:
            # Armed before anything else: from here on a hung daemon resets the machine.
            self.watchdog = Watchdog(
                config.watchdog, config.watchdog_timeout_ms or 60_000, config.keepalive_ms
            )
            self.watchdog.open(now_ms())
        rm_settings = RmSettings(
            node=self.node,
            nodes=tuple(NodeName(n) for n in config.nodes),
            refresh_ms=max(200, min(2000, 10 * config.keepalive_ms)),
            extra_devices=hacf_fence_devices(config),
            fencing_delay_ms=config.keepalive_ms + 100,
            watchdog_ms=self.watchdog.timeout_ms if self.watchdog is not None else 0,
        )
        self.core = NodeCore(settings, rm_settings, cluster_config, random.Random(), now_ms())
        for warning in self._warnings:
            logger.warning("config %s", warning)
        for warning in self.view().warnings():
            logger.warning("%s", warning)
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
            from hacluster.shell.access import api_access
            from hacluster.shell.api import api_handlers

            self._api = ApiServer(Path(config.api_socket), api_handlers(self), api_access(self))
            await self._api.start()
            self.history.open()
            self.alerts.start()
            if config.metrics_listen:
                from hacluster.shell.metrics import start_metrics  # prometheus_client only when asked

                self._metrics = await start_metrics(self, config.metrics_listen)
            self._execute(self.core.start(now_ms()))
            sdnotify.notify("READY=1")
            await self._drive()
            self._clean_stop = self.view().left_clean()
        finally:
            sdnotify.notify("STOPPING=1")
            await self._close()
        return 0

    # --- the driver ---------------------------------------------------------------------

    async def _drive(self) -> None:
        core = self.core
        assert core is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        # The core changes only here (every input, operator requests included, comes through
        # the queue), so its next deadline is asked once after each batch of inputs or tick,
        # not at every turn of the loop: the resource manager's answer walks every resource.
        deadline_ms = core.next_deadline_ms()
        while not core.stopped:
            if self.watchdog is not None:
                # Here, between inputs: a pet proves that this loop turns (module docstring).
                self.watchdog.pet_if_due(now_ms(), partial(self.view().pet_verdict, now_ms()))
            wait_ms = deadline_ms - now_ms()
            if wait_ms <= 0:
                # Inputs already queued (packets the kernel held while we were paused or
                # busy) go first, so a late timer never declares a peer dead whose packets
                # are sitting in our own queue; bounded, so a flood cannot starve timers.
                for _ in range(min(len(queue), DRAIN_BEFORE_TICK_MAX)):
                    self._dispatch(queue.popleft())
                tick_ms = now_ms()
                self._execute(core.handle(Tick(), tick_ms))
                deadline_ms = core.next_deadline_ms()
                if deadline_ms <= tick_ms:
                    # A tick that leaves a deadline at or before its own time is a core bug;
                    # never let it become a busy loop that stops the links and the API being
                    # read.  (A deadline that fell due while the tick ran is just the next one.)
                    self._spins += 1
                    if self._spins in (1, 100) or self._spins % 10_000 == 0:
                        logger.error("core deadline stays in the past after a tick spins=%d", self._spins)
                    await asyncio.sleep(0.001)
                continue
            if not queue:
                # Sleep until an input arrives or the deadline passes.  A plain future and
                # one timer handle: cheaper than asyncio.timeout, which cancels the task
                # each time it expires, i.e. at every keepalive.
                pet_ms = self.watchdog.next_pet_ms() if self.watchdog is not None else None
                if pet_ms is not None:
                    wait_ms = max(0, min(wait_ms, pet_ms - now_ms()))
                waiter = self._waiter = loop.create_future()
                timer = loop.call_later(wait_ms / 1000, _wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    self._waiter = None
                continue
            # Every input that is ready (all the datagrams one wakeup of the links read, an
            # agent's result) in one batch; a deadline that falls due meanwhile is served
            # right after it, as before the batch, since the batch is bounded.  Nothing is
            # fed to a core that has stopped.
            for _ in range(min(len(queue), DRAIN_BEFORE_TICK_MAX)):
                self._dispatch(queue.popleft())
                if core.stopped:
                    break
            deadline_ms = core.next_deadline_ms()

    def _dispatch(self, item: QueueItem) -> None:
        assert self.core is not None
        match item:
            case _Reload():
                self._reload()
            case _Operator():
                self._apply_operator(item)
            case _:
                self._execute(self.core.handle(item, now_ms()))

    def _apply_operator(self, item: _Operator) -> None:
        try:
            result = item.apply(now_ms())
        except HAClusterError as exc:
            if not item.done.done():
                item.done.set_exception(exc)
            return
        if not item.done.done():
            item.done.set_result(result)

    async def operate(self, apply: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """Run ``apply(now_ms)`` in the driver (the only place the core changes); await its answer.

        ``apply`` reads the core through ``view()`` and changes it only through ``submit``.
        """
        item = _Operator(apply)
        if len(self._queue) >= QUEUE_MAX:
            raise ApiError("BUSY", "the daemon's input queue is full; try again")
        self._enqueue(item, must=True)
        return await item.done

    def submit(self, inp: OperatorInput, at_ms: int) -> None:
        """Feed an operator's input to the core and carry out its effects (driver only)."""
        assert self.core is not None
        self._execute(self.core.handle(inp, at_ms))

    def view(self) -> CoreView:
        """The core, read-only (``shell/view.py``)."""
        assert self.core is not None, "the core is built when the daemon starts"
        return CoreView(self.core, self.node)

    def _execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Send():
                    for link in self._links.values():
                        if effect.link is None or effect.link == link.name:
                            link.send(effect.data, effect.classic)
                case RunAgent():
                    self.spawn(self._run_agent(effect), failed=partial(agent_failed, effect))
                case Notice():
                    fields = " ".join(f"{k}={v}" for k, v in effect.fields)
                    logger.log(
                        int(effect.level),
                        "%s [%s%s]",
                        effect.text,
                        effect.code,
                        f" {fields}" if fields else "",
                    )
                    self.history.record(effect)
                case Fence():
                    self.spawn(self._run_fence(effect), failed=partial(fence_failed, effect))
                case ConfigAdopted():
                    warm_agent_imports(effect.config)
                    cibstore.save(Path(self.config.state_dir), effect.config, self.resources.digest)
                case SendPings():
                    if self._ping is not None:
                        self._ping.send_pings()
                case NodeStateChanged():
                    self.history.record(effect)  # logged by the core's Notice; structured here for hooks
                case KeyMessage():
                    self.key_rotation.on_message(effect)
                case Stopped():
                    pass
                case _:
                    assert_never(effect)

    def spawn(
        self,
        work: Coroutine[Any, Any, None],
        *,
        failed: Callable[[BaseException, int], QueueItem] | None = None,
    ) -> asyncio.Task[None]:
        """Run ``work`` beside the driver, supervised (``hacluster.shell.supervisor``): if it
        raises, the error is logged and ``failed(exc, ran_ms)`` is queued as its result.  It is
        cancelled when the daemon closes."""
        return self._supervisor.spawn(work, failed=failed)

    def _enqueue_result(self, item: QueueItem) -> None:
        self._enqueue(item, must=True)

    async def _run_agent(self, request: RunAgent) -> None:
        primitive = request.primitive
        spec = AgentSpec(
            agent_class=primitive.agent_class,
            provider=primitive.provider,
            type=primitive.type,
            params=primitive.params,
            args=primitive.args,
        )
        op = OpRequest(
            resource=request.resource,
            spec=spec,
            action=request.action,
            timeout_ms=request.timeout_ms,
            interval_ms=request.interval_ms,
            depth=request.depth,
        )
        result = await self.executor.run(op)
        finished = AgentFinished(
            call_id=request.call_id,
            resource=request.resource,
            action=request.action,
            interval_ms=request.interval_ms,
            rc=result.rc,
            exit_reason=result.exit_reason,
            timed_out=result.timed_out,
            duration_ms=result.duration_ms,
        )
        self._enqueue(finished, must=True)

    async def _run_fence(self, request: Fence) -> None:
        device = fence_device(request.device)
        if not await self.fencer.can_fence(device, request.target):
            finished = FenceFinished(
                request.request_id,
                request.target,
                device.id,
                ok=False,
                duration_ms=0,
                detail=f"device {device.id} does not list {request.target} (set pcmk_host_list or pcmk_host_map)",
            )
        else:
            result = await self.fencer.fence(device, request.target, request.action)
            detail = ("timed out; " if result.timed_out else "") + result.output.strip()[-300:]
            finished = FenceFinished(
                request.request_id, request.target, device.id, result.ok, result.duration_ms, detail
            )
        self._enqueue(finished, must=True)

    def _enqueue(self, item: QueueItem, must: bool = False) -> None:
        """Queue an input for the driver.  Beyond ``QUEUE_MAX`` packets are dropped and
        counted; results and operator requests (``must``) are never dropped."""
        if len(self._queue) >= QUEUE_MAX and not must:
            self._queue_overflows += 1
            if self._queue_overflows in (1, 10, 100) or self._queue_overflows % 1000 == 0:
                logger.warning("input queue full, packet dropped overflows=%d", self._queue_overflows)
            return
        self._queue.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
        core = self.core
        assert core is not None
        try:
            config, resources = load_cluster(self.config.path, self.node)
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
        self.alerts.reconfigure(specs_of(config))
        if config.metrics_listen != (self._metrics.listen if self._metrics else None):
            logger.warning("metrics_listen changed: the new value takes effect when the daemon restarts")
        nodes = tuple(NodeName(n) for n in config.nodes)
        self._execute(core.handle(Reconfigured(settings, nodes, hacf_fence_devices(config)), now_ms()))
        if resources.digest != self.resources.digest:
            current = self.view().config
            new: ClusterConfig = replace(resources.config, epoch=current.epoch + 1)
            self.resources = resources
            logger.info("resource file changed: proposing configuration epoch=%d", new.epoch)
            self._execute(core.handle(ProposeConfig(new), now_ms()))
        self.spawn(self._relink(settings.links))

    async def _relink(self, specs: tuple[LinkSpec, ...]) -> None:
        wanted = {spec.name: spec for spec in specs}
        for name in list(self._links):
            if name not in wanted or self._links[name].spec != wanted[name]:
                await self._links.pop(name).close()
                logger.info("link closed name=%s reason=reconfigured", name)
        try:
            await self._open_links(tuple(spec for name, spec in wanted.items() if name not in self._links))
        except (OSError, HAClusterError) as exc:
            logger.error("link open failed after reload error=%s", exc)

    async def _close(self) -> None:
        if self.watchdog is not None:
            # Disarmed only after a stop that left nothing running; otherwise it stays armed.
            self.watchdog.close(disarm=self._clean_stop)
        await self.alerts.close()
        if self._metrics is not None:
            await self._metrics.close()
        self.history.close()
        await self._supervisor.aclose()
        for link in self._links.values():
            with contextlib.suppress(Exception):
                await link.close()
        self._links.clear()
        if self._ping is not None:
            await self._ping.close()
        if self._api is not None:
            await self._api.close()

    # --- read-only views for the API ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return status_document(self, now_ms())

    def link_counters(self) -> list[dict[str, Any]]:
        return [{"name": name, **asdict(link.statistics())} for name, link in self._links.items()]

    @property
    def warnings(self) -> list[str]:
        out = list(self._warnings)
        if self.core is not None:
            out += self.view().warnings()
        return out

    @property
    def queue_overflows(self) -> int:
        return self._queue_overflows

    @property
    def uptime_ms(self) -> int:
        return now_ms() - self._started_ms
