"""The value syntax of Heartbeat's configuration files, and hacluster's defaults.

Times follow Heartbeat's ``cl_get_msec``: a plain number is seconds (decimals allowed), a
``ms`` or ``us`` suffix changes the unit, and the result is whole milliseconds.  Booleans
follow ``cl_str_to_boolean``.  Both are the crm parsers of ``hacluster.core.cib`` with ha.cf's
unit set (``HACF_TIME_UNITS``: no ``min``/``h``, no ISO-8601; the reasons are written beside
that table), so there is one parser for each.  Each raises ``ValueError`` whose text says
what was expected; callers add the file and line.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from hacluster.core.cib import BOOL_HINT as BOOL_HINT
from hacluster.core.cib import HACF_TIME_UNITS, parse_boolean
from hacluster.core.cib import parse_time_ms as _parse_time_ms

BAUD_RATES: Final = (9600, 19200, 38400, 57600, 115200, 230400, 460800)
DEFAULT_UDPPORT: Final = 694
DEFAULT_BAUD: Final = 19200
DEFAULT_KEEPALIVE_MS: Final = 1000
DEFAULT_DEADTIME_MS: Final = 30_000
DEFAULT_MAX_REXMIT_DELAY_MS: Final = 250
DEFAULT_API_SOCKET: Final = "/run/hacluster/hacluster.sock"
DEFAULT_STATE_DIR: Final = "/var/lib/hacluster"
DEFAULT_CLUSTER: Final = "linux-ha"

INITDEAD_ADVICE_MS: Final = 10_000
"""Heartbeat warns below this: a peer booting at the same moment may still lack its network."""

SYSLOG_FACILITIES: Final = frozenset(
    ["auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp"]
    + [f"local{i}" for i in range(8)]
    + ["none"]
)

TIME_HINT: Final = "a number of seconds such as 2 or 0.5, or a number with ms or us such as 500ms"

_HOST_RE: Final = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def parse_time_ms(text: str) -> int:
    """A Heartbeat time value in integer milliseconds: plain numbers are seconds.

    Raises ``ValueError`` saying what is expected.  Rounds to the nearest millisecond,
    as Heartbeat's ``cl_get_msec`` does.
    """
    if text != text.strip():
        raise ValueError(f"expected {TIME_HINT}")
    try:
        return _parse_time_ms(text, units=HACF_TIME_UNITS, iso=False)
    except ValueError:
        raise ValueError(f"expected {TIME_HINT}") from None


def parse_bool(text: str) -> bool:
    """Heartbeat's boolean words, case-insensitive; raises ``ValueError`` otherwise."""
    return parse_boolean(text)


def is_host(text: str) -> bool:
    """An IP address or something shaped like a host name (resolved later, by the shell)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        looks_numeric = all(part.isdigit() for part in text.split("."))
        return not looks_numeric and len(text) <= 253 and _HOST_RE.match(text) is not None
    return True


def is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and "①", which ``int`` refuses
    (found by bench/bench_fuzz.py, where such a value crashed the parsers)."""
    return text.isascii() and text.isdigit()


def is_interface(text: str) -> bool:
    """Linux interface names: at most 15 bytes, no slash (IFNAMSIZ)."""
    return 0 < len(text.encode()) <= 15 and "/" not in text
