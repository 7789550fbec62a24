"""``hacluster``: the daemon's command line (``daemon``, ``daemon --check``, ``demo``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hacluster.errors import ConfigError, HAClusterError

logger = logging.getLogger("hacluster.shell.main")

DEFAULT_CONFIG = "/etc/ha.d/ha.cf"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hacluster", description="Heartbeat-style cluster resource manager daemon"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    daemon = sub.add_parser("daemon", help="run the cluster daemon in the foreground")
    daemon.add_argument(
        "--config", "-c", default=DEFAULT_CONFIG, help=f"path of ha.cf (default {DEFAULT_CONFIG})"
    )
    daemon.add_argument("--node", "-n", help="this node's name (default: uname -n)")
    daemon.add_argument(
        "--check",
        action="store_true",
        help="validate ha.cf, authkeys and the resource file (or CIB), print warnings, and exit",
    )
    demo = sub.add_parser("demo", help="run a local demo cluster on loopback (no root needed)")
    demo.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    demo.add_argument("--keep", action="store_true", help="keep the demo's files after it ends")
    demo.add_argument("--no-kill", action="store_true", help="don't kill a node; just show the live status")
    demo.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from hacluster.shell.demo import run_demo

        return run_demo(nodes=args.nodes, keep=args.keep, kill=not args.no_kill, duration_s=args.duration)
    return _daemon(args)


def _daemon(args: argparse.Namespace) -> int:
    from hacluster.config import default_node_name
    from hacluster.config.cluster import load_cluster
    from hacluster.shell import logs
    from hacluster.shell.daemon import Daemon

    node = (args.node or default_node_name()).lower()
    try:
        config, resources = load_cluster(args.config, node)
    except ConfigError as exc:
        print(f"hacluster: {len(exc.problems)} problem(s) in the configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.check:
        for warning in [*config.warnings, *resources.warnings]:
            print(f"warning: {warning}", file=sys.stderr)
        where = f" and {resources.path}" if resources.path else " (no resource file)"
        if resources.summary:
            print(f"resources: {resources.summary}")
        print(f"{config.path}{where}: configuration is valid for node {node}")
        return 0
    logs.configure(
        node=node,
        debug=config.debug,
        logfile=config.logfile,
        debugfile=config.debugfile,
        logfacility=config.logfacility,
    )
    try:
        return asyncio.run(Daemon(config, node, resources).run())
    except HAClusterError as exc:
        logger.critical("daemon stopped: %s", exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
