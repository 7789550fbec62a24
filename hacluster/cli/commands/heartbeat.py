"""Heartbeat's tools for people who know them: ``cl_status``, ``hb_standby``, ``hb_takeover``.

``hacrm cl_status …`` and the ``cl_status`` console script print what Heartbeat's
``cl_status`` printed and exit with its codes (nodestatus: 0 active/up/ping, 1 otherwise,
2 for a node that does not exist).

``hb_standby``/``hb_takeover`` map Heartbeat's resource sets onto hacluster placement.  A
*unit* is a group or an ungrouped resource (one ``haresources`` line); it is **local** to the
node its configuration prefers (the ``haresources`` node, or the highest positive location
score) and **foreign** to every other node:

* ``hb_standby all`` (the default): this node goes into standby (``node standby``); every
  unit leaves and it stays a member.  ``hb_takeover`` (any set) ends that standby.
* ``hb_standby local|foreign``: each unit of the set running here is pinned
  (``cli-prefer-<unit>``) to another available node, its preferred one when that can take it.
  ``failback`` means ``foreign``, as in Heartbeat.
* ``hb_takeover local|foreign|all``: each unit of the set not running here is pinned here.

Pins stay until ``hacrm resource unmove UNIT`` (or the next hb_standby/hb_takeover), so a
unit does not drift back on its own, as with Heartbeat's ``auto_failback off``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hacluster.cli.client import CliError, request, resolve_socket
from hacluster.cli.commands.common import Registry, add_dry_run

ACTIVE_STATES = ("active", "up", "ping")
SETS = ("all", "local", "foreign", "failback")
Result = tuple[str, int]


def add_cl_status_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """cl_status's subcommands (shared by ``hacrm cl_status`` and the ``cl_status`` script)."""

    def add(name: str, text: str, run: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text)
        p.add_argument("-m", dest="human", action="store_true", help="human-readable output")
        p.add_argument("-v", dest="verbose", action="store_true", help="verbose output")
        p.set_defaults(run=run)
        return p

    add("hbstatus", "is the daemon running on this machine (exit 0) or not (exit 1)", _hbstatus)
    ln = add("listnodes", "every node, one a line", _listnodes)
    kind = ln.add_mutually_exclusive_group()
    kind.add_argument("-p", dest="ping_only", action="store_true", help="ping nodes only")
    kind.add_argument("-n", dest="normal_only", action="store_true", help="normal nodes only")
    add(
        "nodestatus", "active|up|init|dead|ping; exit 0 for active, up, ping; 1 otherwise", _nodestatus
    ).add_argument("node", metavar="NODE")
    add("nodetype", "normal|ping", _nodetype).add_argument("node", metavar="NODE")
    add("listhblinks", "this machine's link names toward NODE", _listhblinks).add_argument(
        "node", metavar="NODE"
    )
    hl = add("hblinkstatus", "up|dead for LINK toward NODE; exit 0 up, 1 dead", _hblinkstatus)
    hl.add_argument("node", metavar="NODE")
    hl.add_argument("link", metavar="LINK")
    add("rscstatus", "which resources this node holds: none|local|foreign|all|transition", _rscstatus)
    hp = add("hbparameter", "an ha.cf directive's value as written; exit 1 when not set", _hbparameter)
    hp.add_argument("-p", dest="parameter", metavar="NAME", required=True, help="the ha.cf directive")


def register(registry: Registry) -> None:
    cl = registry.top.add_parser("cl_status", help="Heartbeat's cl_status: same output and exit codes")
    add_cl_status_commands(cl.add_subparsers(dest="cl_status_command", required=True, metavar="SUBCOMMAND"))
    for name, takeover in (("hb_standby", False), ("hb_takeover", True)):
        p = registry.top.add_parser(
            name,
            help=_handover_help(takeover).splitlines()[0],
            description=_handover_help(takeover),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_handover_arguments(p, takeover)


def _handover_help(takeover: bool) -> str:
    if takeover:
        return (
            "bring resources to this node (Heartbeat's hb_takeover)\n\n"
            "all (default): every group/resource is pinned here and this node leaves standby\n"
            "local: the ones this node is preferred for; foreign/failback: the others\n"
            "Pins (cli-prefer-ID) stay until `hacrm resource unmove ID`."
        )
    return (
        "give up this node's resources, staying a member (Heartbeat's hb_standby)\n\n"
        "all (default): this node goes into standby (hacrm node standby; undo: hb_takeover or node online)\n"
        "local: the groups/resources preferred here that run here are pinned to another node\n"
        "foreign/failback: the ones running here that prefer another node are pinned elsewhere\n"
        "Pins (cli-prefer-ID) stay until `hacrm resource unmove ID`."
    )


def _add_handover_arguments(p: argparse.ArgumentParser, takeover: bool) -> None:
    p.add_argument("set", nargs="?", choices=SETS, default="all", help="which resources (default all)")
    add_dry_run(p)
    p.set_defaults(run=lambda args, socket_path: _handover(args, socket_path, takeover))


def _handover(args: argparse.Namespace, socket_path: str, takeover: bool) -> Result:
    answer = request(
        socket_path, "heartbeat_handover", which=args.set, takeover=takeover, dry_run=args.dry_run
    )
    verb = "takes" if takeover else "gives up"
    lines = [f"{answer['node']} {verb} {args.set}:"]
    lines += [f"  {m['resource']} -> {m['node']} (pin cli-prefer-{m['resource']})" for m in answer["moves"]]
    if not takeover and args.set == "all":
        lines.append(f"  {answer['node']} is in standby; every resource leaves it")
    if answer.get("unchanged"):
        lines.append("  nothing to do")
    elif answer.get("dry_run"):
        lines.append(f"dry run: nothing changed (configuration would go to epoch {answer['would_be_epoch']})")
    else:
        lines.append(f"done: configuration epoch {answer['epoch']}")
    return "\n".join(lines) + "\n", 0


# --- cl_status -------------------------------------------------------------------------------


def _status(socket_path: str) -> dict[str, Any]:
    return request(socket_path, "status_ext", timeout_s=3.0)


def _node(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for node in doc["nodes"]:
        if node["name"] == name:
            return dict(node)
    known = " ".join(n["name"] for n in doc["nodes"])
    raise CliError("UNKNOWN_NODE", f"{name} is not a node of this cluster; nodes: {known}", 2)


def _hbstatus(args: argparse.Namespace, socket_path: str) -> Result:
    try:
        doc = _status(socket_path)
    except CliError as exc:
        if exc.code == "DAEMON_NOT_RUNNING":
            return "hacluster is stopped on this machine.\n", 1
        return "hacluster is apparently running on this machine, but refuses my connection.\n", 1
    text = "hacluster is running on this machine.\n"
    if args.verbose:
        c = doc["cluster"]
        text += (
            f"node {c['node']}, pid {c['pid']}, up {c['uptime_ms'] // 1000} s, generation {c['generation']}\n"
        )
    return text, 0


def _listnodes(args: argparse.Namespace, socket_path: str) -> Result:
    doc = _status(socket_path)
    lines = []
    for node in doc["nodes"]:
        if (args.ping_only and node["type"] != "ping") or (args.normal_only and node["type"] != "normal"):
            continue
        if not args.verbose:
            lines.append(node["name"])
            continue
        lines.append(f"{node['name']}\t{node['state']}\t(nodetype: {node['type']})")
        lines += [f"\t{link}\t{state}" for link, state in _links(doc, node).items()]
    return "".join(f"{line}\n" for line in lines), 0


def _nodestatus(args: argparse.Namespace, socket_path: str) -> Result:
    node = _node(_status(socket_path), args.node)
    state = node["state"]
    text = f"The cluster node {args.node} is {state}\n" if args.human else f"{state}\n"
    return text, 0 if state in ACTIVE_STATES else 1


def _nodetype(args: argparse.Namespace, socket_path: str) -> Result:
    node = _node(_status(socket_path), args.node)
    return (f"The type of node {args.node} is {node['type']}\n" if args.human else f"{node['type']}\n"), 0


def _links(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
    """Link name -> state, named as this machine's media (Heartbeat's rule), for any node."""
    if node.get("local"):
        return dict.fromkeys(doc.get("local_links") or [link["name"] for link in doc.get("links", [])], "up")
    return {link["name"]: link["state"] for link in node["links"]}


def _listhblinks(args: argparse.Namespace, socket_path: str) -> Result:
    doc = _status(socket_path)
    return "".join(f"\t{name}\n" for name in _links(doc, _node(doc, args.node))), 0


def _hblinkstatus(args: argparse.Namespace, socket_path: str) -> Result:
    doc = _status(socket_path)
    links = _links(doc, _node(doc, args.node))
    if args.link not in links:
        raise CliError(
            "UNKNOWN_LINK",
            f"cannot get hacluster link status: {args.node} has no link {args.link!r}; "
            f"links: {' '.join(links) or 'none'} (see cl_status listhblinks {args.node})",
            2,
        )
    state = links[args.link]
    text = f"Link {args.node}:{args.link} is {state}\n" if args.human else f"{state}\n"
    return text, 0 if state == "up" else 1


def _rscstatus(args: argparse.Namespace, socket_path: str) -> Result:
    hold = request(socket_path, "rscstatus")["rsc_hold"]
    return (f"This node is holding {hold} resources.\n" if args.human else f"{hold}\n"), 0


def _hbparameter(args: argparse.Namespace, socket_path: str) -> Result:
    value = request(socket_path, "hbparameter", name=args.parameter)["value"]
    if value is None:
        return "", 1
    return f"{value}\n", 0


# --- console scripts -------------------------------------------------------------------------


def _script_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--socket", "-s", help="the daemon's API socket (else $HACLUSTER_SOCKET)")
    parser.add_argument("--config", "-c", help="ha.cf whose api_socket to use")
    return parser


def _run_script(prog: str, parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    try:
        text, status = args.run(args, resolve_socket(args.socket, args.config))
    except CliError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_status
    sys.stdout.write(text)
    return int(status)


def cl_status_main(argv: list[str] | None = None) -> int:
    parser = _script_parser("cl_status", "Heartbeat's cluster status tool, answered by hacluster")
    add_cl_status_commands(
        parser.add_subparsers(dest="cl_status_command", required=True, metavar="SUBCOMMAND")
    )
    return _run_script("cl_status", parser, argv)


def hb_standby_main(argv: list[str] | None = None) -> int:
    parser = _script_parser("hb_standby", _handover_help(False))
    _add_handover_arguments(parser, False)
    return _run_script("hb_standby", parser, argv)


def hb_takeover_main(argv: list[str] | None = None) -> int:
    parser = _script_parser("hb_takeover", _handover_help(True))
    _add_handover_arguments(parser, True)
    return _run_script("hb_takeover", parser, argv)
