"""Text rendering of the status document (the JSON shape is in docs/status-json.md)."""

from __future__ import annotations

from typing import Any


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def status_text(doc: dict[str, Any]) -> str:
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
    if doc.get("resources"):
        lines.append("")
        lines += resource_lines(doc)
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
    for warning in doc.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines) + "\n"


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
