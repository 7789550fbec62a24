"""The constructs hacluster refuses because the feature is not built yet: one table.

Both readers of Pacemaker's configuration, the crm parser (``resources_crm``) and the CIB
importer (``cib_xml``), refuse these through ``MISSING``: the message names the feature, the
issue that builds it and what to write meanwhile, so a refusal never reads like a typo.  When
a feature lands, its row goes and the parsers' handlers take the construct; nothing else
needs rewriting.  ``tests/config/real_configs.json`` lists which real files are refused for
which feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class MissingFeature:
    """A construct that is valid for Pacemaker but not supported by hacluster yet."""

    key: str
    """Stable name, used in tests and in the machine-readable list (``clone``, ``rules`` …)."""
    feature: str
    """What the operator would call it."""
    issue: int | None
    """The issue that builds it; None: not planned."""
    instead: str
    """What to write meanwhile, as a sentence starting with a verb."""

    def message(self, construct: str) -> str:
        planned = f" yet (issue {self.issue} builds them)" if self.issue is not None else ""
        return f"{construct}: {self.feature} are not supported{planned}; {self.instead}"


MISSING: Final[dict[str, MissingFeature]] = {
    item.key: item
    for item in (
        MissingFeature(
            "date-rules",
            "date expressions in rules (date, date_spec, in_range)",
            None,
            "write a rule on node attributes instead, and change the configuration when the date comes",
        ),
        MissingFeature(
            "order-actions",
            "orders on the stop or demote action",
            8,
            "order the start (or promote) instead: stops and demotes then run in the reverse order",
        ),
        MissingFeature(
            "colocation-node-attribute",
            "colocations by node attribute (node-attribute= other than #uname)",
            None,
            "colocate on the same node (drop node-attribute), or use location rules on the attribute",
        ),
        MissingFeature(
            "rsc-pattern",
            "location constraints by resource pattern (rsc-pattern)",
            None,
            "write one location constraint per resource",
        ),
        MissingFeature(
            "resource-sets",
            "resource sets",
            8,
            "write one constraint per pair of resources",
        ),
        MissingFeature(
            "group-unordered",
            "unordered groups (meta ordered=false)",
            8,
            "remove ordered=false (the members then start in order) or use separate primitives with "
            "colocation constraints",
        ),
        MissingFeature(
            "templates",
            "resource templates",
            None,
            "write each primitive in full",
        ),
        MissingFeature("tags", "tags", None, "remove the tag; refer to the resources by id"),
        MissingFeature("tickets", "tickets (rsc_ticket, booth)", None, "remove the ticket constraint"),
        MissingFeature(
            "acls",
            "ACLs",
            None,
            "remove the ACL; who may use the API is set by group: haclient (everything) and ha.cf api_readonly_group (read only)",
        ),
        MissingFeature(
            "alerts",
            "CIB alerts",
            None,
            "write an alert line in ha.cf instead: alert /path/to/script",
        ),
        MissingFeature("bundles", "bundles (containers)", None, "run the container with a primitive"),
        MissingFeature(
            "utilization",
            "utilization-based placement (placement-strategy other than default)",
            None,
            "remove placement-strategy, or the utilization attributes",
        ),
        MissingFeature(
            "remote",
            "Pacemaker Remote nodes and guest nodes",
            None,
            "run the daemon on that machine and list it as a node in ha.cf",
        ),
        MissingFeature(
            "attribute-rules",
            "rules inside meta or instance attributes",
            8,
            "give the attribute one value without a rule",
        ),
        MissingFeature(
            "fencing-topology-patterns",
            "fencing levels by attribute or pattern",
            None,
            "write one fencing level per node name",
        ),
    )
}
