"""Pacemaker CIBs in and out: ``parse_cib_xml`` imports one, ``render_cib_xml`` writes one.

Theory of operation
-------------------
**Import.**  The CIB is untrusted input, so it is parsed with defusedxml (no entities, no DTD,
no external references) and a size bound; the ``status`` section is never read.  The
``configuration`` is walked element by element from one dispatch table, ``_SECTIONS`` and
``_RESOURCES`` / ``_CONSTRAINTS``: every element either becomes part of the ``ClusterConfig``
or is refused with its path, its line and what to do.  Elements of features not built yet
are refused through ``_REFUSED``, one row per element path, each naming a row of
``features.MISSING``; adding the feature means deleting its row and adding a handler.  The
schemas read are Pacemaker 1.0 to 3.x (``pacemaker-1.0`` … ``pacemaker-3.9``) and the older
Heartbeat v2 layout (``<attributes>`` inside attribute sets, ``rsc_order from=/to=``), since
``crm yes`` clusters keep that one.  The meaning of what is read (obsolete options, redundant
constraints, ``#uname`` rules, roles) comes from ``crm_model``, as for crm text.

**Export.**  ``render_cib_xml`` writes the configuration as a ``pacemaker-2.0`` CIB (read by
Pacemaker 1.1.12 and later, and by ``crm_verify -x``), with ids derived from ours, so that
``parse_cib_xml(render_cib_xml(cfg))`` gives ``cfg`` back.

Every problem reads ``path:line: /cib/configuration/…/element[@id=…]: what; what to do`` and
all of them are raised together as one ``ConfigError``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from hacluster.config.crm_model import (
    drop_redundant,
    modernize_properties,
    pacemaker_meta_value,
    role_op_warning,
    uname_rule_node,
)
from hacluster.config.features import MISSING
from hacluster.core.cib import (
    AGENT_CLASSES,
    INFINITY,
    ORDER_ACTIONS,
    ORDER_KINDS,
    RULE_TYPES,
    Clone,
    ClusterConfig,
    Colocation,
    Expression,
    FencingLevel,
    Group,
    Location,
    Op,
    Order,
    Pairs,
    Primitive,
    Rule,
    canonical_role,
    format_time_ms,
    is_true,
    parse_boolean,
    parse_score,
    parse_time_ms,
    unknown_property_hint,
)
from hacluster.errors import ConfigError

MAX_CIB_BYTES: Final = 32 * 1024 * 1024
"""A CIB larger than this is refused before parsing (real ones are kilobytes)."""

EXPORT_SCHEMA: Final = "pacemaker-2.0"

_REFUSED: Final[dict[str, str]] = {
    "resources/bundle": "bundles",
    "resources/template": "templates",
    "resources/primitive/@template": "templates",
    "constraints/rsc_ticket": "tickets",
    "constraints/*/resource_set": "resource-sets",
    "constraints/rsc_location/@rsc-pattern": "rsc-pattern",
    "constraints/rsc_colocation/@node-attribute": "colocation-node-attribute",
    "constraints/rsc_location/rule/date_expression": "date-rules",
    "acls": "acls",
    "tags": "tags",
    "alerts": "alerts",
    "*/rule": "attribute-rules",
    "nodes/node/@type=remote": "remote",
    "fencing-topology/fencing-level/@target-pattern": "fencing-topology-patterns",
    "fencing-topology/fencing-level/@target-attribute": "fencing-topology-patterns",
    "resources/group/@ordered=false": "group-unordered",
}
"""Element (or attribute) paths below ``configuration`` that need a feature not built yet."""

_OP_ATTRIBUTES: Final = frozenset(["id", "name", "interval", "timeout", "role", "on-fail", "description"])
_IGNORED_OP_ATTRIBUTES: Final = frozenset(["enabled", "record-pending", "requires", "interval-origin"])


@dataclass(slots=True)
class _Reader:
    path: str
    lines: dict[ET.Element, int]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    primitives: list[Primitive] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    colocations: list[Colocation] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fencing_levels: list[FencingLevel] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    rsc_defaults: dict[str, str] = field(default_factory=dict)
    op_defaults: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Pairs] = field(default_factory=dict)
    refused_ids: set[str] = field(default_factory=set)
    clones: list[Clone] = field(default_factory=list)
    promotable_members: set[str] = field(default_factory=set)
    role_ops: list[tuple[str, str]] = field(default_factory=list)
    utilization: list[str] = field(default_factory=list)
    where_of: dict[str, str] = field(default_factory=dict)
    """``"constraint ID"`` → the location prefix of its element, for warnings made later."""

    # -- reporting ----------------------------------------------------------------------------

    def at(self, element: ET.Element, xpath: str) -> str:
        return f"{self.path}:{self.lines.get(element, 0)}: {xpath}"

    def problem(self, element: ET.Element, xpath: str, what: str) -> None:
        self.problems.append(f"{self.at(element, xpath)}: {what}")

    def warn(self, element: ET.Element, xpath: str, what: str) -> None:
        self.warnings.append(f"{self.at(element, xpath)}: {what}")

    def refuse(self, element: ET.Element, xpath: str, key: str, construct: str) -> None:
        self.problem(element, xpath, MISSING[key].message(construct))
        element_id = element.get("id")
        if element_id:
            self.refused_ids.add(element_id)

    # -- attribute sets -------------------------------------------------------------------------

    def nvpairs(self, owner: ET.Element, xpath: str, tag: str) -> list[tuple[str, str]]:
        """The name/value pairs of every ``tag`` set of ``owner`` (and Heartbeat v2's ``attributes``)."""
        pairs: list[tuple[str, str]] = []
        for index, nvset in enumerate(owner.findall(tag)):
            set_path = f"{xpath}/{tag}[{index + 1}]"
            if nvset.get("id-ref"):
                self.problem(
                    nvset,
                    set_path,
                    "references to another attribute set (id-ref) are not supported; copy its nvpairs here",
                )
                continue
            for rule in nvset.findall("rule"):
                self.refuse(rule, f"{set_path}/rule", _REFUSED["*/rule"], "rule")
            holders = [nvset, *nvset.findall("attributes")]
            seen = {name for name, _ in pairs}
            for holder in holders:
                for nvpair in holder.findall("nvpair"):
                    name, value = nvpair.get("name"), nvpair.get("value", "")
                    if not name:
                        self.problem(nvpair, f"{set_path}/nvpair", 'has no name; add name="…" or remove it')
                        continue
                    if name in seen:
                        self.problem(
                            nvpair,
                            f"{set_path}/nvpair[@name={name}]",
                            f"{name} is set twice for this element; keep one",
                        )
                        continue
                    seen.add(name)
                    pairs.append((name, value))
        return pairs

    # -- sections -------------------------------------------------------------------------------

    def crm_config(self, section: ET.Element, xpath: str) -> None:
        for child in section:
            if child.tag != "cluster_property_set":
                self.unknown(child, f"{xpath}/{child.tag}")
        for name, value in self.nvpairs(section, xpath, "cluster_property_set"):
            self.properties.setdefault(name, value)
            self.where_of.setdefault(f"property {name}", self.at(section, f"{xpath}/cluster_property_set"))

    def defaults(self, section: ET.Element, xpath: str, into: dict[str, str]) -> None:
        for child in section:
            if child.tag not in ("meta_attributes", "instance_attributes"):
                self.unknown(child, f"{xpath}/{child.tag}")
        for name, value in self.nvpairs(section, xpath, "meta_attributes"):
            into.setdefault(name, self.meta_value(section, xpath, name, value))

    def nodes_section(self, section: ET.Element, xpath: str) -> None:
        for node in section:
            node_path = f"{xpath}/{node.tag}[@uname={node.get('uname', '')}]"
            if node.tag != "node":
                self.unknown(node, node_path)
                continue
            uname = (node.get("uname") or node.get("id") or "").lower()
            node_type = node.get("type", "member")
            if node_type == "remote":
                self.refuse(node, node_path, _REFUSED["nodes/node/@type=remote"], "node type remote")
                continue
            if node_type == "ping":
                self.warn(
                    node,
                    node_path,
                    "a Heartbeat v2 ping node; ping nodes belong in ha.cf (ping ADDRESS); ignored",
                )
                continue
            if not uname:
                self.problem(node, node_path, "has neither uname nor id; give the node its name")
                continue
            if node.find("utilization") is not None:
                self.utilization.append(self.at(node, f"{node_path}/utilization"))
            attributes = self.nvpairs(node, node_path, "instance_attributes")
            if uname in self.nodes:
                self.problem(node, node_path, f"node {uname} is defined twice; merge the two")
                continue
            self.nodes[uname] = tuple(attributes)

    def resources(self, section: ET.Element, xpath: str) -> None:
        for child in section:
            child_path = f"{xpath}/{child.tag}[@id={child.get('id', '')}]"
            key = _REFUSED.get(f"resources/{child.tag}")
            if key is not None:
                self.refuse(child, child_path, key, child.tag)
                if key == "promotable":
                    self.promotable_members.update(p.get("id", "") for p in child.iter("primitive"))
                for inner in child.iter():
                    if inner.get("id"):
                        self.refused_ids.add(inner.get("id", ""))
                continue
            if child.tag == "primitive":
                self.primitive(child, child_path)
            elif child.tag == "group":
                self.group(child, child_path)
            elif child.tag in ("clone", "master"):
                self.clone(child, child_path)
            else:
                self.unknown(child, child_path)

    def clone(self, element: ET.Element, xpath: str) -> None:
        """``<clone>`` (``promotable=true`` for a promotable one) and Pacemaker 1's ``<master>``
        (read as a promotable clone, with master-max read as promoted-max, and a warning)."""
        clone_id = element.get("id", "")
        meta = [
            (k, self.meta_value(element, xpath, k, v))
            for k, v in self.nvpairs(element, xpath, "meta_attributes")
        ]
        renamed = {"master-max": "promoted-max", "master-node-max": "promoted-node-max"}
        meta = [(renamed.get(k, k), v) for k, v in meta]
        if element.tag == "master":
            if "promotable" not in dict(meta):
                meta.append(("promotable", "true"))
            self.warn(
                element,
                xpath,
                f"<master> is Pacemaker 1's promotable clone; read as <clone> with promotable=true; "
                f"write clone {clone_id} … meta promotable=true",
            )
        children = [c for c in element if c.tag in ("primitive", "group")]
        for child in element:
            if child.tag not in ("primitive", "group", "meta_attributes"):
                self.unknown(child, f"{xpath}/{child.tag}")
        if len(children) != 1:
            self.problem(element, xpath, "a clone holds exactly one primitive or group")
            return
        child = children[0]
        child_path = f"{xpath}/{child.tag}[@id={child.get('id', '')}]"
        if is_true(dict(meta).get("promotable")):  # their role ops are kept
            self.promotable_members.update(p.get("id", "") for p in child.iter("primitive"))
        if child.tag == "primitive":
            self.primitive(child, child_path)
        else:
            self.group(child, child_path)
        self.clones.append(Clone(clone_id, child.get("id", ""), tuple(meta)))
        self.where_of[f"clone {clone_id}"] = self.at(element, xpath)

    def primitive(self, element: ET.Element, xpath: str) -> str | None:
        rsc_id = element.get("id", "")
        if element.get("template"):
            self.refuse(element, xpath, _REFUSED["resources/primitive/@template"], "template=")
            return None
        agent_class = element.get("class", "")
        if agent_class not in AGENT_CLASSES:
            self.problem(
                element,
                xpath,
                f"class {agent_class!r} is not supported; expected one of {', '.join(AGENT_CLASSES)} "
                "(use lsb for init scripts)",
            )
            return None
        provider = element.get("provider") if agent_class == "ocf" else None
        params = self.nvpairs(element, xpath, "instance_attributes")
        args: tuple[str, ...] = ()
        if agent_class == "heartbeat":
            numbered = sorted((int(k), v) for k, v in params if k.isdigit())
            args = tuple(v for _, v in numbered)
            params = [(k, v) for k, v in params if not k.isdigit()]
        meta = [
            (k, self.meta_value(element, xpath, k, v))
            for k, v in self.nvpairs(element, xpath, "meta_attributes")
        ]
        if element.find("utilization") is not None:
            self.utilization.append(self.at(element, f"{xpath}/utilization"))
        ops: list[Op] = []
        for operations in element.findall("operations"):
            for op in operations:
                op_path = f"{xpath}/operations/{op.tag}[@id={op.get('id', '')}]"
                if op.tag != "op":
                    self.unknown(op, op_path)
                    continue
                parsed = self.op(rsc_id, op, op_path)
                if parsed is not None:
                    ops.append(parsed)
        for child in element:
            if child.tag not in ("instance_attributes", "meta_attributes", "operations", "utilization"):
                self.unknown(child, f"{xpath}/{child.tag}")
        self.primitives.append(
            Primitive(
                id=rsc_id,
                agent_class=agent_class,
                provider=provider,
                type=element.get("type", ""),
                params=tuple(params),
                ops=tuple(ops),
                meta=tuple(meta),
                args=args,
            )
        )
        self.where_of[f"primitive {rsc_id}"] = self.at(element, xpath)
        return rsc_id

    def op(self, rsc_id: str, op: ET.Element, xpath: str) -> Op | None:
        name = op.get("name", "")
        role = op.get("role")
        canonical = canonical_role(role)[0] if role is not None else None
        if canonical in ("Promoted", "Unpromoted") and rsc_id not in self.promotable_members:
            self.role_ops.append(
                (rsc_id, f"{self.at(op, xpath)}: " + role_op_warning(rsc_id, name, role or ""))
            )
            return None
        for attribute in op.attrib:
            if attribute in _IGNORED_OP_ATTRIBUTES:
                self.warn(op, xpath, f"{attribute}={op.get(attribute)} is not acted on; ignored")
            elif attribute not in _OP_ATTRIBUTES:
                self.problem(
                    op,
                    xpath,
                    f"op attribute {attribute} is not supported; remove it (supported: interval, timeout, "
                    "on-fail, role, OCF_CHECK_LEVEL)",
                )
                return None
        depth = 0
        for key, value in self.nvpairs(op, xpath, "instance_attributes"):
            if key != "OCF_CHECK_LEVEL" or not value.isdigit():
                self.problem(
                    op, xpath, f"op instance attribute {key}={value!r}; only OCF_CHECK_LEVEL=N is supported"
                )
                return None
            depth = int(value)
        try:
            interval_ms = parse_time_ms(op.get("interval", "0"))
            timeout_text = op.get("timeout")
            timeout_ms = parse_time_ms(timeout_text) if timeout_text else 0
        except ValueError as exc:
            self.problem(op, xpath, f"op {name}: {exc}")
            return None
        if role is not None:
            role = canonical or role.capitalize()
        return Op(name, interval_ms, timeout_ms, depth, op.get("on-fail"), role)

    def group(self, element: ET.Element, xpath: str) -> None:
        group_id = element.get("id", "")
        meta = [
            (k, self.meta_value(element, xpath, k, v))
            for k, v in self.nvpairs(element, xpath, "meta_attributes")
        ]
        for key, value in meta:
            if key in ("ordered", "collocated") and not _true(value):
                self.refuse(element, xpath, _REFUSED["resources/group/@ordered=false"], f"meta {key}={value}")
                return
        if element.find("instance_attributes") is not None:
            self.problem(
                element, xpath, "a group has no instance attributes here; put them on its primitives"
            )
        members: list[str] = []
        for child in element:
            child_path = f"{xpath}/{child.tag}[@id={child.get('id', '')}]"
            if child.tag == "primitive":
                member = self.primitive(child, child_path)
                if member is not None:
                    members.append(member)
            elif child.tag not in ("meta_attributes", "instance_attributes"):
                self.unknown(child, child_path)
        self.groups.append(Group(group_id, tuple(members), tuple(meta)))
        self.where_of[f"group {group_id}"] = self.at(element, xpath)

    def constraints(self, section: ET.Element, xpath: str) -> None:
        for child in section:
            child_path = f"{xpath}/{child.tag}[@id={child.get('id', '')}]"
            self.where_of[f"{_KIND.get(child.tag, child.tag)} {child.get('id', '')}"] = self.at(
                child, child_path
            )
            if child.tag == "rsc_ticket":
                self.refuse(child, child_path, _REFUSED["constraints/rsc_ticket"], child.tag)
                continue
            if child.find("resource_set") is not None:
                self.refuse(
                    child,
                    f"{child_path}/resource_set",
                    _REFUSED["constraints/*/resource_set"],
                    "resource_set",
                )
                continue
            handler = _CONSTRAINTS.get(child.tag)
            if handler is None:
                self.unknown(child, child_path)
                continue
            refs = [child.get(a, "") for a in ("rsc", "with-rsc", "first", "then", "from", "to")]
            if any(ref in self.refused_ids for ref in refs if ref):
                continue  # it names a refused resource; that refusal says it all
            handler(self, child, child_path)

    def location(self, element: ET.Element, xpath: str) -> None:
        if element.get("rsc-pattern"):
            self.refuse(element, xpath, _REFUSED["constraints/rsc_location/@rsc-pattern"], "rsc-pattern")
            return
        valid, role = self.role(element, xpath, element.get("role"))
        if not valid:
            return
        node, score_text = element.get("node"), element.get("score")
        location_id, rsc = element.get("id", ""), element.get("rsc", "")
        rule_elements = element.findall("rule")
        if rule_elements:
            rules = []
            for index, rule_element in enumerate(rule_elements):
                rule = self.rule(rule_element, f"{xpath}/rule[{index + 1}]")
                if rule is None:
                    return
                rules.append(rule)
            simple = self._uname_rule(rule_elements)
            if simple is None or (role is not None and rules[0].role is not None):
                self.locations.append(Location(location_id, rsc, "", 0, rules=tuple(rules), role=role))
                return
            node, score_text = simple
            role = role or rules[0].role
        score = self.score(element, xpath, score_text)
        if node is None or score is None:
            if node is None:
                self.problem(element, xpath, "names no node; give node= and score=")
            return
        self.locations.append(Location(location_id, rsc, node.lower(), score, role=role))

    def _uname_rule(self, rules: list[ET.Element]) -> tuple[str, str | None] | None:
        """``(node, score)`` of a lone ``#uname eq NODE`` rule: a plain node score (with the
        rule's role, which ``location`` reads)."""
        if len(rules) != 1:
            return None
        rule = rules[0]
        expressions = list(rule)
        if len(expressions) != 1 or expressions[0].tag != "expression":
            return None
        expression = expressions[0]
        node = uname_rule_node(
            expression.get("attribute", ""), expression.get("operation", ""), expression.get("value", "")
        )
        if node is None or rule.get("score-attribute") or expression.get("type") not in (None, "string"):
            return None
        return node, rule.get("score")

    def role(self, element: ET.Element, xpath: str, text: str | None) -> tuple[bool, str | None]:
        """Whether the role attribute is valid, and the role as the model keeps it (None:
        Started or absent)."""
        if text is None:
            return True, None
        role, legacy = canonical_role(text)
        if role is None or role == "Stopped":
            self.problem(
                element, xpath, f"role {text!r} is unknown; expected Started, Promoted or Unpromoted"
            )
            return False, None
        if legacy:
            self.warn(
                element, xpath, f"role {text}: read as {role}, the name Pacemaker 2 gives it; write {role}"
            )
        return True, None if role == "Started" else role

    def rule(self, element: ET.Element, xpath: str) -> Rule | None:
        expressions = []
        for child in element:
            child_path = f"{xpath}/{child.tag}"
            if child.tag == "date_expression":
                self.refuse(
                    child, child_path, _REFUSED["constraints/rsc_location/rule/date_expression"], child.tag
                )
                return None
            if child.tag != "expression":
                self.problem(
                    child,
                    child_path,
                    f"<{child.tag}> inside a rule is not supported; write one rule per case",
                )
                return None
            kind = child.get("type")
            if kind == "number" or kind is None or kind in RULE_TYPES:
                pass
            else:
                self.problem(child, child_path, f"type {kind!r} is unknown; expected {', '.join(RULE_TYPES)}")
                return None
            if child.get("value-source", "literal") != "literal":
                self.problem(
                    child, child_path, "value-source other than literal is not supported; write the value"
                )
                return None
            expressions.append(
                Expression(child.get("attribute", ""), child.get("operation", ""), child.get("value"), kind)
            )
        valid, role = self.role(element, xpath, element.get("role"))
        if not valid:
            return None
        score_attribute = element.get("score-attribute")
        score = 0
        if score_attribute is None:
            parsed = self.score(element, xpath, element.get("score"))
            if parsed is None:
                return None
            score = parsed
        boolean_op = element.get("boolean-op", "and")
        return Rule(score, tuple(expressions), boolean_op, score_attribute, role)

    def colocation(self, element: ET.Element, xpath: str) -> None:
        if (element.get("node-attribute") or "#uname") != "#uname":  # never read as same-node
            key = _REFUSED["constraints/rsc_colocation/@node-attribute"]
            self.refuse(element, xpath, key, f"node-attribute={element.get('node-attribute')}")
            return
        rsc = element.get("rsc") or element.get("from") or ""
        with_rsc = element.get("with-rsc") or element.get("to") or ""
        valid_rsc, rsc_role = self.role(element, xpath, element.get("rsc-role") or element.get("from_role"))
        valid_with, with_role = self.role(
            element, xpath, element.get("with-rsc-role") or element.get("to_role")
        )
        if not (valid_rsc and valid_with):
            return
        score = self.score(element, xpath, element.get("score"))
        if score is not None:
            self.colocations.append(
                Colocation(element.get("id", ""), score, rsc, with_rsc, rsc_role, with_role)
            )

    def order(self, element: ET.Element, xpath: str) -> None:
        if element.get("from") is not None:  # Heartbeat v2: from=THEN to=FIRST type=after|before
            then, first = element.get("from", ""), element.get("to", "")
            if element.get("type") == "before":
                first, then = then, first
            actions = [element.get("action", "start")]
        else:
            first, then = element.get("first", ""), element.get("then", "")
            actions = [element.get("first-action", "start"), element.get("then-action", "start")]
        for action in actions:
            if action not in ORDER_ACTIONS:
                self.problem(element, xpath, f"action {action}: unknown; expected {', '.join(ORDER_ACTIONS)}")
                return
            if action in ("stop", "demote"):
                self.refuse(element, xpath, "order-actions", f"action {action}")
                return
        first_action, then_action = actions[0], actions[-1]
        kind = element.get("kind")
        if kind is None:
            score = self.score(element, xpath, element.get("score", "INFINITY"))
            if score is None:
                return
            kind = "Mandatory" if score > 0 else "Optional"
        kind = next((k for k in ORDER_KINDS if k.lower() == kind.lower()), kind)
        symmetrical = element.get("symmetrical", "true")
        try:
            is_symmetrical = parse_boolean(symmetrical)
        except ValueError as exc:
            self.problem(element, xpath, f"symmetrical={symmetrical!r}: {exc}")
            return
        self.orders.append(
            Order(element.get("id", ""), kind, first, then, is_symmetrical, first_action, then_action)
        )

    def fencing(self, section: ET.Element, xpath: str) -> None:
        for level in section:
            level_path = f"{xpath}/{level.tag}[@id={level.get('id', '')}]"
            if level.tag != "fencing-level":
                self.unknown(level, level_path)
                continue
            for attribute in ("target-pattern", "target-attribute"):
                if level.get(attribute):
                    self.refuse(
                        level, level_path, _REFUSED[f"fencing-topology/fencing-level/@{attribute}"], attribute
                    )
                    break
            else:
                index = level.get("index", "")
                if not index.isdigit():
                    self.problem(level, level_path, f"index {index!r}; expected a whole number from 1")
                    continue
                devices = tuple(d for d in re.split(r"[, ]+", level.get("devices", "")) if d)
                self.fencing_levels.append(FencingLevel(level.get("target", "").lower(), int(index), devices))

    # -- values ---------------------------------------------------------------------------------

    def score(self, element: ET.Element, xpath: str, text: str | None) -> int | None:
        if text is None:
            self.problem(element, xpath, 'has no score; add score="INFINITY" or a number')
            return None
        try:
            return parse_score(text)
        except ValueError as exc:
            self.problem(element, xpath, f"score {text!r}: {exc}")
            return None

    def meta_value(self, element: ET.Element, xpath: str, name: str, value: str) -> str:
        read, warning = pacemaker_meta_value(name, value)
        if warning is not None:
            self.warn(element, xpath, warning)
        return read

    def unknown(self, element: ET.Element, xpath: str) -> None:
        self.problem(element, xpath, f"element <{element.tag}> is not one hacluster reads here; remove it")
        if element.get("id"):
            self.refused_ids.add(element.get("id", ""))  # references to it would only repeat this

    # -- whole configuration --------------------------------------------------------------------

    def finish(self) -> None:
        self.warnings.extend(w for _, w in self.role_ops)
        self.orders, self.colocations, notes = drop_redundant(self.groups, self.orders, self.colocations)
        for subject, what in notes:
            self.warnings.append(f"{self.where_of.get(subject, self.path)}: {subject}: {what}")
        for name, what in modernize_properties(self.properties, self.rsc_defaults, self.op_defaults):
            self.warnings.append(
                f"{self.where_of.get(f'property {name}', self.path)}: property {name}: {what}"
            )
        for name in self.properties:
            hint = unknown_property_hint(name)
            if hint is not None:
                self.warnings.append(
                    f"{self.where_of.get(f'property {name}', self.path)}: property {name}: {hint}"
                )
        strategy = self.properties.get("placement-strategy", "default")
        for where in self.utilization:
            if strategy == "default":
                self.warnings.append(
                    f"{where}: utilization is ignored, as Pacemaker ignores it with "
                    "placement-strategy=default; left out of the configuration"
                )
            else:
                self.problems.append(
                    f"{where}: " + MISSING["utilization"].message(f"placement-strategy={strategy}")
                )


_KIND: Final = {"rsc_location": "location", "rsc_colocation": "colocation", "rsc_order": "order"}
_CONSTRAINTS: Final[dict[str, Callable[[_Reader, ET.Element, str], None]]] = {
    "rsc_location": _Reader.location,
    "rsc_colocation": _Reader.colocation,
    "rsc_order": _Reader.order,
}


def _true(value: str) -> bool:
    try:
        return parse_boolean(value)
    except ValueError:
        return True


def _parse_xml(text: str | bytes, path: str) -> tuple[ET.Element, dict[ET.Element, int]]:
    """The root element and each element's line, parsed safely; ``ConfigError`` if it is not XML."""
    data = text.encode() if isinstance(text, str) else text
    if len(data) > MAX_CIB_BYTES:
        raise ConfigError(
            [f"{path}: {len(data)} bytes is larger than a CIB can be ({MAX_CIB_BYTES}); check the file"]
        )
    lines: dict[ET.Element, int] = {}
    parser = DefusedET.DefusedXMLParser(target=_LineBuilder(lines), forbid_dtd=True)
    builder = parser.target
    assert isinstance(builder, _LineBuilder)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else 0
        raise ConfigError([f"{path}:{line}: not well-formed XML ({exc}); is this a CIB (cib.xml)?"]) from None
    except DefusedXmlException as exc:
        raise ConfigError(
            [
                f"{path}: refused: the XML uses {type(exc).__name__} (entities or a DTD), which a CIB never does"
            ]
        ) from None
    assert isinstance(root, ET.Element)
    return root, lines


class _LineBuilder(ET.TreeBuilder):
    """A tree builder that remembers the line of each element's start tag."""

    def __init__(self, lines: dict[ET.Element, int]) -> None:
        super().__init__()
        self.lines = lines
        self.expat: object = None

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        element = super().start(tag, attrs)
        self.lines[element] = int(getattr(self.expat, "CurrentLineNumber", 0))
        return element


_SECTIONS: Final[dict[str, Callable[[_Reader, ET.Element, str], None]]] = {
    "crm_config": _Reader.crm_config,
    "nodes": _Reader.nodes_section,
    "resources": _Reader.resources,
    "constraints": _Reader.constraints,
    "fencing-topology": _Reader.fencing,
    "rsc_defaults": lambda r, e, x: r.defaults(e, x, r.rsc_defaults),
    "op_defaults": lambda r, e, x: r.defaults(e, x, r.op_defaults),
}


def parse_cib_xml(
    text: str | bytes, path: str = "cib.xml", *, epoch: int = 0, warnings: list[str] | None = None
) -> ClusterConfig:
    """Import a Pacemaker CIB; ``ConfigError`` lists every element we cannot represent.

    ``warnings`` (if given) receives what was accepted with a note, as for crm text.
    """
    root, lines = _parse_xml(text, path)
    reader = _Reader(path, lines)
    if root.tag != "cib":
        raise ConfigError(
            [f"{path}:{lines.get(root, 1)}: the root element is <{root.tag}>, not <cib>; is this a CIB?"]
        )
    configuration = root.find("configuration")
    if configuration is None:
        raise ConfigError([f"{path}:{lines.get(root, 1)}: /cib has no <configuration>; is this a CIB?"])
    for section in configuration:
        xpath = f"/cib/configuration/{section.tag}"
        key = _REFUSED.get(section.tag)
        if key is not None:
            if len(section):
                reader.refuse(section, xpath, key, section.tag)
            continue
        handler = _SECTIONS.get(section.tag)
        if handler is None:
            reader.unknown(section, xpath)
            continue
        handler(reader, section, xpath)
    reader.finish()
    cfg = ClusterConfig(
        epoch=epoch,
        primitives=tuple(reader.primitives),
        groups=tuple(reader.groups),
        locations=tuple(reader.locations),
        colocations=tuple(reader.colocations),
        orders=tuple(reader.orders),
        properties=tuple(reader.properties.items()),
        rsc_defaults=tuple(reader.rsc_defaults.items()),
        op_defaults=tuple(reader.op_defaults.items()),
        node_attributes=tuple(reader.nodes.items()),
        fencing_levels=tuple(reader.fencing_levels),
        source=path,
        clones=tuple(reader.clones),
    )
    for subject, what in cfg.problems():
        if reader.refused_ids.intersection(re.findall(r"[\w.-]+", what)):
            continue  # it only echoes an element refused above
        key = " ".join(subject.split()[:2])
        reader.problems.append(f"{reader.where_of.get(key, path)}: {subject}: {what}")
    if warnings is not None:
        warnings.extend(reader.warnings)
    if reader.problems:
        raise ConfigError(reader.problems)
    return cfg


# ---------------------------------------------------------------------------------------------
# Export


def render_cib_xml(cfg: ClusterConfig) -> str:
    """``cfg`` as a Pacemaker CIB (``EXPORT_SCHEMA``) that ``crm_verify -x`` accepts."""
    ids = _Ids()
    cib = ET.Element(
        "cib",
        {
            "validate-with": EXPORT_SCHEMA,
            "admin_epoch": "0",
            "epoch": str(cfg.epoch),
            "num_updates": "0",
        },
    )
    configuration = ET.SubElement(cib, "configuration")
    crm_config = ET.SubElement(configuration, "crm_config")
    _nvset(crm_config, "cluster_property_set", "cib-bootstrap-options", cfg.properties, ids)
    nodes = ET.SubElement(configuration, "nodes")
    for name, attributes in cfg.node_attributes:
        node = ET.SubElement(nodes, "node", {"id": name, "uname": name})
        if attributes:
            _nvset(node, "instance_attributes", ids.new("nodes", name), attributes, ids)
    resources = ET.SubElement(configuration, "resources")
    # Each group stands where its first member stood, so a CIB read in document order (import)
    # comes back in the same order (export), and a round trip changes nothing.
    grouped = {member: group for group in cfg.groups for member in group.members}
    by_id = {p.id: p for p in cfg.primitives}
    clone_of = {c.child: c for c in cfg.clones}
    for primitive in cfg.primitives:
        group = grouped.get(primitive.id)
        clone = clone_of.get(group.id if group is not None else primitive.id)
        parent = resources
        if clone is not None and (group is None or primitive.id == group.members[0]):
            parent = ET.SubElement(resources, "clone", {"id": clone.id})
            ids.taken.add(clone.id)
            if clone.meta:
                _nvset(parent, "meta_attributes", ids.new(clone.id, "meta_attributes"), clone.meta, ids)
        if group is None:
            _primitive_xml(parent, primitive, ids)
        elif primitive.id == group.members[0]:
            element = ET.SubElement(parent, "group", {"id": group.id})
            ids.taken.add(group.id)
            if group.meta:
                _nvset(element, "meta_attributes", ids.new(group.id, "meta_attributes"), group.meta, ids)
            for member in group.members:
                _primitive_xml(element, by_id[member], ids)
    constraints = ET.SubElement(configuration, "constraints")
    for lc in cfg.locations:
        attrs = {"id": lc.id, "rsc": lc.rsc}
        rules = lc.rules
        if not rules and lc.role is not None:
            # The pacemaker-2.0 schema has no role on rsc_location: a role goes on a rule.
            rules = (Rule(lc.score, (Expression("#uname", "eq", lc.node),), role=lc.role),)
        elif not rules:
            attrs |= {"node": lc.node, "score": _score(lc.score)}
        location = ET.SubElement(constraints, "rsc_location", attrs)
        for index, rule in enumerate(rules, start=1):
            role = rule.role or (lc.role if lc.rules else None)
            _rule_xml(location, ids.new(lc.id, "rule", str(index)), replace(rule, role=role), ids)
    for co in cfg.colocations:
        attrs = {"id": co.id, "rsc": co.rsc, "with-rsc": co.with_rsc, "score": _score(co.score)}
        if co.rsc_role is not None:
            attrs["rsc-role"] = _schema_role(co.rsc_role)
        if co.with_rsc_role is not None:
            attrs["with-rsc-role"] = _schema_role(co.with_rsc_role)
        ET.SubElement(constraints, "rsc_colocation", attrs)
    for od in cfg.orders:
        attrs = {
            "id": od.id,
            "first": od.first,
            "then": od.then,
            "kind": od.kind,
            "symmetrical": "true" if od.symmetrical else "false",
        }
        if od.first_action != "start":
            attrs["first-action"] = od.first_action
        if od.then_action != "start":
            attrs["then-action"] = od.then_action
        ET.SubElement(constraints, "rsc_order", attrs)
    if cfg.fencing_levels:
        topology = ET.SubElement(configuration, "fencing-topology")
        for level in cfg.fencing_levels:
            ET.SubElement(
                topology,
                "fencing-level",
                {
                    "id": ids.new("fl", level.target, str(level.index)),
                    "target": level.target,
                    "index": str(level.index),
                    "devices": ",".join(level.devices),
                },
            )
    for tag, set_id, pairs in (
        ("rsc_defaults", "rsc-options", cfg.rsc_defaults),
        ("op_defaults", "op-options", cfg.op_defaults),
    ):
        if pairs:
            section = ET.SubElement(configuration, tag)
            _nvset(section, "meta_attributes", set_id, pairs, ids)
    ET.SubElement(cib, "status")
    ET.indent(cib, space="  ")
    return ET.tostring(cib, encoding="unicode") + "\n"


def _primitive_xml(parent: ET.Element, p: Primitive, ids: _Ids) -> None:
    attrs = {"id": p.id, "class": p.agent_class, "type": p.type}
    if p.provider is not None:
        attrs["provider"] = p.provider
    ids.taken.add(p.id)
    element = ET.SubElement(parent, "primitive", attrs)
    params = list(p.params) + [(str(index), arg) for index, arg in enumerate(p.args, start=1)]
    if params:
        _nvset(element, "instance_attributes", ids.new(p.id, "instance_attributes"), tuple(params), ids)
    if p.meta:
        _nvset(element, "meta_attributes", ids.new(p.id, "meta_attributes"), p.meta, ids)
    if p.ops:
        operations = ET.SubElement(element, "operations")
        for op in p.ops:
            op_attrs = {
                "id": ids.new(p.id, op.name, "interval", format_time_ms(op.interval_ms)),
                "name": op.name,
                "interval": format_time_ms(op.interval_ms),
            }
            if op.timeout_ms:
                op_attrs["timeout"] = format_time_ms(op.timeout_ms)
            if op.on_fail is not None:
                op_attrs["on-fail"] = op.on_fail
            if op.role is not None:
                op_attrs["role"] = _schema_role(op.role)
            op_element = ET.SubElement(operations, "op", op_attrs)
            if op.depth:
                _nvset(
                    op_element,
                    "instance_attributes",
                    ids.new(op_attrs["id"], "instance_attributes"),
                    (("OCF_CHECK_LEVEL", str(op.depth)),),
                    ids,
                )


_SCHEMA_ROLES: Final = {"Promoted": "Master", "Unpromoted": "Slave"}
"""The pacemaker-2.0 schema (``EXPORT_SCHEMA``) names the roles Master and Slave; the
importer reads them back as Promoted and Unpromoted (with a warning)."""


def _schema_role(role: str) -> str:
    return _SCHEMA_ROLES.get(role, role)


def _rule_xml(parent: ET.Element, rule_id: str, rule: Rule, ids: _Ids) -> None:
    attrs = {"id": rule_id, "boolean-op": rule.boolean_op}
    if rule.score_attribute is not None:
        attrs["score-attribute"] = rule.score_attribute
    else:
        attrs["score"] = _score(rule.score)
    if rule.role is not None:
        attrs["role"] = _schema_role(rule.role)
    element = ET.SubElement(parent, "rule", attrs)
    for expression in rule.expressions:
        expr = {
            "id": ids.new(rule_id, "expr"),
            "attribute": expression.attribute,
            "operation": expression.operation,
        }
        if expression.value is not None:
            expr["value"] = expression.value
        if expression.type is not None:
            expr["type"] = expression.type
        ET.SubElement(element, "expression", expr)


def _nvset(parent: ET.Element, tag: str, set_id: str, pairs: Iterable[tuple[str, str]], ids: _Ids) -> None:
    ids.taken.add(set_id)
    nvset = ET.SubElement(parent, tag, {"id": set_id})
    for name, value in pairs:
        ET.SubElement(nvset, "nvpair", {"id": ids.new(set_id, name), "name": name, "value": value})


def _score(score: int) -> str:
    if score >= INFINITY:
        return "INFINITY"
    if score <= -INFINITY:
        return "-INFINITY"
    return str(score)


@dataclass(slots=True)
class _Ids:
    """XML ids derived from ours: valid NCNames, unique across the document."""

    taken: set[str] = field(default_factory=set)

    def new(self, *parts: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))
        if not re.match(r"[A-Za-z_]", base):
            base = f"_{base}"
        candidate, n = base, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{base}-{n}"
        self.taken.add(candidate)
        return candidate
