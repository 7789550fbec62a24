"""Transport links: one adapter per medium behind the ``Link`` port.

The daemon only needs ``make_link(spec)`` and the ``Link`` interface; ``PingLink`` is the
separate ICMP medium for ping nodes.
"""

from hacluster.shell.links.base import Link, LinkCounters, LinkOpenError, make_link
from hacluster.shell.links.ping import PingCounters, PingLink

__all__ = ["Link", "LinkCounters", "LinkOpenError", "PingCounters", "PingLink", "make_link"]
