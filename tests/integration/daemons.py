"""Real ``hacluster daemon`` processes for end-to-end tests, in namespaces or on ptys.

    with Lab("hacd", nodes=3) as lab, DaemonCluster(lab, media="bcast") as cluster:
        cluster.start_all()
        cluster.wait_all_active(timeout_s=5)
        killed_at = cluster.kill("n3")
        seen_at = cluster.wait_state("n1", "n3", "dead", timeout_s=2)

Theory of operation: the harness writes one directory per node (ha.cf, authkeys 0600, state
dir, log file, API socket) under a short temporary root on the shared filesystem, starts
``python -m hacluster.shell.main daemon`` inside the node's namespace through ``Lab.run`` (or
directly when there is no lab, e.g. for serial links over a pty pair), and reads each daemon's
status straight from its API socket: a Unix socket is a file, so the test process reaches it
from the root namespace.  Waiting is polling every ``POLL_S`` (10 ms), fast enough to time a
500 ms deadtime.  Node ``i`` of the lab is named ``n<i>``.

On an exception inside the ``with`` block the harness prints every node's log tail (pytest
shows captured output of failed tests), kills the daemons and removes its files.

Run as a script, this file is also a tiny packet tool for hostile-packet tests, meant to run
inside an attacker namespace (``Lab.run``/``Lab.exec``):

    python daemons.py capture PORT COUNT TIMEOUT_S OUT   # record datagrams received on PORT
    python daemons.py send ADDR PORT IN [REPEAT] [GAP_MS] # send the datagrams stored in IN
    python daemons.py flood ADDR PORT COUNT SIZE SEED RATE [PREFIX_HEX]  # COUNT random datagrams, RATE/s

Datagram files hold ``<4-byte big-endian length><bytes>`` records.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.01
"""How often wait helpers ask the daemons; small against a 500 ms deadtime."""
API_TIMEOUT_S = 1.0


# --- prerequisites -------------------------------------------------------------------------


def require(reason: str | None) -> None:
    """Skip when ``reason`` names a missing prerequisite; as root in CI, fail instead.

    CI runs as root precisely so that these tests run: a missing tool there is a broken
    image, not a reason to pass quietly.
    """
    import pytest

    if reason is None:
        return
    if os.geteuid() == 0 and os.environ.get("CI"):
        pytest.fail(f"integration prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_lab() -> None:
    """Like ``netns.require_lab`` but failing in CI as root."""
    import pytest
    from netns import require_lab as lab_check

    try:
        lab_check()
    except pytest.skip.Exception as exc:
        require(str(exc.msg))


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    require(f"needs {' '.join(missing)} on PATH (apt-get install {' '.join(missing)})" if missing else None)


# --- the API -------------------------------------------------------------------------------


def api_status(socket_path: Path | str, timeout_s: float = API_TIMEOUT_S) -> dict[str, Any] | None:
    """The daemon's status document, or None when it does not answer (not started, dead)."""
    from hacluster.cli.client import CliError, request

    try:
        return request(str(socket_path), "status", timeout_s=timeout_s)
    except (CliError, OSError):
        # OSError: the client lets a reset during recv through (daemon killed mid-answer).
        return None


def node_entry(doc: dict[str, Any] | None, node: str) -> dict[str, Any] | None:
    if doc is None:
        return None
    for entry in doc["nodes"]:
        if entry["name"] == node:
            assert isinstance(entry, dict)
            return entry
    return None


def dropped(doc: dict[str, Any], reason: str) -> int:
    value = doc["packets"]["dropped"].get(reason, 0)
    assert isinstance(value, int)
    return value


# --- configuration -------------------------------------------------------------------------

Media = Callable[[int, "DaemonCluster"], list[str]]
"""Given a node index (1-based), the ha.cf media lines (and bind_address lines) for it."""


def bcast_media(i: int, cluster: DaemonCluster) -> list[str]:
    return [f"bcast {cluster.iface(i)}"]


def mcast_media(i: int, cluster: DaemonCluster) -> list[str]:
    return [f"mcast {cluster.iface(i)} {cluster.mcast_group} {cluster.port} 1 0"]


def ucast_media(i: int, cluster: DaemonCluster) -> list[str]:
    assert cluster.lab is not None, "ucast media need a lab for addresses"
    return [f"ucast {cluster.iface(i)} {cluster.lab.address(j)}" for j in cluster.indices]


def ucast6_media(i: int, cluster: DaemonCluster) -> list[str]:
    assert cluster.lab is not None, "ucast6 media need a lab for addresses"
    return [f"ucast6 {cluster.iface(i)} {cluster.lab.address6(j)}" for j in cluster.indices]


def mcast6_media(i: int, cluster: DaemonCluster) -> list[str]:
    return [f"mcast6 {cluster.iface(i)} {cluster.mcast6_group} {cluster.port} 1 0"]


MEDIA: dict[str, Media] = {
    "bcast": bcast_media,
    "mcast": mcast_media,
    "ucast": ucast_media,
    "ucast6": ucast6_media,
    "mcast6": mcast6_media,
}


def serial_media(*devices: str | Path) -> Media:
    """Node ``i`` uses ``devices[i-1]``: one end of a pty pair (or null-modem cable) each."""

    def media(i: int, cluster: DaemonCluster) -> list[str]:
        return ["baud 115200", f"serial {devices[i - 1]}"]

    return media


def combine(*parts: Media) -> Media:
    def media(i: int, cluster: DaemonCluster) -> list[str]:
        lines: list[str] = []
        for part in parts:
            lines += part(i, cluster)
        # baud must precede every serial line; keep it first.
        return sorted(lines, key=lambda line: not line.startswith("baud"))

    return media


# --- the cluster ---------------------------------------------------------------------------


class DaemonCluster:
    """One real daemon per node; node ``i`` is ``n<i>`` (or ``names[i-1]``)."""

    def __init__(
        self,
        lab: Any | None,
        *,
        media: str | Media = "bcast",
        nodes: int | None = None,
        names: Sequence[str] | None = None,
        daemons: Iterable[int] | None = None,
        keepalive_ms: int = 100,
        deadtime_ms: int = 500,
        warntime_ms: int | None = None,
        initdead_ms: int | None = None,
        port: int | None = None,
        key: str | None = None,
        method: str = "sha1",
        extra: Sequence[str] = (),
        realtime: bool = False,
    ) -> None:
        """``lab`` is a ``netns.Lab`` or None (no namespaces: serial or loopback only).

        ``names`` lists every configured node (default ``n1..nN``); ``daemons`` the indices
        this harness runs (default all), so a foreign node (a real Heartbeat) can be listed
        in ``node`` lines without being started here.
        """
        count = nodes if nodes is not None else (len(names) if names else lab.nodes if lab else 2)
        self.lab = lab
        self.names = list(names) if names else [f"n{i}" for i in range(1, count + 1)]
        assert len(self.names) == count, (self.names, count)
        self.indices = list(range(1, count + 1))
        self.daemon_indices = list(daemons) if daemons is not None else list(self.indices)
        self.media = MEDIA[media] if isinstance(media, str) else media
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.warntime_ms = (
            warntime_ms if warntime_ms is not None else max(keepalive_ms + 1, deadtime_ms * 3 // 5)
        )
        self.initdead_ms = initdead_ms if initdead_ms is not None else max(2000, 2 * deadtime_ms)
        self.port = port if port is not None else 20000 + secrets.randbelow(20000)
        self.mcast_group = f"239.77.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
        self.mcast6_group = f"ff12::77:{secrets.randbelow(0xFFFF) + 1:x}"
        self.key = key if key is not None else secrets.token_hex(20)
        self.method = method
        self.extra = list(extra)
        self.realtime = realtime
        self.root = Path(tempfile.mkdtemp(prefix="hacd-"))
        self.root.chmod(0o755)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for i in self.daemon_indices:
            self.write_config(i)

    # --- names and paths --------------------------------------------------------------------

    def name(self, i: int) -> str:
        return self.names[i - 1]

    def index(self, name: str) -> int:
        return self.names.index(name) + 1

    def iface(self, i: int) -> str:
        return self.lab.iface(i) if self.lab is not None else "lo"

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def socket_path(self, name: str) -> Path:
        return self.node_dir(name) / "api.sock"

    def config_path(self, name: str) -> Path:
        return self.node_dir(name) / "ha.cf"

    def log_path(self, name: str) -> Path:
        return self.node_dir(name) / "ha-log"

    def stderr_path(self, name: str) -> Path:
        return self.node_dir(name) / "stderr.log"

    @property
    def daemon_names(self) -> list[str]:
        return [self.name(i) for i in self.daemon_indices]

    # --- configuration --------------------------------------------------------------------

    def ha_cf(self, i: int) -> str:
        name = self.name(i)
        lines = [
            "# written by tests/integration/daemons.py",
            f"udpport {self.port}",
            f"keepalive {self.keepalive_ms}ms",
            f"deadtime {self.deadtime_ms}ms",
            f"warntime {self.warntime_ms}ms",
            f"initdead {self.initdead_ms}ms",
            *self.media(i, self),
            f"node {' '.join(self.names)}",
            f"realtime {'on' if self.realtime else 'off'}",
            "logfacility none",
            "debug 0",
            f"logfile {self.log_path(name)}",
            f"api_socket {self.socket_path(name)}",
            f"state_dir {self.node_dir(name) / 'state'}",
            *self.extra,
        ]
        return "\n".join(lines) + "\n"

    def write_config(self, i: int) -> Path:
        node_dir = self.node_dir(self.name(i))
        node_dir.mkdir(parents=True, exist_ok=True)
        path = self.config_path(self.name(i))
        path.write_text(self.ha_cf(i))
        authkeys = node_dir / "authkeys"
        authkeys.write_text(f"auth 1\n1 {self.method} {self.key}\n")
        authkeys.chmod(0o600)
        return path

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, name: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Start one daemon and wait until its API answers; returns its first status."""
        old = self.procs.get(name)
        assert old is None or old.poll() is not None, f"{name} is already running pid={old.pid}"
        i = self.index(name)
        argv = [
            sys.executable,
            "-m",
            "hacluster.shell.main",
            "daemon",
            "--config",
            str(self.config_path(name)),
            "--node",
            name,
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.socket_path(name).unlink(missing_ok=True)
        with self.stderr_path(name).open("ab") as err:
            kwargs: dict[str, Any] = {
                "stdin": subprocess.DEVNULL,
                "stdout": err,
                "stderr": err,
                "env": env,
                "cwd": REPO,
            }
            if self.lab is not None:
                proc = self.lab.run(i, argv, **kwargs)
            else:
                proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.procs[name] = proc
        deadline = time.monotonic() + timeout_s
        while True:
            doc = api_status(self.socket_path(name))
            if doc is not None:
                return doc
            if proc.poll() is not None:
                raise AssertionError(
                    f"daemon {name} exited rc={proc.returncode} at start\n{self.diagnostics([name])}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"daemon {name} API did not answer within {timeout_s}s\n{self.diagnostics([name])}"
                )
            time.sleep(POLL_S)

    def start_all(self) -> None:
        for name in self.daemon_names:
            self.start(name)

    def pid(self, name: str) -> int:
        """The daemon's own pid (from its status: ``ip netns exec`` may stand between)."""
        doc = self.status(name)
        assert doc is not None, f"{name} does not answer\n{self.diagnostics([name])}"
        pid = doc["cluster"]["pid"]
        assert isinstance(pid, int)
        return pid

    def signal(self, name: str, sig: signal.Signals) -> float:
        """Send ``sig`` to the daemon; returns the monotonic time just before sending."""
        pid = self.pid(name)
        sent_at = time.monotonic()
        os.kill(pid, sig)
        return sent_at

    def kill(self, name: str) -> float:
        """SIGKILL (a crash); returns the kill time and waits until the process is gone."""
        killed_at = self.signal(name, signal.SIGKILL)
        self.wait_exit(name)
        return killed_at

    def terminate(self, name: str) -> float:
        """SIGTERM (graceful stop); returns when it was sent, without waiting."""
        return self.signal(name, signal.SIGTERM)

    def pause(self, name: str) -> float:
        return self.signal(name, signal.SIGSTOP)

    def resume(self, name: str) -> float:
        return self.signal(name, signal.SIGCONT)

    def wait_exit(self, name: str, timeout_s: float = 10.0) -> int:
        proc = self.procs[name]
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"daemon {name} still running {timeout_s}s later\n{self.diagnostics([name])}"
            ) from None

    def is_running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        """Kill every daemon still running and remove the files; safe to call twice."""
        for name, proc in self.procs.items():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, AssertionError):
                    doc = api_status(self.socket_path(name), timeout_s=0.2)
                    if doc is not None:
                        os.kill(doc["cluster"]["pid"], signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DaemonCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            print(self.diagnostics(), flush=True)
        self.close()

    # --- status and waiting ---------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any] | None:
        return api_status(self.socket_path(name))

    def states(self, observer: str) -> dict[str, str]:
        """``{node: state}`` as ``observer`` sees it; empty when it does not answer."""
        doc = self.status(observer)
        return {} if doc is None else {entry["name"]: entry["state"] for entry in doc["nodes"]}

    def wait_for(
        self, what: str, predicate: Callable[[], bool], timeout_s: float, names: Sequence[str] | None = None
    ) -> float:
        """Poll ``predicate`` every ``POLL_S``; returns the monotonic time it first held."""
        deadline = time.monotonic() + timeout_s
        while True:
            if predicate():
                return time.monotonic()
            if time.monotonic() > deadline:
                seen = {
                    observer: self.states(observer)
                    for observer in self.daemon_names
                    if self.is_running(observer)
                }
                raise AssertionError(
                    f"timed out after {timeout_s}s waiting for {what}; states seen: {seen}\n{self.diagnostics(names)}"
                )
            time.sleep(POLL_S)

    def wait_state(self, observer: str, node: str, state: str, timeout_s: float) -> float:
        """Wait until ``observer`` reports ``node`` in ``state``; returns when it was seen."""
        return self.wait_for(
            f"{observer} to see {node} {state}",
            lambda: self.states(observer).get(node) == state,
            timeout_s,
            [observer, node] if node in self.procs else [observer],
        )

    def wait_states(
        self, observers: Sequence[str], node: str, state: str, timeout_s: float
    ) -> dict[str, float]:
        """Wait until every observer reports ``node`` in ``state``; returns when each first did.

        Observers are polled round-robin, so each time is accurate to about one poll cycle.
        """
        seen: dict[str, float] = {}
        deadline = time.monotonic() + timeout_s
        while len(seen) < len(observers):
            for observer in observers:
                if observer not in seen and self.states(observer).get(node) == state:
                    seen[observer] = time.monotonic()
            if len(seen) == len(observers):
                break
            if time.monotonic() > deadline:
                missing = [o for o in observers if o not in seen]
                views = {o: self.states(o) for o in missing}
                raise AssertionError(
                    f"timed out after {timeout_s}s: {missing} never saw {node} {state}; they see {views}\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(POLL_S)
        return seen

    def wait_all_active(self, names: Sequence[str] | None = None, timeout_s: float = 10.0) -> float:
        """Wait until each of ``names`` (default: running daemons) sees all of them ``active``."""
        group = list(names) if names is not None else [n for n in self.daemon_names if self.is_running(n)]

        def all_active() -> bool:
            for observer in group:
                states = self.states(observer)
                if any(states.get(node) != "active" for node in group):
                    return False
            return True

        return self.wait_for(f"{group} all active", all_active, timeout_s)

    def generation_seen(self, observer: str, node: str) -> int | None:
        entry = node_entry(self.status(observer), node)
        return None if entry is None else entry["generation"]

    def link_states(self, observer: str, node: str) -> dict[str, str]:
        entry = node_entry(self.status(observer), node)
        return {} if entry is None else {link["name"]: link["state"] for link in entry["links"]}

    # --- logs -----------------------------------------------------------------------------

    def log(self, name: str) -> str:
        texts = []
        for path in (self.log_path(name), self.stderr_path(name)):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        return "".join(texts)

    def diagnostics(self, names: Sequence[str] | None = None, tail_lines: int = 40) -> str:
        parts = []
        for name in names or self.daemon_names:
            tail = "\n".join(self.log(name).splitlines()[-tail_lines:])
            running = "running" if self.is_running(name) else "not running"
            parts.append(f"--- {name} ({running}) log tail ---\n{tail}")
        return "\n".join(parts)


# --- the packet tool (runs inside a namespace) ---------------------------------------------


def write_datagrams(path: Path, datagrams: Iterable[bytes]) -> None:
    with path.open("wb") as out:
        for datagram in datagrams:
            out.write(struct.pack(">I", len(datagram)) + datagram)


def read_datagrams(path: Path) -> list[bytes]:
    data = path.read_bytes()
    datagrams, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        datagrams.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return datagrams


def _capture(port: int, count: int, timeout_s: float, out: Path) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", port))
    with contextlib.suppress(OSError):
        group = os.environ.get("CAPTURE_MCAST_GROUP")
        if group:
            mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    print("ready", flush=True)
    deadline = time.monotonic() + timeout_s
    datagrams: list[bytes] = []
    while len(datagrams) < count and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            break
        datagrams.append(data)
    write_datagrams(out, datagrams)
    return 0 if datagrams else 1


def _sender(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return sock


def _send(address: str, port: int, path: Path, repeat: int, gap_ms: int) -> int:
    datagrams = read_datagrams(path)
    sock = _sender(address)
    for round_ in range(repeat):
        for datagram in datagrams:
            sock.sendto(datagram, (address, port))
        if gap_ms and round_ + 1 < repeat:
            time.sleep(gap_ms / 1000)
    return 0


def _flood(address: str, port: int, count: int, size: int, seed: int, rate: int, prefix: bytes = b"") -> int:
    """Send ``count`` random datagrams, ``rate`` per second (0: as fast as possible).

    Each starts with ``prefix`` (e.g. a sealed packet's magic, version and slot, so that the
    framing is valid and only the tag is wrong)."""
    import random

    rng = random.Random(seed)
    pool = [prefix + rng.randbytes(size - len(prefix)) for _ in range(64)]
    sock = _sender(address)
    started = time.monotonic()
    for sent in range(count):
        if rate and sent % 100 == 0:
            ahead_s = started + sent / rate - time.monotonic()
            if ahead_s > 0:
                time.sleep(ahead_s)
        sock.sendto(pool[sent % len(pool)], (address, port))
    print(f"sent {count} in {time.monotonic() - started:.3f} s", flush=True)
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "capture":
        return _capture(int(args[0]), int(args[1]), float(args[2]), Path(args[3]))
    if command == "send":
        repeat = int(args[3]) if len(args) > 3 else 1
        gap_ms = int(args[4]) if len(args) > 4 else 0
        return _send(args[0], int(args[1]), Path(args[2]), repeat, gap_ms)
    if command == "flood":
        prefix = bytes.fromhex(args[6]) if len(args) > 6 else b""
        return _flood(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]), int(args[5]), prefix)
    print(f"unknown command {command!r}; expected capture, send or flood", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
