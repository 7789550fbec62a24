"""fence_manual: "meatware" fencing — a human powers the node off and says so.

Contract (files under ``state_dir``, default /var/lib/hacluster, node names as in the cluster):

1. ``off``/``reboot`` for ``plug=NODE`` first removes a stale ``fence-confirm-NODE`` (a
   confirmation given before anyone asked is not an answer to this request), then writes
   ``fence-request-NODE`` (action, pid, time) and prints a CRITICAL line asking an operator
   to make sure NODE is powered off.
2. It polls every ``poll_interval`` seconds for ``fence-confirm-NODE``, which ``hacrm node
   fence-confirm NODE`` (or ``confirm()`` below) writes atomically.  When it appears, both
   files are removed and the action succeeds.
3. Otherwise it waits until ``confirm_timeout`` seconds (0 = until the fencer's timeout kills
   it) and fails; the request file is removed either way, so it never outlives the attempt
   (a killed agent may leave it; the next request replaces it).

Confirming a node that is in fact still running lets two nodes write the same data: the
confirmation is the operator's promise, checked by nobody.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import ClassVar, Final

from hacluster.fencing_agents.api import FenceAgent, FenceError, Param, safe_name

DEFAULT_STATE_DIR: Final = "/var/lib/hacluster"
REQUEST_PREFIX: Final = "fence-request-"
CONFIRM_PREFIX: Final = "fence-confirm-"


def request_path(state_dir: Path, node: str) -> Path:
    return state_dir / f"{REQUEST_PREFIX}{node}"


def confirm_path(state_dir: Path, node: str) -> Path:
    return state_dir / f"{CONFIRM_PREFIX}{node}"


def pending_requests(state_dir: Path) -> list[str]:
    """Nodes a fence_manual request is waiting for (for ``hacrm`` to show and to check)."""
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    return sorted(name[len(REQUEST_PREFIX) :] for name in names if name.startswith(REQUEST_PREFIX))


def confirm(state_dir: Path, node: str, *, operator: str = "") -> Path:
    """Write NODE's confirmation atomically (what ``hacrm node fence-confirm NODE`` does)."""
    problem = safe_name(node, "node")
    if problem:
        raise ValueError(problem)
    state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    final = confirm_path(state_dir, node)
    partial = final.with_name(f".{final.name}.{os.getpid()}")
    partial.write_text(f"confirmed_by={operator or 'operator'}\ntime={int(time.time())}\n")
    partial.replace(final)
    return final


class ManualAgent(FenceAgent):
    name = "fence_manual"
    shortdesc = "Manual (meatware) fencing: waits for an operator's confirmation"
    longdesc = (
        "fence_manual asks an operator to power the target off and waits until the operator "
        "confirms with `hacrm node fence-confirm NODE`, which writes "
        "<state_dir>/fence-confirm-NODE. Confirming a node that still runs risks data corruption."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("plug", "Name of the node to fence (as the cluster names it)", short="-n"),
        Param("state_dir", "Directory for request and confirmation files", default=DEFAULT_STATE_DIR),
        Param("confirm_timeout", "Give up after X seconds (0 = wait until killed)", "second", "0"),
        Param("poll_interval", "Look for the confirmation every X seconds", "second", "0.2"),
    )
    multi_port = False  # one node per request; a device needs host_list (list says N/A)
    actions = frozenset(["off", "reboot", "list", "monitor", "metadata", "validate-all"])
    verify_power = False

    def validate(self, action: str) -> list[str]:
        problems = []
        plug = self.options.text("plug")
        if plug:
            problem = safe_name(plug, "plug")
            if problem:
                problems.append(problem)
        elif action in ("off", "reboot"):
            problems.append(f"plug is required for action {action}; set plug=<node name>")
        state_dir = self.options.text("state_dir")
        if not state_dir.startswith("/"):
            problems.append(f"state_dir={state_dir!r} must be an absolute path")
        return problems

    def _state_dir(self) -> Path:
        return Path(self.options.text("state_dir"))

    def monitor(self) -> int:
        state_dir = self._state_dir()
        try:
            state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise FenceError(f"cannot create state_dir {state_dir}: {exc}") from None
        if not os.access(state_dir, os.W_OK | os.X_OK):
            raise FenceError(f"state_dir {state_dir} is not writable; fix its permissions")
        return 0

    def power_off(self) -> str | None:
        node = self.options.text("plug")
        self.monitor()
        state_dir = self._state_dir()
        request, confirmation = request_path(state_dir, node), confirm_path(state_dir, node)
        with contextlib.suppress(FileNotFoundError):
            confirmation.unlink()
            self.warn(f"Warning: removed a stale confirmation {confirmation} written before this request")
        request.write_text(
            f"action={self.options.text('action')}\npid={os.getpid()}\ntime={int(time.time())}\n"
        )
        self.warn(
            f"CRITICAL: manual fencing of {node}: make sure {node} is powered off, "
            f"then run `hacrm node fence-confirm {node}`"
        )
        timeout_s = self.options.seconds("confirm_timeout")
        interval_s = max(0.01, self.options.seconds("poll_interval"))
        deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        try:
            while not confirmation.exists():
                if deadline is not None and time.monotonic() >= deadline:
                    raise FenceError(
                        f"timed out: no operator confirmed that {node} is off within {timeout_s:g} s "
                        f"(confirm_timeout); run `hacrm node fence-confirm {node}` once it is"
                    )
                time.sleep(interval_s)
            with contextlib.suppress(FileNotFoundError):
                confirmation.unlink()
        finally:
            with contextlib.suppress(FileNotFoundError):
                request.unlink()
        self.warn(f"manual fencing of {node} confirmed by an operator")
        return None
