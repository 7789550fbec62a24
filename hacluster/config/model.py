"""The validated configuration: pydantic models at the boundary, frozen core settings inside.

``LoadedConfig`` is what ``load_config`` returns: every value of ha.cf with Heartbeat's
defaults filled in, the key ring from authkeys, and the warnings found on the way.  The
core never sees it; ``membership_settings()`` builds the plain frozen objects it runs on.
The models are strict (no coercion): the ha.cf parser has already turned text into values
and written its own line-numbered messages, so pydantic is the last guard on shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hacluster.config.values import (
    DEFAULT_API_SOCKET,
    DEFAULT_BAUD,
    DEFAULT_CLUSTER,
    DEFAULT_MAX_REXMIT_DELAY_MS,
    DEFAULT_STATE_DIR,
    DEFAULT_UDPPORT,
)
from hacluster.core.codec import KeyRing
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings, PingNode

_FROZEN = ConfigDict(frozen=True, strict=True, extra="forbid")


class LinkConfig(BaseModel):
    """One medium line (ucast: every line of one interface)."""

    model_config = _FROZEN

    name: str
    """``bcast <if>``, ``mcast <if>``, ``ucast <if>``, ``mcast6 <if>``, ``ucast6 <if>`` or ``serial <dev>``."""
    kind: Literal["bcast", "mcast", "ucast", "mcast6", "ucast6", "serial"]
    device: str
    targets: tuple[str, ...] = ()
    port: int = Field(default=DEFAULT_UDPPORT, ge=1, le=65535)
    ttl: int = Field(default=1, ge=0, le=4)
    loop: bool = False
    bind_address: str = ""
    """UDP kinds: the local address to bind (hacluster's ``bind_address``); empty: the device."""
    where: str
    """``path:line`` of the (first) line that defined it."""


class PingConfig(BaseModel):
    """A ``ping`` address (named by itself) or a ``ping_group``."""

    model_config = _FROZEN

    name: str
    addresses: tuple[str, ...] = Field(min_length=1)
    where: str


class AlertConfig(BaseModel):
    """An ``alert PATH [timeout=5s] [retries=3]`` line: a script run for every history event."""

    model_config = _FROZEN

    path: str
    timeout_ms: int = Field(default=5_000, gt=0)
    retries: int = Field(default=3, ge=0, le=100)
    """Attempts after the first one when the script fails or times out."""
    where: str


class LoadedConfig(BaseModel):
    """Everything ha.cf and authkeys say, checked; durations in integer milliseconds."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", arbitrary_types_allowed=True)

    path: Path
    directory: Path
    warnings: list[str] = []
    node: str
    """This machine's node name, lower-cased."""
    nodes: tuple[str, ...]
    """Every configured node, this one included."""
    keepalive_ms: int = Field(gt=0)
    deadtime_ms: int = Field(gt=0)
    warntime_ms: int = Field(gt=0)
    initdead_ms: int = Field(gt=0)
    deadping_ms: int = Field(gt=0)
    udpport: int = Field(default=DEFAULT_UDPPORT, ge=1, le=65535)
    baud: int = DEFAULT_BAUD
    links: tuple[LinkConfig, ...] = Field(min_length=1)
    ping_nodes: tuple[PingConfig, ...] = ()
    auto_failback: Literal["on", "off", "legacy"] = "legacy"
    stonith: tuple[str, ...] = ()
    """``stonith`` lines, each as written after the directive."""
    stonith_host: tuple[str, ...] = ()
    """``stonith_host`` lines, each as written after the directive."""
    logfile: str | None = None
    logfacility: str | None = None
    debugfile: str | None = None
    debug: int = Field(default=0, ge=0, le=255)
    autojoin: Literal["none", "other", "any"] = "none"
    hbgenmethod: Literal["file", "time"] = "file"
    hopfudge: int = Field(default=1, ge=0, le=255)
    max_rexmit_delay_ms: int = Field(default=DEFAULT_MAX_REXMIT_DELAY_MS, gt=0)
    msgfmt: Literal["classic", "netstring"] = "classic"
    realtime: bool = True
    rtprio: int | None = None
    cluster: str = DEFAULT_CLUSTER
    api_socket: Path = Path(DEFAULT_API_SOCKET)
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    metrics_listen: str | None = None
    """``ADDRESS:PORT`` of the Prometheus endpoint (``[v6]:PORT`` for IPv6); None: no endpoint."""
    alerts: tuple[AlertConfig, ...] = ()
    crm: Literal["off", "on", "true", "yes", "y", "1", "respawn", "minimal", "manual"] = "off"
    """``crm``/``pacemaker`` as written (lower-cased); anything but off: the resources are in a CIB."""
    cib_file: Path | None = None
    """hacluster's ``cib_file``: where that CIB is; None: where Heartbeat v2 or Pacemaker keep it."""
    api_readonly_group: str | None = None
    watchdog: str | None = None
    """The watchdog device the daemon opens and pets (``watchdog /dev/watchdog``); None: none."""
    watchdog_timeout_ms: int | None = Field(default=None, ge=1000)
    """The timeout set on it (``watchdog_timeout``; default deadtime + 10 ms rounded up to seconds)."""
    """Group whose members may only read the API (status, history, explain); None: no such group."""
    raw: dict[str, str] = {}
    """Each directive's value as written, for ``hbparameter``-style queries."""
    where: dict[str, str] = {}
    """``path:line`` of the first line of each directive present."""
    keyring: KeyRing

    @property
    def uses_cib(self) -> bool:
        """``crm`` on (any value but off): the resource configuration is a Pacemaker CIB."""
        return self.crm != "off"

    def hbparameter(self, name: str) -> str | None:
        """The value of ``name`` as written in ha.cf, or ``None`` when it is not set."""
        return self.raw.get(name)

    def membership_settings(self, generation: int, wall_offset_ms: int = 0) -> MembershipSettings:
        """The frozen settings the membership core runs on."""
        links = tuple(
            LinkSpec(
                name=LinkName(link.name),
                kind=LinkKind(link.kind),
                device=link.device,
                targets=link.targets,
                port=link.port,
                ttl=link.ttl,
                loop=link.loop,
                baud=self.baud if link.kind == "serial" else DEFAULT_BAUD,
                bind_address=link.bind_address,
            )
            for link in self.links
        )
        return MembershipSettings(
            node=NodeName(self.node),
            nodes=tuple(NodeName(name) for name in self.nodes),
            links=links,
            keyring=self.keyring,
            generation=generation,
            keepalive_ms=self.keepalive_ms,
            deadtime_ms=self.deadtime_ms,
            warntime_ms=self.warntime_ms,
            initdead_ms=self.initdead_ms,
            deadping_ms=self.deadping_ms,
            ping_nodes=tuple(PingNode(NodeName(ping.name), ping.addresses) for ping in self.ping_nodes),
            autojoin=self.autojoin,
            hopfudge=self.hopfudge,
            max_rexmit_delay_ms=self.max_rexmit_delay_ms,
            inner_auth=self.msgfmt == "classic",
            cluster=self.cluster,
            wall_offset_ms=wall_offset_ms,
        )
