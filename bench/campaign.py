#!/usr/bin/env python3
"""A fault campaign in the manner of Pacemaker's CTS: random faults on real daemons, audited
after every step.

    sudo .venv/bin/python bench/campaign.py --minutes 60            # a new seed, printed first
    sudo .venv/bin/python bench/campaign.py --seed 1234 --minutes 5  # replays seed 1234's schedule
    .venv/bin/python bench/campaign.py --seed 1234 --plan 20         # print its first 20 steps

The lab: 3-5 nodes (``--nodes``), each a network namespace with its own mount namespace on
one bridge (tests/integration/rm_lab.py, fence_lab_cluster.py), running the real daemon.
Fencing is on, with ``stonith:fence_lab``: it kills every process of the target namespace
and sets its links down, and writes the power switch's log; ``--boot-delay`` after its power
comes back on, the campaign boots the node (the VIP gone from its interface, its scratch
dir empty, the daemon started), as a machine does after a power cycle.  The resources
(bench/campaign_config.py): primitives with an order and a colocation, a group with a VIP
on the bridge, stickiness so moves happen; all but the VIP are ``ocf:test:Journal``, which
journals its own starts, stops, promotes and demotes.

Each step (bench/campaign_schedule.py draws them from the seed) is one of: crash a node
(SIGKILL of its namespace + cable out), restart it, partition (one node or a minority group,
until the majority has fenced it) and heal, a partition shorter than the dead time, freeze a
daemon past the dead time (SIGSTOP/SIGCONT), loss/delay/reordering/duplication on a cable
(bench/impair.py: this kernel has no ``sch_netem``) while a resource moves, kill the DC during
a transition, standby/online, move, a monitor failure (the resource's own process killed), a
start failure, a stop failure (the node must be fenced), a configuration change, a SIGHUP
reload, a graceful stop.

After each step the audits run (failures are printed with their evidence):

- **convergence** within ``--converge-timeout``: every node that should be up is an active
  member, all agree on membership and on the DC, every resource runs on one node, groups
  and colocations hold, the journal and the VIP agree (bench/campaign_audit.py);
- **journal**, at every instant since the start, from what the resources wrote and the power
  switch's log only: never two active copies, never more Promoted than allowed, never a
  dependent without what it depends on, no writer alive after its stop or fence
  (tests/integration/journal_audit.py); the VIP configured on two live nodes at one sample;
- **fences**: a stop failure, a partition and a freeze must get their node fenced; any other
  power-off is counted as an *unexpected fence*;
- **step-specific**: a SIGHUP reload of an unchanged configuration starts and stops nothing;
  a move lands on its target; a graceful stop exits 0;
- **logs**: every daemon's log is scanned for tracebacks and for decisions without a reason;
  a daemon that exits on its own is a *daemon crash*.

At the end it prints the summary (steps by kind, audits passed, convergence time per kind:
median, p95, max; unexpected fences; daemon crashes) and writes it to
bench/results/campaign-<seed>-<time>.json.  Exit status 0 when every audit passed, 1 when one
failed, 130 when interrupted.  Everything it made (namespaces, processes, the daemons' mount
namespaces, temporary files) is removed on normal exit, on Ctrl-C or SIGTERM, and on error.
Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from campaign_audit import Expected, convergence_problems, scan_log  # noqa: E402
from campaign_config import Context, Model, Variant, build_model  # noqa: E402
from campaign_schedule import KINDS, Schedule, Step, resolve  # noqa: E402
from daemons import api_status  # noqa: E402
from fence_lab_cluster import FenceCluster, fence_device_crm  # noqa: E402
from journal_audit import FileTail, JournalReader, Violation  # noqa: E402
from lab import machine, parse_ms, summary_stats, write_result  # noqa: E402
from netns import ip  # noqa: E402
from rm_lab import RmLab  # noqa: E402

POLL_S = 0.1
"""How often the campaign looks at the cluster while it waits; small against the dead time."""
CRASH_GRACE_S = 1.0
PARTITION_BRIDGE = "br1"
"""A second bridge in the switch namespace: ports moved there see each other and nothing else."""


@dataclass(frozen=True, slots=True)
class Options:
    seed: int
    minutes: float
    steps: int | None = None
    nodes: int = 3
    kinds: tuple[str, ...] | None = None
    keepalive_ms: int = 100
    deadtime_ms: int = 1000
    converge_timeout_s: float = 30.0
    boot_delay_s: float = 2.0
    results: bool = True
    stop_on_failure: bool = False
    keep: Path | None = None
    """Copy the daemons' logs, the journal and the power log here before the lab is removed."""

    def as_dict(self) -> dict[str, Any]:
        """The options as the results file keeps them: JSON values only (``keep`` as text)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "results"}
        out["keep"] = None if self.keep is None else str(self.keep)
        out["kinds"] = None if self.kinds is None else list(self.kinds)
        return out

    def replay_command(self) -> str:
        kinds = f" --kinds {','.join(self.kinds)}" if self.kinds else ""
        return (
            f"bench/campaign.py --seed {self.seed} --nodes {self.nodes}{kinds} "
            f"--keepalive {self.keepalive_ms}ms --deadtime {self.deadtime_ms}ms"
        )


@dataclass(slots=True)
class StepRecord:
    step: Step
    started_ns: int
    fault_end_ns: int = 0
    converge_s: float | None = None
    required_fences: set[str] = field(default_factory=set)
    allowed_fences: set[str] = field(default_factory=set)
    fenced: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    """(unit, target) of every move this step asked for."""
    check_moves: bool = False
    cleanup: list[str] = field(default_factory=list)
    """Resources whose failures are forgotten once the step has converged."""
    quiet_since_ns: int | None = None
    """A reload: no journal line may be written from here until the step ends."""
    injected_ns: int | None = None
    """When the fault itself happened (the kill, the cut, the command), for the recovery time."""
    recovery_s: float | None = None
    """From the fault to the converged cluster."""

    def hit(self) -> None:
        """The fault happens now (the first call counts)."""
        if self.injected_ns is None:
            self.injected_ns = time.monotonic_ns()

    def fail(self, kind: str, text: str) -> None:
        self.failures.append(f"[{kind}] {text}")


@dataclass(slots=True)
class Summary:
    seed: int
    steps: list[StepRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    unexpected_fences: list[str] = field(default_factory=list)
    daemon_crashes: list[str] = field(default_factory=list)
    interrupted: bool = False
    setup_failure: str = ""

    def audits(self) -> tuple[int, int]:
        """(steps whose audits all passed, steps audited)."""
        return sum(1 for s in self.steps if not s.failures), len(self.steps)

    def as_dict(self, options: Options) -> dict[str, Any]:
        by_kind: dict[str, list[float]] = {}
        recovery: dict[str, list[float]] = {}
        for record in self.steps:
            by_kind.setdefault(record.step.kind, [])
            recovery.setdefault(record.step.kind, [])
            if record.converge_s is not None:
                by_kind[record.step.kind].append(record.converge_s)
            if record.recovery_s is not None:
                recovery[record.step.kind].append(record.recovery_s)
        passed, audited = self.audits()
        return {
            "seed": self.seed,
            "options": options.as_dict(),
            "replay": options.replay_command(),
            "machine": machine(),
            "steps": len(self.steps),
            "steps_by_kind": {k: sum(1 for s in self.steps if s.step.kind == k) for k in sorted(by_kind)},
            "audits_passed": passed,
            "audits_run": audited,
            "audit_failures": self.failures,
            "convergence_s": {k: summary_stats(v) for k, v in sorted(by_kind.items())},
            "recovery_s": {k: summary_stats(v) for k, v in sorted(recovery.items())},
            "step_log": [
                {
                    "step": r.step.describe(),
                    "converge_s": r.converge_s,
                    "recovery_s": r.recovery_s,
                    "fenced": r.fenced,
                    "notes": r.notes,
                    "failures": r.failures,
                }
                for r in self.steps
            ],
            "unexpected_fences": self.unexpected_fences,
            "daemon_crashes": self.daemon_crashes,
            "interrupted": self.interrupted,
            "setup_failure": self.setup_failure,
        }


class Interrupted(Exception):
    """The first Ctrl-C or SIGTERM: finish cleanly (a second one is ignored while cleaning up)."""


# --- the lab -----------------------------------------------------------------------------------


class Campaign:
    """Runs the steps of a ``Schedule`` against a ``FenceCluster`` and audits each."""

    def __init__(self, options: Options, lab: RmLab, cluster: FenceCluster, work: Path) -> None:
        self.options = options
        self.lab = lab
        self.cluster = cluster
        self.names = list(cluster.names)
        self.work = work
        self.power_log = work / "power.log"
        self.fault_dir = work / "faults"
        self.fault_dir.mkdir()
        self.fault_dir.chmod(0o755)
        self.schedule = Schedule(options.seed, self.names, options.kinds)
        self.down: dict[str, str] = {}
        """Nodes the campaign holds down (crashed or stopped), as the schedule does."""
        self.awaiting_boot: dict[str, float | None] = {}
        """Fenced nodes → when they boot (monotonic s), None until the switch turned them on."""
        self.hold_boots = False
        self.variant = Variant()
        self.model = self._model(self.variant)
        self.reader = JournalReader(cluster.journal)
        self.reported: set[tuple[str, str, int]] = set()
        self.power_tail = FileTail(self.power_log)
        self.power_events: list[tuple[int, str, str]] = []
        self.log_tails = {name: FileTail(cluster.stderr_path(name)) for name in self.names}
        self.vip_doubles: list[tuple[int, list[str]]] = []
        self.crashes: list[str] = []
        self.expected_exit: set[str] = set()
        self.exited_at: dict[str, float] = {}
        self.plug_to_node = {lab.namespace(i): name for i, name in enumerate(self.names, start=1)}
        self.summary = Summary(options.seed)
        self._last_vip_sample = 0.0
        ip("-n", lab.switch, "link", "add", PARTITION_BRIDGE, "type", "bridge", "stp_state", "0")
        ip("-n", lab.switch, "link", "set", PARTITION_BRIDGE, "up")

    def _model(self, variant: Variant) -> Model:
        fence = fence_device_crm(self.lab, self.names).replace(
            "stonith:fence_lab params", f"stonith:fence_lab params power_log={self.power_log}"
        )
        ctx = Context(self.cluster.journal, self.fault_dir, self.lab.vip, (fence,))
        return build_model(variant, self.names, ctx)

    @property
    def up(self) -> list[str]:
        return [n for n in self.names if n not in self.down and n not in self.awaiting_boot]

    def expected(self, avoid: frozenset[str] = frozenset()) -> Expected:
        model = self.model
        return Expected(
            names=tuple(self.names),
            up=frozenset(n for n in self.names if n not in self.down),
            resources=model.resources,
            together=model.together,
            journaled=frozenset(model.limits),
            vip=model.vip,
            avoid=avoid,
        )

    # --- observing -----------------------------------------------------------------------------

    def views(self) -> dict[str, dict[str, Any] | None]:
        return {name: api_status(self.cluster.socket_path(name)) for name in self.up}

    def tick(self) -> None:
        """One look at the lab: the power switch's log, boots, crashed daemons, the VIP."""
        self._read_power_log()
        self._boot_due()
        self._find_crashes()
        if time.monotonic() - self._last_vip_sample >= 0.2:
            self._last_vip_sample = time.monotonic()
            holders = self.vip_holders()
            if len(holders) > 1:
                self.vip_doubles.append((time.monotonic_ns(), holders))
        self.cluster.reap_adopted()

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self.tick()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(POLL_S, left))

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            self.tick()
            if predicate():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)

    def _read_power_log(self) -> None:
        for raw in self.power_tail.read().splitlines():
            parts = raw.split()
            if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in self.plug_to_node:
                continue
            ns, node, state = int(parts[0]), self.plug_to_node[parts[1]], parts[2]
            self.power_events.append((ns, node, state))
            if state == "off":
                self.cluster.record_power_off(node, ns)
                self.expected_exit.add(node)
                if node not in self.down:
                    self.awaiting_boot[node] = None
            elif state == "on" and node in self.awaiting_boot:
                self.awaiting_boot[node] = time.monotonic() + self.options.boot_delay_s

    def _boot_due(self) -> None:
        if self.hold_boots:
            return
        for node, at in sorted(self.awaiting_boot.items()):
            if at is not None and time.monotonic() >= at:
                self.boot(node)
                del self.awaiting_boot[node]

    def boot(self, node: str) -> None:
        """Power back on: whatever still runs there is gone, then the node boots."""
        self.cluster.rmlab.kill_all(self.cluster.index(node))
        self.cluster.reboot_node(node)
        self.expected_exit.discard(node)

    def _find_crashes(self) -> None:
        for node in self.up:
            proc = self.cluster.procs.get(node)
            if proc is None or proc.poll() is None or node in self.expected_exit:
                self.exited_at.pop(node, None)
                continue
            # A fence kills the daemon a moment before the switch logs the power-off: give the
            # log a second before calling the exit a crash.
            first_seen = self.exited_at.setdefault(node, time.monotonic())
            if time.monotonic() - first_seen < CRASH_GRACE_S:
                continue
            del self.exited_at[node]
            text = (
                f"{node}'s daemon exited rc={proc.returncode} on its own\n{self.cluster.diagnostics([node])}"
            )
            self.crashes.append(text)
            self.summary.daemon_crashes.append(f"{node} rc={proc.returncode}")
            self.expected_exit.add(node)
            self.boot(node)  # bring it back so the campaign can go on

    def vip_holders(self) -> list[str]:
        """Live nodes with the VIP configured (read from their namespace's routing table)."""
        if self.model.vip is None:
            return []
        address = self.model.vip[1]
        holders = []
        for node in self.names:
            for proc in (self.cluster.procs.get(node), self.cluster.responders.get(node)):
                if proc is None or proc.poll() is not None:
                    continue
                try:
                    table = Path(f"/proc/{proc.pid}/net/fib_trie").read_text()
                except OSError:
                    continue
                if _has_local_address(table, address):
                    holders.append(node)
                break
        return holders

    def holder(self, rsc: str) -> str | None:
        for doc in self.views().values():
            if doc is None:
                continue
            entry = next((r for r in doc["resources"] if r["id"] == rsc), None)
            if entry is not None and entry["state"] == "started" and isinstance(entry["node"], str):
                return str(entry["node"])
        return None

    def cli(self, *args: str, via: str | None = None) -> subprocess.CompletedProcess[str]:
        node = via or min(self.up)
        return self.cluster.cli(node, *args, check=False)

    # --- convergence ---------------------------------------------------------------------------

    def problems(self, avoid: frozenset[str] = frozenset()) -> list[str]:
        report = self.reader.report(self.cluster.power_offs, limits=self.model.limits)
        return convergence_problems(
            self.views(),
            self.expected(avoid),
            journal_copies=report.open_copies(),
            vip_holders=self.vip_holders(),
        )

    def converge(self, record: StepRecord, avoid: frozenset[str] = frozenset(), timed: bool = True) -> bool:
        start = time.monotonic()
        deadline = start + self.options.converge_timeout_s
        problems: list[str] = []
        while True:
            self.tick()
            problems = (
                self.problems(avoid) if not self.awaiting_boot else ["a fenced node has not booted yet"]
            )
            if not problems:
                if timed and record.converge_s is None:
                    record.converge_s = round(time.monotonic() - start, 3)
                    injected_ns = record.injected_ns or record.started_ns
                    record.recovery_s = round((time.monotonic_ns() - injected_ns) / 1e9, 3)
                return True
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        record.fail(
            "convergence",
            f"not converged {self.options.converge_timeout_s:g} s after the fault ended:\n    "
            + "\n    ".join(problems[:20]),
        )
        return False

    # --- running -------------------------------------------------------------------------------

    def setup(self) -> None:
        self.cluster.write_resources_crm(self.model.crm)
        self.cluster.start_all()
        record = StepRecord(Step(0, "setup", {}), time.monotonic_ns())
        if not self.converge(record):
            raise RuntimeError(f"the cluster did not converge after start: {record.failures[0]}")
        self._audit_logs(record)
        if record.failures:
            raise RuntimeError("\n".join(record.failures))

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.options.steps is not None and len(self.summary.steps) >= self.options.steps:
                return
            step = self.schedule.next()
            record = self.run_step(step)
            self.summary.steps.append(record)
            self.report(record)
            if record.failures and self.options.stop_on_failure:
                return

    def run_step(self, step: Step) -> StepRecord:
        record = StepRecord(step, time.monotonic_ns())
        print(step.describe(), flush=True)
        handler: Callable[[StepRecord], None] = getattr(self, f"fault_{step.kind}")
        try:
            handler(record)
        finally:
            self.hold_boots = False
        if not record.fault_end_ns:
            record.fault_end_ns = time.monotonic_ns()
        converged = self.converge(record, avoid=self._avoid(record))
        if converged and record.check_moves:
            self._check_moves(record)
        self._after(record)
        self.wait(float(step.params.get("pause_s", 0.0)))
        self._audit(record)
        return record

    def _avoid(self, record: StepRecord) -> frozenset[str]:
        return frozenset([record.step.params["node"]]) if record.step.kind == "standby" else frozenset()

    def _after(self, record: StepRecord) -> None:
        """Undo what the step left behind (move constraints, failures, standby), converged again."""
        for path in self.fault_dir.iterdir():
            path.unlink()
        if record.step.kind == "standby":
            self.cli("node", "online", record.step.params["node"])
        for unit, _ in record.moved:
            self.cli("resource", "unmove", unit)
        for rsc in record.cleanup:
            self.cli("resource", "cleanup", rsc)
        if record.moved or record.cleanup or record.step.kind == "standby":
            self.converge(record, timed=False)

    def _check_moves(self, record: StepRecord) -> None:
        for unit, target in record.moved:
            rsc = self._representative(unit)
            where = self.holder(rsc)
            if where != target:
                record.fail("move", f"move {unit} to {target} did not land: {rsc} runs on {where}")

    def _representative(self, unit: str) -> str:
        members = [r for r, g in self.model.group_of.items() if g == unit]
        return members[0] if members else unit

    def _unit_of(self, rsc: str) -> str:
        """What to move so that ``rsc`` moves: its group, or what it is colocated with."""
        if rsc in self.model.group_of:
            return self.model.group_of[rsc]
        for dependent, required in self.model.requires:
            if dependent == rsc:
                return required
        return rsc

    # --- the fault kinds -----------------------------------------------------------------------

    def fault_crash(self, record: StepRecord) -> None:
        node = record.step.params["node"]
        self.expected_exit.add(node)
        record.hit()
        self.cluster.crash(node)
        self.down[node] = "crashed"
        record.allowed_fences.add(node)

    def fault_restart(self, record: StepRecord) -> None:
        node = record.step.params["node"]
        del self.down[node]
        record.hit()
        self.boot(node)

    def _split(self, nodes: Sequence[str], bridge: str) -> None:
        for node in nodes:
            ip("-n", self.lab.switch, "link", "set", f"p{self.cluster.index(node)}", "master", bridge)

    def fault_partition(self, record: StepRecord) -> None:
        p = record.step.params
        nodes = list(p["nodes"])
        record.required_fences.update(nodes)
        self.hold_boots = True
        if "move" in p:  # the cut races the move's stops and starts
            self._move(record, p["move"], p["to"])
            time.sleep(p["after_ms"] / 1000)
        record.hit()
        self._split(nodes, PARTITION_BRIDGE)
        limit_s = 3 * self.options.deadtime_ms / 1000 + 10
        fenced = self.wait_until(lambda: all(n in self.awaiting_boot for n in nodes), limit_s)
        if not fenced:
            record.notes.append(f"not all of {','.join(nodes)} fenced within {limit_s:g} s; healing anyway")
        self._split(nodes, "br0")
        record.fault_end_ns = time.monotonic_ns()

    def fault_blip(self, record: StepRecord) -> None:
        nodes = list(record.step.params["nodes"])
        record.hit()
        self._split(nodes, PARTITION_BRIDGE)
        self.wait(record.step.params["fraction"] * self.options.deadtime_ms / 1000)
        self._split(nodes, "br0")

    def fault_freeze(self, record: StepRecord) -> None:
        p = record.step.params
        node = p["node"]
        record.required_fences.add(node)
        pid = self.cluster.pid(node)
        if "move" in p:  # frozen in the middle of the move's stops and starts
            self._move(record, p["move"], p["to"])
            time.sleep(p["after_ms"] / 1000)
        record.hit()
        os.kill(pid, signal.SIGSTOP)
        try:
            limit_s = 3 * self.options.deadtime_ms / 1000 + 10
            if not self.wait_until(lambda: node in self.awaiting_boot, limit_s):
                record.notes.append(f"{node} not fenced within {limit_s:g} s of the freeze")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def fault_netem(self, record: StepRecord) -> None:
        p = record.step.params
        node = p["node"]
        record.allowed_fences.add(node)
        self.hold_boots = True
        record.hit()
        with Impairment(self.lab, self.cluster.index(node), p):
            self.wait(0.3)
            self._move(record, p["move"], p["to"], via=node)
            self.wait(p["hold_s"])
        record.check_moves = True

    def fault_dc_kill(self, record: StepRecord) -> None:
        p = record.step.params
        dc = p["node"]
        seen = {doc["cluster"]["dc"] for doc in self.views().values() if doc is not None}
        if seen != {dc}:
            record.notes.append(f"the nodes see DC {','.join(sorted(map(str, seen)))}, the schedule {dc}")
        others = [n for n in self.up if n != dc]
        self._move(record, p["move"], p["to"], via=others[0] if others else None)
        time.sleep(p["after_ms"] / 1000)
        self.expected_exit.add(dc)
        self.cluster.crash(dc)
        self.down[dc] = "crashed"
        record.allowed_fences.add(dc)

    def fault_standby(self, record: StepRecord) -> None:
        record.hit()
        self.cli("node", "standby", record.step.params["node"])

    def fault_move(self, record: StepRecord) -> None:
        self._move(record, record.step.params["unit"], record.step.params["to"])
        record.check_moves = True

    def _move(self, record: StepRecord, unit_pick: int, to_pick: int, via: str | None = None) -> None:
        unit = resolve(unit_pick, self.model.movable)
        target = resolve(to_pick, self.up)
        record.hit()
        done = self.cli("resource", "move", unit, target, via=via)
        record.moved.append((unit, target))
        if done.returncode != 0:
            record.notes.append(f"move {unit} {target}: rc={done.returncode} {done.stderr.strip()[-200:]}")

    def _journaled(self) -> list[str]:
        return sorted(self.model.limits)

    def fault_monitor_fail(self, record: StepRecord) -> None:
        """The service dies under the cluster: a Journal writer killed, or the VIP deleted."""
        # CLONES: a clone has a writer per node; pick the node too (a `pick` among its holders).
        vip = [self.model.vip[0]] if self.model.vip is not None else []
        rsc = resolve(record.step.params["rsc"], [*self._journaled(), *vip])
        holder = self.holder(rsc)
        record.cleanup.append(rsc)
        if holder is None:
            record.notes.append(f"{rsc} runs nowhere; nothing to kill")
            return
        killed_ns = time.monotonic_ns()
        if rsc in vip:
            assert self.model.vip is not None
            i = self.cluster.index(holder)
            record.hit()
            self.lab.exec(i, ["ip", "addr", "del", f"{self.model.vip[1]}/24", "dev", self.lab.iface(i)])
            record.notes.append(f"deleted the VIP from {holder}'s interface")
            # The group restarts from the VIP: its Journal members are stopped first.
            watched = [
                m for m, g in self.model.group_of.items() if g == self.model.group_of.get(rsc) and m != rsc
            ]
        else:
            pid_file = self.cluster.rsc_tmp(holder) / f"Journal-{rsc}.pid"
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                record.notes.append(f"no writer pid in {pid_file}")
                return
            record.hit()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            record.notes.append(f"killed {rsc}'s process on {holder}")
            watched = [rsc]

        def noticed() -> bool:
            self.reader.refresh()
            return any(x.ns > killed_ns and x.rsc in watched and x.what == "stop" for x in self.reader.lines)

        limit_s = 10 + 3 * max(self.variant.j1_monitor_ms, 1000) / 1000
        if watched and not self.wait_until(noticed, limit_s):
            record.fail(
                "monitor",
                f"{rsc} on {holder} was killed, and {limit_s:g} s later {', '.join(watched)} had not stopped",
            )

    def fault_start_fail(self, record: StepRecord) -> None:
        rsc = resolve(record.step.params["rsc"], self._journaled())
        holder = self.holder(rsc)
        targets = [n for n in self.up if n != holder]
        target = resolve(record.step.params["to"], targets)
        (self.fault_dir / f"start.{target}.{rsc}").touch()
        record.cleanup.append(rsc)
        since_ns = time.monotonic_ns()
        unit = self._unit_of(rsc)
        record.hit()
        done = self.cli("resource", "move", unit, target)
        record.moved.append((unit, target))
        record.notes.append(
            f"start of {rsc} fails on {target} (move {unit} from {holder}, rc={done.returncode})"
        )

        def attempted() -> bool:
            self.reader.refresh()
            return any(
                x.ns > since_ns and (x.node, x.rsc, x.what) == (target, rsc, "start")
                for x in self.reader.lines
            )

        if not self.wait_until(attempted, 20):
            record.notes.append(f"{rsc} was never started on {target}")

    def fault_stop_fail(self, record: StepRecord) -> None:
        rsc = resolve(record.step.params["rsc"], self._journaled())
        holder = self.holder(rsc)
        record.cleanup.append(rsc)
        if holder is None:
            record.notes.append(f"{rsc} runs nowhere; no stop to fail")
            return
        target = resolve(record.step.params["to"], [n for n in self.up if n != holder])
        fault = self.fault_dir / f"stop.{holder}.{rsc}"
        fault.touch()
        record.required_fences.add(holder)
        unit = self._unit_of(rsc)
        record.hit()
        done = self.cli("resource", "move", unit, target, via=target)
        record.moved.append((unit, target))
        record.notes.append(
            f"stop of {rsc} fails on {holder} (move {unit} to {target}, rc={done.returncode})"
        )
        fenced = self.wait_until(
            lambda: holder in self.awaiting_boot, 20 + 3 * self.options.deadtime_ms / 1000
        )
        fault.unlink()
        if not fenced:
            record.notes.append(f"{holder} was not fenced after its stop failed")

    def fault_config(self, record: StepRecord) -> None:
        self.variant = self.variant.changed(record.step.params["change"], self.names)
        self.model = self._model(self.variant)
        self.cluster.write_resources_crm(self.model.crm)
        record.hit()
        self.cluster.signal(record.step.params["node"], signal.SIGHUP)
        record.notes.append(f"variant now {self.variant}")

    def fault_reload(self, record: StepRecord) -> None:
        record.quiet_since_ns = time.monotonic_ns()
        record.hit()
        self.cluster.signal(record.step.params["node"], signal.SIGHUP)

    def fault_graceful_stop(self, record: StepRecord) -> None:
        node = record.step.params["node"]
        self.expected_exit.add(node)
        record.hit()
        self.cluster.terminate(node)
        self.down[node] = "stopped"
        try:
            rc = self.cluster.procs[node].wait(timeout=30)
        except subprocess.TimeoutExpired:
            record.fail("graceful-stop", f"{node} still running 30 s after SIGTERM")
            self.cluster.crash(node)
            return
        if rc != 0:
            record.fail(
                "graceful-stop", f"{node} exited rc={rc} after SIGTERM\n{self.cluster.diagnostics([node])}"
            )

    # --- audits --------------------------------------------------------------------------------

    def _audit(self, record: StepRecord) -> None:
        self._audit_journal(record)
        self._audit_fences(record)
        self._audit_logs(record)
        for text in self.crashes:
            record.fail("daemon-crash", text)
        self.crashes.clear()
        for at_ns, holders in self.vip_doubles:
            record.fail("vip", f"the VIP was configured on {','.join(holders)} at once ({at_ns / 1e9:.3f} s)")
        self.vip_doubles.clear()

    def _audit_journal(self, record: StepRecord) -> None:
        report = self.reader.report(
            self.cluster.power_offs, limits=self.model.limits, requires=self.model.requires
        )
        new: list[Violation] = [v for v in report.violations if v.key not in self.reported]
        for violation in new:
            self.reported.add(violation.key)
            record.fail("journal", violation.render())
        if record.quiet_since_ns is not None:
            changes = [x for x in self.reader.lines if x.ns > record.quiet_since_ns]
            if changes:
                lines = "\n    ".join(x.render() for x in changes[:10])
                record.fail(
                    "reload", f"a reload of an unchanged configuration started or stopped:\n    {lines}"
                )

    def _audit_fences(self, record: StepRecord) -> None:
        # Every power-off read since the last audit is this step's: steps run one at a time.
        fenced = [node for _, node, state in self.power_events if state == "off"]
        self.power_events.clear()
        record.fenced = fenced
        for node in sorted(record.required_fences - set(fenced)):
            record.fail("fence", f"{node} had to be fenced ({record.step.kind}) and was not")
        for node in fenced:
            if node not in record.required_fences | record.allowed_fences:
                self.summary.unexpected_fences.append(f"step {record.step.number} {record.step.kind}: {node}")

    def _audit_logs(self, record: StepRecord) -> None:
        for name, tail in self.log_tails.items():
            for finding in scan_log(tail.read(), name):
                record.fail(finding.kind, finding.render())

    # --- output --------------------------------------------------------------------------------

    def keep(self, folder: Path) -> None:
        """Copy what explains a failure out of the lab before it is removed."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            for path in (self.cluster.log_path(name), self.cluster.stderr_path(name)):
                with contextlib.suppress(OSError):
                    shutil.copy(path, folder / f"{name}-{path.name}")
        for path in [*sorted(self.cluster.journal.parent.iterdir()), self.power_log]:
            with contextlib.suppress(OSError):
                shutil.copy(path, folder / path.name)
        (folder / "resources.crm").write_text(self.model.crm)
        print(f"kept logs, journal and power log in {folder}", flush=True)

    def report(self, record: StepRecord) -> None:
        took = (
            f"converged {record.converge_s:.2f} s later ({record.recovery_s:.2f} s after the fault began)"
            if record.converge_s is not None and record.recovery_s is not None
            else "NOT converged"
        )
        fault_s = (record.fault_end_ns - record.started_ns) / 1e9
        fenced = f"; fenced {','.join(record.fenced)}" if record.fenced else ""
        notes = f"; {'; '.join(record.notes)}" if record.notes else ""
        verdict = "audits ok" if not record.failures else f"{len(record.failures)} AUDIT FAILURE(S)"
        print(f"  fault {fault_s:.2f} s, {took}{fenced}{notes}; {verdict}", flush=True)
        for failure in record.failures:
            text = f"step {record.step.number} {record.step.kind}: {failure}"
            self.summary.failures.append(text)
            print(f"  AUDIT FAILURE {text}", flush=True)


def _has_local_address(fib_trie: str, address: str) -> bool:
    """Does a /proc/net/fib_trie dump list ``address`` as one of the namespace's own?"""
    lines = fib_trie.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"|-- {address}":
            for following in lines[i + 1 : i + 4]:
                if "/32 host LOCAL" in following:
                    return True
                if "|--" in following:
                    break
    return False


class Impairment:
    """bench/impair.py on node ``i``'s cable: the port leaves the bridge, the impairer joins."""

    def __init__(self, lab: RmLab, i: int, params: dict[str, Any]) -> None:
        self.lab, self.i, self.params = lab, i, params
        self.proc: subprocess.Popen[str] | None = None
        self.counters = ""

    def __enter__(self) -> Impairment:
        sw, i, p = self.lab.switch, self.i, self.params
        ip("-n", sw, "link", "add", f"x{i}", "type", "veth", "peer", "name", f"y{i}")
        try:
            ip("-n", sw, "link", "set", f"y{i}", "master", "br0")
            ip("-n", sw, "link", "set", f"y{i}", "up")
            ip("-n", sw, "link", "set", f"x{i}", "up")
            # Out of the bridge first, so no frame takes both ways (a short outage instead).
            ip("-n", sw, "link", "set", f"p{i}", "nomaster")
            argv = [
                sys.executable,
                str(HERE / "impair.py"),
                f"p{i}",
                f"x{i}",
                f"--seed={p['seed']}",
                f"--loss={p['loss']}",
                f"--delay-ms={p['delay_ms']}",
                f"--jitter-ms={p['jitter_ms']}",
                f"--duplicate={p['duplicate']}",
            ]
            self.proc = self.lab.run(0, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"impair.py did not start: {line!r}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        sw, i = self.lab.switch, self.i
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                out, _ = self.proc.communicate(timeout=5)
                self.counters = out.strip()
        with contextlib.suppress(RuntimeError):
            ip("-n", sw, "link", "del", f"x{i}")
        with contextlib.suppress(RuntimeError):
            ip("-n", sw, "link", "set", f"p{i}", "master", "br0")


# --- the summary -------------------------------------------------------------------------------


def render_summary(summary: Summary, options: Options) -> str:
    doc = summary.as_dict(options)
    lines = [
        "",
        f"== campaign summary: seed {summary.seed} ({'interrupted' if summary.interrupted else 'complete'})",
        f"replay: {options.replay_command()}",
        f"steps run: {doc['steps']}",
    ]
    lines += [f"  {kind:14} {count}" for kind, count in doc["steps_by_kind"].items()]
    lines.append(f"audits passed: {doc['audits_passed']} of {doc['audits_run']} steps")
    lines.append("seconds until converged, per kind: after the fault ended | after the fault began")
    head = (
        f"  {'kind':14} {'n':>4}  {'median':>7} {'p95':>7} {'max':>7} | {'median':>7} {'p95':>7} {'max':>7}"
    )
    lines.append(head)
    for kind, stats in doc["convergence_s"].items():
        if not stats["n"]:
            lines.append(f"  {kind:14} {0:>4}  never converged")
            continue
        rec = doc["recovery_s"][kind]
        lines.append(
            f"  {kind:14} {stats['n']:>4}  {stats['median']:>7.2f} {stats['p95']:>7.2f} {stats['max']:>7.2f}"
            f" | {rec['median']:>7.2f} {rec['p95']:>7.2f} {rec['max']:>7.2f}"
        )
    lines.append(f"unexpected fences: {len(summary.unexpected_fences)}")
    lines += [f"  {text}" for text in summary.unexpected_fences]
    lines.append(f"daemon crashes: {len(summary.daemon_crashes)}")
    lines += [f"  {text}" for text in summary.daemon_crashes]
    lines.append(f"audit failures: {len(summary.failures)}")
    lines += [f"  {text.splitlines()[0]}" for text in summary.failures]
    if summary.setup_failure:
        lines.append(f"setup failed: {summary.setup_failure}")
    return "\n".join(lines)


# --- entry points ------------------------------------------------------------------------------


def run_campaign(options: Options) -> Summary:
    """Build the lab, run the steps until ``minutes`` (or ``steps``) are used up, tear down.

    The lab is torn down whatever happens; a KeyboardInterrupt is turned into a summary
    marked interrupted.
    """
    deadline = time.monotonic() + options.minutes * 60
    summary = Summary(options.seed)
    print(
        f"campaign seed={options.seed} nodes={options.nodes}; replay: {options.replay_command()}", flush=True
    )
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="campaign-")))
        work.chmod(0o755)
        lab = stack.enter_context(RmLab("cmp", nodes=options.nodes))
        cluster = stack.enter_context(
            FenceCluster(
                lab,
                journal_dir=work / "journal",
                keepalive_ms=options.keepalive_ms,
                deadtime_ms=options.deadtime_ms,
                initdead_ms=10_000,
            )
        )
        print(
            f"lab: namespaces {lab.switch} and {', '.join(lab.node_namespaces.values())}; "
            f"files {work}; daemons in {cluster.root}",
            flush=True,
        )
        campaign = Campaign(options, lab, cluster, work)
        summary = campaign.summary
        try:
            campaign.setup()
            campaign.run(deadline)
        except (KeyboardInterrupt, Interrupted):
            summary.interrupted = True
        except RuntimeError as exc:
            summary.setup_failure = str(exc)
            summary.failures.append(f"setup: {exc}")
        finally:
            if options.keep is not None:
                campaign.keep(options.keep)
    return summary


def plan(options: Options, count: int) -> list[Step]:
    schedule = Schedule(options.seed, [f"n{i}" for i in range(1, options.nodes + 1)], options.kinds)
    return [schedule.next() for _ in range(count)]


def _interrupt_once() -> None:
    """The first SIGINT/SIGTERM interrupts the run; later ones are ignored while it cleans up."""
    state = {"seen": False}

    def handler(signum: int, _frame: object) -> None:
        if state["seen"]:
            print(f"signal {signum} ignored: cleaning up", file=sys.stderr, flush=True)
            return
        state["seen"] = True
        raise Interrupted

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def parse_args(argv: Sequence[str]) -> tuple[Options, int | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="replay this seed's schedule (default: new)")
    parser.add_argument("--minutes", type=float, default=10.0, help="stop starting steps after this long")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--nodes", type=int, default=3, choices=(3, 4, 5))
    parser.add_argument("--kinds", default=None, help=f"comma-separated subset of: {','.join(KINDS)}")
    parser.add_argument("--keepalive", default="100ms")
    parser.add_argument("--deadtime", default="1000ms")
    parser.add_argument("--converge-timeout", type=float, default=30.0, help="seconds")
    parser.add_argument("--boot-delay", type=float, default=2.0, help="seconds from power-on to boot")
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument("--no-results", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument(
        "--keep", type=Path, default=None, help="copy logs, journal, power log to this folder"
    )
    parser.add_argument(
        "--plan", type=int, default=None, metavar="N", help="print the first N steps and exit"
    )
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else None
    if kinds:
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            parser.error(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    options = Options(
        seed=seed,
        minutes=args.minutes,
        steps=args.steps,
        nodes=args.nodes,
        kinds=kinds,
        keepalive_ms=parse_ms(args.keepalive),
        deadtime_ms=parse_ms(args.deadtime),
        converge_timeout_s=args.converge_timeout,
        boot_delay_s=args.boot_delay,
        results=not args.no_results,
        stop_on_failure=args.stop_on_failure,
        keep=args.keep,
    )
    return options, args.plan


def main(argv: Sequence[str] | None = None) -> int:
    options, plan_count = parse_args(sys.argv[1:] if argv is None else argv)
    if plan_count is not None:
        for step in plan(options, plan_count):
            print(step.describe())
        return 0
    if os.geteuid() != 0:
        print("the campaign needs root (network namespaces, mounts)", file=sys.stderr)
        return 2
    _interrupt_once()
    try:
        summary = run_campaign(options)
    except Interrupted:
        print("interrupted while the lab was being built or torn down; it is cleaned up", flush=True)
        return 130
    print(render_summary(summary, options), flush=True)
    if options.results:
        path = write_result(f"campaign-{options.seed}", summary.as_dict(options))
        print(f"wrote {path.relative_to(REPO)}")
    if summary.interrupted:
        return 130
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
