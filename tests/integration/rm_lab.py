"""Resource failover in namespaces: node daemons with their own mount namespace, a client
namespace probing a floating address, and the operations a failover test needs.

    with RmLab("rmf", nodes=2) as lab, RmCluster(lab) as cluster:
        cluster.write_resources_crm(vip_group_crm(lab.vip, agents="hacluster"))
        cluster.start_all()
        holder = cluster.wait_group_started("grp", timeout_s=15)
        with VipProbe(lab, cluster) as probe:
            probe.wait_answer_from(holder, timeout_s=5)
            crashed_ns = cluster.crash(holder)
            ...

Theory of operation
-------------------
``RmLab`` is a ``netns.Lab`` with one namespace more than there are cluster nodes: the last
one is the *client*, on the same bridge, never part of the cluster.  The floating address
(``lab.vip``) is host 100 of the lab's /24.

``RmCluster`` is a ``daemons.DaemonCluster`` that starts each daemon as
``ip netns exec NS unshare -m --propagation private <python> -m hacluster.shell.main daemon``,
so a node's mounts (a Filesystem resource) belong to that node alone and vanish when its last
process dies.  ``resource_d`` (optional) is a directory of Heartbeat ``resource.d`` scripts,
linked as ``resource.d`` beside each node's ha.cf: the daemon looks there, as Heartbeat looks
in ``/etc/ha.d/resource.d`` beside ``/etc/ha.d/ha.cf``.

Every node namespace also runs a tiny UDP echo *responder* bound to 0.0.0.0 that answers
with its node name.  The client runs a *prober* that sends a numbered datagram to the VIP
every ``interval_ms`` and appends ``seq sent_ns recv_ns node`` (CLOCK_MONOTONIC, shared by
every namespace) to a file for every answer.  A node only accepts a datagram for the VIP
while it holds the address, so the answering name says who holds it.

A *crash* is SIGKILL of every process in the node's network namespace (daemon, responder,
agents, PostgreSQL, …) plus its link going down, like a power cut.  On a real machine the
dead node's processes vanish with it; here a killed daemon's orphans (a postmaster that
``pg_ctl`` left behind) would be reparented to PID 1 and stay zombies, still named
``postgres`` in /proc, until PID 1 gets round to reaping them (about 2 s in CI's sandbox).
So while a cluster is open the test process is a *child subreaper*: orphans of its daemons
come to it, and ``crash`` reaps them at once.  The namespace keeps its
addresses, so ``reboot`` first does what a reboot does (the VIP gone from the interface, the
agents' scratch dir empty), then brings the link up and starts daemon and responder again.

Run as a script inside a namespace, this file is the responder or the prober:

    python rm_lab.py respond PORT NAME
    python rm_lab.py probe ADDRESS PORT INTERVAL_MS OUT
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from daemons import REPO, DaemonCluster, api_status  # noqa: E402
from netns import Lab  # noqa: E402

PROBE_PORT = 7447
CLI = [sys.executable, "-m", "hacluster.cli.main"]
VIP_HOST = 100
PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper(on: bool) -> None:
    """Make orphaned descendants of this process its children (``prctl``), or stop doing so."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0]


def reap_orphans(pids: Sequence[int], tracked: set[int], timeout_s: float = 5.0) -> None:
    """Wait until every one of ``pids`` (killed) is gone from /proc.

    Those that became our children as orphans (we are a subreaper) and that no ``Popen`` in
    ``tracked`` will wait for are reaped here; the rest are reaped by their own parent.
    """
    me = os.getpid()
    deadline = time.monotonic() + timeout_s
    left = list(pids)
    while left:
        for pid in list(left):
            info = _parent_and_state(pid)
            if info is not None and info[0] == me and pid not in tracked:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                info = _parent_and_state(pid)
            if info is None:
                left.remove(pid)
        if left and time.monotonic() > deadline:
            raise AssertionError(f"processes {left} of a crashed node are still in /proc")
        if left:
            time.sleep(0.005)


# --- configuration text --------------------------------------------------------------------


def vip_group_crm(
    vip: str,
    *,
    agents: str = "hacluster",
    keepalive_monitor_ms: int = 1000,
    stickiness: int | None = None,
    extra: Sequence[str] = (),
) -> str:
    """A group ``grp`` of ``vip`` (IPaddr2) then ``dummy`` (Dummy) from provider ``agents``.

    No ``nic``: each node's interface has its own name (``e<i>``); the agent finds the one
    whose subnet holds the address, as both IPaddr2 agents do.
    """
    timeout = "20s"
    lines = [
        f"primitive vip ocf:{agents}:IPaddr2 params ip={vip} cidr_netmask=24 "
        f"op monitor interval={keepalive_monitor_ms}ms timeout={timeout}",
        f"primitive dummy ocf:{agents}:Dummy op monitor interval={keepalive_monitor_ms}ms timeout={timeout}",
        "group grp vip dummy",
        "property stonith-enabled=false",
    ]
    if stickiness is not None:
        lines.append(f"rsc_defaults resource-stickiness={stickiness}")
    lines += list(extra)
    return "\n".join(lines) + "\n"


# --- the lab -------------------------------------------------------------------------------


class RmLab(Lab):
    """``nodes`` cluster namespaces (1..nodes) and one client namespace (nodes+1)."""

    def __init__(
        self, prefix: str, nodes: int = 2, *, iface_name: str | None = None, ipv6: bool = False
    ) -> None:
        """``iface_name``: give every namespace's interface this one name (e.g. ``eth0``, which
        Heartbeat's IPaddr wrapper assumes) instead of ``e<i>``.  ``ipv6``: an IPv6-only lab,
        whose floating address is ``vip6``."""
        super().__init__(prefix, nodes=nodes + 1, ipv6=ipv6)
        self.cluster_nodes = nodes
        self.client = nodes + 1
        self.iface_name = iface_name

    def iface(self, i: int) -> str:
        return self.iface_name or super().iface(i)

    def __enter__(self) -> RmLab:
        super().__enter__()
        return self

    @property
    def vip(self) -> str:
        return self.address(VIP_HOST)

    @property
    def vip6(self) -> str:
        return self.address6(VIP_HOST)


class RmCluster(DaemonCluster):
    """DaemonCluster whose daemons each get a private mount namespace, plus responders."""

    def __init__(self, lab: RmLab, *, resource_d: Path | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("names", [f"n{i}" for i in range(1, lab.cluster_nodes + 1)])
        super().__init__(lab, **kwargs)
        self.rmlab = lab
        self.resource_d = resource_d
        self.responders: dict[str, subprocess.Popen[bytes]] = {}
        set_child_subreaper(True)

    def __enter__(self) -> RmCluster:
        return self

    # --- configuration --------------------------------------------------------------------

    def write_resources_crm(self, text: str) -> None:
        for name in self.names:
            (self.node_dir(name) / "haresources").unlink(missing_ok=True)
            (self.node_dir(name) / "resources.crm").write_text(text)

    def write_haresources(self, text: str) -> None:
        for name in self.names:
            (self.node_dir(name) / "resources.crm").unlink(missing_ok=True)
            (self.node_dir(name) / "haresources").write_text(text)

    def rsc_tmp(self, name: str) -> Path:
        """The agents' scratch dir (HA_RSCTMP) of node ``name``: Dummy's state files live here."""
        return self.node_dir(name) / "state" / "rsctmp"

    # --- lifecycle ------------------------------------------------------------------------

    def launcher(self, name: str) -> list[str]:
        """The argv that runs ``name``'s daemon in its own mount namespace."""
        daemon = [
            sys.executable,
            "-m",
            "hacluster.shell.main",
            "daemon",
            "--config",
            str(self.config_path(name)),
            "--node",
            name,
        ]
        unshare = ["unshare", "-m", "--propagation", "private"]
        if self.resource_d is not None:
            link = self.config_path(name).parent / "resource.d"
            if not link.exists():
                link.symlink_to(self.resource_d)
        return [*unshare, *daemon]

    def start(self, name: str, timeout_s: float = 10.0) -> dict[str, Any]:
        old = self.procs.get(name)
        assert old is None or old.poll() is not None, f"{name} is already running pid={old.pid}"
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.socket_path(name).unlink(missing_ok=True)
        with self.stderr_path(name).open("ab") as err:
            proc = self.rmlab.run(
                self.index(name),
                self.launcher(name),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
                cwd=REPO,
            )
        self.procs[name] = proc
        deadline = time.monotonic() + timeout_s
        while True:
            doc = api_status(self.socket_path(name))
            if doc is not None:
                own_mnt = os.readlink("/proc/self/ns/mnt")
                assert os.readlink(f"/proc/{doc['cluster']['pid']}/ns/mnt") != own_mnt, (
                    f"daemon {name} shares the test's mount namespace"
                )
                return doc
            if proc.poll() is not None:
                raise AssertionError(
                    f"daemon {name} exited rc={proc.returncode} at start\n{self.diagnostics([name])}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"daemon {name} API did not answer within {timeout_s}s\n{self.diagnostics([name])}"
                )
            time.sleep(0.01)

    def start_responder(self, name: str) -> None:
        argv = [sys.executable, str(HERE / "rm_lab.py"), "respond", str(PROBE_PORT), name]
        self.responders[name] = self.rmlab.run(
            self.index(name),
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        stdout = self.responders[name].stdout
        assert stdout is not None
        line = stdout.readline()
        assert line.strip() == b"ready", f"responder on {name} did not start: {line!r}"

    def start_all(self) -> None:
        for name in self.daemon_names:
            self.start(name)
            self.start_responder(name)

    def crash(self, name: str) -> int:
        """Power cut: SIGKILL every process of the node, then its link down.

        Returns CLOCK_MONOTONIC ns just before the first SIGKILL; returns once all are gone.
        """
        i = self.index(name)
        pids = self.rmlab.pids(i)
        crashed_ns = time.monotonic_ns()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.rmlab.set_link(i, up=False)
        self.rmlab.kill_all(i)
        for proc in (self.procs.get(name), self.responders.get(name)):
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self.reap(pids)
        return crashed_ns

    def _tracked(self) -> set[int]:
        procs = [*self.rmlab._started, *self.procs.values(), *self.responders.values()]
        return {proc.pid for proc in procs}

    def reap(self, pids: Sequence[int], timeout_s: float = 5.0) -> None:
        """Wait until every one of ``pids`` is gone from /proc, reaping the orphans we adopted."""
        reap_orphans(pids, self._tracked(), timeout_s)

    def reboot(self, name: str, *, vip: str | None = None) -> None:
        """Bring a crashed node back as a reboot would: VIP gone, scratch dir empty, link up."""
        i = self.index(name)
        if vip is not None:
            prefix = 64 if ":" in vip else 24
            self.rmlab.exec(i, ["ip", "addr", "del", f"{vip}/{prefix}", "dev", self.iface(i)])
        shutil.rmtree(self.rsc_tmp(name), ignore_errors=True)
        self.rmlab.set_link(i, up=True)
        self.rmlab.wait_for_carrier(i, up=True)
        self.start(name)
        self.start_responder(name)

    # --- resources ------------------------------------------------------------------------

    def resources(self, observer: str) -> dict[str, dict[str, Any]]:
        doc = self.status(observer)
        return {} if doc is None else {r["id"]: r for r in doc["resources"]}

    def group_node(self, observer: str, group: str) -> str | None:
        """The node where every member of ``group`` is started, as ``observer`` sees it."""
        doc = self.status(observer)
        if doc is None:
            return None
        members = [r for r in doc["resources"] if r["group"] == group]
        if not members or any(r["state"] != "started" for r in members):
            return None
        nodes = {r["node"] for r in members}
        if len(nodes) != 1 or not isinstance(next(iter(nodes)), str):
            return None
        return str(next(iter(nodes)))

    def wait_group_started(
        self,
        group: str,
        *,
        timeout_s: float,
        observers: Sequence[str] | None = None,
        on: str | None = None,
        not_on: str | None = None,
    ) -> str:
        """Wait until every observer sees ``group`` started on one node (``on``, or not
        ``not_on``); returns that node."""
        group_observers = list(observers or [n for n in self.daemon_names if self.is_running(n)])
        found: list[str] = []

        def settled() -> bool:
            where = {self.group_node(o, group) for o in group_observers}
            if len(where) != 1:
                return False
            node = next(iter(where))
            if node is None or (on is not None and node != on) or node == not_on:
                return False
            found[:] = [node]
            return True

        self.wait_for(f"group {group} started (on={on}, not_on={not_on})", settled, timeout_s)
        return found[0]

    def cli(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the operator CLI against ``name``'s API socket (from the test's namespace)."""
        done = subprocess.run(
            [*CLI, "--socket", str(self.socket_path(name)), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            cwd=REPO,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"hacrm {' '.join(args)} rc={done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def config_epoch(self, name: str) -> int:
        doc = self.status(name)
        assert doc is not None, f"{name} does not answer"
        epoch = doc["cluster"]["config_epoch"]
        assert isinstance(epoch, int)
        return epoch

    def close(self) -> None:
        super().close()
        for proc in self.responders.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        self.responders.clear()
        for ns in self.rmlab.node_namespaces.values():  # orphans still alive (a postmaster)
            for pid in self.rmlab._pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._reap_adopted()
        set_child_subreaper(False)

    def _reap_adopted(self) -> None:
        """Reap every zombie child that no Popen owns (orphans adopted as subreaper)."""
        me, tracked = os.getpid(), self._tracked()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            adopted = [
                int(entry)
                for entry in os.listdir("/proc")
                if entry.isdigit()
                and int(entry) not in tracked
                and (_parent_and_state(int(entry)) or (0, ""))[0] == me
            ]
            if not adopted:
                return
            for pid in adopted:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.01)


# --- the VIP prober ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    seq: int
    sent_ns: int
    recv_ns: int
    node: str


class VipProbe:
    """Probe ``address`` from the client namespace every ``interval_ms``; read the answers."""

    def __init__(
        self, lab: RmLab, workdir: Path, *, address: str | None = None, interval_ms: int = 5
    ) -> None:
        self.lab = lab
        self.address = address or lab.vip
        self.interval_ms = interval_ms
        self.out = workdir / f"probe-{os.getpid()}-{time.monotonic_ns()}.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> VipProbe:
        argv = [
            sys.executable,
            str(HERE / "rm_lab.py"),
            "probe",
            self.address,
            str(PROBE_PORT),
            str(self.interval_ms),
            str(self.out),
        ]
        self.proc = self.lab.run(
            self.lab.client, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", f"prober did not start: {line!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.out.unlink()

    def answers(self) -> list[Answer]:
        try:
            text = self.out.read_text()
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 4:  # the last line may be half-written
                found.append(Answer(int(parts[0]), int(parts[1]), int(parts[2]), parts[3]))
        return found

    def wait_answer_from(self, node: str, *, timeout_s: float, after_ns: int = 0) -> Answer:
        """The first answer from ``node`` received after ``after_ns``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for answer in self.answers():
                if answer.node == node and answer.recv_ns > after_ns:
                    return answer
            if time.monotonic() > deadline:
                seen = sorted({a.node for a in self.answers() if a.recv_ns > after_ns})
                raise AssertionError(
                    f"no answer from {node} at {self.address} within {timeout_s}s; answered since: {seen}"
                )
            time.sleep(0.01)

    def double_answers(self) -> list[tuple[int, list[str]]]:
        """Probes answered by more than one node: ``(seq, nodes)``; must stay empty."""
        by_seq: dict[int, set[str]] = {}
        for answer in self.answers():
            by_seq.setdefault(answer.seq, set()).add(answer.node)
        return [(seq, sorted(nodes)) for seq, nodes in sorted(by_seq.items()) if len(nodes) > 1]

    def holders_in_order(self) -> list[str]:
        """The answering node of each run of answers, in receive order (``[n1, n2]``: one move)."""
        runs: list[str] = []
        for answer in sorted(self.answers(), key=lambda a: a.recv_ns):
            if not runs or runs[-1] != answer.node:
                runs.append(answer.node)
        return runs

    def outage(self, old: str, new: str) -> tuple[Answer, Answer]:
        """The last answer from ``old`` and the first answer from ``new`` after it."""
        ordered = sorted(self.answers(), key=lambda a: a.recv_ns)
        last_old = [a for a in ordered if a.node == old][-1]
        first_new = next(a for a in ordered if a.node == new and a.recv_ns > last_old.recv_ns)
        return last_old, first_new


# --- the responder and the prober (run inside a namespace) ---------------------------------


def respond(port: int, name: str) -> int:
    """Answer on IPv4 and IPv6 alike: one dual-stack socket (IPv4 peers appear v4-mapped)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    print("ready", flush=True)
    reply_suffix = b" " + name.encode()
    while True:
        data, peer = sock.recvfrom(256)
        with contextlib.suppress(OSError):
            sock.sendto(data.split(b" ", 1)[0] + reply_suffix, peer)


def probe(address: str, port: int, interval_ms: int, out_path: str) -> int:
    ipv6 = ":" in address
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("::" if ipv6 else "0.0.0.0", 0))
    sock.setblocking(False)
    sent: dict[int, int] = {}
    seq = 0
    interval_ns = interval_ms * 1_000_000
    next_send = time.monotonic_ns()
    with open(out_path, "a", buffering=1) as out:
        print("ready", flush=True)
        while True:
            now = time.monotonic_ns()
            if now >= next_send:
                seq += 1
                sent[seq] = now
                with contextlib.suppress(OSError):  # EHOSTUNREACH while ARP fails, ECONNREFUSED
                    sock.sendto(str(seq).encode(), (address, port))
                next_send += interval_ns
                if next_send < now:  # fell behind (scheduling): don't burst to catch up
                    next_send = now + interval_ns
                sent.pop(seq - 10_000, None)
                continue
            ready, _, _ = select.select([sock], [], [], (next_send - now) / 1e9)
            while ready:
                try:
                    data, _peer = sock.recvfrom(256)
                except BlockingIOError:
                    break
                except OSError:  # an ICMP error queued on the socket
                    continue
                recv_ns = time.monotonic_ns()
                parts = data.split()
                if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in sent:
                    number = int(parts[0])
                    out.write(f"{number} {sent[number]} {recv_ns} {parts[1].decode(errors='replace')}\n")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "respond" and len(argv) == 3:
        return respond(int(argv[1]), argv[2])
    if argv and argv[0] == "probe" and len(argv) == 5:
        return probe(argv[1], int(argv[2]), int(argv[3]), argv[4])
    print("usage: rm_lab.py respond PORT NAME | probe ADDRESS PORT INTERVAL_MS OUT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
