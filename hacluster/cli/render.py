"""Text rendering of the status document (the JSON shape is in docs/status-json.md)."""

from __future__ import annotations

from typing import Any


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def status_text(doc: dict[str, Any]) -> str:
    cluster = doc["cluster"]
    lines = [
        f"Node {cluster['node']}: {cluster['state']}, generation {cluster['generation']}, "
        f"communication {'up' if cluster['comm_up'] else 'not yet up'}",
        f"keepalive {cluster['keepalive_ms']} ms, deadtime {cluster['deadtime_ms']} ms, "
        f"uptime {cluster['uptime_ms'] // 1000} s, pid {cluster['pid']}",
        "",
    ]
    lines += node_table(doc["nodes"], with_links=True)
    dropped = {k: v for k, v in doc["packets"]["dropped"].items() if v}
    lines.append("")
    lines.append(
        f"Packets: {doc['packets']['received']} received, {doc['packets']['sent']} sent, "
        + ("dropped " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) if dropped else "none dropped")
    )
    for warning in doc.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines) + "\n"


def node_table(nodes: list[dict[str, Any]], *, with_links: bool) -> list[str]:
    width = max([len(n["name"]) for n in nodes] + [4])
    lines = [f"  {'NODE':<{width}}  {'STATE':<7} {'TYPE':<6} {'GENERATION':<11} {'HEARD':>9}  RECOMMENDED DEADTIME"]
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
                lines.append(f"  {'':<{width}}    link {link['name']}: {link['state']}, heard {_ms(link['last_heard_ms_ago'])} ago; {stats}")
    return lines
