"""Text rendering of the status document (the JSON shape is in docs/status-json.md)."""

from __future__ import annotations

import time
from typing import Any

from hacluster.core.cib import format_time_ms


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def status_text(doc: dict[str, Any], *, full: bool = False) -> str:
    """``hacrm status``; ``full`` adds node attributes, fail counts with expiry and pending actions."""
    cluster = doc["cluster"]
    quorum = "" if cluster.get("quorum", True) else ", WITHOUT quorum"
    lines = [
        f"DC: {cluster.get('dc') or 'NONE'}{quorum}; configuration epoch {cluster.get('config_epoch', 0)}",
        f"Node {cluster['node']}: {cluster['state']}, generation {cluster['generation']}, "
        f"communication {'up' if cluster['comm_up'] else 'not yet up'}",
        f"keepalive {cluster['keepalive_ms']} ms, deadtime {cluster['deadtime_ms']} ms, "
        f"uptime {cluster['uptime_ms'] // 1000} s, pid {cluster['pid']}",
        "",
    ]
    lines += node_table(doc["nodes"], with_links=True)
    if cluster.get("maintenance_mode"):
        lines += ["", "              *** Resource management is DISABLED (maintenance-mode) ***"]
    if doc.get("resources"):
        lines.append("")
        lines += resource_lines(doc)
    lines += constraint_lines(doc)
    if full:
        lines += full_lines(doc)
    pending = doc.get("fencing_pending") or {}
    history = doc.get("fencing") or []
    if pending or history:
        lines.append("")
        lines.append("Fencing:")
        for target, what in sorted(pending.items()):
            lines.append(f"  * PENDING {target}: {what}")
        for event in history[-10:]:
            lines.append(
                f"  * {event['target']} {event['result']} by {event['by']} with {event['device']} in {event['ms']} ms"
                f" ({event['reason']}), {event['ago_ms'] // 1000} s ago"
            )
    dropped = {k: v for k, v in doc["packets"]["dropped"].items() if v}
    lines.append("")
    lines.append(
        f"Packets: {doc['packets']['received']} received, {doc['packets']['sent']} sent, "
        + (
            "dropped " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()))
            if dropped
            else "none dropped"
        )
    )
    lines += alert_lines(doc.get("alerts") or [])
    for warning in doc.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines) + "\n"


def alert_lines(hooks: list[dict[str, Any]]) -> list[str]:
    """One line per alert hook; its last failure (code, exit status, stderr) when it has one."""
    if not hooks:
        return []
    lines = ["", "Alert hooks:"]
    for hook in hooks:
        text = (
            f"  * {hook['path']}: {hook['delivered']} delivered, {hook['queued']} queued, "
            f"{hook['given_up']} given up, {hook['dropped']} dropped"
        )
        failure = hook.get("last_failure")
        if failure:
            how = "timed out" if failure.get("timed_out") else f"rc {failure.get('rc')}"
            stderr = (failure.get("stderr") or "").strip().splitlines()
            text += (
                f"\n    last failure: {failure['code']} {how} after {failure['attempts']} attempt(s) "
                f"at {failure['time']}" + (f": {stderr[-1]}" if stderr else "")
            )
        lines.append(text)
    return lines


def node_table(nodes: list[dict[str, Any]], *, with_links: bool) -> list[str]:
    width = max([len(n["name"]) for n in nodes] + [4])
    lines = [
        f"  {'NODE':<{width}}  {'STATE':<7} {'TYPE':<6} {'GENERATION':<11} {'HEARD':>9}  RECOMMENDED DEADTIME"
    ]
    for node in nodes:
        generation = "-" if node["generation"] is None else str(node["generation"])
        heard = "(local)" if node.get("local") else _ms(node["last_heard_ms_ago"])
        lines.append(
            f"  {node['name']:<{width}}  {node['state']:<7} {node['type']:<6} {generation:<11} {heard:>9}  "
            f"{_ms(node['recommended_deadtime_ms'])}"
        )
        if with_links:
            for link in node["links"]:
                gap = link["gap_ms"]
                stats = (
                    f"gap p50 {_ms(gap['p50'])}, p99 {_ms(gap['p99'])}, max {_ms(gap['max'])} ({gap['samples']} samples)"
                    if gap["samples"]
                    else "no gap samples yet"
                )
                lines.append(
                    f"  {'':<{width}}    link {link['name']}: {link['state']}, heard {_ms(link['last_heard_ms_ago'])} ago; {stats}"
                )
    return lines


def resource_lines(doc: dict[str, Any]) -> list[str]:
    """Resources, groups first with their members indented, then the ungrouped ones."""
    resources = doc.get("resources", [])
    if not resources:
        return ["Resources: none configured"]
    by_id = {r["id"]: r for r in resources}
    lines = ["Resources:"]

    def one(r: dict[str, Any], indent: str) -> str:
        where = r["node"] if isinstance(r["node"], str) else (", ".join(r["node"]) if r["node"] else "")
        state = r["state"].upper() if r["state"] in ("failed", "blocked") else r["state"].capitalize()
        text = f"{indent}* {r['id']}\t({r['agent']}):\t {state}{' ' + where if where else ''}"
        if r["failcounts"]:
            text += "  fail-count " + ", ".join(f"{n}={c}" for n, c in r["failcounts"].items())
        if r["state"] != "started" and r.get("reason"):
            text += f"  ({r['reason']})"
        if not r.get("managed", True):
            text += " (unmanaged)"
        return text

    grouped = set()
    for group in doc.get("groups", []):
        lines.append(f"  * Resource Group: {group['id']}:")
        for member in group["members"]:
            if member in by_id:
                lines.append(one(by_id[member], "    "))
                grouped.add(member)
    for r in resources:
        if r["id"] not in grouped:
            lines.append(one(r, "  "))
    failures = [(r["id"], f) for r in resources for f in r.get("failures", [])]
    if failures:
        lines.append("Failed Resource Actions:")
        for rid, f in failures:
            reason = f" ({f['reason']})" if f.get("reason") else ""
            lines.append(f"  * {rid} {f['op']} on {f['node']} returned rc {f['rc']}{reason}")
    return lines


def _when(unix_s: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix_s))


def constraint_lines(doc: dict[str, Any]) -> list[str]:
    """Pins (``move --pin``) and one-shot moves still under way: the constraints operators forget."""
    pins = doc.get("pins") or []
    moves = doc.get("moves") or []
    if not pins and not moves:
        return []
    lines = ["", "Constraints from the CLI (clear with: hacrm resource unmove ID):"]
    for pin in pins:
        until = f" until {_when(pin['until_s'])}" if pin.get("until_s") else " until unmove"
        lines.append(f"  * {pin['id']}: {pin['resource']} pinned to {pin['node']}{until}")
    for move in moves:
        lines.append(f"  * {move['id']}: {move['resource']} moving to {move['node']} (removed once there)")
    return lines


def failcount_expiry(resource: dict[str, Any]) -> str:
    timeout = str(resource.get("failure_timeout") or "0")
    if timeout in ("0", "0s", ""):
        return "never expires (failure-timeout 0)"
    return f"expires {timeout} after the last failure"


def full_lines(doc: dict[str, Any]) -> list[str]:
    """Node attributes, migration summary with expiry, pending actions (crm_mon -A -f style)."""
    lines = ["", "Node Attributes:"]
    for node in doc["nodes"]:
        attributes = node.get("attributes") or {}
        text = " ".join(f"{k}={v}" for k, v in sorted(attributes.items())) or "(none)"
        lines.append(f"  * Node {node['name']}: {text}")
    counted = [r for r in doc.get("resources", []) if r.get("failcounts")]
    lines += ["", "Migration Summary:"]
    if not counted:
        lines.append("  (no fail counts)")
    for r in counted:
        for node, count in sorted(r["failcounts"].items()):
            threshold = r.get("migration_threshold") or "INFINITY"
            lines.append(
                f"  * {r['id']} on {node}: fail-count={count} migration-threshold={threshold}, {failcount_expiry(r)}"
            )
    pending = list(doc.get("pending") or [])
    fencing = doc.get("fencing_pending") or {}
    lines += ["", "Pending Actions:"]
    if not pending and not fencing:
        lines.append("  (none)")
    for rsc in pending:
        state = next((r["state"] for r in doc.get("resources", []) if r["id"] == rsc), "pending")
        lines.append(f"  * {rsc}: {state} on {doc['cluster']['node']}")
    for target, what in sorted(fencing.items()):
        lines.append(f"  * fencing {target}: {what}")
    return lines


def node_detail(doc: dict[str, Any], name: str) -> list[str]:
    """``hacrm node show``: state, links with gap statistics, attributes, resources, fencing."""
    node = next(n for n in doc["nodes"] if n["name"] == name)
    flags = [f for f in ("standby", "maintenance") if node.get(f)]
    lines = [f"Node {name}: {node['state']}{' (' + ', '.join(flags) + ')' if flags else ''}"]
    lines += [
        f"  type {node['type']}, generation {node['generation'] if node['generation'] is not None else '-'}, "
        + ("this node" if node.get("local") else f"last heard {_ms(node['last_heard_ms_ago'])} ago"),
        f"  recommended deadtime {_ms(node['recommended_deadtime_ms'])}",
    ]
    lines += node_table([node], with_links=True)[2:] or ["  (no links toward this node)"]
    attributes = node.get("attributes") or {}
    lines.append("Attributes:" if attributes else "Attributes: none")
    lines += [f"  {k}={v}" for k, v in sorted(attributes.items())]
    here = [r for r in doc.get("resources", []) if name in (r.get("nodes") or [])]
    lines.append("Resources:" if here else "Resources: none running here")
    lines += [f"  * {r['id']}\t({r['agent']}):\t {r['state'].capitalize()}" for r in here]
    fenced = [e for e in doc.get("fencing") or [] if e["target"] == name]
    pending = (doc.get("fencing_pending") or {}).get(name)
    lines.append("Fencing history:" if fenced or pending else "Fencing history: none")
    if pending:
        lines.append(f"  * PENDING: {pending}")
    lines += [
        f"  * {e['result']} by {e['by']} with {e['device']} ({e['action']}) in {e['ms']} ms, "
        f"{e['ago_ms'] // 1000} s ago: {e['reason']}"
        for e in fenced
    ]
    return lines


def resource_detail(show: dict[str, Any]) -> list[str]:
    """``hacrm resource show``: definition (secrets hidden), state per node, failures."""
    lines = [
        f"{show['kind'].capitalize()} {show['id']}"
        + (f" (in group {show['group']})" if show["group"] else "")
    ]
    if show["meta"]:
        lines.append("  meta " + " ".join(f"{k}={v}" for k, v in show["meta"].items()))
    for p in show["primitives"]:
        indent = "  " if show["kind"] == "primitive" else "    "
        if show["kind"] == "group":
            lines.append(f"  * {p['id']}")
        lines.append(f"{indent}agent {p['agent']}" + (f" {' '.join(p['args'])}" if p["args"] else ""))
        if p["params"]:
            lines.append(f"{indent}params " + " ".join(f"{k}={v}" for k, v in p["params"].items()))
        if p["meta"] and show["kind"] == "group":
            lines.append(f"{indent}meta " + " ".join(f"{k}={v}" for k, v in p["meta"].items()))
        for op in p["ops"]:
            extra = "".join(f" {k.replace('_', '-')}={op[k]}" for k in ("on_fail", "role") if k in op)
            timeout = f" timeout={format_time_ms(op['timeout_ms'])}" if op["timeout_ms"] else ""
            lines.append(
                f"{indent}op {op['name']} interval={format_time_ms(op['interval_ms'])}{timeout}{extra}"
            )
        states = ", ".join(f"{n}={s}" for n, s in p["states"].items()) or "not reported yet"
        lines.append(f"{indent}state: {states}; target-role {p['target_role']}")
        counts = ", ".join(f"{n}={c}" for n, c in p["failcounts"].items())
        lines.append(
            f"{indent}fail counts: {counts or 'none'}"
            + (f" ({failcount_expiry(p)}, migration-threshold {p['migration_threshold']})" if counts else "")
        )
        for f in p["failures"]:
            reason = f" ({f['reason']})" if f.get("reason") else ""
            lines.append(f"{indent}last failure: {f['op']} on {f['node']} returned rc {f['rc']}{reason}")
    for c in show["constraints"]:
        lines.append(f"  location {c['id']}: {c['node']} score {c['score']}")
    for pin in show["pins"]:
        if pin.get("until_s"):
            lines.append(f"  pin {pin['id']} expires {_when(pin['until_s'])}")
    return lines
