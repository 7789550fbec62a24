"""Location rules: which nodes a rule holds on, and the score it gives there.  Pure.

Theory of operation
-------------------
A rule is read against one node's attributes alone (``Mapping[str, str]``: the permanent
ones from the configuration merged with the transient ones agents and ping nodes set;
``core.attributes`` builds the mapping), plus two built-in attributes: ``#uname`` and
``#id``, both the node's name (hacluster has no numeric node ids).  Pacemaker's semantics
(Pacemaker Explained, "Rules"):

- ``defined A`` / ``not_defined A``: whether the node has A;
- ``A eq|ne|lt|gt|lte|gte [TYPE:]V``: compared as ``TYPE`` — ``string`` (case-insensitive,
  as Pacemaker's ``strcasecmp``), ``integer``, ``number`` (a decimal) or ``version``
  (dot-separated numbers, ``1.10 > 1.9``).  Without a type, ``lt``/``gt``/``lte``/``gte``
  compare as ``number`` when either side has a ``.``, else ``integer``; ``eq``/``ne`` as
  ``string``.  A value that does not parse as the type is compared as a string, as
  Pacemaker falls back;
- an attribute the node does not have: ``eq`` and the orderings are false, ``ne`` true
  (so ``not_defined pingd or pingd lte 0`` is the usual "no connectivity" test);
- ``and``/``or`` join the expressions of one rule; several rules of one location each add
  their score where they hold;
- ``score-attribute=NAME``: the rule gives the node's value of NAME as a score, and nothing
  on a node without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from hacluster.core.cib import Expression, Location, Rule, parse_score

NodeAttributes = Mapping[str, str]


def node_view(node: str, attributes: NodeAttributes) -> dict[str, str]:
    """A node's attributes with the built-ins ``#uname`` and ``#id`` added."""
    return {**attributes, "#uname": node, "#id": node}


def expression_holds(expression: Expression, node: str, attributes: NodeAttributes) -> bool:
    """Whether ``expression`` holds on ``node`` (module docstring)."""
    actual = node_view(node, attributes).get(expression.attribute)
    operation = expression.operation
    if operation == "defined":
        return actual is not None
    if operation == "not_defined":
        return actual is None
    reference = expression.value
    assert reference is not None, expression  # check() requires a value for a comparison
    if actual is None:
        return operation == "ne"
    kind = expression.type or _default_type(operation, actual, reference)
    cmp = compare(actual, reference, kind)
    return {
        "eq": cmp == 0,
        "ne": cmp != 0,
        "lt": cmp < 0,
        "gt": cmp > 0,
        "lte": cmp <= 0,
        "gte": cmp >= 0,
    }[operation]


def _default_type(operation: str, actual: str, reference: str) -> str:
    if operation in ("eq", "ne"):
        return "string"
    return "number" if "." in actual or "." in reference else "integer"


def compare(a: str, b: str, kind: str) -> int:
    """-1, 0 or 1; a value that does not parse as ``kind`` makes it a string comparison."""
    try:
        if kind == "integer":
            return _sign(int(a.strip()) - int(b.strip()))
        if kind == "number":
            return _sign(Decimal(a.strip()) - Decimal(b.strip()))
        if kind == "version":
            return _compare_versions(a, b)
    except (ValueError, InvalidOperation):
        pass
    left, right = a.lower(), b.lower()
    return (left > right) - (left < right)


def _compare_versions(a: str, b: str) -> int:
    left = [int(part) for part in a.strip().split(".")]
    right = [int(part) for part in b.strip().split(".")]
    width = max(len(left), len(right))
    left += [0] * (width - len(left))
    right += [0] * (width - len(right))
    return (left > right) - (left < right)


def _sign(value: int | Decimal) -> int:
    return (value > 0) - (value < 0)


def rule_holds(rule: Rule, node: str, attributes: NodeAttributes) -> bool:
    results = (expression_holds(e, node, attributes) for e in rule.expressions)
    return any(results) if rule.boolean_op == "or" else all(results)


def rule_score(rule: Rule, node: str, attributes: NodeAttributes) -> int | None:
    """The score ``rule`` gives ``node``, or None where it does not hold (or the node lacks
    the ``score-attribute``, or its value is not a score)."""
    if not rule_holds(rule, node, attributes):
        return None
    if rule.score_attribute is None:
        return rule.score
    value = node_view(node, attributes).get(rule.score_attribute)
    if value is None:
        return None
    try:
        return parse_score(value)
    except ValueError:
        return None


def location_scores(
    location: Location, node: str, attributes: NodeAttributes, role: str | None = None
) -> list[tuple[int, str]]:
    """The scores ``location`` gives ``node`` for ``role`` (None: a role-less placement), each
    with what gave it (``node`` or the rule's expression), for ``why``."""
    wanted = location.role
    out: list[tuple[int, str]] = []
    if not location.rules:
        if location.node == node and wanted == role:
            out.append((location.score, f"location {location.id}"))
        return out
    for rule in location.rules:
        if (rule.role or wanted) != role:
            continue
        score = rule_score(rule, node, attributes)
        if score is not None:
            out.append((score, f"rule {location.id}: {why_rule_holds(rule, node, attributes)}"))
    return out


def describe_rule(rule: Rule) -> str:
    """The rule's expressions in crm syntax: ``not_defined pingd or pingd lte 0``."""
    words = []
    for expression in rule.expressions:
        if expression.value is None:
            words.append(f"{expression.operation} {expression.attribute}")
        else:
            typed = f"{expression.type}:" if expression.type else ""
            words.append(f"{expression.attribute} {expression.operation} {typed}{expression.value}")
    return f" {rule.boolean_op} ".join(words)


def why_rule_holds(rule: Rule, node: str, attributes: NodeAttributes) -> str:
    """What makes ``rule`` hold on ``node``, as an operator reads it: ``db is not defined on
    n2``, ``pingd is '0' on n2 (pingd lte 0)``."""
    view = node_view(node, attributes)
    held = [e for e in rule.expressions if expression_holds(e, node, attributes)]
    parts = []
    for expression in held if rule.boolean_op == "and" else held[:1]:
        actual = view.get(expression.attribute)
        if expression.operation == "not_defined" or actual is None:
            parts.append(f"{expression.attribute} is not defined on {node}")
        elif expression.operation == "defined":
            parts.append(f"{expression.attribute} is defined on {node}")
        else:
            parts.append(
                f"{expression.attribute} is {actual!r} on {node} "
                f"({expression.attribute} {expression.operation} {expression.value})"
            )
    return " and ".join(parts) or f"{describe_rule(rule)} holds on {node}"


def why_rule_fails(rule: Rule, node: str, attributes: NodeAttributes) -> str:
    """The first expression that makes ``rule`` fail on ``node``, as an operator reads it:
    ``db is not defined on n2``."""
    view = node_view(node, attributes)
    for expression in rule.expressions:
        if expression_holds(expression, node, attributes):
            continue
        actual = view.get(expression.attribute)
        if actual is None:
            return f"{expression.attribute} is not defined on {node}"
        return f"{expression.attribute} is {actual!r} on {node}"
    return f"{describe_rule(rule)} holds on {node}"
