"""Fencing with real daemons in namespaces: the lab power switch, a journaled resource, and
the checker that says whether a resource was ever active on two nodes at the same instant.

    with RmLab("fx", nodes=2) as lab, FenceCluster(lab, journal_dir=tmp) as cluster:
        cluster.write_resources_crm(cluster.crm())
        cluster.start_all()
        holder = cluster.wait_resource_started("journal", timeout_s=20)
        cluster.partition(holder)                 # its bridge port down
        ...
        report = cluster.journal_report()
        assert report.overlaps == []

Theory of operation
-------------------
``FenceCluster`` is an ``rm_lab.RmCluster`` (one private mount namespace per daemon, a client
namespace for the VIP prober) whose daemons also see our OCF test agents: the daemon has no
setting for another OCF root, so before it starts, ``tests/agents_fixtures/ocf/resource.d`` is
bind-mounted over ``/usr/lib/ocf/resource.d`` inside the daemon's own mount namespace (the
``heartbeat`` provider is hidden there; the tests do not use it).  ``ocf:test:Journal`` then
resolves as a real OCF agent.  The fence device is ``stonith:fence_lab`` with every node's
namespace in ``plugs`` and ``pcmk_host_map``, so the fencer of any node can power off any
other: SIGKILL of every process in the target's namespace, then its interfaces down.

The Journal agent (see its file) appends ``<CLOCK_MONOTONIC ns> <node> <rsc> start|stop`` to a
journal that every namespace shares, and runs a *writer* process that ticks into
``journal.ticks`` while the resource is active.  ``journal_audit.analyse_journal`` turns that
into intervals (its docstring has every rule; in short):

- a copy on node X is **active** from its ``start`` line (written before the start does
  anything) until its ``stop`` line (written after the writer is gone), or until X was
  *powered off*, whichever comes first;
- X is powered off at the latest at an **upper bound** of its fence time: a fence history
  entry says the fence finished ``ago_ms`` before the status answer was computed, so the kill
  happened before ``answer_received_ns - ago_ms + 1 ms`` (the bound is late, so intervals
  are long: conservative); or when the test itself crashed X (``record_power_off``);
- an **overlap** is an instant inside active intervals of the same resource on two nodes;
- a **zombie tick** is a writer tick outside every active interval of its node: the fence (or
  the stop) did not really end the copy.  Both lists must stay empty with fencing on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from daemons import REPO, api_status, require  # noqa: E402
from journal_audit import JournalReport, analyse_journal, read_lines  # noqa: E402
from rm_lab import RmCluster, RmLab, _parent_and_state  # noqa: E402

OCF_FIXTURES = REPO / "tests" / "agents_fixtures" / "ocf" / "resource.d"
SYSTEM_OCF_RESOURCE_D = Path("/usr/lib/ocf/resource.d")


def require_ocf_mountpoint() -> None:
    if not SYSTEM_OCF_RESOURCE_D.is_dir():
        require(
            f"needs {SYSTEM_OCF_RESOURCE_D} to exist as a mount point for the test agents "
            "(apt-get install resource-agents)"
        )


# --- configuration text ------------------------------------------------------------------------


def fence_device_crm(
    lab: RmLab, names: Sequence[str], *, broken: Sequence[str] = (), device: str = "fence-lab"
) -> str:
    """``stonith:fence_lab`` reaching every node; a node in ``broken`` maps to a namespace that
    does not exist, so fencing it fails (exit 1: no such namespace)."""
    plugs, pairs = [], []
    for i, name in enumerate(names, start=1):
        ns = lab.namespace(i) if name not in broken else f"nosuch-{lab.namespace(i)}"
        plugs.append(ns)
        pairs.append(f"{name}:{ns}")
    return (
        f'primitive {device} stonith:fence_lab params plugs="{",".join(plugs)}" '
        f'pcmk_host_map="{";".join(pairs)}"'
    )


# --- the cluster -------------------------------------------------------------------------------


class FenceCluster(RmCluster):
    """RmCluster with the OCF test agents mounted, a journal, and fencing helpers."""

    def __init__(self, lab: RmLab, *, journal_dir: Path, **kwargs: Any) -> None:
        super().__init__(lab, **kwargs)
        journal_dir.mkdir(parents=True, exist_ok=True)
        journal_dir.chmod(0o755)
        self.journal = journal_dir / "journal"
        self.fail_stop_file = journal_dir / "fail-stop"
        self.power_offs: dict[str, list[int]] = {}
        self.fence_seen: list[tuple[tuple[Any, ...], int]] = []
        """(identity, at_bound_ns) of every fence event collected so far."""

    # --- configuration --------------------------------------------------------------------

    def crm(
        self,
        *,
        vip: bool = False,
        stonith: bool = True,
        broken: Sequence[str] = (),
        monitor_ms: int = 500,
        tick_ms: int = 5,
        extra: Sequence[str] = (),
    ) -> str:
        """Group ``grp`` = [vip (IPaddr2)] + journal (ocf:test:Journal), and the fence device."""
        lines = []
        members = []
        if vip:
            lines.append(
                f"primitive vip ocf:hacluster:IPaddr2 params ip={self.rmlab.vip} cidr_netmask=24 "
                f"op monitor interval={monitor_ms}ms timeout=20s"
            )
            members.append("vip")
        lines.append(
            f"primitive journal ocf:test:Journal params journal={self.journal} "
            f"fail_stop_file={self.fail_stop_file} tick_ms={tick_ms} "
            f"op monitor interval={monitor_ms}ms timeout=20s op stop timeout=10s"
        )
        members.append("journal")
        lines.append(f"group grp {' '.join(members)}")
        lines.append(fence_device_crm(self.rmlab, self.names, broken=broken))
        lines.append(f"property stonith-enabled={'true' if stonith else 'false'}")
        lines.append("rsc_defaults resource-stickiness=100")
        lines += list(extra)
        return "\n".join(lines) + "\n"

    def launcher(self, name: str) -> list[str]:
        """The daemon in its own mount namespace, our OCF fixtures over the system's resource.d."""
        argv = super().launcher(name)
        assert argv[:4] == ["unshare", "-m", "--propagation", "private"], argv
        daemon = argv[argv.index(sys.executable) :]
        script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
        return [
            *argv[:4],
            "/bin/sh",
            "-c",
            script,
            "sh",
            str(OCF_FIXTURES),
            str(SYSTEM_OCF_RESOURCE_D),
            *daemon,
        ]

    # --- faults ---------------------------------------------------------------------------

    def partition(self, name: str) -> int:
        """Cut ``name``'s bridge port (both directions); returns CLOCK_MONOTONIC ns before."""
        at = time.monotonic_ns()
        self.rmlab.set_link(self.index(name), up=False)
        return at

    def heal(self, name: str) -> None:
        self.rmlab.set_link(self.index(name), up=True)

    def crash(self, name: str) -> int:
        at = super().crash(name)
        self.record_power_off(name, time.monotonic_ns())
        return at

    def record_power_off(self, name: str, bound_ns: int) -> None:
        """Every process of ``name`` was gone by ``bound_ns`` (the test killed them)."""
        self.power_offs.setdefault(name, []).append(bound_ns)

    def is_powered_off(self, name: str) -> bool:
        """No live process left in ``name``'s namespace (zombies do not count)."""
        for pid in self.rmlab.pids(self.index(name)):
            info = _parent_and_state(pid)
            if info is not None and info[1] != "Z":
                return False
        return True

    def reboot_node(self, name: str) -> None:
        """After a fence: cable back in, VIP gone, scratch dir empty, daemon and responder up."""
        self.reap(self.rmlab.pids(self.index(name)))
        self.reap_adopted()
        self.reboot(name, vip=self.rmlab.vip if self._has_vip(name) else None)

    def _has_vip(self, name: str) -> bool:
        out = self.rmlab.exec(self.index(name), ["ip", "-o", "addr", "show"]).stdout
        return f" {self.rmlab.vip}/" in out

    def reap_adopted(self) -> None:
        """Reap zombies adopted as subreaper (writers of fenced nodes), keep our Popens."""
        me, tracked = os.getpid(), self._tracked()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in tracked:
                continue
            info = _parent_and_state(int(entry))
            if info is not None and info[0] == me and info[1] == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(entry), os.WNOHANG)

    # --- fencing history ------------------------------------------------------------------

    def collect_fences(self) -> list[dict[str, Any]]:
        """New fence events seen by any running daemon, each with ``at_bound_ns``; every
        ``ok`` one is also recorded as a power-off of its target (an upper bound)."""
        new = []
        for observer in self.daemon_names:
            if not self.is_running(observer):
                continue
            doc = api_status(self.socket_path(observer))
            received_ns = time.monotonic_ns()
            if doc is None:
                continue
            for event in doc["fencing"]:
                bound_ns = received_ns - event["ago_ms"] * 1_000_000 + 1_000_000
                identity = tuple(event[k] for k in ("target", "by", "device", "result", "ms", "reason"))
                if any(i == identity and abs(b - bound_ns) < 50_000_000 for i, b in self.fence_seen):
                    continue  # the same event seen again (another observer, a later poll)
                self.fence_seen.append((identity, bound_ns))
                new.append(dict(event, observer=observer, at_bound_ns=bound_ns))
                if event["result"] == "ok":
                    self.record_power_off(event["target"], bound_ns)
        return new

    def journal_report(self) -> JournalReport:
        self.collect_fences()
        return analyse_journal(self.journal, self.power_offs)

    # --- resources ------------------------------------------------------------------------

    def resource_node(self, observer: str, rsc: str) -> str | None:
        entry = self.resources(observer).get(rsc)
        if entry is None or entry["state"] != "started" or not isinstance(entry["node"], str):
            return None
        return str(entry["node"])

    def wait_resource_started(
        self, rsc: str, *, timeout_s: float, observers: Sequence[str] | None = None, not_on: str | None = None
    ) -> str:
        """Every observer sees ``rsc`` started on one node (not ``not_on``); returns it."""
        group = list(observers or [n for n in self.daemon_names if self.is_running(n)])
        found: list[str] = []

        def settled() -> bool:
            where = {self.resource_node(o, rsc) for o in group}
            node = next(iter(where)) if len(where) == 1 else None
            if node is None or node == not_on:
                return False
            found[:] = [node]
            return True

        self.wait_for(f"{rsc} started (not_on={not_on})", settled, timeout_s)
        return found[0]

    def journal_holders(self) -> dict[str, str]:
        """rsc → node for every interval still open (by the journal alone, no fences)."""
        report = analyse_journal(self.journal, self.power_offs)
        return {i.rsc: i.node for i in report.intervals if i.ended_by == "open"}


# --- one randomised split --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SplitTrial:
    holder: str
    cut: str
    moving: bool
    """A move of the group was in flight when the cable was cut."""
    powered_off: tuple[str, ...]
    survivor: str | None
    cut_ns: int
    first_off_ms: float
    """From the cut until the first node had no process left (as polled)."""
    started_ms: float | None
    """From the cut until the journal shows the survivor's copy start (None if it kept its own)."""
    fences: tuple[dict[str, Any], ...]


def split_trial(cluster: FenceCluster, rng: Any, *, move_probability: float = 0.3) -> SplitTrial:
    """Cut one node's cable at a random moment (sometimes while the group is moving); wait
    until one side is powered off and the other runs the journal; then heal and reboot."""
    names = [n for n in cluster.daemon_names if cluster.is_running(n)]
    holder = cluster.wait_resource_started("journal", timeout_s=30, observers=names)
    moving = rng.random() < move_probability
    if moving:
        target = next(n for n in names if n != holder)
        cluster.cli(rng.choice(names), "resource", "move", "grp", target)
        time.sleep(rng.uniform(0.0, 0.4))
    else:
        time.sleep(rng.uniform(0.0, 1.0))
    cut = rng.choice(names)
    cut_ns = cluster.partition(cut)
    cluster.wait_for(
        "one node powered off after the cut", lambda: any(cluster.is_powered_off(n) for n in names), 15
    )
    first_off_ms = (time.monotonic_ns() - cut_ns) / 1e6
    time.sleep(1.5)  # long enough for the loser's own fence, had it fired: double fencing
    powered_off = tuple(n for n in names if cluster.is_powered_off(n))
    alive = [n for n in names if n not in powered_off]
    survivor = alive[0] if len(alive) == 1 else None
    started_ms = None
    if survivor is not None:
        cluster.wait_resource_started("journal", timeout_s=15, observers=[survivor])
        starts = [
            ns for ns, node, rsc, what in read_lines(cluster.journal) if node == survivor and what == "start"
        ]
        if starts and starts[-1] > cut_ns:
            started_ms = (starts[-1] - cut_ns) / 1e6
    fences = tuple(cluster.collect_fences())
    cluster.heal(cut)
    for name in powered_off:
        cluster.reboot_node(name)
    cluster.reap_adopted()
    cluster.wait_all_active(timeout_s=15)
    return SplitTrial(holder, cut, moving, powered_off, survivor, cut_ns, first_off_ms, started_ms, fences)
