"""What every command module shares: the command registry and the change runner.

Each module in this package has ``register(registry)``; it adds its subcommands to the
top-level command groups (``node``, ``resource``, …) by asking ``registry.group(name)``.
A command's ``run(args, socket_path) -> str`` returns the text to print.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hacluster.cli.client import request

Runner = Callable[[argparse.Namespace, str], "str | tuple[str, int]"]
TextRunner = Callable[[argparse.Namespace, str], str]
"""A runner that only ever returns text (every change does); it is a ``Runner`` too."""

GROUP_HELP = {
    "node": "node commands",
    "resource": "resource commands",
    "stonith": "fence devices",
    "configure": "the cluster configuration",
    "cluster": "cluster-wide keys",
}


class Registry:
    def __init__(self, top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self.top = top
        self._groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}

    def group(self, name: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """The subcommands of top-level command ``name`` (created on first use)."""
        if name not in self._groups:
            parser = self.top.add_parser(name, help=GROUP_HELP.get(name, name))
            self._groups[name] = parser.add_subparsers(
                dest=f"{name}_command", required=True, metavar=f"{name.upper()}_COMMAND"
            )
        return self._groups[name]


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")


def change(command: str, make_args: Callable[[argparse.Namespace], dict[str, Any]]) -> TextRunner:
    """A runner for a command that changes the cluster (every one accepts ``--dry-run``)."""

    def run(args: argparse.Namespace, socket_path: str) -> str:
        answer = request(socket_path, command, dry_run=args.dry_run, **make_args(args))
        if answer.get("dry_run"):
            before, after = answer.get("epoch"), answer.get("would_be_epoch", answer.get("epoch"))
            if before is None:
                return "dry run: the request is valid; nothing changed\n"
            return f"dry run: nothing changed (configuration would go from epoch {before} to {after})\n"
        warning = f"warning: {answer['warning']}\n" if answer.get("warning") else ""
        if "epoch" in answer:
            return f"done: configuration epoch {answer['epoch']}\n{warning}"
        return f"done\n{warning}"

    return run
