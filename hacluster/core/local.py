"""This node's resources: their local states, their definitions, the operations in flight.  Pure.

Theory of operation
-------------------
Every configured primitive (fence devices aside) has a ``LocalResource`` here from the moment
the configuration is adopted; one removed from the configuration stays while it may still
run (an *orphan*: stopped, then forgotten).  Each remembers the definition it runs with, so a
change of agent or parameters restarts it (``LocalFacts.definition_changed``), while a
stopped one simply takes the new definition.

``ResourceManager`` asks this class for the facts ``reconcile.decide`` needs, turns the
operations decided into ``RunAgent``s through ``run``, and feeds agent results to
``finish``, which applies ``lrm.TRANSITIONS`` and schedules the next monitor.  Nothing here
decides *what* to run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig, Primitive, base_id, instance_index
from hacluster.core.effects import AgentFinished, Level, Notice, RunAgent
from hacluster.core.lrm import (
    MAYBE_ACTIVE,
    Action,
    LocalResource,
    LocalState,
    ResourceReport,
    ResultOutcome,
    apply_result,
    expire_failures,
    op_timeout_ms,
    recurring_monitor,
)
from hacluster.core.reconcile import LocalFacts, Op

_ACTIVE: Final = MAYBE_ACTIVE - {LocalState.UNKNOWN}


class LocalResources:
    def __init__(self) -> None:
        self._resources: dict[str, LocalResource] = {}
        self._running_with: dict[str, Primitive] = {}
        """What each resource runs with: the definition it had when it last stopped."""
        self._call_id = 0
        self._node_count = 0
        """The number of configured nodes: a clone without clone-max has that many instances."""

    # --- queries ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[LocalResource]:
        return iter(self._resources.values())

    def get(self, rsc: str) -> LocalResource | None:
        return self._resources.get(rsc)

    def state(self, rsc: str) -> LocalState | None:
        resource = self._resources.get(rsc)
        return None if resource is None else resource.state

    def reports(self) -> dict[str, ResourceReport]:
        return {rsc: r.report() for rsc, r in self._resources.items()}

    def probed(self) -> bool:
        """Every resource's state here is known (the DC waits for this before planning)."""
        return all(r.state is not LocalState.UNKNOWN for r in self._resources.values())

    def runs_something(self) -> bool:
        return any(r.state is LocalState.STARTED for r in self._resources.values())

    def active(self) -> list[str]:
        """Resources that may run here now."""
        return sorted(rsc for rsc, r in self._resources.items() if r.state in _ACTIVE)

    def busy(self) -> tuple[list[str], list[str]]:
        """What may still run here or has an operation in flight, and which of those are blocked."""
        busy = sorted(
            rsc for rsc, r in self._resources.items() if r.pending is not None or r.state in _ACTIVE
        )
        return busy, [rsc for rsc in busy if self._resources[rsc].state is LocalState.BLOCKED]

    def is_moving(self) -> bool:
        return any(r.state in (LocalState.STARTING, LocalState.STOPPING) for r in self._resources.values())

    def facts(self, config: ClusterConfig, now_ms: int) -> dict[str, LocalFacts]:
        """What ``reconcile.decide`` cannot know from the view, per resource, in our order."""
        configured = self._configured(config)
        facts = {}
        for rsc, resource in self._resources.items():
            running, wanted = self._running_with[rsc], configured.get(rsc)
            changed = wanted is not None and (running.agent, running.params, running.args) != (
                wanted.agent,
                wanted.params,
                wanted.args,
            )
            due = resource.next_monitor_ms is not None and resource.next_monitor_ms <= now_ms
            facts[rsc] = LocalFacts(
                pending=resource.pending is not None,
                definition_changed=changed,
                monitor_due=due and recurring_monitor(running, resource.role) is not None,
            )
        return facts

    def deadline_ms(self, config: ClusterConfig, configured: set[str], *, maintenance: bool) -> int | None:
        """The earliest due monitor or failure expiry here (None: nothing is due by itself)."""
        times = []
        for resource in self._resources.values():
            managed = resource.id not in configured or config.is_managed(resource.id)
            if (
                resource.next_monitor_ms is not None
                and resource.pending is None
                and not maintenance
                and managed
            ):
                times.append(resource.next_monitor_ms)
            if (
                resource.failcount
                and resource.last_failure_ms is not None
                and resource.state not in (LocalState.FAILED, LocalState.BLOCKED)
                and resource.id in configured
            ):
                timeout = config.failure_timeout_ms_of(resource.id)
                if timeout > 0:
                    times.append(resource.last_failure_ms + timeout)
        return min(times) if times else None

    # --- changes ------------------------------------------------------------------------------

    def _configured(self, config: ClusterConfig) -> dict[str, Primitive]:
        """Every resource id this node runs (clone instances too) → its primitive."""
        return {rsc: config.primitive(rsc) for rsc in config.runnable_ids(self._node_count)}

    def adopt(self, config: ClusterConfig, node_count: int | None = None) -> None:
        """A new configuration: new resources appear, stopped ones take their new definition,
        stopped orphans go.  ``node_count``: the configured nodes (clones' default clone-max)."""
        if node_count is not None:
            self._node_count = node_count
        wanted = self._configured(config)
        for rsc, primitive in wanted.items():
            resource = self._resources.get(rsc)
            if resource is None:
                self._resources[rsc] = LocalResource(rsc)
                self._running_with[rsc] = primitive
            elif resource.state in (LocalState.STOPPED, LocalState.UNKNOWN) and resource.pending is None:
                self._running_with[rsc] = primitive
        for rsc in list(self._resources):
            resource = self._resources[rsc]
            if rsc not in wanted and resource.state is LocalState.STOPPED and resource.pending is None:
                del self._resources[rsc]
                del self._running_with[rsc]

    def run(self, op: Op, config: ClusterConfig, now_ms: int) -> RunAgent:
        """The agent operation for ``op``; the resource is pending until it finishes."""
        resource, primitive = self._resources[op.resource], self._running_with[op.resource]
        interval_ms, depth = 0, 0
        action = "monitor" if op.action is Action.PROBE else op.action.value
        if op.action is Action.MONITOR:
            monitor = recurring_monitor(primitive, resource.role)
            assert monitor is not None, f"{op.resource}: a monitor is due without a recurring monitor op"
            interval_ms, depth = monitor.interval_ms, monitor.depth
        self._call_id += 1
        request = RunAgent(
            call_id=self._call_id,
            resource=resource.id,
            primitive=primitive,
            action=action,
            interval_ms=interval_ms,
            timeout_ms=op_timeout_ms(config, primitive, action, interval_ms),
            depth=depth,
            meta=clone_meta(config, op.resource, self._node_count, action),
        )
        resource.pending = request
        if action == "start":
            resource.state = LocalState.STARTING
        elif action == "stop":
            resource.state = LocalState.STOPPING
            resource.next_monitor_ms = None
        elif interval_ms:
            resource.next_monitor_ms = now_ms + interval_ms
        return request

    def finish(self, result: AgentFinished, config: ClusterConfig, now_ms: int) -> ResultOutcome | None:
        """Apply an agent's result; None when it is stale (not the operation in flight)."""
        resource = self._resources.get(result.resource)
        if resource is None or resource.pending is None or resource.pending.call_id != result.call_id:
            return None
        configured = set(config.runnable_ids(self._node_count))
        threshold = (
            config.migration_threshold_of(result.resource) if result.resource in configured else INFINITY
        )
        promotable = result.resource in configured and config.is_promotable(result.resource)
        outcome = apply_result(resource, result, threshold, now_ms, promotable=promotable)
        monitor = recurring_monitor(self._running_with[result.resource], resource.role)
        if outcome.state is LocalState.STARTED and monitor is not None:
            resource.next_monitor_ms = now_ms + monitor.interval_ms
        if outcome.state is LocalState.STOPPED and result.resource not in configured:
            del self._resources[result.resource]  # an orphan, now gone
            self._running_with.pop(result.resource, None)
        elif outcome.state is LocalState.STOPPED:
            self._running_with[result.resource] = config.primitive(result.resource)
        return outcome

    def expire(self, config: ClusterConfig, now_ms: int) -> list[Notice]:
        """Forget fail counts whose ``failure-timeout`` has passed."""
        configured = set(config.runnable_ids(self._node_count))
        out = []
        for rsc, resource in self._resources.items():
            if rsc in configured and expire_failures(resource, config.failure_timeout_ms_of(rsc), now_ms):
                out.append(
                    Notice("FAILCOUNT_EXPIRED", Level.INFO, f"{rsc}: failures expired (failure-timeout)")
                )
        return out

    def cleanup(self, rsc: str, node: str, held: frozenset[str]) -> list[Notice]:
        """Forget failures of ``rsc`` (every one when empty); probe again what is not running,
        and what the plan holds (``multiple-active=block``: the operator stopped copies by
        hand, the probe says which are left)."""
        out = []
        for rid, resource in self._resources.items():
            if rsc and rsc not in (rid, base_id(rid)):  # a cloned primitive's id: every instance
                continue
            resource.failcount = 0
            resource.banned_everywhere = False
            resource.last_failed_op = None
            resource.last_exit_reason = None
            again = (
                resource.state in (LocalState.FAILED, LocalState.BLOCKED, LocalState.STOPPED) or rid in held
            )
            if again and resource.pending is None:
                resource.state = LocalState.UNKNOWN  # probe again
            out.append(Notice("CLEANUP", Level.INFO, f"{rid}: failures forgotten on {node}; probing again"))
        return out


def clone_meta(config: ClusterConfig, rsc: str, node_count: int, action: str) -> tuple[tuple[str, str], ...]:
    """The ``CRM_meta_*`` keys Pacemaker gives a clone instance's agent: ``clone`` (the
    instance number), ``clone_max``, ``clone_node_max``, ``globally_unique``, ``notify``,
    and for promotable clones ``promoted_max``/``promoted_node_max`` (and the old
    ``master_max``/``master_node_max`` that older agents read); empty outside clones."""
    clone = config.clone_of(rsc)
    index = instance_index(rsc)
    if clone is None or index is None:
        return ()
    settings = config.clone_settings(clone.id, node_count)
    out = [
        ("CRM_meta_clone", str(index)),
        ("CRM_meta_clone_max", str(settings.clone_max)),
        ("CRM_meta_clone_node_max", str(settings.clone_node_max)),
        ("CRM_meta_globally_unique", "true" if settings.globally_unique else "false"),
        ("CRM_meta_notify", "true" if settings.notify else "false"),
    ]
    if settings.promotable:
        out += [
            ("CRM_meta_promoted_max", str(settings.promoted_max)),
            ("CRM_meta_promoted_node_max", str(settings.promoted_node_max)),
            ("CRM_meta_master_max", str(settings.promoted_max)),
            ("CRM_meta_master_node_max", str(settings.promoted_node_max)),
        ]
    return tuple(out)
