"""Run fence devices: one fence request in, one ``FenceResult`` out.

Theory of operation.  The core decides *that* a node must be fenced and with which device
(``hacluster.core.fencing``); this module carries out one device's part and reports what
happened.  Like the resource executor, problems (agent missing, hung, failing, lying) are
*results*, never exceptions: the core decides what a failed fence means (resources stay
blocked).

How a fence runs, following Pacemaker's fencer (reference fencing-agents.md §1.2, §1.5):

- **One budget.**  ``timeout_ms`` covers the whole request: the delay, every attempt and the
  confirmation (which always gets at least 1 s, so a slow but successful off is not lost).  The delay (``delay_base_ms`` plus a random share up to ``delay_max_ms``)
  comes first, so the node that waits in a split brain loses the race.  A failed attempt is
  retried up to ``retries`` times, but only while at least 30 % of the budget is left.
- **Options on stdin**, ``name=value`` per line: ``action``, ``nodename`` (the target),
  ``plug`` (the target's port from ``host_map``, else its name; not sent when the device
  fixes ``plug``/``port`` itself), then the device's parameters.  A value holding a newline
  cannot be sent and fails the request.
- **Exit 0 is success.**  After a successful ``off``, if the agent advertises ``status``, a
  status call must answer 2 (off) for the fence to count; a ``reboot``'s exit 0 is enough.
- **Agent processes follow ``hacluster.shell.subprocesses``** (one policy for every child of
  the daemon), with a grace period of 0: a timeout SIGKILLs the agent's whole process group at
  once.  Nothing about a fence agent deserves a graceful exit, and a half-dead agent must not
  keep talking to a power switch after we have reported failure.
- **cluster-glue plugins** (``stonith:TYPE``) run through ``stonith -t TYPE``: parameters go
  in the environment (``-E``, so passwords stay out of ``ps``), or positionally (``-p``) for
  ha.cf's ``args``, or from a file (``-F``) for ha.cf's ``stonith TYPE FILE``.
- **Secrets never leave this module**: values of parameters with a secret name
  (``hacluster.shell.redact.SECRET_WORDS``: ``passw``, ``secret``, ``key``, ``token``) and
  anything shaped like ``password=…`` are replaced by ``<redacted>`` in logs and in every
  result's output.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from hacluster.errors import HAClusterError
from hacluster.fencing_agents.api import FenceAgent, Outcome
from hacluster.fencing_agents.api import run as agent_run
from hacluster.shell import subprocesses
from hacluster.shell.redact import redact, secret_values

logger = logging.getLogger(__name__)

REPO_FENCING_DIR: Final = Path(__file__).resolve().parents[2] / "fencing"
SYSTEM_DIRS: Final = (Path("/usr/sbin"), Path("/usr/local/sbin"))
GLUE_PREFIX: Final = "stonith:"
OUTPUT_HELD_BYTES: Final = 64 * 1024
OUTPUT_REPORTED_CHARS: Final = 4 * 1024
RETRY_BUDGET_PERCENT: Final = 30
CONFIRM_MIN_MS: Final = 1_000
METADATA_TIMEOUT_MS: Final = 20_000

EXIT_OK: Final = 0
EXIT_OFF: Final = 2
GLUE_ACTIONS: Final = {"reboot": "reset", "off": "off", "on": "on"}


Command = tuple[list[str], bytes, dict[str, str]]
"""argv, stdin bytes and environment of one agent call."""
Steps = list[tuple[str, int]]


class Rng(Protocol):
    def randint(self, a: int, b: int) -> int: ...


class FenceAgentError(HAClusterError):
    """An agent could not answer a question the operator asked (metadata)."""


@dataclass(frozen=True, slots=True)
class FenceDevice:
    """One configured fence device, as the fencer needs it (no pcmk_* left in ``params``)."""

    id: str
    agent: str  # "fence_ipmilan", "fence_lab", or "stonith:external/ssh" for cluster-glue
    params: tuple[tuple[str, str], ...]
    host_list: tuple[str, ...] = ()
    host_map: tuple[tuple[str, str], ...] = ()  # node -> plug/port
    delay_base_ms: int = 0
    delay_max_ms: int = 0
    timeout_ms: int = 60_000
    retries: int = 2

    def __post_init__(self) -> None:
        assert self.timeout_ms > 0, f"device {self.id}: timeout_ms must be positive, got {self.timeout_ms}"
        assert self.retries >= 0, f"device {self.id}: retries must not be negative, got {self.retries}"
        assert self.delay_base_ms >= 0, f"device {self.id}: delay_base_ms {self.delay_base_ms}"
        assert self.delay_max_ms >= 0, f"device {self.id}: delay_max_ms {self.delay_max_ms}"

    @property
    def is_glue(self) -> bool:
        """A cluster-glue plugin: ``stonith:TYPE``, or a bare ``external/NAME`` type."""
        return is_glue_agent(self.agent)

    @property
    def glue_type(self) -> str:
        return self.agent.removeprefix(GLUE_PREFIX)

    def plug_for(self, target: str) -> str:
        """The port naming ``target`` on this device: ``host_map``'s, else the node name."""
        return dict(self.host_map).get(target, target)


@dataclass(frozen=True, slots=True)
class FenceResult:
    device: str
    target: str  # "" for device-wide actions (monitor, list)
    action: str
    ok: bool
    rc: int | None  # the main action's exit status; None when killed or never run
    duration_ms: int
    output: str  # tail of the agent's output, secrets redacted
    timed_out: bool
    steps: tuple[tuple[str, int], ...] = ()  # (step, ms): delay, each attempt, confirmation


@dataclass(frozen=True, slots=True)
class _Run:
    rc: int | None
    output: str
    timed_out: bool
    duration_ms: int
    problem: str = ""  # why the agent could not be run at all


def is_glue_agent(agent: str) -> bool:
    """``stonith:TYPE`` or ``external/NAME`` (as crm's ``stonith:external/ssh`` arrives)."""
    return agent.startswith(GLUE_PREFIX) or agent.startswith("external/")


def default_search_dirs() -> tuple[Path, ...]:
    dirs = [REPO_FENCING_DIR, *SYSTEM_DIRS]
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return tuple(unique)


class Fencer:
    """Runs fence agents for the daemon; see the module docstring for the rules."""

    def __init__(self, *, search_dirs: Sequence[Path] | None = None, rng: Rng | None = None) -> None:
        self.search_dirs = tuple(search_dirs) if search_dirs is not None else default_search_dirs()
        self.rng: Rng = rng if rng is not None else random.Random()
        self._targets: dict[str, frozenset[str]] = {}
        self._metadata: dict[str, str] = {}

    # --- finding agents -----------------------------------------------------------------------

    def resolve(self, agent: str) -> Path | None:
        """The executable to run for ``agent`` (``stonith`` itself for cluster-glue plugins)."""
        glue = is_glue_agent(agent)
        name = "stonith" if glue else agent
        if not name or "/" in name or name in (".", ".."):
            return None
        if glue and not agent.removeprefix(GLUE_PREFIX):
            return None
        for directory in self.search_dirs:
            path = directory / name
            if path.is_file() and os.access(path, os.X_OK):
                return path
        return None

    # --- which device for which node ----------------------------------------------------------

    async def can_fence(self, device: FenceDevice, target: str) -> bool:
        """Whether ``device`` reaches ``target``: its host_list/host_map, else the agent's list.

        The list is asked once per device and remembered (``forget`` drops it).  A device whose
        list says ``N/A`` (one machine per device, e.g. a BMC) reaches nobody until it is given
        a host_list: guessing would fence the wrong machine.
        """
        if device.host_list or device.host_map:
            return target in device.host_list or any(node == target for node, _ in device.host_map)
        targets = self._targets.get(device.id)
        if targets is None:
            result = await self.list(device)
            if not result.ok:
                logger.warning(
                    "cannot learn the targets of a fence device device=%s rc=%s output=%r",
                    device.id,
                    result.rc,
                    result.output[-200:],
                )
                return False
            targets = _parse_targets(result.output, glue=device.is_glue)
            self._targets[device.id] = targets
            if not targets:
                logger.warning(
                    "fence device lists no targets; give it a host_list (pcmk_host_list) device=%s",
                    device.id,
                )
        return target in targets

    def forget(self, device_id: str) -> None:
        """Drop the remembered target list of a device (changed or deleted)."""
        self._targets.pop(device_id, None)

    # --- fencing ------------------------------------------------------------------------------

    def delay_ms(self, device: FenceDevice) -> int:
        """``delay_base_ms`` plus a random share so the total stays within ``delay_max_ms``."""
        if device.delay_max_ms > device.delay_base_ms:
            return device.delay_base_ms + self.rng.randint(0, device.delay_max_ms - device.delay_base_ms)
        return device.delay_base_ms

    async def fence(self, device: FenceDevice, target: str, action: str = "reboot") -> FenceResult:
        """Fence ``target`` with ``device`` (``reboot``, ``off``, or ``on`` to unfence)."""
        assert action in ("reboot", "off", "on"), f"fence action must be reboot, off or on, not {action!r}"
        started_ns = time.monotonic_ns()
        deadline_ns = started_ns + device.timeout_ms * 1_000_000
        steps: list[tuple[str, int]] = []
        outputs: list[str] = []
        delay_ms = self.delay_ms(device)
        logger.info(
            "fencing target=%s device=%s action=%s delay_ms=%d timeout_ms=%d",
            target,
            device.id,
            action,
            delay_ms,
            device.timeout_ms,
        )
        if delay_ms:
            await asyncio.sleep(min(delay_ms, device.timeout_ms) / 1000)
            steps.append(("delay", delay_ms))
        run = _Run(None, "", timed_out=False, duration_ms=0, problem="no time left after the delay")
        for attempt in range(1, device.retries + 2):
            remaining_ms = _remaining_ms(deadline_ns)
            if remaining_ms <= 0:
                break
            run = await self._run_action(device, action, target, remaining_ms)
            steps.append((action if attempt == 1 else f"{action}#{attempt}", run.duration_ms))
            outputs.append(_labelled(action, run))
            if run.rc == EXIT_OK:
                break
            if _remaining_ms(deadline_ns) * 100 < device.timeout_ms * RETRY_BUDGET_PERCENT:
                break
            logger.warning(
                "fence attempt failed, retrying target=%s device=%s attempt=%d rc=%s",
                target,
                device.id,
                attempt,
                run.rc,
            )
        ok = run.rc == EXIT_OK
        if ok and action == "off" and not device.is_glue and await self._supports(device.agent, "status"):
            confirm_ms = max(_remaining_ms(deadline_ns), CONFIRM_MIN_MS)
            status = await self._run_action(device, "status", target, confirm_ms)
            steps.append(("status", status.duration_ms))
            outputs.append(_labelled("status", status))
            if status.rc != EXIT_OFF:
                ok = False
                outputs.append(f"[fencer] off returned 0 but status answered rc={status.rc}, not 2 (off)")
        result = self._result(device, target, action, ok, run, started_ns, outputs, steps)
        if ok:
            logger.info(
                "fenced target=%s device=%s action=%s duration_ms=%d",
                target,
                device.id,
                action,
                result.duration_ms,
            )
        else:
            logger.critical(
                "fencing failed target=%s device=%s action=%s rc=%s timed_out=%s duration_ms=%d output=%r",
                target,
                device.id,
                action,
                result.rc,
                result.timed_out,
                result.duration_ms,
                result.output[-300:],
            )
        return result

    # --- questions ----------------------------------------------------------------------------

    async def status(self, device: FenceDevice, target: str) -> FenceResult:
        """The target's power state: ``ok`` when the device answered; rc 0 = on, 2 = off.

        cluster-glue plugins only know the device's status (``stonith -S``), not a target's.
        """
        return await self._query(device, "status", target, answers=(EXIT_OK, EXIT_OFF))

    async def monitor(self, device: FenceDevice) -> FenceResult:
        """Whether the device is usable; a single-port device whose machine is off answers 2."""
        return await self._query(device, "monitor", "", answers=(EXIT_OK, EXIT_OFF))

    async def list(self, device: FenceDevice) -> FenceResult:
        """The agent's ``list``: ``plug,alias`` lines (``N/A`` from single-port agents)."""
        return await self._query(device, "list", "", answers=(EXIT_OK,))

    async def metadata(self, agent: str) -> str:
        """The agent's metadata XML (remembered per agent); raises FenceAgentError."""
        cached = self._metadata.get(agent)
        if cached is not None:
            return cached
        device = FenceDevice(id=f"metadata:{agent}", agent=agent, params=(), timeout_ms=METADATA_TIMEOUT_MS)
        run = await self._run_action(device, "metadata", "", METADATA_TIMEOUT_MS)
        if run.rc != EXIT_OK or "<resource-agent" not in run.output:
            raise FenceAgentError(
                f"fence agent {agent}: metadata failed (rc={run.rc}"
                f"{', timed out' if run.timed_out else ''}): {run.problem or run.output[-300:]}; "
                f"check that the agent is installed in one of {', '.join(map(str, self.search_dirs))}"
            )
        self._metadata[agent] = run.output
        return run.output

    async def test(self, device: FenceDevice, target: str | None) -> FenceResult:
        """``hacrm stonith test``: monitor, and status for ``target``, timing each; never fences."""
        started_ns = time.monotonic_ns()
        deadline_ns = started_ns + device.timeout_ms * 1_000_000
        monitor = await self._run_action(device, "monitor", "", device.timeout_ms)
        steps = [("monitor", monitor.duration_ms)]
        outputs = [_labelled("monitor", monitor)]
        ok = monitor.rc in (EXIT_OK, EXIT_OFF)
        last = monitor
        if target:
            status = await self._run_action(device, "status", target, max(_remaining_ms(deadline_ns), 1))
            steps.append(("status", status.duration_ms))
            outputs.append(_labelled("status", status))
            ok = ok and status.rc in (EXIT_OK, EXIT_OFF)
            last = status
        return self._result(device, target or "", "test", ok, last, started_ns, outputs, steps)

    async def _query(
        self, device: FenceDevice, action: str, target: str, *, answers: tuple[int, ...]
    ) -> FenceResult:
        started_ns = time.monotonic_ns()
        run = await self._run_action(device, action, target, device.timeout_ms)
        ok = run.rc in answers
        result = self._result(device, target, action, ok, run, started_ns, [run.output or run.problem], [])
        level = logging.DEBUG if ok else logging.WARNING
        logger.log(level, "fence device %s device=%s target=%s rc=%s", action, device.id, target, run.rc)
        return result

    async def _supports(self, agent: str, action: str) -> bool:
        """Whether the agent's metadata advertises ``action`` (False when metadata fails)."""
        try:
            xml = await self.metadata(agent)
        except FenceAgentError as exc:
            logger.warning("cannot read fence agent metadata agent=%s error=%s", agent, exc)
            return False
        return re.search(rf'<action\s+name="{re.escape(action)}"', xml) is not None

    # --- running ------------------------------------------------------------------------------

    def command(self, device: FenceDevice, action: str, target: str) -> Command:
        """argv, stdin bytes and environment for one agent call (raises ValueError when impossible)."""
        path = self.resolve(device.agent)
        assert path is not None
        env = {"PATH": subprocesses.CHILD_PATH, "LANG": "C", "LC_ALL": "C"}
        if device.is_glue:
            return self._glue_command(device, path, action, target, env)
        lines = [f"action={action}"]
        if target:
            lines.append(f"nodename={target}")
            fixed = {name: value for name, value in device.params if name in ("plug", "port")}
            if not any(value and value != "dynamic" for value in fixed.values()):
                lines.append(f"plug={device.plug_for(target)}")
        for name, value in device.params:
            if (
                name == "action"
                or name.startswith("pcmk_")
                or (name in ("plug", "port") and value == "dynamic")
            ):
                continue
            lines.append(f"{name}={value}")
        for line in lines:
            if "\n" in line or "\r" in line or "\0" in line:
                name = line.partition("=")[0]
                raise ValueError(
                    f"device {device.id}: the value of {name} holds a newline; fence agents read one option per line"
                )
        return [str(path)], "".join(line + "\n" for line in lines).encode(), env

    def _glue_command(
        self, device: FenceDevice, path: Path, action: str, target: str, env: dict[str, str]
    ) -> Command:
        argv = [str(path), "-t", device.glue_type]
        if action == "metadata":
            return [*argv, "-m"], b"", env
        params = dict(device.params)
        if "file" in params:
            argv += ["-F", params["file"]]
        elif "args" in params:
            argv += ["-p", params["args"]]
        else:
            argv.append("-E")
            for name, value in device.params:
                if not name.replace("_", "a").isalnum() or name.startswith("pcmk_"):
                    raise ValueError(
                        f"device {device.id}: parameter name {name!r} cannot be an environment variable"
                    )
                env[name] = value
        if action in ("status", "monitor"):
            argv.append("-S")
        elif action == "list":
            argv.append("-l")
        elif action in GLUE_ACTIONS:
            argv += ["-T", GLUE_ACTIONS[action], device.plug_for(target)]
        else:
            raise ValueError(f"device {device.id}: cluster-glue plugins have no {action!r} action")
        return argv, b"", env

    async def _run_action(self, device: FenceDevice, action: str, target: str, timeout_ms: int) -> _Run:
        started_ns = time.monotonic_ns()
        if self.resolve(device.agent) is None:
            searched = ", ".join(str(d) for d in self.search_dirs)
            problem = f"fence agent {device.agent!r} of device {device.id} not found; searched {searched}"
            return _Run(None, "", timed_out=False, duration_ms=0, problem=problem)
        try:
            argv, stdin, env = self.command(device, action, target)
        except ValueError as exc:
            return _Run(None, "", timed_out=False, duration_ms=0, problem=str(exc))
        logger.debug(
            "running fence agent device=%s argv=%s stdin=%r",
            device.id,
            redact(" ".join(argv), secret_values(device.params)),
            redact(stdin.decode(), secret_values(device.params)),
        )
        agent_cls = self._in_process_class(device.agent)
        if agent_cls is not None:
            rc, output, timed_out = await _run_in_thread(agent_cls, stdin, timeout_ms)
        else:
            rc, output, timed_out = await _spawn(argv, stdin, env, timeout_ms)
        output = redact(output, secret_values(device.params))
        if timed_out:
            output += f"\n[fencer] {action} timed out after {timeout_ms} ms; killed the agent's process group"
        return _Run(rc, output, timed_out, (time.monotonic_ns() - started_ns) // 1_000_000)

    def _in_process_class(self, agent: str) -> type[FenceAgent] | None:
        """Our own agents run inside the daemon, when the name resolves to our launcher:
        a fence is on the failover path, and starting an interpreter costs ~100 ms."""
        target = IN_PROCESS_AGENTS.get(agent)
        path = self.resolve(agent)
        if target is None or path is None or path.resolve().parent != REPO_FENCING_DIR:
            return None
        module_name, _, class_name = target.partition(":")
        cls: type[FenceAgent] = getattr(importlib.import_module(module_name), class_name)
        return cls

    def _result(
        self,
        device: FenceDevice,
        target: str,
        action: str,
        ok: bool,
        run: _Run,
        started_ns: int,
        outputs: Sequence[str],
        steps: Steps,
    ) -> FenceResult:
        text = "\n".join(part for part in outputs if part)
        if run.problem and run.problem not in text:
            text = f"{text}\n{run.problem}" if text else run.problem
        return FenceResult(
            device=device.id,
            target=target,
            action=action,
            ok=ok,
            rc=run.rc,
            duration_ms=(time.monotonic_ns() - started_ns) // 1_000_000,
            output=redact(text, secret_values(device.params))[-OUTPUT_REPORTED_CHARS:],
            timed_out=run.timed_out,
            steps=tuple(steps),
        )


# --- helpers: processes and parsing -----------------------------------------------------------


def _remaining_ms(deadline_ns: int) -> int:
    return (deadline_ns - time.monotonic_ns()) // 1_000_000


def _labelled(step: str, run: _Run) -> str:
    body = (run.output or run.problem).strip()
    return f"[{step}] rc={run.rc}{' timed out' if run.timed_out else ''}" + (f"\n{body}" if body else "")


def _parse_targets(output: str, *, glue: bool) -> frozenset[str]:
    """Names in a ``list`` answer: each line's plug and alias (``plug,alias``), or host names."""
    names: set[str] = set()
    for raw in output.splitlines():
        line = raw.strip()
        if not line or line == "N/A" or line.startswith(("[", "Parse error", "Warning", "Failed")):
            continue
        fields = [line] if glue else line.split(",")[:2]
        names.update(field.strip() for field in fields if field.strip())
    return frozenset(names)


IN_PROCESS_AGENTS: Final = {
    "fence_lab": "hacluster.fencing_agents.lab:LabAgent",
    "fence_ipmi": "hacluster.fencing_agents.ipmi:IpmiAgent",
    "fence_libvirt": "hacluster.fencing_agents.libvirt:LibvirtAgent",
    "fence_ssh": "hacluster.fencing_agents.ssh:SshAgent",
}
"""Our agents the daemon runs in a worker thread (fence_manual waits for minutes and
fence_watchdog is about this machine itself: both stay separate processes)."""


async def _run_in_thread(
    agent_cls: type[FenceAgent], stdin: bytes, timeout_ms: int
) -> tuple[int | None, str, bool]:
    """One agent run in a daemon thread: (rc, output, timed_out).  A thread cannot be
    killed: on timeout it is abandoned (it exits with the daemon) and the run has failed."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Outcome] = loop.create_future()

    def work() -> None:
        try:
            outcome = agent_run(agent_cls, [], stdin.decode())
        except Exception as exc:  # a bug in an agent must fail the fence, not the daemon
            outcome = Outcome(1, "", f"Failed: {agent_cls.name}: {type(exc).__name__}: {exc}\n")

        def deliver() -> None:
            if not done.done():
                done.set_result(outcome)

        loop.call_soon_threadsafe(deliver)

    threading.Thread(target=work, name=f"fence-{agent_cls.name}", daemon=True).start()
    try:
        outcome = await asyncio.wait_for(asyncio.shield(done), max(timeout_ms, 1) / 1000)
    except TimeoutError:
        return None, f"[fencer] {agent_cls.name} timed out after {timeout_ms} ms (thread abandoned)", True
    return outcome.rc, outcome.stdout + outcome.stderr, False


async def _spawn(
    argv: list[str], stdin: bytes, env: Mapping[str, str], timeout_ms: int
) -> tuple[int | None, str, bool]:
    """Run one agent (``hacluster.shell.subprocesses``): (rc or None, output tail, timed_out).

    Grace 0: a timed-out fence agent gets SIGKILL at once (see the module docstring).
    """
    done = await subprocesses.run(
        argv, env=env, timeout_ms=max(timeout_ms, 1), grace_ms=0, stdin=stdin, label=f"fence agent {argv[0]}"
    )
    if done.problem:
        return None, done.problem, False
    return done.exit_status, done.output[-OUTPUT_HELD_BYTES:].decode("utf-8", "replace"), done.timed_out
