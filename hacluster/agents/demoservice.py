"""DemoService: a tiny HTTP service on 127.0.0.1, for ``hacluster demo``.

A resource you can watch fail over without root: it answers ``GET /`` on a loopback port
with the name of the node that runs it.  Every demo node shares 127.0.0.1, so only the node
the cluster gives it to can bind the port; a client polling the port sees the failover.

The server is a child of whoever starts it (the daemon, for in-process runs), in the same
process group, so that a node's crash takes its service down with it, as a real machine's
would.  Its pid is kept in ``HA_RSCTMP/DemoService-<instance>.pid``.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import signal
import sys
import time
import urllib.request

from hacluster.agents.ocf import DEFAULT_RSCTMP, RC, Action, Agent, AgentError, Context, Parameter

logger = logging.getLogger(__name__)

START_WAIT_S = 5.0
STOP_WAIT_S = 5.0


def fetch(port: int, timeout_s: float = 0.5) -> str | None:
    """The service's answer on ``port``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout_s) as answer:
            text: str = answer.read().decode("utf-8", "replace")
            return text
    except OSError:
        return None


class DemoServiceAgent(Agent):
    name = "DemoService"
    version = "1.0"
    shortdesc = "A small HTTP service on a loopback port (demo)"
    longdesc = (
        "Runs a minimal HTTP server on 127.0.0.1:port that answers with the name of the node "
        "running it. For demonstrations and tests of failover without root."
    )
    parameters = (
        Parameter(
            "port", "TCP port", "Loopback port to serve on (1024-65535).", type="integer", required=True
        ),
    )
    actions = (
        Action("start", 20_000),
        Action("stop", 20_000),
        Action("monitor", 20_000, interval_ms=10_000, depth=0),
        Action("meta-data", 5_000),
        Action("validate-all", 20_000),
    )

    def _port(self, ctx: Context) -> int:
        port = ctx.integer("port")
        if not 1024 <= port <= 65535:
            raise AgentError(RC.ERR_CONFIGURED, f"port={port} must be between 1024 and 65535")
        return port

    def _pidfile(self, ctx: Context) -> str:
        rsctmp = ctx.env.get("HA_RSCTMP") or DEFAULT_RSCTMP
        return os.path.join(rsctmp, f"DemoService-{ctx.instance}.pid")

    def _pid(self, ctx: Context) -> int | None:
        try:
            with open(self._pidfile(ctx)) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError):
            return None
        return pid if b"hacluster.agents.demoservice" in cmdline else None

    def validate_all(self, ctx: Context) -> int:
        self._port(ctx)
        return RC.SUCCESS

    def start(self, ctx: Context) -> int:
        port = self._port(ctx)
        if self.monitor(ctx) == RC.SUCCESS:
            return RC.SUCCESS
        os.makedirs(os.path.dirname(self._pidfile(ctx)), exist_ok=True)
        # posix_spawn, not Popen: the server outlives this call on purpose, and a Popen object
        # would complain when collected while its process still runs.
        devnull = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        argv = [sys.executable, "-m", "hacluster.agents.demoservice", "serve", str(port), ctx.node_name]
        pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=devnull)
        with open(self._pidfile(ctx), "w") as f:
            f.write(f"{pid}\n")
        deadline = time.monotonic() + START_WAIT_S
        while time.monotonic() < deadline:
            if not self._alive(pid):
                raise AgentError(RC.ERR_GENERIC, f"the service exited at start (port {port} in use?)")
            if fetch(port, 0.2) is not None:
                return RC.SUCCESS
            time.sleep(0.01)
        raise AgentError(RC.ERR_GENERIC, f"the service did not answer on port {port}")

    def stop(self, ctx: Context) -> int:
        pid = self._pid(ctx)
        if pid is not None:
            for sig, wait_s in ((signal.SIGTERM, STOP_WAIT_S / 2), (signal.SIGKILL, STOP_WAIT_S / 2)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + wait_s
                while time.monotonic() < deadline and self._alive(pid):
                    time.sleep(0.01)
                if not self._alive(pid):
                    break
            if self._alive(pid):
                raise AgentError(RC.ERR_GENERIC, f"service pid {pid} survived SIGKILL")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pidfile(ctx))
        return RC.SUCCESS

    @staticmethod
    def _alive(pid: int) -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it, or it lingers as a zombie
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return False
        return stat[stat.rfind(")") + 2] not in "ZX"

    def monitor(self, ctx: Context) -> int:
        port = self._port(ctx)
        if self._pid(ctx) is None:
            return RC.NOT_RUNNING
        if fetch(port) is None:
            raise AgentError(RC.ERR_GENERIC, f"the service runs but does not answer on port {port}")
        return RC.SUCCESS


def serve(port: int, node: str) -> None:
    body = f"served by {node}\n".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        from hacluster.agents.ocf import main

        raise SystemExit(main(DemoServiceAgent))
