"""The configuration the fault campaign runs, built from pieces, and what its audits expect.

    model = build_model(Variant(), names=["n1", "n2", "n3"], context)
    text = model.crm                 # resources.crm for every node
    model.limits["j1"]               # Limits(max_active=1, max_promoted=0) for the journal audit

Pieces (``PIECES``, in order):

- **primitives**: ``j1``, ``j2``, ``j3`` (``ocf:test:Journal``), ``order o-j1-j2 Mandatory: j1 j2``
  and ``colocation c-j2-with-j1 inf: j2 j1``; ``j3`` prefers the variant's node with score 50,
  less than the stickiness, so it stays where it runs after a failover and moves only when
  moved.
- **group**: ``grp`` = ``vip`` (``ocf:hacluster:IPaddr2`` on the lab bridge) then ``jg1`` and
  ``jg2`` (Journal).
- **optional**: ``j4``, present or not as the variant says (configuration changes add and
  remove it).
- **fencing**: ``stonith:fence_lab`` for every node, with the lab power switch's log.
- **defaults**: ``stonith-enabled=true`` and the variant's ``resource-stickiness``.

Every Journal resource writes the shared journal; the audit reads it with the ``limits`` and
``requires`` each piece declares.  A piece also names the units that ``move`` may move, the
resources that must end on one node (``together``) and the VIP.

Adding a configuration kind
---------------------------
Issue 8 brings clones and promotable clones.  Their campaign piece is a function like the
ones below returning a ``Piece``: its crm lines (``clone``/``promotable`` of a Journal
primitive) and ``limits`` with the clone's ``clone-max`` as ``max_active`` and its
``promoted-max`` as ``max_promoted``: the Journal agent already journals promote and demote,
and the journal audit already counts active and Promoted copies against those limits
(tests/unit/test_journal_audit.py shows both).  Append the function to ``PIECES``.  Two more
places then need a line each, and are marked ``CLONES:``: the convergence check
(bench/campaign_audit.py, which today wants every resource started on exactly one node) and
the monitor-failure fault (bench/campaign.py, which kills the one copy's writer).  Fault
kinds specific to clones (a failing promote: the agent's ``fault_dir`` already fails
``promote``/``demote`` on demand) are rows of ``KINDS`` in bench/campaign_schedule.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from journal_audit import Limits  # noqa: E402

JOURNAL_AGENT = "ocf:test:Journal"
PRIMITIVE = Limits(max_active=1, max_promoted=0)
STICKINESS_CHOICES = (100, 200)
MONITOR_CHOICES_MS = (1000, 2000)


@dataclass(frozen=True, slots=True)
class Variant:
    """The parts of the configuration a configuration change may alter."""

    stickiness: int = 100
    j3_prefers: int = 1
    """Index into the node list of the node ``j3`` prefers (score 50)."""
    j1_monitor_ms: int = 1000
    with_j4: bool = False

    def changed(self, what: str, names: Sequence[str]) -> Variant:
        """The variant after the configuration change ``what`` (one of ``CHANGES``)."""
        if what == "stickiness":
            others = [s for s in STICKINESS_CHOICES if s != self.stickiness]
            return replace(self, stickiness=others[0])
        if what == "location":
            return replace(self, j3_prefers=(self.j3_prefers + 1) % len(names))
        if what == "monitor":
            others = [m for m in MONITOR_CHOICES_MS if m != self.j1_monitor_ms]
            return replace(self, j1_monitor_ms=others[0])
        if what == "j4":
            return replace(self, with_j4=not self.with_j4)
        raise ValueError(f"unknown configuration change {what!r}; expected one of {', '.join(CHANGES)}")


CHANGES = ("stickiness", "location", "monitor", "j4")


@dataclass(frozen=True, slots=True)
class Context:
    """Where the lab is: paths the agents write to, the VIP, the fence device's lines."""

    journal: Path
    fault_dir: Path
    vip: str
    fence_lines: tuple[str, ...]
    tick_ms: int = 100
    monitor_ms: int = 1000


@dataclass(slots=True)
class Piece:
    crm: list[str]
    limits: dict[str, Limits] = field(default_factory=dict)
    requires: list[tuple[str, str]] = field(default_factory=list)
    """(dependent, required): the dependent may be active on a node only while required is."""
    movable: list[str] = field(default_factory=list)
    together: list[tuple[str, ...]] = field(default_factory=list)
    vip: tuple[str, str] | None = None
    """(resource id, address)."""


@dataclass(frozen=True, slots=True)
class Model:
    crm: str
    resources: tuple[str, ...]
    """Every resource that must run once the cluster has converged."""
    limits: dict[str, Limits]
    requires: tuple[tuple[str, str], ...]
    movable: tuple[str, ...]
    together: tuple[tuple[str, ...], ...]
    vip: tuple[str, str] | None
    group_of: dict[str, str]
    """Journal resource → the group it belongs to (a move or a failure moves the whole group)."""


def journal_primitive(rsc: str, ctx: Context, monitor_ms: int | None = None) -> str:
    return (
        f"primitive {rsc} {JOURNAL_AGENT} params journal={ctx.journal} fault_dir={ctx.fault_dir} "
        f"tick_ms={ctx.tick_ms} op monitor interval={monitor_ms or ctx.monitor_ms}ms timeout=20s "
        "op stop timeout=10s"
    )


def primitives_piece(variant: Variant, names: Sequence[str], ctx: Context) -> Piece:
    return Piece(
        crm=[
            journal_primitive("j1", ctx, variant.j1_monitor_ms),
            journal_primitive("j2", ctx),
            journal_primitive("j3", ctx),
            "order o-j1-j2 Mandatory: j1 j2",
            "colocation c-j2-with-j1 inf: j2 j1",
            f"location l-j3-prefers j3 50: {names[variant.j3_prefers % len(names)]}",
        ],
        limits={"j1": PRIMITIVE, "j2": PRIMITIVE, "j3": PRIMITIVE},
        requires=[("j2", "j1")],
        movable=["j1", "j3"],
        together=[("j1", "j2")],
    )


def group_piece(variant: Variant, names: Sequence[str], ctx: Context) -> Piece:
    return Piece(
        crm=[
            f"primitive vip ocf:hacluster:IPaddr2 params ip={ctx.vip} cidr_netmask=24 "
            f"op monitor interval={ctx.monitor_ms}ms timeout=20s",
            journal_primitive("jg1", ctx),
            journal_primitive("jg2", ctx),
            "group grp vip jg1 jg2",
        ],
        limits={"jg1": PRIMITIVE, "jg2": PRIMITIVE},
        requires=[("jg2", "jg1")],
        movable=["grp"],
        together=[("vip", "jg1", "jg2")],
        vip=("vip", ctx.vip),
    )


def optional_piece(variant: Variant, names: Sequence[str], ctx: Context) -> Piece:
    if not variant.with_j4:
        return Piece(crm=[])
    return Piece(crm=[journal_primitive("j4", ctx)], limits={"j4": PRIMITIVE}, movable=["j4"])


def fencing_piece(variant: Variant, names: Sequence[str], ctx: Context) -> Piece:
    return Piece(
        crm=[
            *ctx.fence_lines,
            "property stonith-enabled=true",
            f"rsc_defaults resource-stickiness={variant.stickiness}",
        ]
    )


PIECES: tuple[Callable[[Variant, Sequence[str], Context], Piece], ...] = (
    primitives_piece,
    group_piece,
    optional_piece,
    fencing_piece,
)


def build_model(variant: Variant, names: Sequence[str], ctx: Context) -> Model:
    pieces = [make(variant, names, ctx) for make in PIECES]
    lines = [line for piece in pieces for line in piece.crm]
    resources = tuple(
        line.split()[1] for line in lines if line.startswith("primitive ") and " stonith:" not in line
    )
    group_of = {}
    for line in lines:
        if line.startswith("group "):
            _, group, *members = line.split()
            group_of.update(dict.fromkeys(members, group))
    vips = [piece.vip for piece in pieces if piece.vip is not None]
    return Model(
        crm="\n".join(lines) + "\n",
        resources=resources,
        limits={rsc: limit for piece in pieces for rsc, limit in piece.limits.items()},
        requires=tuple(pair for piece in pieces for pair in piece.requires),
        movable=tuple(unit for piece in pieces for unit in piece.movable),
        together=tuple(group for piece in pieces for group in piece.together),
        vip=vips[0] if vips else None,
        group_of=group_of,
    )
