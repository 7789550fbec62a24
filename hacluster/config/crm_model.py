"""What Pacemaker's configuration means, shared by the crm parser and the CIB importer.

Both ``resources_crm`` (crm text) and ``cib_xml`` (a CIB) read the same constructs; the rules
that give them their Pacemaker meaning live here once:

* **Obsolete cluster options** of Pacemaker 1.x and Heartbeat v2 (``default-resource-stickiness``,
  ``expected-quorum-votes``, ``no_quorum_policy`` …) are accepted and moved to their modern
  home (``rsc_defaults resource-stickiness``) or dropped where Pacemaker 2 ignores them, each
  with a warning that names the modern form.
* **Redundant constraints**: an order or colocation between two members of one group that
  says what the group already says (first before then, positive score) is dropped with a
  warning, as crmsh warns "constraints should apply to the group"; one that contradicts the
  group stays and ``ClusterConfig.check`` refuses it.
* **A single ``#uname eq NODE`` rule** is a plain node score, the way Heartbeat v2 and
  crmsh 1.x wrote every location constraint; other rules are a missing feature.
* **Roles** (Master/Slave, Promoted/Unpromoted) only exist inside promotable clones, which
  are refused (``features.MISSING``); an op for such a role on a plain primitive never runs in
  Pacemaker either, so it is dropped with a warning.
"""

from __future__ import annotations

import re
from typing import Final

from hacluster.core.cib import KNOWN_PROPERTIES, Colocation, Group, Order, pacemaker_integer

OBSOLETE_PROPERTIES: Final[dict[str, tuple[str, str | None, str]]] = {
    "default-resource-stickiness": (
        "rsc_defaults",
        "resource-stickiness",
        "obsolete since Pacemaker 1.1 (removed in 2.0)",
    ),
    "is-managed-default": ("rsc_defaults", "is-managed", "obsolete since Pacemaker 1.1 (removed in 2.0)"),
    "default-action-timeout": ("op_defaults", "timeout", "obsolete since Pacemaker 1.1 (removed in 2.0)"),
    "expected-quorum-votes": (
        "drop",
        None,
        "a Pacemaker 1.x option for the openais/cman stacks; quorum comes from the nodes of ha.cf",
    ),
    "default-resource-failure-stickiness": (
        "drop",
        None,
        "Pacemaker 1.0's failure stickiness; use rsc_defaults migration-threshold=N instead",
    ),
    "remove-after-stop": ("drop", None, "deprecated and ignored by Pacemaker"),
    "default-migration-threshold": (
        "rsc_defaults",
        "migration-threshold",
        "obsolete since Pacemaker 1.1 (removed in 2.0)",
    ),
    "notification-agent": ("drop", None, "Pacemaker 1.1's notification script; write an alert line in ha.cf"),
    "notification-recipient": ("drop", None, "Pacemaker 1.1's notification recipient; see alert in ha.cf"),
    "transition_idle_timeout": ("drop", None, "a Heartbeat v2 option that Pacemaker no longer has"),
    "crmd-transition-delay": ("property", "transition-delay", "the Pacemaker 1.x name"),
    "crmd-integration-timeout": ("property", "join-integration-timeout", "the Pacemaker 1.x name"),
    "crmd-finalization-timeout": ("property", "join-finalization-timeout", "the Pacemaker 1.x name"),
}
"""``name: (new home, new name, why)``: where each obsolete option goes.

The list is Pacemaker 2's own: the names its schema refuses in ``cluster_property_set``
(``/usr/share/pacemaker/options-3.9.rng``, ``name-value-unsupported``), which Pacemaker 1.x
and Heartbeat v2 accepted; the underscore spellings there are handled by
``modernize_properties`` for every known option.
"""

NEWER_NAMES: Final[dict[str, str]] = {
    "fencing-enabled": "stonith-enabled",
    "fencing-action": "stonith-action",
    "fencing-timeout": "stonith-timeout",
}
"""Pacemaker 3.x's names of options we know by their Pacemaker 2 names: read silently as those
(both are valid; a Pacemaker 3 CIB's ``fencing-enabled=false`` must not leave fencing on).
Pacemaker's own scheduler regression inputs (``shared/pacemaker-scheduler``) use them."""

OLD_STACKS: Final = frozenset(
    ["heartbeat", "openais", "classic openais", "classic openais (with plugin)", "cman"]
)
"""``cluster-infrastructure`` values of stacks Pacemaker 2 refuses (same schema rule)."""

MASTER_ROLES: Final = frozenset(["master", "slave", "promoted", "unpromoted"])


def modernize_properties(
    properties: dict[str, str], rsc_defaults: dict[str, str], op_defaults: dict[str, str]
) -> list[tuple[str, str]]:
    """Move or drop obsolete options in place; returns ``(old name, warning)`` for each one.

    A modern setting already present wins over the obsolete one, as in Pacemaker 1.1, where
    ``rsc_defaults`` overrode ``default-resource-stickiness``.
    """
    notes: list[tuple[str, str]] = []
    known = KNOWN_PROPERTIES
    if properties.get("cluster-infrastructure", "").lower() in OLD_STACKS:
        value = properties.pop("cluster-infrastructure")
        notes.append(
            (
                "cluster-infrastructure",
                f"{value!r} names the cluster stack of the old cluster (Pacemaker 2 refuses it); hacluster is "
                "its own stack; ignored; remove it",
            )
        )
    for newer, name in NEWER_NAMES.items():
        if newer in properties:
            value = properties.pop(newer)
            properties.setdefault(name, value)
    for name in list(properties):
        target = OBSOLETE_PROPERTIES.get(name)
        modern = name.replace("_", "-")
        if target is None and modern != name and (modern in known or modern in OBSOLETE_PROPERTIES):
            value = properties.pop(name)
            notes.append((name, f"is the Heartbeat v2 spelling of {modern}; read as {modern}; write that"))
            if modern in properties:
                continue
            properties[modern] = value
            name = modern
            target = OBSOLETE_PROPERTIES.get(name)
        if target is None:
            continue
        home, new_name, why = target
        value = properties.pop(name)
        if home == "drop" or new_name is None:
            notes.append((name, f"{why}; ignored; remove it"))
            continue
        into = {"rsc_defaults": rsc_defaults, "op_defaults": op_defaults, "property": properties}[home]
        modern_form = f"{home} {new_name}={value}" if home != "property" else f"property {new_name}={value}"
        if new_name in into:
            notes.append((name, f"{why}; {home} {new_name} is set too and wins; remove this one"))
            continue
        into[new_name] = value
        notes.append((name, f"{why}; read as {modern_form}; write that instead"))
    return notes


def drop_redundant(
    groups: list[Group] | tuple[Group, ...],
    orders: list[Order],
    colocations: list[Colocation],
) -> tuple[list[Order], list[Colocation], list[tuple[str, str]]]:
    """Orders and colocations without the ones a group already implies, and a warning for each.

    ``(subject, warning)``: the subject is ``order ID`` or ``colocation ID``.
    """
    position: dict[str, tuple[str, int]] = {}
    for group in groups:
        for index, member in enumerate(group.members):
            position.setdefault(member, (group.id, index))
    notes: list[tuple[str, str]] = []
    kept_orders: list[Order] = []
    for order in orders:
        first, then = position.get(order.first), position.get(order.then)
        if first and then and first[0] == then[0] and first[1] < then[1] and order.kind != "Serialize":
            notes.append(
                (f"order {order.id}", _redundant(first[0], f"starts {order.first} before {order.then}"))
            )
            continue
        kept_orders.append(order)
    kept_colocations: list[Colocation] = []
    for colocation in colocations:
        rsc, with_rsc = position.get(colocation.rsc), position.get(colocation.with_rsc)
        if rsc and with_rsc and rsc[0] == with_rsc[0] and colocation.score > 0:
            notes.append(
                (
                    f"colocation {colocation.id}",
                    _redundant(rsc[0], f"keeps {colocation.rsc} and {colocation.with_rsc} on one node"),
                )
            )
            continue
        kept_colocations.append(colocation)
    return kept_orders, kept_colocations, notes


def _redundant(group_id: str, what: str) -> str:
    return (
        f"group {group_id} already {what}, so this constraint changes nothing; ignored "
        f"(crmsh warns the same: constraints should apply to the group); remove it"
    )


def uname_rule_node(attribute: str, operation: str, value: str) -> str | None:
    """The node of a rule expression ``#uname eq NODE``, else None (a rule we cannot express)."""
    if attribute == "#uname" and operation == "eq" and value:
        return value.lower()
    return None


def role_op_warning(primitive_id: str, op_name: str, role: str) -> str:
    """Why an op with a promotable-clone role is dropped from a plain primitive."""
    return (
        f"primitive {primitive_id}: op {op_name} role={role}: only a promotable clone has the {role} "
        f"role and {primitive_id} is not one, so Pacemaker never runs this op either; ignored "
        "(promotable clones: issue 8)"
    )


_INTEGER_META: Final = ("priority",)


def pacemaker_meta_value(name: str, value: str) -> tuple[str, str | None]:
    """A meta value as Pacemaker reads it, and a warning when that differs from the text.

    Pacemaker reads an integer meta attribute up to its first non-digit: ``priority=1.0`` is
    priority 1 (``crm_verify`` warns "Characters left over after parsing '1.0': '.0'").  The
    value is stored as Pacemaker reads it, so the cluster acts as Pacemaker would.
    """
    if name not in _INTEGER_META or re.fullmatch(r"[+-]?\d+", value.strip()):
        return value, None
    try:
        number, rest = pacemaker_integer(value)
    except ValueError:
        return value, None  # not a number at all: check() refuses it
    return str(number), (
        f"meta {name}={value}: Pacemaker reads this as {number} and ignores {rest!r}; "
        f"read as {name}={number}; write that"
    )
