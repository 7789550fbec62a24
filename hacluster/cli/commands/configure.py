"""``hacrm configure …``: show [--xml], verify, diff, load (replace | update), edit, import.

A change is never applied blind: ``load`` and ``edit`` first ask the daemon for a dry run and
print the diff and the actions the cluster would take, then (on a terminal, unless
``--yes``) ask before applying.  The apply carries the epoch the diff was made from, so a
change someone else made meanwhile is refused rather than silently overwritten.

``import`` and ``show --xml`` speak Pacemaker's CIB on the client side, on top of the same
API commands: ``import`` turns the CIB into crm text (``config.cib_xml``) and loads that text
as ``load`` does, so the daemon sees nothing new; ``show --xml`` reads the crm text and
writes it as a CIB that ``crm_verify -x`` accepts.
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
from hacluster.config.cib_xml import parse_cib_xml, render_cib_xml
from hacluster.config.resources_crm import parse_resources_crm, render_resources_crm
from hacluster.errors import ConfigError

STDIN = "-"


def register(registry: Registry) -> None:
    cfg_sub = registry.group("configure")
    show = cfg_sub.add_parser("show", help="print the cluster configuration in crm syntax")
    show.add_argument(
        "--xml", action="store_true", help="print it as a Pacemaker CIB instead (crm_verify -x accepts it)"
    )
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
    imp = cfg_sub.add_parser(
        "import", help="read a Pacemaker CIB (cib.xml): show it as crm text and the diff, then apply it"
    )
    imp.add_argument(
        "file", metavar="FILE.xml", help="a CIB, e.g. /var/lib/pacemaker/cib/cib.xml, or - for stdin"
    )
    imp.add_argument(
        "--update", action="store_true", help="merge by id (as load update) instead of replacing everything"
    )
    imp.add_argument(
        "--print",
        action="store_true",
        dest="print_only",
        help="only print the crm text (e.g. to write resources.crm); no daemon needed",
    )
    _add_apply_options(imp)
    imp.set_defaults(run=_configure_import)


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


def _configure_show(args: argparse.Namespace, socket_path: str) -> str:
    answer = request(socket_path, "configure_show")
    text = str(answer["text"])
    if not args.xml:
        return text
    return cib_text_of(text, int(answer.get("epoch", 0)))


def cib_text_of(crm_text: str, epoch: int) -> str:
    """The running configuration's crm text as a CIB (pure, for the golden tests)."""
    try:
        config = parse_resources_crm(crm_text, "running configuration", epoch=epoch)
    except ConfigError as exc:  # the daemon's own rendering always parses; say so if not
        raise CliError(
            "INTERNAL", "the running configuration did not parse back:\n" + "\n".join(exc.problems)
        ) from None
    return render_cib_xml(config)


def import_text(data: bytes, path: str) -> tuple[str, list[str]]:
    """A CIB as crm text and the warnings; ``CliError`` (nothing changed) listing every problem."""
    warnings: list[str] = []
    try:
        config = parse_cib_xml(data, path, warnings=warnings)
    except ConfigError as exc:
        count = f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}"
        raise CliError(
            "CONFIG_INVALID",
            f"{path}: {count}; nothing was changed:\n" + "\n".join(f"  {p}" for p in exc.problems),
        ) from None
    return render_resources_crm(config), warnings


def _configure_import(args: argparse.Namespace, socket_path: str) -> str:
    if args.file == STDIN:
        data, path = sys.stdin.buffer.read(), "<stdin>"
    else:
        try:
            data, path = Path(args.file).read_bytes(), args.file
        except OSError as exc:
            raise CliError(
                "FILE_UNREADABLE", f"{args.file}: cannot read ({exc.strerror}); check the path", 2
            ) from None
    text, warnings = import_text(data, path)
    notes = "".join(f"warning: {w}\n" for w in warnings)
    if args.print_only:
        sys.stderr.write(notes)
        return text
    shown = f"{notes}{path} as crm configuration:\n{text}\n"
    sys.stdout.write(shown)
    mode = "update" if args.update else "replace"
    return _review_and_apply(args, socket_path, text, f"{path} (imported)", mode, None)


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
