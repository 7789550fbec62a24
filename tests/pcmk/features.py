"""Which Pacemaker features a scheduler case uses, and which of them hacluster represents.

``FEATURES`` is the one table: each row detects a feature in a case's CIB and says whether we
represent it (``supported``).  A case is *representable* when every feature it uses is
supported and ``cib_xml`` imports its configuration.  When a feature lands (clones8: clones,
promotable clones, rules), flip its ``supported`` to True; nothing else changes, the cases
that use it are then compared with Pacemaker's answers, and ``docs/pacemaker-cases.md`` must
be regenerated (``python -m tests.pcmk.report --write``; a test holds the two equal).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from hacluster.config.crm_model import uname_rule_node
from hacluster.core.cib import is_true


@dataclass(frozen=True, slots=True)
class Feature:
    key: str
    what: str
    """What it is, in the words of Pacemaker Explained."""
    supported: bool
    detect: Callable[[ET.Element], bool]


def _meta(element: ET.Element, name: str) -> str | None:
    for nvpair in element.iterfind("meta_attributes/nvpair"):
        if nvpair.get("name") == name:
            return nvpair.get("value")
    return None


def _config(cib: ET.Element) -> ET.Element:
    configuration = cib.find("configuration")
    assert configuration is not None, "a CIB has a configuration"
    return configuration


def _any(cib: ET.Element, path: str) -> bool:
    return _config(cib).find(path) is not None


def _property(cib: ET.Element, name: str) -> str | None:
    for nvpair in _config(cib).iterfind("crm_config/cluster_property_set/nvpair"):
        if nvpair.get("name") == name:
            return nvpair.get("value")
    return None


def _promotable(cib: ET.Element) -> bool:
    clones = _config(cib).iterfind(".//clone")
    return _any(cib, ".//master") or any(is_true(_meta(c, "promotable")) for c in clones)


def _clone(cib: ET.Element) -> bool:
    return any(not is_true(_meta(c, "promotable")) for c in _config(cib).iterfind("resources//clone"))


def _location_rules(cib: ET.Element) -> bool:
    for location in _config(cib).iterfind("constraints/rsc_location"):
        if location.get("rsc-pattern"):
            return True
        rules = location.findall("rule")
        if not rules:
            continue
        if len(rules) > 1 or rules[0].get("role") or rules[0].get("score-attribute"):
            return True
        expressions = list(rules[0])
        if len(expressions) != 1 or expressions[0].tag != "expression":
            return True
        e = expressions[0]
        if uname_rule_node(e.get("attribute", ""), e.get("operation", ""), e.get("value", "")) is None:
            return True
    return False


_ROLE_ATTRIBUTES: Final = ("role", "rsc-role", "with-rsc-role", "first-action", "then-action")


def _roles(cib: ET.Element) -> bool:
    for constraint in _config(cib).iterfind("constraints/*"):
        for attribute in _ROLE_ATTRIBUTES:
            value = (constraint.get(attribute) or "").lower()
            if value and value not in ("started", "start"):
                return True
    return any(
        (op.get("role") or "started").lower() not in ("started", "stopped")
        for op in _config(cib).iterfind(".//op")
    )


def _remote(cib: ET.Element) -> bool:
    configuration = _config(cib)
    if any(n.get("type") == "remote" for n in configuration.iterfind("nodes/node")):
        return True
    for primitive in configuration.iterfind(".//primitive"):
        if primitive.get("type") == "remote" and primitive.get("provider") == "pacemaker":
            return True
        if _meta(primitive, "remote-node"):
            return True
    status = cib.find("status")
    return status is not None and any(
        s.get("remote_node") == "true" or s.get("crmd") is None for s in status.iterfind("node_state")
    )


def _utilization(cib: ET.Element) -> bool:
    strategy = _property(cib, "placement-strategy") or "default"
    return strategy != "default" and _any(cib, ".//utilization")


def _history_ops(cib: ET.Element, names: frozenset[str]) -> bool:
    return any(op.get("operation") in names for op in cib.iterfind("status//lrm_rsc_op"))


def _on_fail(cib: ET.Element) -> bool:
    return any(op.get("on-fail") not in (None, "restart") for op in _config(cib).iterfind(".//op"))


def _group_unordered(cib: ET.Element) -> bool:
    return any(
        _meta(g, k) is not None and not is_true(_meta(g, k))
        for g in _config(cib).iterfind("resources/group")
        for k in ("ordered", "collocated")
    )


def _requires(cib: ET.Element) -> bool:
    configuration = _config(cib)
    elements = [*configuration.iterfind(".//primitive"), *configuration.iterfind("rsc_defaults")]
    return any(_meta(e, "requires") not in (None, "fencing") for e in elements) or any(
        _meta(p, "provides") == "unfencing" for p in configuration.iterfind(".//primitive")
    )


def _failure_timeout(cib: ET.Element) -> bool:
    configuration = _config(cib)
    return any(
        _meta(e, "failure-timeout") not in (None, "0")
        for e in [
            *configuration.iterfind(".//primitive"),
            *configuration.iterfind(".//group"),
            *configuration.iterfind("rsc_defaults"),
        ]
    )


def _non_start_orders(cib: ET.Element) -> bool:
    return any(
        (o.get(a) or "start") not in ("start", "promote", "demote")
        for o in _config(cib).iterfind("constraints/rsc_order")
        for a in ("first-action", "then-action")
    )


def _property_is(name: str, *values: str) -> Callable[[ET.Element], bool]:
    return lambda cib: (_property(cib, name) or "").lower() in values


FEATURES: Final[tuple[Feature, ...]] = (
    Feature("clone", "clones", True, _clone),
    Feature("promotable", "promotable clones (master/slave)", True, _promotable),
    Feature(
        "roles", "roles in constraints and operations (Promoted/Unpromoted, promote/demote)", True, _roles
    ),
    Feature("rules", "location rules (other than one #uname eq NODE)", True, _location_rules),
    Feature(
        "attribute-rules",
        "rules inside attribute sets",
        False,
        lambda c: any(
            _any(c, f".//{t}/rule")
            for t in ("instance_attributes", "meta_attributes", "cluster_property_set", "utilization")
        ),
    ),
    Feature("date-expressions", "date expressions", False, lambda c: _any(c, ".//date_expression")),
    Feature(
        "resource-sets",
        "resource sets in constraints",
        False,
        lambda c: _any(c, "constraints/*/resource_set"),
    ),
    Feature("tickets", "tickets (rsc_ticket)", False, lambda c: _any(c, "constraints/rsc_ticket")),
    Feature("bundles", "bundles (containers)", False, lambda c: _any(c, "resources//bundle")),
    Feature(
        "templates",
        "resource templates",
        False,
        lambda c: _any(c, "resources//template") or _any(c, "resources//primitive[@template]"),
    ),
    Feature("tags", "tags", False, lambda c: _any(c, "tags/tag")),
    Feature("remote", "Pacemaker Remote and guest nodes", False, _remote),
    Feature("utilization", "utilization-based placement", False, _utilization),
    Feature(
        "fencing-topology-patterns",
        "fencing levels by pattern or attribute",
        False,
        lambda c: any(
            lv.get("target-pattern") or lv.get("target-attribute")
            for lv in _config(c).iterfind("fencing-topology/fencing-level")
        ),
    ),
    Feature("acls", "ACLs", False, lambda c: _any(c, "acls/*")),
    Feature("alerts", "alerts", False, lambda c: _any(c, "alerts/*")),
    Feature("group-unordered", "unordered or uncolocated groups", False, _group_unordered),
    Feature(
        "migration-history",
        "live migration recorded in the status (migrate_to/migrate_from)",
        False,
        lambda c: _history_ops(c, frozenset({"migrate_to", "migrate_from"})),
    ),
    Feature("order-actions", "orders of stop (or other non-start) actions", False, _non_start_orders),
    Feature("requires", "requires=nothing|quorum|unfencing, unfencing devices", False, _requires),
    Feature("failure-timeout", "failure-timeout (expiry needs the case's clock)", False, _failure_timeout),
    Feature(
        "node-health",
        "node health strategies",
        False,
        lambda c: (_property(c, "node-health-strategy") or "none") != "none",
    ),
    Feature(
        "node-pending-timeout",
        "node-pending-timeout (fencing a node that never finishes joining)",
        False,
        lambda c: (_property(c, "node-pending-timeout") or "0") not in ("0", "0s"),
    ),
    Feature("shutdown-lock", "shutdown-lock", False, lambda c: is_true(_property(c, "shutdown-lock"))),
    Feature(
        "no-quorum-suicide",
        "no-quorum-policy=suicide",
        False,
        _property_is("no-quorum-policy", "suicide"),
    ),
    Feature(
        "terminate",
        "the terminate node attribute",
        False,
        lambda c: any(nv.get("name") == "terminate" for nv in c.iterfind("status//nvpair")),
    ),
    Feature(
        "container",
        "meta container= (a member's failure restarts its container)",
        False,
        lambda c: any(_meta(e, "container") for e in _config(c).iterfind("resources//*[meta_attributes]")),
    ),
    Feature(
        "colocation-node-attribute",
        "colocation by node attribute (node-attribute= other than #uname)",
        False,
        lambda c: any(
            (co.get("node-attribute") or "#uname") != "#uname"
            for co in _config(c).iterfind("constraints/rsc_colocation")
        ),
    ),
    Feature("on-fail", "on-fail other than restart", True, _on_fail),
    Feature(
        "asymmetric",
        "symmetric-cluster=false (opt-in clusters)",
        True,
        lambda c: (
            _property(c, "symmetric-cluster") is not None and not is_true(_property(c, "symmetric-cluster"))
        ),
    ),
)
"""Every feature the classifier knows; ``supported`` is the one switch per feature."""

BY_KEY: Final = {f.key: f for f in FEATURES}


def features_of(cib: ET.Element) -> list[str]:
    """The keys of every feature the case uses."""
    return [f.key for f in FEATURES if f.detect(cib)]


def unsupported_of(cib: ET.Element) -> list[str]:
    """The keys of the features the case uses that we do not represent yet."""
    return [f.key for f in FEATURES if not f.supported and f.detect(cib)]
