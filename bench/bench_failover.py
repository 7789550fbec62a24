#!/usr/bin/env python3
"""Failover time: crash the node holding a floating IP, time until a client gets answers again.

    sudo python3 bench/bench_failover.py                     # every system below, 20 trials each
    sudo python3 bench/bench_failover.py --trials 30 --systems hacluster-a,keepalived

Systems, each with two nodes in network namespaces on one bridge plus a client namespace
(tests/integration/rm_lab.py):

* ``hacluster-a``: our daemon, keepalive 100 ms, deadtime 500 ms, fencing off, realtime off;
  a group holding one ``ocf:hacluster:IPaddr2`` (run in-process), stickiness 100.
  Target: median <= 500 ms, p95 <= 800 ms.
* ``hacluster-b``: the same with keepalive 20 ms, deadtime 100 ms, ``realtime on``.
  Target: median <= 150 ms.
* ``heartbeat``: Linux-HA Heartbeat 3.0.6 (tests/integration/heartbeat_lab.py), haresources
  ``n1 IPaddr::VIP/24``, ``auto_failback off``, keepalive 20 ms, deadtime 100 ms.
* ``keepalived``: keepalived (VRRPv3), both nodes ``state BACKUP`` + ``nopreempt``, equal
  priority, ``advert_int 0.02``.

One trial: every node up and settled, the VIP answering from its holder; wait a random
fraction of a keepalive (so the crash lands at a random phase of the heartbeat cycle); crash
the holder: SIGKILL every process in its namespace and take its link down (``RmCluster.crash``);
wait until the VIP answers from the other node.  Then "reboot" the crashed node (VIP removed
from its interface, link up, its software started again), let it rejoin, and go on: the
service stays where it is (stickiness, auto_failback off, nopreempt), so the next trial
crashes the other node.

What is timed: the client (rm_lab.py's prober) sends a datagram to the VIP every
``--probe-ms`` (2 ms) and every node runs a responder that answers with its name.

* ``recovery_ms`` = first answer from the new holder - the crash (CLOCK_MONOTONIC, shared by
  all namespaces; the crash time is taken just before the first SIGKILL).  The headline.
* ``outage_ms`` = first answer from the new holder - last answer from the old one, as the
  client saw it (at most one probe interval more than recovery, since the old node answered
  until the crash).
* hacluster only, from the survivor's log (wall-clock stamps in ms): ``dead_to_added_ms``
  from ``NODE_DEAD`` to the agent's ``vip added`` line, and ``dead_to_started_ms`` from
  ``NODE_DEAD`` to ``RESOURCE_START`` of the VIP, which is logged once the address is on the
  interface and the first gratuitous ARP has been sent.

Also counted: probes answered by two nodes (must be 0) and trials where the VIP did not come
back within ``--timeout-s`` (reported, never hidden).  Writes
bench/results/failover-<time>.json.  Needs root, heartbeat (scripts/install-heartbeat.sh) and
keepalived (apt-get install keepalived) for those two systems.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from heartbeat_lab import HeartbeatNode, heartbeat_available, make_authkeys, make_ha_cf  # noqa: E402
from lab import log_wall_time, machine, summary_stats, write_result  # noqa: E402
from rm_lab import RmCluster, RmLab, VipProbe, reap_orphans, set_child_subreaper  # noqa: E402

SYSTEMS = ("hacluster-a", "hacluster-b", "heartbeat", "keepalived")
TARGETS = {
    "hacluster-a": {"median_ms": 500, "p95_ms": 800},
    "hacluster-b": {"median_ms": 150},
}


# --- one system each -------------------------------------------------------------------------


class System(abc.ABC):
    """Start a two-node cluster, crash the holder, bring it back; subclasses fill in how."""

    name = ""
    keepalive_ms = 100

    def __init__(self, lab: RmLab, workdir: Path) -> None:
        self.settings: dict[str, Any] = {}
        self.lab = lab
        self.workdir = workdir
        self.names = ["n1", "n2"]

    def index(self, name: str) -> int:
        return self.names.index(name) + 1

    @abc.abstractmethod
    def start(self) -> None:
        """Each system under test implements this."""

    @abc.abstractmethod
    def crash(self, name: str) -> int:
        """Each system under test implements this."""

    @abc.abstractmethod
    def reboot(self, name: str) -> None:
        """Each system under test implements this."""

    def in_daemon(self, survivor: str, victim: str, crash_wall: float, since_wall: float) -> dict[str, float]:
        """Figures from the survivor's log about this crash (``crash_wall``: time.time() at the
        crash; ``since_wall``: when the victim last (re)started)."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Each system under test implements this."""

    def crash_namespace(self, name: str, extra_pids: list[int] | None = None) -> int:
        """SIGKILL everything in the node's namespace, link down; reap the orphans we adopted."""
        i = self.index(name)
        pids = (extra_pids or []) + self.lab.pids(i)
        crashed_ns = time.monotonic_ns()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self.lab.set_link(i, up=False)
        self.lab.kill_all(i)
        for proc in self.lab._started:
            if proc.pid in pids:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        reap_orphans(sorted(set(pids)), {proc.pid for proc in self.lab._started})
        return crashed_ns

    def remove_vip(self, name: str) -> None:
        i = self.index(name)
        self.lab.exec(i, ["ip", "addr", "del", f"{self.lab.vip}/24", "dev", self.lab.iface(i)])


class Hacluster(System):
    def __init__(
        self,
        lab: RmLab,
        workdir: Path,
        *,
        keepalive_ms: int,
        deadtime_ms: int,
        realtime: bool,
        method: str = "sha1",
    ) -> None:
        """``method``: the authkeys method (bench_crypto.py compares sha1 with the AEAD ones)."""
        super().__init__(lab, workdir)
        self.name = f"hacluster keepalive {keepalive_ms}ms deadtime {deadtime_ms}ms realtime {realtime}"
        if method != "sha1":
            self.name += f" {method}"
        self.keepalive_ms = keepalive_ms
        self.settings = {
            "keepalive_ms": keepalive_ms,
            "deadtime_ms": deadtime_ms,
            "realtime": realtime,
            "method": method,
        }
        self.cluster = RmCluster(
            lab, keepalive_ms=keepalive_ms, deadtime_ms=deadtime_ms, realtime=realtime, method=method
        )
        self.cluster.write_resources_crm(
            f"primitive vip ocf:hacluster:IPaddr2 params ip={lab.vip} cidr_netmask=24 "
            "op monitor interval=1s timeout=20s\n"
            "group grp vip\n"
            "property stonith-enabled=false\n"
            "rsc_defaults resource-stickiness=100\n"
        )

    def start(self) -> None:
        self.cluster.start_all()
        self.cluster.wait_all_active(timeout_s=15)
        self.cluster.wait_group_started("grp", timeout_s=20)

    def crash(self, name: str) -> int:
        return self.cluster.crash(name)

    def _probes_done(self, name: str) -> int:
        try:
            text = self.cluster.log_path(name).read_text(errors="replace")
        except OSError:
            return 0
        return text.count("[RESOURCE_MONITOR resource=vip ")

    def reboot(self, name: str) -> None:
        before = self._probes_done(name)
        self.cluster.reboot(name, vip=self.lab.vip)
        self.cluster.wait_all_active(timeout_s=15)
        self.cluster.wait_group_started("grp", timeout_s=15, not_on=name)
        # Joined is not ready: until the restarted node has probed the VIP (its first call of
        # the in-process agent imports pyroute2: 0.5-2 s), no plan moves anything.
        self.cluster.wait_for(f"{name} probed vip", lambda: self._probes_done(name) > before, 15)
        time.sleep(0.3)

    def in_daemon(self, survivor: str, victim: str, crash_wall: float, since_wall: float) -> dict[str, float]:
        dead = added = started = None
        flaps = 0
        try:  # the logfile only: the stderr copy would count every line twice
            text = self.cluster.log_path(survivor).read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            stamp = log_wall_time(line)
            if stamp is None or stamp < since_wall:
                continue
            is_victim_dead = "[NODE_DEAD" in line and f"node={victim}" in line
            if stamp < crash_wall - 0.002:  # log stamps are truncated to the millisecond
                flaps += is_victim_dead
            elif dead is None and is_victim_dead:
                dead = stamp
            elif dead is not None and added is None and "vip added" in line:
                added = stamp
            elif dead is not None and started is None and "[RESOURCE_START resource=vip rc=0" in line:
                started = stamp
        out: dict[str, float] = {"victim_declared_dead_before_crash": flaps}
        if dead is not None and added is not None:
            out["dead_to_added_ms"] = round((added - dead) * 1000, 1)
        if dead is not None and started is not None:
            out["dead_to_started_ms"] = round((started - dead) * 1000, 1)
        return out

    def close(self) -> None:
        self.cluster.close()


class Heartbeat(System):
    keepalive_ms = 20

    def __init__(self, lab: RmLab, workdir: Path, *, keepalive_ms: int = 20, deadtime_ms: int = 100) -> None:
        super().__init__(lab, workdir)
        self.name = f"heartbeat 3.0.6 keepalive {keepalive_ms}ms deadtime {deadtime_ms}ms"
        self.keepalive_ms = keepalive_ms
        self.settings = {"keepalive_ms": keepalive_ms, "deadtime_ms": deadtime_ms, "auto_failback": "off"}
        key = make_authkeys(os.urandom(16).hex())
        port = 20000 + random.randrange(20000)
        self.nodes = {
            name: HeartbeatNode(
                netns=lab.namespace(i),
                node_name=name,
                workdir=workdir / f"hb-{name}",
                ha_cf=make_ha_cf(
                    nodes=self.names,
                    interfaces=[lab.iface(i)],
                    keepalive_ms=keepalive_ms,
                    deadtime_ms=deadtime_ms,
                    warntime_ms=max(keepalive_ms * 2, deadtime_ms // 2),
                    udpport=port,
                    extra=("auto_failback off",),
                ),
                authkeys=key,
                haresources=f"n1 IPaddr::{lab.vip}/24/{lab.iface(i)}\n",
            )
            for i, name in ((1, "n1"), (2, "n2"))
        }
        self.responders: dict[str, subprocess.Popen[bytes]] = {}
        self.dt_raised_s: list[float] = []
        self.settings["dt_raised_after_restart_s"] = self.dt_raised_s

    def _responder(self, name: str) -> None:
        argv = [sys.executable, str(REPO / "tests" / "integration" / "rm_lab.py"), "respond", "7447", name]
        proc = self.lab.run(self.index(name), argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        self.responders[name] = proc

    def _wait_pair(self, timeout_s: float = 20) -> None:
        for a in self.names:
            for b in self.names:
                self.nodes[a].wait_nodestatus(b, "active", timeout_s=timeout_s)

    def start(self) -> None:
        for name, node in self.nodes.items():
            node.start()
            self._responder(name)
        self._wait_pair()
        deadline = time.monotonic() + 40
        while not all(self._acquired(name) for name in self.names):
            if time.monotonic() > deadline:
                raise RuntimeError("heartbeat never finished the initial resource acquisition")
            time.sleep(0.1)

    def crash(self, name: str) -> int:
        crashed_ns = self.crash_namespace(name, self.nodes[name].processes())
        self.nodes[name].kill()
        return crashed_ns

    def _acquired(self, name: str) -> int:
        return self.nodes[name].log.count("Initial resource acquisition complete")

    def reboot(self, name: str) -> None:
        i = self.index(name)
        self.remove_vip(name)
        self.lab.set_link(i, up=True)
        self.lab.wait_for_carrier(i, up=True)
        before = self._acquired(name)
        node = self.nodes[name]
        deadline = time.monotonic() + 5
        while left := node.processes():  # a late child of the dead node (seen once: not reproduced)
            if time.monotonic() > deadline:
                described = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left}
                raise RuntimeError(f"heartbeat {name}: processes survive the crash: {described}")
            node.kill()
            time.sleep(0.05)
        started = time.monotonic()
        node.start()
        self._responder(name)
        self._wait_pair()
        # Until its resource negotiation is over (about 10 s after start) a node takes nothing over.
        deadline = time.monotonic() + 40
        while self._acquired(name) == before:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"heartbeat {name} never finished resource acquisition\n{self.nodes[name].diagnostics()}"
                )
            time.sleep(0.1)
        # A restarted node advertises dt = deadtime + 2 s for a while; wait it out (steady state).
        deadline = time.monotonic() + 90
        while (dts := self.advertised_dt_ms()).get(name) != self.settings["deadtime_ms"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"heartbeat {name} still advertises dt {dts} after 90 s")
            time.sleep(0.5)
        self.dt_raised_s.append(round(time.monotonic() - started, 1))

    def advertised_dt_ms(self) -> dict[str, int]:
        """The ``dt`` each node puts in its heartbeats (captured in the client namespace)."""
        argv = [sys.executable, str(Path(__file__).resolve()), "dt", self.lab.iface(self.lab.client), "0.3"]
        done = self.lab.exec(self.lab.client, argv)
        return {k: int(v) for k, v in (pair.split("=") for pair in done.stdout.split())}

    def close(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                node.kill()


KEEPALIVED_CONF = """\
global_defs {{
  router_id {name}
  vrrp_version 3
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 3
  script_user root
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface {iface}
  virtual_router_id {vrid}
  priority 100
  advert_int {advert}
  nopreempt
  virtual_ipaddress {{
    {vip}/24 dev {iface}
  }}
}}
"""


class Keepalived(System):
    def __init__(self, lab: RmLab, workdir: Path, *, advert_s: str = "0.02") -> None:
        super().__init__(lab, workdir)
        self.name = f"keepalived VRRPv3 advert_int {advert_s}"
        self.keepalive_ms = round(float(advert_s) * 1000)
        self.settings = {"advert_int_s": advert_s, "vrrp_version": 3, "nopreempt": True}
        self.vrid = 1 + random.randrange(250)
        self.advert = advert_s
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.responders: dict[str, subprocess.Popen[bytes]] = {}

    def _dir(self, name: str) -> Path:
        d = self.workdir / f"ka-{name}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _start(self, name: str) -> None:
        i = self.index(name)
        d = self._dir(name)
        conf = d / "keepalived.conf"
        conf.write_text(
            KEEPALIVED_CONF.format(
                name=name, iface=self.lab.iface(i), vrid=self.vrid, advert=self.advert, vip=self.lab.vip
            )
        )
        argv = ["keepalived", "-n", "-l", "-D", "-P", "-f", str(conf)]
        argv += ["-p", str(d / "keepalived.pid"), "-r", str(d / "vrrp.pid"), "-c", str(d / "checkers.pid")]
        with (d / "keepalived.log").open("ab") as log:
            self.procs[name] = self.lab.run(i, argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        resp = [sys.executable, str(REPO / "tests" / "integration" / "rm_lab.py"), "respond", "7447", name]
        proc = self.lab.run(i, resp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        self.responders[name] = proc

    def start(self) -> None:
        for name in self.names:
            self._start(name)
        time.sleep(1.0)

    def crash(self, name: str) -> int:
        return self.crash_namespace(name)

    def reboot(self, name: str) -> None:
        i = self.index(name)
        self.remove_vip(name)
        for pid_file in self._dir(name).glob("*.pid"):  # /run is empty after a reboot
            pid_file.unlink()
        self.lab.set_link(i, up=True)
        self.lab.wait_for_carrier(i, up=True)
        self._start(name)
        time.sleep(1.0)  # it hears the master's adverts and stays backup (nopreempt)

    def log(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return (self._dir(name) / "keepalived.log").read_text(errors="replace")
        return ""

    def close(self) -> None:
        pass  # the lab kills everything in its namespaces


# --- the trial loop ----------------------------------------------------------------------------


def run_system(
    make: Callable[[RmLab, Path], System],
    trials: int,
    probe_ms: int,
    timeout_s: float,
    prefix: str,
    iface_name: str | None = None,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bfail-"))
    workdir.chmod(0o755)
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    doubles = moves = 0
    try:
        with RmLab(prefix, nodes=2, iface_name=iface_name) as lab:
            system = make(lab, workdir)
            try:
                system.start()
                with VipProbe(lab, workdir, interval_ms=probe_ms) as probe:
                    holder = _holder(probe, timeout_s=20)
                    print(f"  {system.name}: VIP on {holder}", flush=True)
                    started_wall = {name: time.time() - 60 for name in system.names}
                    for trial in range(trials):
                        other = "n2" if holder == "n1" else "n1"
                        time.sleep(random.uniform(0, system.keepalive_ms / 1000))
                        wall_before = time.time()
                        crashed_ns = system.crash(holder)
                        try:
                            first = probe.wait_answer_from(other, timeout_s=timeout_s, after_ns=crashed_ns)
                        except AssertionError as exc:
                            failures.append(f"trial {trial}: {exc}")
                            print(f"  trial {trial}: no failover: {exc}", flush=True)
                            break
                        last_old = [
                            a
                            for a in probe.answers()
                            if a.node == holder and a.recv_ns <= crashed_ns + 50_000_000
                        ]
                        record: dict[str, Any] = {
                            "trial": trial,
                            "from": holder,
                            "to": other,
                            "recovery_ms": round((first.recv_ns - crashed_ns) / 1e6, 2),
                        }
                        if last_old:
                            record["outage_ms"] = round((first.recv_ns - last_old[-1].recv_ns) / 1e6, 2)
                        rebooted_wall = time.time()
                        system.reboot(holder)  # the survivor's log lines are all written by now
                        record.update(system.in_daemon(other, holder, wall_before, started_wall[holder]))
                        started_wall[holder] = rebooted_wall
                        records.append(record)
                        print(f"  trial {trial:2d}: {holder} -> {other} {_fmt(record)}", flush=True)
                        holder = other
                    doubles = len(probe.double_answers())
                    moves = len(probe.holders_in_order()) - 1
            finally:
                system.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {
        "system": system.name,
        "settings": system.settings,
        "trials": records,
        "failures": failures,
        "double_answers": doubles,
        "vip_moves_seen": moves,
        "vip_moves_expected": len(records),
        "victim_declared_dead_before_crash": sum(
            r.get("victim_declared_dead_before_crash", 0) for r in records
        ),
        "probe_ms": probe_ms,
    }
    for key in ("recovery_ms", "outage_ms", "dead_to_added_ms", "dead_to_started_ms"):
        values = [r[key] for r in records if key in r]
        if values:
            out[key] = summary_stats(values)
    return out


def _holder(probe: VipProbe, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answers = probe.answers()
        if answers:
            return answers[-1].node
        time.sleep(0.05)
    raise SystemExit(f"the VIP {probe.address} never answered within {timeout_s} s")


def _fmt(record: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in record.items() if k.endswith("_ms"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="crashes per system (default 20)")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {','.join(SYSTEMS)}"
    )
    parser.add_argument("--probe-ms", type=int, default=2, help="client probe interval (default 2 ms)")
    parser.add_argument("--timeout-s", type=float, default=15.0, help="give up on a trial after this long")
    parser.add_argument("--keepalived-advert", default="0.02", help="keepalived advert_int in seconds")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root (network and mount namespaces, SCHED_FIFO)")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; expected some of {', '.join(SYSTEMS)}")
    makers: dict[str, Callable[[RmLab, Path], System]] = {
        "hacluster-a": lambda lab, wd: Hacluster(lab, wd, keepalive_ms=100, deadtime_ms=500, realtime=False),
        "hacluster-b": lambda lab, wd: Hacluster(lab, wd, keepalive_ms=20, deadtime_ms=100, realtime=True),
        "heartbeat": lambda lab, wd: Heartbeat(lab, wd, keepalive_ms=20, deadtime_ms=100),
        "keepalived": lambda lab, wd: Keepalived(lab, wd, advert_s=args.keepalived_advert),
    }
    if "heartbeat" in systems and (reason := heartbeat_available()) is not None:
        raise SystemExit(f"heartbeat: {reason}")
    if "keepalived" in systems and shutil.which("keepalived") is None:
        raise SystemExit("keepalived: not installed (apt-get install keepalived)")
    results: dict[str, Any] = {"machine": machine(), "trials_requested": args.trials, "systems": {}}
    set_child_subreaper(True)
    for key in systems:
        print(f"{key}: {args.trials} trials", flush=True)
        # Heartbeat's IPaddr wrapper assumes eth0; every system gets the same interface name.
        result = run_system(makers[key], args.trials, args.probe_ms, args.timeout_s, f"bf{key[:6]}", "eth0")
        if key in TARGETS:
            result["targets"] = TARGETS[key]
        results["systems"][key] = result
    print()
    print(
        f"{'system':<14} {'n':>3} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}  (recovery_ms: crash -> VIP answers)"
    )
    for key, result in results["systems"].items():
        stats = result.get("recovery_ms", {"n": 0})
        if stats["n"]:
            print(
                f"{key:<14} {stats['n']:>3} {stats['median']:>8.1f} {stats['p95']:>8.1f} "
                f"{stats['min']:>8.1f} {stats['max']:>8.1f}"
                + (f"  failures={len(result['failures'])}" if result["failures"] else "")
                + (f"  DOUBLE ANSWERS={result['double_answers']}" if result["double_answers"] else "")
                + (
                    f"  EXTRA MOVES={result['vip_moves_seen'] - result['vip_moves_expected']}"
                    if result["vip_moves_seen"] != result["vip_moves_expected"]
                    else ""
                )
            )
        else:
            print(f"{key:<14}   0  no successful trial: {result['failures'][:1]}")
        for extra in ("dead_to_added_ms", "dead_to_started_ms"):
            if extra in result:
                s = result[extra]
                print(f"{'':<14} {extra}: median {s['median']} p95 {s['p95']} max {s['max']}")
    path = write_result("failover", results)
    print(f"\nwrote {path.relative_to(REPO)}")
    return 0


def capture_dt(iface: str, seconds: float) -> int:
    """Print ``node=dt_ms`` for each Heartbeat node heard on ``iface`` within ``seconds``."""
    import socket

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((iface, 0x0003))
    sock.settimeout(0.05)
    seen: dict[str, int] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            frame = sock.recv(65535)
        except TimeoutError:
            continue
        src, dt = re.search(rb"src=([A-Za-z0-9_.-]+)", frame), re.search(rb"dt=([0-9a-f]+)", frame)
        if src and dt:
            seen[src.group(1).decode()] = int(dt.group(1), 16)
    print(" ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dt"]:
        sys.exit(capture_dt(sys.argv[2], float(sys.argv[3])))
    sys.exit(main())
