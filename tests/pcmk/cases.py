"""Pacemaker's scheduler regression cases, run through our scheduler and compared.

For each case (``shared/pacemaker-scheduler/xml/NAME.xml`` and ``summary/NAME.summary``):

1. **classify**: ``features.unsupported_of`` (features we do not represent yet), then the
   configuration importer (``cib_xml.parse_cib_xml``), which may refuse more;
2. **ours**: the CIB's status read by ``cib_status.snapshot_of`` and the cluster's own rules
   run to rest by ``simulate.predict`` (the DC's plan, every node's reconciliation, fencing):
   the final placement is the starting one with every predicted action applied;
3. **Pacemaker's**: "Revised Cluster Status" of the summary (where each resource runs, in
   which role) and the ``Fence`` lines of its "Transition Summary";
4. **compare** the two, resource by resource, and the fenced nodes.

Fence devices (class ``stonith``) are left out on both sides: we do not place a device on a
node, any member may use it (``docs/pacemaker-cases.md``, "Deliberate differences").
Nothing here decides anything about scheduling: it reads and compares.
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from hacluster.config.cib_status import snapshot_of, status_of
from hacluster.config.cib_xml import parse_cib_xml
from hacluster.core.cib import instance_index
from hacluster.core.dc import plan_for
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.simulate import Fence, Move, Recover, Restart, Start, Stop, predict
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.errors import ConfigError
from tests.pcmk.features import unsupported_of

CORPUS: Final = Path(__file__).resolve().parents[3] / "shared" / "pacemaker-scheduler"
HERE: Final = Path(__file__).resolve().parent
KNOWN_FILE: Final = HERE / "known_disagreements.json"
DELIBERATE_FILE: Final = HERE / "deliberate_differences.json"

Placement = Mapping[str, frozenset[tuple[str, str]]]
"""Resource id → the (node, role) pairs where it is active; a stopped resource is absent."""


def case_names() -> list[str]:
    return sorted(p.stem for p in (CORPUS / "xml").glob("*.xml"))


# --- Pacemaker's answer ----------------------------------------------------------------------

_PRIMITIVE_LINE: Final = re.compile(
    r"^(?P<indent> *)\* (?P<id>\S+)(?: \([^)]*\))?\t\((?P<agent>[^)]*)\):\t (?P<state>.*)$"
)
_BLOCK_LINE: Final = re.compile(
    r"^(?P<indent> *)\* (?:Clone Set|Resource Group|Container bundle(?: set)?): (?P<id>[^ :]+)"
)
_LIST_LINE: Final = re.compile(r"^ *\* (?P<role>\w+): \[ (?P<nodes>[^\]]*) \]")
_FENCE_LINE: Final = re.compile(r"^ *\* Fence \((?P<action>\w+)\) (?P<node>\S+)")
_ROLES: Final = {
    "Started": "Started",
    "Promoted": "Promoted",
    "Master": "Promoted",
    "Unpromoted": "Unpromoted",
    "Slave": "Unpromoted",
    "FAILED": "Failed",
    "Starting": "Started",
    "Stopping": "Started",
    "Migrating": "Started",
}


@dataclass(frozen=True, slots=True)
class Expected:
    placement: Placement
    clones: Mapping[str, tuple[tuple[str, str], ...]]
    """Clone id → sorted (role, node) of its instances (for when clones are represented)."""
    fenced: frozenset[str]


def parse_summary(text: str) -> Expected:
    """The final state and the fenced nodes that ``crm_simulate -S`` printed."""
    _, _, revised = text.partition("Revised Cluster Status:")
    transition = text.partition("Transition Summary:")[2].partition("Executing Cluster Transition:")[0]
    fenced = frozenset(
        m["node"].lower()
        for line in transition.splitlines()
        if (m := _FENCE_LINE.match(line)) and m["action"] != "on"
    )
    placement: dict[str, set[tuple[str, str]]] = {}
    clones: dict[str, list[tuple[str, str]]] = {}
    block: tuple[int, str, bool] | None = None  # indent, id, is a clone
    instance: tuple[int, set[tuple[str, str]]] | None = None  # a group instance inside a clone
    for line in revised.splitlines():
        indent = len(line) - len(line.lstrip())
        if instance is not None and indent <= instance[0]:
            assert block is not None
            clones.setdefault(block[1], []).extend(instance[1])
            instance = None
        if (m := _BLOCK_LINE.match(line)) is not None:
            if block is not None and block[2] and indent > block[0] and "Resource Group" in line:
                instance = (indent, set())  # ``Resource Group: grp:1`` of a clone: one instance
                continue
            block = (len(m["indent"]), m["id"], "Clone Set" in line)
            continue
        inside = block is not None and indent > block[0]
        if not inside:
            block = None
        if (m := _LIST_LINE.match(line)) is not None and block is not None and block[2]:
            role = _ROLES.get(m["role"])
            if role is not None:
                clones.setdefault(block[1], []).extend((role, n.lower()) for n in m["nodes"].split())
            continue
        m = _PRIMITIVE_LINE.match(line)
        if m is None or m["agent"].startswith("stonith:"):
            continue
        pairs = _state_pairs(m["state"])
        if instance is not None:
            instance[1].update((role, node) for node, role in pairs)
        elif block is not None and block[2]:
            clones.setdefault(block[1], []).extend((role, node) for node, role in pairs)
        elif pairs:
            placement.setdefault(m["id"], set()).update(pairs)
    if instance is not None and block is not None:
        clones.setdefault(block[1], []).extend(instance[1])
    return Expected(
        placement={r: frozenset(p) for r, p in placement.items()},
        clones={c: tuple(sorted(p)) for c, p in clones.items()},
        fenced=fenced,
    )


def _state_pairs(state: str) -> set[tuple[str, str]]:
    """``Started n1 (UNCLEAN)``, ``FAILED [ n1 n2 ]``, ``ORPHANED Started n1``, ``Stopped (disabled)``."""
    words = state.removeprefix("ORPHANED ").split()
    if not words or words[0] not in _ROLES:
        return set()
    role = _ROLES[words[0]]
    rest = " ".join(words[1:])
    if "[" in rest:
        nodes = rest[rest.index("[") + 1 : rest.index("]")].split()
    elif rest and not rest.startswith("("):
        nodes = [rest.split()[0]]
    else:
        nodes = []
    return {(n.lower(), role) for n in nodes}


# --- ours ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ours:
    placement: Placement
    fenced: frozenset[str]
    clones: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    """As ``Expected.clones``: clone id → sorted (role, node) of its active instances."""


_ACTIVE: Final = {
    LocalState.STARTED: "Started",
    LocalState.STARTING: "Started",
    LocalState.STOPPING: "Started",
    LocalState.FAILED: "Failed",
    LocalState.BLOCKED: "Failed",
}


def run_ours(xml_text: str, root: ET.Element, name: str) -> Ours:
    """Our scheduler's answer for one case (module docstring, step 2)."""
    config = parse_cib_xml(xml_text, f"{name}.xml")
    snapshot = snapshot_of(config, status_of(root, f"{name}.xml"), _cloned(config))
    devices = {p.id for p in config.primitives if p.agent_class == "stonith"}
    where: dict[str, dict[NodeName, str]] = {}
    for rsc, states in snapshot.observed.items():
        for node, state in states.items():
            if rsc not in devices and state in _ACTIVE:
                where.setdefault(rsc, {})[node] = _ACTIVE[state]
    fenced: set[str] = set()
    for action in predict(snapshot):
        if isinstance(action, Fence):
            fenced.add(action.node)
            for nodes in where.values():
                nodes.pop(action.node, None)
        elif isinstance(action, Stop):
            where.get(action.rsc, {}).pop(action.node, None)
        elif isinstance(action, Move):
            where.get(action.rsc, {}).pop(action.from_node, None)
            where.setdefault(action.rsc, {})[action.to_node] = "Started"
        elif isinstance(action, Start | Recover | Restart):
            where.setdefault(action.rsc, {})[action.node] = "Started"
    gone = snapshot.trusted_down() | fenced
    roles = _final_roles(snapshot, where, frozenset(NodeName(n) for n in gone))
    placement = {
        rsc: frozenset((n, roles.get((rsc, n), role)) for n, role in nodes.items() if n not in gone)
        for rsc, nodes in where.items()
        if rsc not in devices
    }
    clones: dict[str, list[tuple[str, str]]] = {}
    clone_of = getattr(config, "clone_of", None)  # clones8's model (ClusterConfig.clone_of)
    instances: dict[tuple[str, int | str], set[tuple[str, str]]] = {}
    for rsc in list(placement):
        clone = clone_of(rsc) if clone_of is not None else None
        if clone is not None:
            # A clone of a group: one (role, node) per group instance, as Pacemaker lists it.
            pairs = {(role, n) for n, role in placement.pop(rsc)}
            index = instance_index(rsc)
            instances.setdefault((clone.id, rsc if index is None else index), set()).update(pairs)
    for (clone_id, _), pairs in instances.items():
        clones.setdefault(clone_id, []).extend(pairs)
    return Ours(
        {r: p for r, p in placement.items() if p},
        frozenset(fenced),
        {c: tuple(sorted(pairs)) for c, pairs in clones.items() if pairs},
    )


def _final_roles(
    snapshot: ClusterSnapshot, where: Mapping[str, Mapping[NodeName, str]], gone: frozenset[NodeName]
) -> dict[tuple[str, NodeName], str]:
    """The role of each running resource at rest: the DC's plan for the final state names it
    (``Plan.roles``; the simulator's actions carry no promote or demote)."""
    if not any(snapshot.config.is_promotable(r) for r in where if hasattr(snapshot.config, "is_promotable")):
        return {}
    observed = {
        rsc: {n: LocalState.STARTED if role == "Started" else LocalState.FAILED for n, role in nodes.items()}
        for rsc, nodes in where.items()
    }
    final = replace(
        snapshot, observed=observed, members=snapshot.members - gone, fenced=snapshot.fenced | gone
    )
    plan = plan_for(final)
    return {
        (rsc, node): str(plan.role_of(rsc))
        for rsc, node in plan.assignment.items()
        if node is not None and where.get(rsc, {}).get(node) == "Started"
    }


def _cloned(config: object) -> dict[str, bool]:
    """Cloned primitive → globally unique, once the model has clones (clones8: ``Clone``,
    ``clone_settings``, ``clone_members``); empty before."""
    out: dict[str, bool] = {}
    for clone in getattr(config, "clones", ()):
        settings = config.clone_settings(clone.id, 1)  # type: ignore[attr-defined]
        for member in config.clone_members(clone.id):  # type: ignore[attr-defined]
            out[member] = settings.globally_unique
    return out


# --- one case, classified and compared --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    unsupported: tuple[str, ...] = ()
    """Features the case uses that we do not represent (``features.FEATURES``)."""
    refused: str | None = None
    """The importer's first refusal, when the features alone did not rule the case out."""
    differences: tuple[str, ...] = field(default=())

    @property
    def representable(self) -> bool:
        return not self.unsupported and self.refused is None

    @property
    def agrees(self) -> bool:
        return self.representable and not self.differences


def _fmt(pairs: frozenset[tuple[str, str]]) -> str:
    if not pairs:
        return "stopped"
    return ", ".join(f"{role} {node}" for node, role in sorted(pairs))


def compare(expected: Expected, ours: Ours) -> tuple[str, ...]:
    """One line per resource (and for fencing) where the answers differ: Pacemaker's, then ours."""
    out = []
    for rsc in sorted(set(expected.placement) | set(ours.placement)):
        theirs, mine = expected.placement.get(rsc, frozenset()), ours.placement.get(rsc, frozenset())
        if len(theirs) > 1:
            # crm_mon prints one role for a resource active on several nodes ("FAILED [ n1 n2 ]"):
            # only the nodes can be compared.
            theirs, mine = (frozenset((n, "Active") for n, _ in pairs) for pairs in (theirs, mine))
        if theirs != mine:
            out.append(f"{rsc}: Pacemaker {_fmt(theirs)}; we {_fmt(mine)}")
    for clone in sorted(set(expected.clones) | set(ours.clones)):
        theirs_c, mine_c = expected.clones.get(clone, ()), ours.clones.get(clone, ())
        if theirs_c != mine_c:
            out.append(
                f"{clone}: Pacemaker {', '.join(f'{r} {n}' for r, n in theirs_c) or 'stopped'}; "
                f"we {', '.join(f'{r} {n}' for r, n in mine_c) or 'stopped'}"
            )
    if expected.fenced != ours.fenced:
        out.append(
            f"fenced: Pacemaker {', '.join(sorted(expected.fenced)) or 'none'}; "
            f"we {', '.join(sorted(ours.fenced)) or 'none'}"
        )
    return tuple(out)


@functools.cache
def outcome(name: str) -> Outcome:
    """Classify the case and, when representable, compare our answer with Pacemaker's."""
    xml_text = (CORPUS / "xml" / f"{name}.xml").read_text()
    root = ET.fromstring(xml_text)  # the corpus is trusted test data; the importer parses safely
    unsupported = tuple(unsupported_of(root))
    if unsupported:
        return Outcome(name, unsupported=unsupported)
    try:
        ours = run_ours(xml_text, root, name)
    except ConfigError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "refused"
        return Outcome(name, refused=re.sub(r"^[^:]*:\d+: ", "", first))
    expected = parse_summary((CORPUS / "summary" / f"{name}.summary").read_text())
    return Outcome(name, differences=compare(expected, ours))


def load_list(path: Path) -> dict[str, dict[str, str]]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data
