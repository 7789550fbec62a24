"""The ``Link`` port: what the daemon needs from one transport medium.

Theory of operation: a link is opened with a ``deliver`` callback and from then on hands
every datagram or serial frame it receives, as raw untrusted bytes, to ``deliver`` from the
event loop.  ``deliver`` only queues (the driver task decodes and feeds the core), so a link
never parses or authenticates anything.  ``send`` never blocks and never raises: a message
that cannot leave now is counted and dropped, because the next heartbeat supersedes it and
the core retransmits what matters.  Failures a peer or the network causes are counted in
``statistics()`` and logged at a limited rate; only ``open`` raises, with ``LinkOpenError``,
when the medium cannot be used at all (no such interface, device busy, no permission).

Adapters: ``udp.py`` (bcast, mcast, ucast) and ``serial.py``; ``make_link`` picks one by
``LinkSpec.kind``, like Patroni's ``dcs`` backends.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from hacluster.core.ids import LinkName
from hacluster.core.settings import LinkKind, LinkSpec
from hacluster.errors import HAClusterError

logger = logging.getLogger(__name__)

Deliver = Callable[[LinkName, bytes], None]
"""Called with (link name, raw bytes) for every datagram or frame; must be cheap, never raise."""

ERROR_LOG_INTERVAL_MS = 10_000
"""At most one log line per link and direction per interval; the rest are only counted."""


class LinkOpenError(HAClusterError):
    """The medium named in the configuration cannot be opened; the text says why and what to do."""


@dataclass(frozen=True, slots=True)
class LinkCounters:
    """A snapshot of one link's traffic counters, for status output and tests."""

    sent: int = 0
    received: int = 0
    send_errors: int = 0
    receive_errors: int = 0
    oversize: int = 0
    """Messages or frames dropped for size, in either direction."""
    last_error: str | None = None


class ErrorLog:
    """Logs the first error at once, then at most one line per interval with a count.

    A dead interface fails every send; one line per keepalive would bury everything else.
    """

    def __init__(self, link: str, direction: str, interval_ms: int = ERROR_LOG_INTERVAL_MS) -> None:
        self._link = link
        self._direction = direction
        self._interval_ms = interval_ms
        self._last_logged_ms: int | None = None
        self._suppressed = 0

    def report(self, error: str) -> None:
        now_ms = time.monotonic_ns() // 1_000_000
        if self._last_logged_ms is not None and now_ms - self._last_logged_ms < self._interval_ms:
            self._suppressed += 1
            return
        logger.warning(
            "link %s error link=%s error=%s suppressed=%d",
            self._direction,
            self._link,
            error,
            self._suppressed,
        )
        self._last_logged_ms = now_ms
        self._suppressed = 0


class Link(abc.ABC):
    """One local medium.  Subclasses count into the ``_``-prefixed counters below."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self._sent = 0
        self._received = 0
        self._send_errors = 0
        self._receive_errors = 0
        self._oversize = 0
        self._last_error: str | None = None
        self._send_log = ErrorLog(spec.name, "send")
        self._receive_log = ErrorLog(spec.name, "receive")

    @property
    def name(self) -> LinkName:
        return self.spec.name

    @abc.abstractmethod
    async def open(self, deliver: Deliver) -> None:
        """Acquire the medium and start receiving; raises ``LinkOpenError`` if it cannot."""

    @abc.abstractmethod
    def send(self, data: bytes, classic: bytes) -> None:
        """Queue one message: UDP links send ``data`` (netstring), serial links ``classic``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the medium; no ``deliver`` call happens afterwards.  Safe to call twice."""

    def statistics(self) -> LinkCounters:
        return LinkCounters(
            sent=self._sent,
            received=self._received,
            send_errors=self._send_errors,
            receive_errors=self._receive_errors,
            oversize=self._oversize,
            last_error=self._last_error,
        )

    def _count_send_error(self, error: str) -> None:
        self._send_errors += 1
        self._last_error = error
        self._send_log.report(error)

    def _count_receive_error(self, error: str) -> None:
        self._receive_errors += 1
        self._last_error = error
        self._receive_log.report(error)


def make_link(spec: LinkSpec) -> Link:
    """The adapter for ``spec.kind``."""
    # Imported here so that base.py stays importable without pyserial and the adapters can
    # import base.py.
    if spec.kind is LinkKind.SERIAL:
        from hacluster.shell.links.serial import SerialLink

        return SerialLink(spec)
    from hacluster.shell.links.udp import UdpLink

    return UdpLink(spec)
