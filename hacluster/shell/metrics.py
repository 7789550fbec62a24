"""The Prometheus endpoint (``metrics_listen ADDRESS:PORT`` in ha.cf; absent: off).

Theory of operation
-------------------
Nothing is updated on the hot path.  A scrape runs in the event loop (the same thread as the
driver, so it reads consistent state without locks) and a custom collector reads the
daemon's current state there: node, link and resource states, fail counts, packet and queue
counters.  Only what cannot be read back later is counted as it happens, from history
events (failovers) or from the core's bounded records, read as deltas at event or scrape
time (fencing history, heartbeat gaps: ``Membership.gap_samples()`` gives a running count and
the newest gaps, and each scrape observes the ones added since the previous scrape).

The HTTP side is a deliberately small asyncio server: ``GET /metrics`` answers with the
Prometheus text format made by ``prometheus_client``; anything else is a 404.  It is not a
thread (as ``prometheus_client.start_http_server`` would be), because the daemon's state
must only be read from the loop.  docs/metrics.md lists every metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from hacluster.core.lrm import LocalState
from hacluster.shell.history import Event

if TYPE_CHECKING:
    from hacluster.core.fencing import FenceEvent
    from hacluster.shell.daemon import Daemon
    from hacluster.shell.view import CoreView

logger = logging.getLogger(__name__)

NODE_STATES = ("init", "up", "active", "dead")
PING_STATES = ("ping", "dead")
RESOURCE_STATES = tuple(state.value for state in LocalState)
GAP_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
FENCE_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
REQUEST_BYTES_MAX = 8192
REQUEST_TIMEOUT_S = 5.0


class Histogram:
    """Bucket counts for one label set, rendered as a Prometheus histogram."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class MetricsState:
    """What must be counted as it happens, and the custom collector reading the rest."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.failovers: dict[tuple[str, str, str], int] = {}
        self._holder: dict[str, str] = {}
        """Resource → the last node this node saw running it."""
        self.events: dict[tuple[str, str], int] = {}
        """(level, code) → history events."""
        self.fencing: dict[tuple[str, str, str], int] = {}
        self.fencing_seconds: dict[str, Histogram] = {}
        self._fence_seen: FenceEvent | None = None
        self.gaps: dict[tuple[str, str], Histogram] = {}
        self._gaps_seen: dict[tuple[str, str], int] = {}

    # --- counted as it happens -----------------------------------------------------------

    def observe(self, event: Event) -> None:
        """History listener: runs in the driver, so it only counts."""
        key = (str(event.get("level")), str(event.get("code")))
        self.events[key] = self.events.get(key, 0) + 1
        code = str(event.get("code", ""))
        fields = event.get("fields") or {}
        if code == "RESOURCE_START" and fields.get("state") == LocalState.STARTED.value:
            rsc, here = str(fields.get("resource")), self.daemon.node
            previous = self._holder.get(rsc)
            if previous is not None and previous != here:
                key3 = (rsc, previous, here)
                self.failovers[key3] = self.failovers.get(key3, 0) + 1
            self._holder[rsc] = here
        if "FENC" in code:
            self._sync_fencing()
        self._refresh_holders()

    def _refresh_holders(self) -> None:
        """Remember where each resource runs while exactly one node runs it."""
        if self.daemon.core is None:
            return
        for rsc, per_node in self.daemon.view().reports().items():
            started = [node for node, report in per_node.items() if report.state is LocalState.STARTED]
            if len(started) == 1:
                self._holder[rsc] = str(started[0])

    def _sync_fencing(self) -> None:
        """Count the fencing history entries added since the last look (the core keeps 100)."""
        if self.daemon.core is None:
            return
        history = self.daemon.view().fencing_history()
        start = 0
        if self._fence_seen is not None:
            start = next(
                (i + 1 for i in range(len(history) - 1, -1, -1) if history[i] is self._fence_seen), 0
            )
        for event in history[start:]:
            key = (event.target, event.by, event.result)
            self.fencing[key] = self.fencing.get(key, 0) + 1
            self.fencing_seconds.setdefault(event.result, Histogram(FENCE_BUCKETS_S)).observe(event.ms / 1000)
        if history:
            self._fence_seen = history[-1]

    def _sync_gaps(self) -> None:
        if self.daemon.core is None:
            return
        for sample in self.daemon.view().gap_samples():
            key = (sample.node, sample.link)
            seen = self._gaps_seen.get(key, 0)
            new = sample.observed - seen if sample.observed >= seen else sample.observed
            histogram = self.gaps.setdefault(key, Histogram(GAP_BUCKETS_S))
            for gap_ms in sample.recent_ms[len(sample.recent_ms) - min(new, len(sample.recent_ms)) :]:
                histogram.observe(gap_ms / 1000)
            self._gaps_seen[key] = sample.observed

    # --- the collector ------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        daemon = self.daemon
        if daemon.core is None:
            return
        view = daemon.view()
        self._sync_fencing()
        self._sync_gaps()
        self._refresh_holders()
        yield from self._membership(view)
        yield from self._resources(view)
        yield from self._counted()
        yield from self._alerts()

    def _membership(self, view: CoreView) -> Iterable[Metric]:
        from hacluster.shell.daemon import now_ms

        daemon = self.daemon
        stats = view.statistics(now_ms())
        info = GaugeMetricFamily(
            "hacluster_info", "This daemon: node name and cluster", labels=["node", "cluster"]
        )
        info.add_metric([daemon.node, daemon.config.cluster], 1)
        yield info
        yield GaugeMetricFamily(
            "hacluster_uptime_seconds", "Seconds since the daemon started", daemon.uptime_ms / 1000
        )
        yield GaugeMetricFamily("hacluster_generation", "This node's heartbeat generation", stats.generation)
        node_state = GaugeMetricFamily(
            "hacluster_node_state",
            "1 for the state each node is in as seen from here, else 0",
            labels=["node", "state"],
        )
        link_up = GaugeMetricFamily(
            "hacluster_link_up",
            "1 when the link to the peer carries its heartbeats, else 0",
            labels=["node", "link"],
        )
        heard = GaugeMetricFamily(
            "hacluster_node_last_heard_seconds", "Seconds since the peer was last heard", labels=["node"]
        )
        for node in stats.nodes:
            states = PING_STATES if node.type == "ping" else NODE_STATES
            for state in states:
                node_state.add_metric([node.name, state], 1 if node.state == state else 0)
            for link in node.links:
                link_up.add_metric([node.name, link.name], 1 if link.state == "up" else 0)
            if node.last_heard_ms_ago is not None:
                heard.add_metric([node.name], node.last_heard_ms_ago / 1000)
        yield node_state
        yield link_up
        yield heard
        gaps = HistogramMetricFamily(
            "hacluster_heartbeat_gap_seconds",
            "Time between consecutive heartbeats of a peer on a link",
            labels=["node", "link"],
        )
        for (node_name, link_name), histogram in sorted(self.gaps.items()):
            gaps.add_metric([node_name, link_name], histogram.buckets(), histogram.sum)
        yield gaps
        dropped = CounterMetricFamily(
            "hacluster_packets_dropped", "Packets dropped, by reason", labels=["reason"]
        )
        for reason, count in stats.dropped:
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "hacluster_packets_received", "Packets received on every link", stats.received
        )
        yield CounterMetricFamily("hacluster_packets_sent", "Packets sent", stats.sent)
        yield CounterMetricFamily(
            "hacluster_input_queue_overflows",
            "Packets dropped because the driver's input queue was full",
            daemon.queue_overflows,
        )
        link_errors = CounterMetricFamily(
            "hacluster_link_errors",
            "Send and receive errors of each local link",
            labels=["link", "direction"],
        )
        for counters in daemon.link_counters():
            link_errors.add_metric([counters["name"], "send"], counters["send_errors"])
            link_errors.add_metric([counters["name"], "receive"], counters["receive_errors"])
        yield link_errors

    def _resources(self, view: CoreView) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "hacluster_is_dc", "1 when this node is the DC", 1 if view.dc == self.daemon.node else 0
        )
        yield GaugeMetricFamily(
            "hacluster_quorum", "1 when this node's partition has quorum", 1 if view.has_quorum() else 0
        )
        yield GaugeMetricFamily(
            "hacluster_config_epoch", "Epoch of the replicated configuration", view.config.epoch
        )
        state = GaugeMetricFamily(
            "hacluster_resource_state",
            "1 for the state each node reports for each resource, else 0",
            labels=["resource", "node", "state"],
        )
        failcount = GaugeMetricFamily(
            "hacluster_resource_fail_count",
            "Failures counted per resource and node",
            labels=["resource", "node"],
        )
        for rsc, per_node in sorted(view.reports().items()):
            for node, report in sorted(per_node.items()):
                current = report.state.value
                for name in RESOURCE_STATES:
                    state.add_metric([rsc, node, name], 1 if current == name else 0)
                failcount.add_metric([rsc, node], report.failcount)
        yield state
        yield failcount
        pending = GaugeMetricFamily(
            "hacluster_fencing_pending", "1 while fencing of the node is under way", labels=["node"]
        )
        for node in view.fencing_pending():
            pending.add_metric([node], 1)
        yield pending

    def _counted(self) -> Iterable[Metric]:
        failovers = CounterMetricFamily(
            "hacluster_resource_failovers",
            "Starts on this node of a resource last seen running on another node",
            labels=["resource", "from_node", "to_node"],
        )
        for (rsc, before, after), count in sorted(self.failovers.items()):
            failovers.add_metric([rsc, before, after], count)
        yield failovers
        fencing = CounterMetricFamily(
            "hacluster_fencing",
            "Fencing outcomes in this node's fencing history",
            labels=["target", "by", "result"],
        )
        for (target, by, result), count in sorted(self.fencing.items()):
            fencing.add_metric([target, by, result], count)
        yield fencing
        duration = HistogramMetricFamily(
            "hacluster_fencing_duration_seconds", "How long fencing took, by result", labels=["result"]
        )
        for result, histogram in sorted(self.fencing_seconds.items()):
            duration.add_metric([result], histogram.buckets(), histogram.sum)
        yield duration
        events = CounterMetricFamily(
            "hacluster_history_events", "Decisions recorded in the history", labels=["level", "code"]
        )
        for (level, code), count in sorted(self.events.items()):
            events.add_metric([level, code], count)
        yield events

    def _alerts(self) -> Iterable[Metric]:
        stats = self.daemon.alerts.statistics()
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "delivered": CounterMetricFamily(
                "hacluster_alerts_delivered", "Events a hook accepted", labels=["hook"]
            ),
            "given_up": CounterMetricFamily(
                "hacluster_alerts_given_up", "Events a hook failed on every attempt", labels=["hook"]
            ),
            "dropped": CounterMetricFamily(
                "hacluster_alerts_dropped", "Events dropped from a full hook queue", labels=["hook"]
            ),
            "queued": GaugeMetricFamily(
                "hacluster_alerts_queued", "Events waiting for a hook", labels=["hook"]
            ),
        }
        for hook in stats:
            for key, family in families.items():
                family.add_metric([hook["path"]], hook[key])
        yield from families.values()


class MetricsServer:
    """``GET /metrics`` on ``metrics_listen``; see the module docstring."""

    def __init__(self, state: MetricsState, listen: str) -> None:
        self.state = state
        self.listen = listen
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(state)
        ProcessCollector(registry=self.registry)
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    async def start(self) -> None:
        host, port = self.address
        self._server = await asyncio.start_server(self._serve, host, port, limit=REQUEST_BYTES_MAX)
        logger.info("metrics endpoint open address=%s path=/metrics", self.listen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: nothing in them changes the answer
            method, path, *_ = [*request.decode("latin-1").split(), "", ""]
            if method not in ("GET", "HEAD"):
                await self._answer(writer, 405, b"only GET\n", "text/plain")
            elif path.split("?", 1)[0] not in ("/metrics", "/"):
                await self._answer(writer, 404, b"try /metrics\n", "text/plain")
            else:
                body = generate_latest(self.registry)
                await self._answer(writer, 200, body, CONTENT_TYPE_LATEST, head_only=method == "HEAD")
        except (TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter, code: int, body: bytes, content_type: str, *, head_only: bool = False
    ) -> None:
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[code]
        head = (
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + (b"" if head_only else body))
        await writer.drain()


async def start_metrics(daemon: Daemon, listen: str) -> MetricsServer | None:
    """Open the endpoint and count history events from now on; None (logged) if it cannot listen.

    A monitoring port that is taken must not keep the cluster from starting.
    """
    state = MetricsState(daemon)
    server = MetricsServer(state, listen)
    try:
        await server.start()
    except OSError as exc:
        logger.error(
            "metrics endpoint cannot listen address=%s error=%s; fix metrics_listen in %s",
            listen,
            exc.strerror or exc,
            daemon.config.path,
        )
        return None
    daemon.history.subscribe(state.observe)
    return server
