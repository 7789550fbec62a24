#!/usr/bin/env python3
"""Shared harness for the daemon benchmarks: namespaces, real daemons, a packet sniffer.

    with NetLab("bdet", nodes=3) as lab, Daemons(lab.names, media=lab.bcast_media, run=lab.run) as ds:
        ds.start_all(); ds.wait_all_active()

Theory of operation: ``NetLab`` builds a switch namespace holding bridge ``br0`` plus one
namespace per node, joined by veth pairs (node ``i`` owns ``e<i>``, address
``10.232.<x>.<i>/24``).  Nothing is configured in the root namespace.  ``Daemons`` writes one
directory per node (ha.cf, authkeys 0600, state dir, log, API socket) and starts
``python -m hacluster.shell.main daemon`` for each, in its namespace when given a lab.  The
API socket is a file, so the benchmark reads every daemon's status from the root namespace.

Cleanup: both classes are context managers that kill what they started (by pid, or every
process inside the namespaces they created) and delete the namespaces, also on Ctrl-C;
``sigterm_as_interrupt()`` makes SIGTERM take the same path.

Run as a script inside a namespace, this file is the sniffer the detection benchmark uses:

    python3 bench/lab.py sniff IFACE PORT

It prints ``<source address> <kernel receive time, CLOCK_REALTIME seconds>`` for every UDP
datagram to PORT arriving on IFACE (an AF_PACKET socket with SO_TIMESTAMPNS, so the time is
the kernel's stamp of the frame, not when Python got round to reading it).

Copied in spirit (not imported) from tests/integration/netns.py and daemons.py, so the
benchmarks do not depend on the test tree or on pytest.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))

from hacluster.cli.client import CliError, request  # noqa: E402

COMMAND_TIMEOUT_S = 20
BRIDGE = "br0"


# --- small helpers -------------------------------------------------------------------------


def sigterm_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so ``finally`` blocks clean up as for Ctrl-C."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation; ``values`` not empty."""
    ordered = sorted(values)
    assert ordered, "percentile of nothing"
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_stats(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), 3),
        "median": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "max": round(max(values), 3),
    }


def write_result(name: str, summary: dict[str, Any]) -> Path:
    """Write ``summary`` to bench/results/<name>-<UTC time>.json and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def parse_ms(text: str) -> int:
    """``100ms`` / ``0.5s`` / ``2`` (seconds) -> integer milliseconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s)?\s*", text)
    if not match:
        raise SystemExit(f"bad time {text!r}: expected a number with ms or s, e.g. 100ms")
    value = float(match.group(1))
    return round(value if match.group(2) == "ms" else value * 1000)


def require_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root (network namespaces, SCHED_FIFO)")
    for tool in ("ip",):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs `{tool}` on PATH (apt-get install iproute2)")


def ip(*argv: str) -> str:
    done = subprocess.run(
        ["ip", *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)} failed rc={done.returncode}: {done.stderr.strip()}")
    return done.stdout


# --- the namespace lab ---------------------------------------------------------------------


class NetLab:
    """A switch namespace with bridge br0 and ``nodes`` node namespaces; 1-based indices."""

    def __init__(self, prefix: str, nodes: int) -> None:
        assert 1 <= nodes <= 250, nodes
        assert prefix, "a lab needs a prefix"
        assert len(prefix) <= 8, prefix
        suffix = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.nodes = nodes
        self.subnet = 1 + secrets.randbelow(254)
        self.switch = f"{prefix}-sw-{suffix}"
        self.node_namespaces = {i: f"{prefix}-n{i}-{suffix}" for i in range(1, nodes + 1)}
        self.names = [f"n{i}" for i in range(1, nodes + 1)]
        self._created: list[str] = []
        self._started: list[subprocess.Popen[Any]] = []

    def address(self, i: int) -> str:
        return f"10.232.{self.subnet}.{i}"

    def iface(self, i: int) -> str:
        return f"e{i}"

    def bcast_media(self, i: int) -> list[str]:
        return [f"bcast {self.iface(i)}"]

    def __enter__(self) -> NetLab:
        try:
            self._add(self.switch)
            ip("-n", self.switch, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0")
            ip("-n", self.switch, "link", "set", BRIDGE, "up")
            for i, ns in self.node_namespaces.items():
                self._add(ns)
                ip(
                    "-n",
                    self.switch,
                    "link",
                    "add",
                    f"p{i}",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    self.iface(i),
                    "netns",
                    ns,
                )
                ip("-n", self.switch, "link", "set", f"p{i}", "master", BRIDGE)
                ip("-n", self.switch, "link", "set", f"p{i}", "up")
                brd = f"10.232.{self.subnet}.255"
                ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "brd", brd, "dev", self.iface(i))
                ip("-n", ns, "link", "set", self.iface(i), "up")
            self._wait_forwarding()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _add(self, ns: str) -> None:
        ip("netns", "add", ns)
        self._created.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def _wait_forwarding(self, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        for i in self.node_namespaces:
            while "bridge_slave state forwarding" not in ip(
                "-n", self.switch, "-d", "-o", "link", "show", f"p{i}"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bridge port p{i} in {self.switch} never reached forwarding")
                time.sleep(0.05)

    def run(self, i: int, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside node ``i``'s namespace (``i == 0``: the switch namespace)."""
        ns = self.switch if i == 0 else self.node_namespaces[i]
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **popen_kwargs)
        self._started.append(proc)
        return proc

    def close(self) -> None:
        """Kill every process in our namespaces, reap what we started, delete the namespaces."""
        for ns in self._created:
            deadline = time.monotonic() + 10
            while True:
                try:
                    pids = [int(p) for p in ip("netns", "pids", ns).split()]
                except RuntimeError:
                    pids = []
                if not pids or time.monotonic() > deadline:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                for proc in self._started:
                    if proc.poll() is not None or proc.pid in pids:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(timeout=0.1)
                time.sleep(0.02)
        for proc in self._started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=COMMAND_TIMEOUT_S)
        self._started.clear()
        for ns in reversed(self._created):
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", ns)
        self._created.clear()


# --- the daemons ---------------------------------------------------------------------------

Runner = Callable[..., "subprocess.Popen[Any]"]


class Daemons:
    """One real hacluster daemon per name.  ``media(i)`` gives node i's ha.cf media lines."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        media: Callable[[int], list[str]],
        keepalive_ms: int,
        deadtime_ms: int,
        realtime: bool = False,
        initdead_ms: int | None = None,
        run: Callable[..., subprocess.Popen[Any]] | None = None,
        port: int | None = None,
    ) -> None:
        self.names = list(names)
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.realtime = realtime
        self.initdead_ms = initdead_ms if initdead_ms is not None else max(2000, 2 * deadtime_ms)
        self.port = port if port is not None else 20000 + secrets.randbelow(20000)
        self._run = run
        self.key = secrets.token_hex(20)
        self.root = Path(tempfile.mkdtemp(prefix="hacbench-"))
        self.root.chmod(0o755)
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.pids: dict[str, int] = {}
        for i, name in enumerate(self.names, start=1):
            self._write(i, name, media(i))

    def _write(self, i: int, name: str, media: list[str]) -> None:
        d = self.root / name
        (d / "state").mkdir(parents=True)
        warntime_ms = max(self.keepalive_ms + 1, self.deadtime_ms * 3 // 5)
        lines = [
            "# written by bench/lab.py",
            f"udpport {self.port}",
            f"keepalive {self.keepalive_ms}ms",
            f"deadtime {self.deadtime_ms}ms",
            f"warntime {warntime_ms}ms",
            f"initdead {self.initdead_ms}ms",
            *media,
            f"node {' '.join(self.names)}",
            f"realtime {'on' if self.realtime else 'off'}",
            "logfacility none",
            "debug 0",
            f"logfile {self.log_path(name)}",
            f"api_socket {self.socket_path(name)}",
            f"state_dir {d / 'state'}",
        ]
        (d / "ha.cf").write_text("\n".join(lines) + "\n")
        (d / "authkeys").write_text(f"auth 1\n1 sha1 {self.key}\n")
        (d / "authkeys").chmod(0o600)

    def socket_path(self, name: str) -> Path:
        return self.root / name / "api.sock"

    def log_path(self, name: str) -> Path:
        return self.root / name / "ha-log"

    def status(self, name: str, timeout_s: float = 1.0) -> dict[str, Any] | None:
        try:
            return request(str(self.socket_path(name)), "status", timeout_s=timeout_s)
        except (CliError, OSError):
            return None

    def states(self, observer: str, timeout_s: float = 1.0) -> dict[str, str]:
        doc = self.status(observer, timeout_s)
        return {} if doc is None else {n["name"]: n["state"] for n in doc["nodes"]}

    def start(self, name: str, timeout_s: float = 15.0) -> None:
        i = self.names.index(name) + 1
        argv = [
            sys.executable,
            "-m",
            "hacluster.shell.main",
            "daemon",
            "--config",
            str(self.root / name / "ha.cf"),
            "--node",
            name,
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.socket_path(name).unlink(missing_ok=True)
        with (self.root / name / "stderr.log").open("ab") as err:
            kwargs: dict[str, Any] = {
                "stdin": subprocess.DEVNULL,
                "stdout": err,
                "stderr": err,
                "env": env,
                "cwd": REPO,
            }
            if self._run is not None:
                proc = self._run(i, argv, **kwargs)
            else:
                proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.procs[name] = proc
        deadline = time.monotonic() + timeout_s
        while True:
            doc = self.status(name)
            if doc is not None:
                self.pids[name] = int(doc["cluster"]["pid"])
                return
            if proc.poll() is not None:
                raise RuntimeError(f"daemon {name} exited rc={proc.returncode} at start:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon {name} API silent after {timeout_s}s:\n{self.tail(name)}")
            time.sleep(0.01)

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def kill(self, name: str) -> float:
        """SIGKILL the daemon; returns time.monotonic() just before the signal; waits for exit."""
        at = time.monotonic()
        os.kill(self.pids[name], signal.SIGKILL)
        self.procs[name].wait(timeout=10)
        return at

    def wait_all_active(self, names: Sequence[str] | None = None, timeout_s: float = 20.0) -> None:
        group = list(names or self.names)
        deadline = time.monotonic() + timeout_s
        while True:
            if all(all(self.states(o).get(n) == "active" for n in group) for o in group):
                return
            if time.monotonic() > deadline:
                views = {o: self.states(o) for o in group}
                raise RuntimeError(f"not all active after {timeout_s}s: {views}")
            time.sleep(0.02)

    def tail(self, name: str, lines: int = 30) -> str:
        texts = []
        for path in (self.log_path(name), self.root / name / "stderr.log"):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        return "\n".join("".join(texts).splitlines()[-lines:])

    def log_lines(self, name: str) -> list[str]:
        try:
            return self.log_path(name).read_text(errors="replace").splitlines()
        except OSError:
            return []

    def close(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, KeyError):
                    os.kill(self.pids[name], signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Daemons:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            for name in self.procs:
                print(f"--- {name} log tail ---\n{self.tail(name)}", file=sys.stderr)
        self.close()


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def log_wall_time(line: str) -> float | None:
    """The wall time (epoch seconds) of a daemon log line: logging's asctime, local time, ms."""
    match = LOG_TIME.match(line)
    if match is None:
        return None
    whole = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    return whole + int(match.group(2)) / 1000


def scheduler_of(pid: int) -> str:
    try:
        policy = os.sched_getscheduler(pid)
        priority = os.sched_getparam(pid).sched_priority
    except OSError as exc:
        return f"unknown ({exc.strerror})"
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}
    return f"{names.get(policy & ~getattr(os, 'SCHED_RESET_ON_FORK', 0), str(policy))} rtprio={priority}"


# --- the sniffer (run inside a namespace) --------------------------------------------------

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def sniff(iface: str, port: int) -> int:
    # ETH_P_ALL: a bridge port hands frames to its bridge before protocol-specific taps run,
    # so only an all-protocols tap sees them on the port itself.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((iface, ETH_P_ALL))
    print("ready", flush=True)
    while True:
        data, ancillary, _flags, address = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        if address[2] == PACKET_OUTGOING or len(data) < 14 + 20 + 8 or data[12:14] != b"\x08\x00":
            continue
        ip_header = data[14:]
        if ip_header[9] != socket.IPPROTO_UDP:
            continue
        ihl = (ip_header[0] & 0x0F) * 4
        (dst_port,) = struct.unpack_from("!H", ip_header, ihl + 2)
        if dst_port != port:
            continue
        stamp = time.time()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = struct.unpack("qq", value[:16])
                stamp = seconds + nanos / 1e9
        print(f"{socket.inet_ntoa(ip_header[12:16])} {stamp:.6f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "sniff":
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            sys.exit(sniff(sys.argv[2], int(sys.argv[3])))
        sys.exit(0)
    print("usage: python3 bench/lab.py sniff IFACE PORT", file=sys.stderr)
    sys.exit(2)
