"""``hacrm configure …``: show, verify, diff, load (replace | update), edit.

A change is never applied blind: ``load`` and ``edit`` first ask the daemon for a dry run and
print the diff and the actions the cluster would take, then (on a terminal, unless
``--yes``) ask before applying.  The apply carries the epoch the diff was made from, so a
change someone else made meanwhile is refused rather than silently overwritten.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hacluster.cli.client import CliError, request
from hacluster.cli.commands.common import Registry, add_dry_run
from hacluster.cli.commands.explain import action_lines

STDIN = "-"


def register(registry: Registry) -> None:
    cfg_sub = registry.group("configure")
    show = cfg_sub.add_parser("show", help="print the cluster configuration in crm syntax")
    show.set_defaults(run=_configure_show)
    verify = cfg_sub.add_parser("verify", help="check FILE (crm syntax) without changing anything")
    verify.add_argument("file", metavar="FILE", help="a resources.crm file, or - for stdin")
    verify.set_defaults(run=_configure_verify)
    diff = cfg_sub.add_parser("diff", help="diff FILE against the running configuration, and its effect")
    diff.add_argument("file", metavar="FILE", help="a resources.crm file, or - for stdin")
    diff.add_argument(
        "--update", action="store_true", help="diff as `load update` would merge FILE (default: replace)"
    )
    diff.set_defaults(run=_configure_diff)
    load = cfg_sub.add_parser("load", help="make FILE the configuration (replace) or merge it by id (update)")
    load.add_argument(
        "mode",
        choices=("replace", "update"),
        help="replace: FILE becomes the whole configuration; update: FILE's objects replace same-id ones",
    )
    load.add_argument("file", metavar="FILE", help="a resources.crm file, or - for stdin")
    _add_apply_options(load)
    load.set_defaults(run=_configure_load)
    edit = cfg_sub.add_parser("edit", help="edit the configuration in $EDITOR, then review and apply it")
    _add_apply_options(edit)
    edit.set_defaults(run=_configure_edit)


def _add_apply_options(parser: argparse.ArgumentParser) -> None:
    add_dry_run(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="apply without asking (on a terminal)")


def _read(file: str) -> tuple[str, str]:
    if file == STDIN:
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CliError("FILE_UNREADABLE", f"{file}: cannot read ({why}); check the path", 2) from None


def _configure_show(_args: argparse.Namespace, socket_path: str) -> str:
    return str(request(socket_path, "configure_show")["text"])


def _configure_verify(args: argparse.Namespace, socket_path: str) -> str:
    text, path = _read(args.file)
    return format_verify(request(socket_path, "configure_verify", text=text, name=path), path)


def _configure_diff(args: argparse.Namespace, socket_path: str) -> str:
    text, path = _read(args.file)
    mode = "update" if args.update else "replace"
    return format_diff(request(socket_path, "configure_diff", text=text, name=path, mode=mode), path)


def _configure_load(args: argparse.Namespace, socket_path: str) -> str:
    text, path = _read(args.file)
    return _review_and_apply(args, socket_path, text, path, args.mode, None)


def _configure_edit(args: argparse.Namespace, socket_path: str) -> str:
    shown = request(socket_path, "configure_show")
    before = str(shown["text"])
    fd, name = tempfile.mkstemp(prefix="hacrm-edit-", suffix=".crm")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(before)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        status = subprocess.call([*shlex.split(editor), name])
    except OSError as exc:
        os.unlink(name)
        raise CliError(
            "EDITOR_FAILED", f"cannot run editor {editor!r} ({exc.strerror}); set $EDITOR", 2
        ) from None
    if status != 0:
        raise CliError(
            "EDITOR_FAILED", f"{editor} exited with status {status}; nothing changed; your text is in {name}"
        )
    after = Path(name).read_text(encoding="utf-8")
    if after == before:
        os.unlink(name)
        return "no change: the configuration was not edited\n"
    try:
        out = _review_and_apply(args, socket_path, after, name, "replace", int(shown["epoch"]))
    except CliError as exc:
        raise CliError(
            exc.code, f"{exc}\nyour edit is kept in {name}; fix it, then: hacrm configure load replace {name}"
        ) from None
    os.unlink(name)
    return out


def _review_and_apply(
    args: argparse.Namespace, socket_path: str, text: str, path: str, mode: str, base_epoch: int | None
) -> str:
    """Dry run, print the diff and actions, confirm, apply from the same epoch."""
    preview = request(
        socket_path, "configure_load", text=text, name=path, mode=mode, dry_run=True, base_epoch=base_epoch
    )
    shown = format_diff(preview, path)
    if not preview["changed"]:
        return shown
    if args.dry_run:
        return shown + "dry run: nothing changed\n"
    sys.stdout.write(shown)
    sys.stdout.flush()
    if sys.stdin.isatty() and not args.yes:
        answer = input(f"Apply this as configuration epoch {preview['epoch'] + 1}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return "not applied: nothing changed\n"
    done = request(
        socket_path,
        "configure_load",
        text=text,
        name=path,
        mode=mode,
        dry_run=False,
        base_epoch=preview["epoch"],
    )
    return f"done: configuration epoch {done['epoch']}\n"


# --- formatting (pure: API answer in, text out) -------------------------------------------------


def format_verify(answer: dict[str, Any], path: str) -> str:
    if not answer["ok"]:
        problems = answer["problems"]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise CliError("CONFIG_INVALID", f"{path}: {count}:\n" + "\n".join(f"  {p}" for p in problems))
    lines = [f"{path}: ok"]
    lines += [f"WARNING: {w}" for w in answer.get("warnings", [])]
    return "\n".join(lines) + "\n"


def format_diff(answer: dict[str, Any], path: str) -> str:
    if not answer["changed"]:
        return f"no change: {path} matches the running configuration (epoch {answer['epoch']})\n"
    diff = (
        answer["diff"]
        or f"(only formatting or order differs; epoch {answer['epoch']} -> {answer['epoch'] + 1})\n"
    )
    return diff + "\nTransition Summary:\n" + "\n".join(action_lines(answer["actions"])) + "\n"
