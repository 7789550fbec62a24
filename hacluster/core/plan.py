"""The plan as data: where each resource may run now, and why, as values not sentences.

Theory of operation
-------------------
``placement.place`` says where each resource should end up, ``transition.make_plan`` where
it may run *now*, and ``dc.plan_for`` adds the DC's cluster-wide holds; each attaches a
``Reason`` to every resource.  A reason is a ``ReasonCode`` plus the facts behind it (the
nodes concerned, the prerequisite that cannot run and *its* reason, each node's blocker),
and the one sentence an operator reads, written where the decision is made.  Readers
branch on the code and the facts, never on the sentence: ``why`` and the simulator's
"settled" check read ``code``, ``per_node`` and ``cause``.

Keys are resource ids as strings; clone instances (``db:0``) will be keys like any other,
and ``roles`` holds a role next to each target node (empty: every assigned resource is
simply Started, the only role there is before promotable clones).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from hacluster.core.ids import NodeName


class Role(enum.StrEnum):
    """The role a running resource has (Pacemaker's ``Started``/``Unpromoted``/``Promoted``)."""

    STARTED = "Started"
    UNPROMOTED = "Unpromoted"
    PROMOTED = "Promoted"


class ReasonCode(enum.StrEnum):
    # placement
    PLACED = "placed"
    """Goes to (or stays on) ``nodes[0]``."""
    FROZEN = "frozen"
    """No quorum and no-quorum-policy=freeze: stays where it runs."""
    TARGET_ROLE_STOPPED = "target-role-stopped"
    FOLLOWS_STOPPED = "follows-stopped"
    """A group member after one whose target-role is Stopped (``first``)."""
    BANNED_EVERYWHERE = "banned-everywhere"
    NO_QUORUM = "no-quorum"
    NO_NODE = "no-node"
    """Every node refuses it; ``per_node`` says why each one does."""
    NEEDS_FIRST = "needs-first"
    """A mandatory prerequisite (``first``) cannot run now; ``cause`` is its reason."""
    # transition
    BLOCKED = "blocked"
    """Its stop failed on ``nodes``: it stays off every other node until they are fenced."""
    AWAITING_FENCE = "awaiting-fence"
    """It may still run on lost ``nodes``, which must be fenced first."""
    ACTIVE_ELSEWHERE = "active-elsewhere"
    """Active on ``nodes`` (several, or not its target): stopped there first."""
    MOVING = "moving"
    """Stopped on ``nodes`` first, then started on its target."""
    MULTIPLE_ACTIVE_BLOCKED = "multiple-active-blocked"
    """Active on several ``nodes`` with multiple-active=block: left alone."""
    STOPPING_UNEXPECTED = "stopping-unexpected"
    """Active on several nodes with multiple-active=stop_unexpected: stays on its target,
    stopped on the others (``nodes``)."""
    # the DC
    HELD_FOR_FENCING = "held-for-fencing"
    """Lost ``nodes`` await fencing: nothing new starts anywhere before."""
    NO_FENCE_DEVICE = "no-fence-device"


TRANSIENT_CODES: frozenset[ReasonCode] = frozenset({ReasonCode.ACTIVE_ELSEWHERE, ReasonCode.MOVING})
"""Reasons that last only until a stop is reported: the cluster is not at rest yet."""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a resource goes where it goes, or why it cannot run."""

    code: ReasonCode
    text: str
    """The operator's sentence, e.g. ``goes to n2 (score 0)``."""
    nodes: tuple[NodeName, ...] = ()
    first: str | None = None
    cause: Reason | None = None
    per_node: tuple[tuple[NodeName, str], ...] = ()
    """``NO_NODE``: each node and what keeps the resource off it."""

    def __str__(self) -> str:
        return self.text

    @property
    def is_transient(self) -> bool:
        return self.code in TRANSIENT_CODES


@dataclass(frozen=True, slots=True)
class Plan:
    assignment: Mapping[str, NodeName | None]
    """Resource id → the node it may run on now, or None: it runs nowhere now."""
    reasons: Mapping[str, Reason]
    needs_fencing: frozenset[NodeName]
    """Lost nodes that may still run a resource; nothing of theirs moves until they are fenced."""
    held: frozenset[str] = frozenset()
    """Resources the plan leaves alone wherever they are (multiple-active=block): no node
    starts, stops or monitors them."""
    roles: Mapping[str, Role] = field(default_factory=dict)
    """Resource id → role on its target; a resource not listed is ``Started``."""

    def role_of(self, rsc: str) -> Role:
        return self.roles.get(rsc, Role.STARTED)
