"""API commands that explain and preview: ``resource_why``, ``simulate``, ``configure_*``.

Each takes a ``ClusterSnapshot`` of the core (``daemon.view().snapshot``, read in the event
loop, so it is consistent) and answers from the pure ``hacluster.core.explain`` (why) and
``hacluster.core.simulate`` (what would happen); nothing here decides.
``configure_load`` is the only change: it validates the whole file first (a bad file is
refused with every ``file:line`` problem and nothing changes), then proposes the new
configuration from the driver with ``Daemon.operate``.  Every answer that changes, or
would change, the configuration carries the diff and the predicted actions, so the CLI can
show them before it applies anything.

The answer builders are module functions of a snapshot, so the CLI's golden tests run them
without a daemon.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hacluster.config.resources_crm import parse_resources_crm, render_resources_crm
from hacluster.core.cib import ClusterConfig
from hacluster.core.edits import merge_by_id
from hacluster.core.effects import ProposeConfig
from hacluster.core.explain import why
from hacluster.core.simulate import action_dict, predict, predict_sides
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.errors import ConfigError
from hacluster.shell.api import Answer, Request, Route
from hacluster.shell.ipc import ApiError

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

STDIN_PATH = "<stdin>"
LOAD_MODES = ("replace", "update")


def _strings(request: dict[str, Any], name: str) -> list[str]:
    value = request.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ApiError("BAD_REQUEST", f"{name!r} must be a list of non-empty strings")
    return value


def _text(request: dict[str, Any]) -> tuple[str, str]:
    text = request.get("text")
    if not isinstance(text, str):
        raise ApiError("BAD_REQUEST", "this command needs the file's content as a string 'text'")
    path = request.get("name") or STDIN_PATH
    if not isinstance(path, str):
        raise ApiError("BAD_REQUEST", "'name' (the file's name, for file:line in problems) must be a string")
    return text, path


# --- answers (pure functions of a snapshot) ------------------------------------------------------


def why_answer(snapshot: ClusterSnapshot, rsc: str) -> dict[str, Any]:
    try:
        return {"resource": rsc, "why": why(snapshot, rsc)}
    except ValueError as exc:
        raise ApiError("UNKNOWN_RESOURCE", str(exc)) from None


def simulate_answer(snapshot: ClusterSnapshot, request: dict[str, Any]) -> dict[str, Any]:
    crash, fail, standby = _strings(request, "crash"), _strings(request, "fail"), _strings(request, "standby")
    raw_partition = request.get("partition")
    partition: list[list[str]] | None = None
    if raw_partition is not None:
        if not isinstance(raw_partition, list) or not all(
            isinstance(side, list) and side and all(isinstance(n, str) and n for n in side)
            for side in raw_partition
        ):
            raise ApiError("BAD_REQUEST", "'partition' must be a list of non-empty lists of node names")
        partition = raw_partition
    try:
        sides = predict_sides(snapshot, crash=crash, fail=fail, standby=standby, partition=partition)
    except ValueError as exc:
        raise ApiError("BAD_USAGE", str(exc)) from None
    answer: dict[str, Any] = {
        "what_if": {"crash": crash, "fail": fail, "standby": standby, "partition": partition},
        "actions": [action_dict(a) for side in sides for a in side.actions],
        "quorum": all(side.has_quorum for side in sides),
    }
    if partition is not None:
        answer["sides"] = [
            {
                "members": list(side.members),
                "quorum": side.has_quorum,
                "actions": [action_dict(a) for a in side.actions],
            }
            for side in sides
        ]
    return answer


def parse_text(text: str, path: str) -> ClusterConfig:
    """The file's configuration, or ``CONFIG_INVALID`` listing every ``file:line`` problem."""
    try:
        return parse_resources_crm(text, path)
    except ConfigError as exc:
        raise ApiError("CONFIG_INVALID", _refusal(path, exc.problems)) from None


def _refusal(path: str, problems: list[str]) -> str:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return f"{path}: {count}; nothing was changed:\n" + "\n".join(f"  {p}" for p in problems)


def verify_answer(text: str, path: str, nodes: tuple[str, ...]) -> dict[str, Any]:
    """Problems (the file would be refused) and warnings (it loads, but probably is not meant)."""
    try:
        config = parse_resources_crm(text, path)
    except ConfigError as exc:
        return {"ok": False, "problems": exc.problems, "warnings": []}
    warnings = []
    known = ", ".join(nodes)
    for location in config.locations:
        if location.node not in nodes:
            where = _line_of(text, path, rf"location\s+{re.escape(location.id)}\b")
            warnings.append(
                f"{where}: location {location.id}: node {location.node} is not in ha.cf (nodes: {known}); "
                "the constraint never applies"
            )
    for node, _ in config.node_attributes:
        if node not in nodes:
            where = _line_of(text, path, rf"node\s+(\d+:\s*)?{re.escape(node)}\b")
            warnings.append(
                f"{where}: node {node} is not in ha.cf (nodes: {known}); its attributes never apply"
            )
    return {"ok": True, "problems": [], "warnings": warnings, "epoch": config.epoch}


def _line_of(text: str, path: str, pattern: str) -> str:
    for number, line in enumerate(text.split("\n"), start=1):
        if re.match(rf"\s*{pattern}", line, re.IGNORECASE):
            return f"{path}:{number}"
    return path


def diff_answer(snapshot: ClusterSnapshot, new: ClusterConfig, path: str) -> dict[str, Any]:
    """The unified diff of the rendered configurations and what the cluster would then do."""
    current = snapshot.config
    before, after = render_resources_crm(current), render_resources_crm(new)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"running (epoch {current.epoch})",
            tofile=path,
        )
    )
    changed = new.digest() != current.digest()
    actions = predict(snapshot, config=new) if changed else []
    return {
        "epoch": current.epoch,
        "changed": changed,
        "diff": diff,
        "actions": [action_dict(a) for a in actions],
    }


def new_config(current: ClusterConfig, parsed: ClusterConfig, mode: str, path: str) -> ClusterConfig:
    """What ``configure load MODE`` would make of ``current``; refused if the result is invalid."""
    if mode == "replace":
        return replace(parsed, epoch=current.epoch + 1, source=current.source)
    if mode != "update":
        raise ApiError("BAD_USAGE", f"mode {mode!r} is unknown; use {' or '.join(LOAD_MODES)}")
    merged = merge_by_id(current, parsed)
    problems = merged.check()
    if problems:
        raise ApiError(
            "CONFIG_INVALID",
            _refusal(path, [f"{path}: merged with the running configuration: {p}" for p in problems]),
        )
    return merged


def _check_base(base_epoch: object, epoch: int) -> None:
    """``base_epoch``: the epoch the operator's text was made from; refuse if it moved on."""
    if isinstance(base_epoch, int) and not isinstance(base_epoch, bool) and epoch != base_epoch:
        raise ApiError(
            "CONFIG_CHANGED",
            f"the configuration changed (epoch {base_epoch} -> {epoch}) since your text was made from it; "
            "nothing was changed; run the command again to see the new diff",
        )


# --- handlers ------------------------------------------------------------------------------------


def _snapshot(daemon: Daemon) -> ClusterSnapshot:
    from hacluster.shell.daemon import now_ms

    return daemon.view().snapshot(now_ms())


def resource_why(daemon: Daemon, request: Request) -> Answer:
    rsc = request.get("resource")
    if not isinstance(rsc, str) or not rsc:
        raise ApiError("BAD_REQUEST", "this command needs a non-empty string 'resource'")
    return why_answer(_snapshot(daemon), rsc)


def simulate(daemon: Daemon, request: Request) -> Answer:
    return simulate_answer(_snapshot(daemon), request)


def configure_verify(daemon: Daemon, request: Request) -> Answer:
    text, path = _text(request)
    return verify_answer(text, path, tuple(daemon.config.nodes))


def configure_diff(daemon: Daemon, request: Request) -> Answer:
    text, path = _text(request)
    snap = _snapshot(daemon)
    mode = str(request.get("mode") or "replace")
    new = new_config(snap.config, parse_text(text, path), mode, path)
    return diff_answer(snap, new, path)


async def configure_load(daemon: Daemon, request: Request) -> Answer:
    text, path = _text(request)
    mode = request.get("mode")
    if mode not in LOAD_MODES:
        raise ApiError("BAD_USAGE", f"mode {mode!r} is unknown; use {' or '.join(LOAD_MODES)}")
    base_epoch = request.get("base_epoch")
    parsed = parse_text(text, path)
    snap = _snapshot(daemon)
    _check_base(base_epoch, snap.config.epoch)
    preview = diff_answer(snap, new_config(snap.config, parsed, mode, path), path)
    if request.get("dry_run") or not preview["changed"]:
        return {**preview, "dry_run": bool(request.get("dry_run"))}

    def apply(now_ms: int) -> Answer:
        current = daemon.view().config
        _check_base(base_epoch, current.epoch)
        new = new_config(current, parsed, mode, path)
        daemon.submit(ProposeConfig(new), now_ms)
        return {**preview, "dry_run": False, "epoch": new.epoch}

    return await daemon.operate(apply)


ROUTES: Mapping[str, Route] = {
    "resource_why": resource_why,
    "simulate": simulate,
    "configure_verify": configure_verify,
    "configure_diff": configure_diff,
    "configure_load": configure_load,
}
