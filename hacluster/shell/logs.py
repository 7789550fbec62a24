"""Where the daemon's log lines go: stderr (journald under systemd), ``logfile``,
``debugfile`` (everything, DEBUG included) and syslog (``logfacility``), as ha.cf says."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s: %(message)s"
_OURS = "hacluster-handler"


def configure(
    *,
    node: str,
    debug: int = 0,
    logfile: str | None = None,
    debugfile: str | None = None,
    logfacility: str | None = None,
    stderr: bool = True,
) -> None:
    """(Re)install our handlers on the ``hacluster`` logger; safe to call again on SIGHUP."""
    root = logging.getLogger("hacluster")
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    level = logging.DEBUG if debug > 0 else logging.INFO
    formatter = logging.Formatter(FORMAT.replace("%(name)s", f"{node} %(name)s"))
    handlers: list[tuple[logging.Handler, int]] = []
    if stderr:
        handlers.append((logging.StreamHandler(sys.stderr), level))
    if logfile:
        handlers.append((logging.FileHandler(logfile), level))
    if debugfile:
        handlers.append((logging.FileHandler(debugfile), logging.DEBUG))
    if logfacility and logfacility != "none" and os.path.exists("/dev/log"):
        facility = logging.handlers.SysLogHandler.facility_names.get(
            logfacility, logging.handlers.SysLogHandler.LOG_DAEMON
        )
        syslog = logging.handlers.SysLogHandler(address="/dev/log", facility=facility)
        syslog.ident = "hacluster: "
        handlers.append((syslog, level))
    for handler, handler_level in handlers:
        handler.setLevel(handler_level)
        handler.setFormatter(formatter)
        setattr(handler, _OURS, True)
        root.addHandler(handler)
