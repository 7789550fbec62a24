"""``hacluster demo``: a local cluster on loopback, no root needed.

It writes an ``ha.cf`` and ``authkeys`` per node (ucast over ``lo``, each node bound to its own
127.0.0.x address on a free high port), starts one real daemon per node, shows the status,
then kills one node with SIGKILL and shows how long the others took to declare it dead.
Ctrl-C stops every daemon and removes the demo's files.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hacluster.agents.demoservice import fetch
from hacluster.cli import render
from hacluster.cli.client import CliError, request

DEMO_RESOURCES = """\
# written by `hacluster demo`: a Dummy, then a small HTTP service on 127.0.0.1 (no root needed)
primitive app ocf:hacluster:Dummy op monitor interval=1s timeout=5s
primitive web ocf:hacluster:DemoService params port={service_port} op monitor interval=1s timeout=5s
group service app web
# The demo has no fencing device; a real cluster needs one (see docs/operator-guide.md).
property stonith-enabled=false
"""
KEEPALIVE = "100ms"
DEADTIME = "500ms"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_node_config(
    root: Path, names: list[str], index: int, port: int, key: str, service_port: int = 0
) -> Path:
    """One node's directory: ha.cf, authkeys (0600), state dir.  Returns the ha.cf path."""
    node_dir = root / names[index]
    node_dir.mkdir(parents=True, exist_ok=True)
    addresses = [f"127.0.0.{i + 2}" for i in range(len(names))]
    lines = [
        "# written by `hacluster demo`",
        f"udpport {port}",
        f"keepalive {KEEPALIVE}",
        f"deadtime {DEADTIME}",
        "warntime 300ms",
        "initdead 10s",
        f"bind_address lo {addresses[index]}",
        *(f"ucast lo {address}" for address in addresses),
        f"node {' '.join(names)}",
        "realtime off",
        "logfacility none",
        f"logfile {node_dir / 'ha-log'}",
        f"api_socket {node_dir / 'hacluster.sock'}",
        f"state_dir {node_dir / 'state'}",
    ]
    (node_dir / "resources.crm").write_text(DEMO_RESOURCES.replace("{service_port}", str(service_port)))
    hacf = node_dir / "ha.cf"
    hacf.write_text("\n".join(lines) + "\n")
    authkeys = node_dir / "authkeys"
    authkeys.write_text(f"auth 1\n1 sha256 {key}\n")
    authkeys.chmod(0o600)
    return hacf


class DemoCluster:
    """N daemons on loopback; usable by the demo and by tests."""

    def __init__(self, root: Path, nodes: int = 3) -> None:
        assert 2 <= nodes <= 16
        self.root = root
        self.names = [f"n{i + 1}" for i in range(nodes)]
        port = _free_port()
        self.service_port = _free_tcp_port()
        key = secrets.token_hex(24)
        self.configs = {
            name: write_node_config(root, self.names, i, port, key, self.service_port)
            for i, name in enumerate(self.names)
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def socket_of(self, name: str) -> str:
        return str(self.root / name / "hacluster.sock")

    def start(self, name: str) -> None:
        argv = [
            sys.executable,
            "-m",
            "hacluster.shell.main",
            "daemon",
            "--config",
            str(self.configs[name]),
            "--node",
            name,
        ]
        stderr = open(self.root / name / "stderr.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        stderr.close()

    def status(self, name: str) -> dict[str, Any] | None:
        try:
            return request(self.socket_of(name), "status", timeout_s=1.0)
        except CliError:
            return None

    def states_seen_by(self, name: str) -> dict[str, str]:
        doc = self.status(name)
        return {} if doc is None else {n["name"]: n["state"] for n in doc["nodes"]}

    def wait_all_active(self, timeout_s: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = [n for n, p in self.procs.items() if p.poll() is None]
            if len(live) < len(self.procs):
                return False  # a daemon exited: its stderr.log says why
            if all(all(self.states_seen_by(n).get(m) == "active" for m in live) for n in live):
                return True
            time.sleep(0.05)
        return False

    def wait_service_started(self, observer: str, timeout_s: float = 15.0) -> str | None:
        """Wait until every demo resource is started on one node; return that node."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            doc = self.status(observer)
            if (
                doc is not None
                and doc["resources"]
                and all(r["state"] == "started" for r in doc["resources"])
            ):
                nodes = {r["node"] for r in doc["resources"]}
                if len(nodes) == 1:
                    return str(next(iter(nodes)))
            time.sleep(0.05)
        return None

    def kill(self, name: str) -> float:
        """Crash a node: SIGKILL its daemon and everything it started (its process group, as a
        power cut would); returns the monotonic time of the kill."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait()
        return killed

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ms(seconds: float | None) -> str:
    return "not within 10 s" if seconds is None else f"{seconds * 1000:.0f} ms"


def run_demo(nodes: int = 3, keep: bool = False, kill: bool = True, duration_s: float = 0.0) -> int:
    root = Path(tempfile.mkdtemp(prefix="hacluster-demo-"))
    cluster = DemoCluster(root, nodes)
    interrupted = False
    try:
        print(
            f"Starting {nodes} nodes on loopback (keepalive {KEEPALIVE}, deadtime {DEADTIME}); files in {root}"
        )
        for name in cluster.names:
            cluster.start(name)
        if not cluster.wait_all_active():
            print("the demo nodes did not all become active; see the logs in", root, file=sys.stderr)
            return 1
        first = cluster.names[0]
        holder = cluster.wait_service_started(first)
        doc = cluster.status(first)
        if doc is None:
            print(f"{first} does not answer; see {root / first / 'stderr.log'}", file=sys.stderr)
            return 1
        print(f"\n$ hacrm --socket {cluster.socket_of(first)} status")
        print(render.status_text(doc))
        port = cluster.service_port
        print(f"$ curl http://127.0.0.1:{port}/\n{(fetch(port) or 'no answer').strip()}\n")
        if kill and holder is None:
            print("the service did not start; see the logs in", root, file=sys.stderr)
            return 1
        if kill and holder is not None:
            victim = holder
            survivors = [n for n in cluster.names if n != victim]
            observer = survivors[0]
            print(f"Killing {victim}, which runs the service, with SIGKILL ...")
            killed = cluster.kill(victim)
            dead_after = moved_after = answered_after = None
            new_holder = None
            answer = None
            while time.monotonic() - killed < 10 and (
                dead_after is None or moved_after is None or answered_after is None
            ):
                if answered_after is None:
                    answer = fetch(port, 0.05)
                    if answer is not None and victim not in answer:
                        answered_after = time.monotonic() - killed
                doc = cluster.status(observer)
                if doc is not None:
                    states = {n["name"]: n["state"] for n in doc["nodes"]}
                    if dead_after is None and states.get(victim) == "dead":
                        dead_after = time.monotonic() - killed
                    where = {r["node"] for r in doc["resources"] if r["state"] == "started"}
                    if len(where) == 1 and all(r["state"] == "started" for r in doc["resources"]):
                        candidate = next(iter(where))
                        if candidate != victim:
                            new_holder, moved_after = candidate, time.monotonic() - killed
                time.sleep(0.002)
            print(f"  {observer} declared {victim} dead after {_ms(dead_after)}")
            print(f"  the service runs on {new_holder or 'no node'} after {_ms(moved_after)} (from the kill)")
            print(
                f"  http://127.0.0.1:{port}/ answered again after {_ms(answered_after)}: "
                f"{(answer or 'no answer').strip()}"
            )
            print(f"\n$ hacrm --socket {cluster.socket_of(observer)} status")
            print(render.status_text(cluster.status(observer) or {}))
            first = observer
        if duration_s > 0 or sys.stdin.isatty():
            print(
                "Live status (Ctrl-C to stop and clean up)"
                if duration_s <= 0
                else f"Running {duration_s:g} s more"
            )
            end = time.monotonic() + duration_s if duration_s > 0 else float("inf")
            while time.monotonic() < end:
                time.sleep(1.0)
                doc = cluster.status(first)
                if doc is not None:
                    line = ", ".join(f"{n['name']}={n['state']}" for n in doc["nodes"])
                    print(f"  {time.strftime('%H:%M:%S')}  {line}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        cluster.stop_all()
        if keep:
            print(f"demo files kept in {root}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(root)
    if interrupted:
        print("\nstopped; every demo daemon has exited")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run_demo())
