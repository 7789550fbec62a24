"""A small framework for OCF resource agents that run both as scripts and inside the daemon.

Theory of operation: an agent is a class whose actions are methods taking a ``Context`` and
returning an OCF exit code (or raising ``AgentError``).  ``Agent.run(action, env)`` is the one
entry point: it builds the context from the environment mapping it is *given* (never
``os.environ``), dispatches, and turns every outcome, including a bug, into a ``Result``.
The daemon calls ``run`` in a worker thread so a failover does not pay for a new interpreter;
``main(agent_cls)`` is the same call behind a script, so ocf-tester and any OCF manager can
drive the agent too.

Rules for agents: no process-global state (several agents run at once in one process), read
parameters only through the context, no ``os.chdir``, pass ``cwd=`` and ``env=`` to
subprocesses.  Heavy imports (pyroute2, psutil) happen inside actions, so ``meta-data`` works
with a bare system Python, as the user ``nobody`` (ocf-tester checks that).  Stdlib only here.
"""

from __future__ import annotations

import abc
import enum
import html
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

from hacluster.core.cib import parse_boolean


class OCFReturnCode(enum.IntEnum):
    """OCF exit codes (ocf-returncodes names, with Pacemaker 2.1's promoted spellings)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191


RC = OCFReturnCode

DEFAULT_RSCTMP: Final = "/run/resource-agents"
"""Debian's ``HA_RSCTMP``: tmpfs, so a state file there means "started since boot"."""

ParameterType = Literal["string", "integer", "boolean", "time"]
_PARAMETER_TYPES: Final = frozenset(["string", "integer", "boolean", "time"])
"""The only content types ra-api-1.dtd allows; ocf-tester rejects anything else."""

_DTD_ACTIONS: Final = frozenset(
    [
        "start",
        "stop",
        "recover",
        "monitor",
        "restart",
        "migrate_to",
        "migrate_from",
        "promote",
        "demote",
        "notify",
        "status",
        "reload",
        "meta-data",
        "usage",
        "methods",
        "validate-all",
    ]
)


class AgentError(Exception):
    """An action's outcome other than success, with the text for ``ocf-exit-reason``."""

    def __init__(self, rc: int, reason: str) -> None:
        self.rc = int(rc)
        self.reason = reason
        super().__init__(f"rc={self.rc}: {reason}")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One instance parameter, as declared in the meta-data."""

    name: str
    shortdesc: str
    longdesc: str
    type: ParameterType = "string"
    default: str | None = None
    required: bool = False
    unique: bool = False

    def __post_init__(self) -> None:
        assert self.type in _PARAMETER_TYPES, f"{self.name}: type {self.type!r} is not in ra-api-1.dtd"
        assert self.name.isidentifier(), f"parameter name {self.name!r} cannot be an OCF_RESKEY_ variable"


@dataclass(frozen=True, slots=True)
class Action:
    """One advertised action; timeouts and intervals are advisory minimums for the tools."""

    name: str
    timeout_ms: int
    interval_ms: int | None = None
    depth: int | None = None
    role: str | None = None
    """For promotable agents: the role this monitor is for (``Promoted``/``Unpromoted``)."""

    def __post_init__(self) -> None:
        assert self.name in _DTD_ACTIONS, f"action {self.name!r} is not in ra-api-1.dtd"
        assert self.timeout_ms > 0, self.timeout_ms
        assert self.role in (None, "Promoted", "Unpromoted"), f"{self.name}: role {self.role!r}"


@dataclass(frozen=True, slots=True)
class Result:
    """What an action produced: OCF rc, the exit reason (for stderr) and stdout text."""

    rc: int
    exit_reason: str | None
    output: str


@dataclass(frozen=True, slots=True)
class Context:
    """Everything one action may know about its invocation; built by ``Agent.run``."""

    action: str
    instance: str
    params: Mapping[str, str]
    env: Mapping[str, str]
    check_level: int
    interval_ms: int
    timeout_ms: int
    started_monotonic: float
    standalone: bool
    """True when running as a script: background work must outlive the process (fork)."""
    output: list[str] = field(default_factory=list)

    @property
    def is_probe(self) -> bool:
        """A one-shot monitor (interval 0): answer 7 on nodes that cannot run the resource."""
        return self.action == "monitor" and self.interval_ms == 0

    @property
    def state_dir(self) -> str:
        return self.env.get("HA_RSCTMP") or DEFAULT_RSCTMP

    @property
    def node_name(self) -> str:
        return self.env.get("HA_NODE") or os.uname().nodename

    def remaining_ms(self) -> int:
        """Milliseconds left before the manager's op timeout (may be negative)."""
        elapsed_ms = int((time.monotonic() - self.started_monotonic) * 1000)
        return self.timeout_ms - elapsed_ms

    def print(self, text: str) -> None:
        """Add a line to the action's stdout."""
        self.output.append(text if text.endswith("\n") else text + "\n")

    def param(self, name: str) -> str:
        """A parameter's value with its default applied; "" when unset and without default."""
        return self.params.get(name, "")

    def integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """An integer parameter; a malformed or out-of-range value is a configuration error (6)."""
        text = self.param(name).strip()
        try:
            value = int(text)
        except ValueError:
            raise AgentError(RC.ERR_CONFIGURED, f"{name}={text!r} is not an integer") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"{'' if minimum is None else minimum}..{'' if maximum is None else maximum}"
            raise AgentError(RC.ERR_CONFIGURED, f"{name}={value} is outside {bounds}")
        return value

    def boolean(self, name: str) -> bool:
        """A boolean parameter in the usual OCF spellings (yes/no, true/false, 1/0, on/off)."""
        word = self.param(name).strip().lower()
        try:
            return parse_boolean(word)
        except ValueError:
            raise AgentError(
                RC.ERR_CONFIGURED, f"{name}={word!r} is not a boolean (use true or false)"
            ) from None

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.param(name).strip()
        if value not in allowed:
            raise AgentError(RC.ERR_CONFIGURED, f"{name}={value!r} must be one of {', '.join(allowed)}")
        return value


def escape(text: str) -> str:
    """XML text escaping (html.escape is XML-safe and, unlike xml.sax, imports almost nothing)."""
    return html.escape(text, quote=False)


def quoteattr(text: str) -> str:
    return f'"{html.escape(text, quote=True)}"'


def _time_attr(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    try:
        return int(text) if text else default
    except ValueError:
        return default


_METHODS: Final = {
    "start": "start",
    "stop": "stop",
    "monitor": "monitor",
    "status": "monitor",
    "validate-all": "validate_all",
    "meta-data": "meta_data",
    "migrate_to": "migrate_to",
    "migrate_from": "migrate_from",
    "reload": "reload",
    "notify": "notify",
    "promote": "promote",
    "demote": "demote",
}


class Agent(abc.ABC):
    """Base class: declare metadata as class attributes and implement the four actions."""

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    shortdesc: ClassVar[str]
    longdesc: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    actions: ClassVar[tuple[Action, ...]]

    # ------------------------------------------------------------------ actions to override

    @abc.abstractmethod
    def start(self, ctx: Context) -> int:
        """Every agent implements this action."""

    @abc.abstractmethod
    def stop(self, ctx: Context) -> int:
        """Every agent implements this action."""

    @abc.abstractmethod
    def monitor(self, ctx: Context) -> int:
        """Every agent implements this action."""

    @abc.abstractmethod
    def validate_all(self, ctx: Context) -> int:
        """Every agent implements this action."""

    def defaults(self, env: Mapping[str, str], instance: str) -> dict[str, str]:
        """Defaults that depend on the environment (e.g. a path under ``HA_RSCTMP``)."""
        return {}

    # ------------------------------------------------------------------ framework

    def meta_data(self, ctx: Context) -> int:
        ctx.print(self.metadata_xml())
        return RC.SUCCESS

    def metadata_xml(self) -> str:
        """The meta-data document, valid against ra-api-1.dtd (element order matters)."""
        lines = [
            '<?xml version="1.0"?>',
            '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
            f"<resource-agent name={quoteattr(self.name)} version={quoteattr(self.version)}>",
            "<version>1.0</version>",
            f'<longdesc lang="en">{escape(self.longdesc)}</longdesc>',
            f'<shortdesc lang="en">{escape(self.shortdesc)}</shortdesc>',
            "<parameters>",
        ]
        for p in self.parameters:
            default = "" if p.default is None else f" default={quoteattr(p.default)}"
            lines += [
                f'<parameter name={quoteattr(p.name)} unique="{int(p.unique)}" required="{int(p.required)}">',
                f'<longdesc lang="en">{escape(p.longdesc)}</longdesc>',
                f'<shortdesc lang="en">{escape(p.shortdesc)}</shortdesc>',
                f'<content type="{p.type}"{default}/>',
                "</parameter>",
            ]
        lines += ["</parameters>", "<actions>"]
        for a in self.actions:
            extra = "" if a.interval_ms is None else f' interval="{_time_attr(a.interval_ms)}"'
            extra += "" if a.depth is None else f' depth="{a.depth}"'
            extra += "" if a.role is None else f' role="{a.role}"'
            lines.append(f'<action name="{a.name}" timeout="{_time_attr(a.timeout_ms)}"{extra}/>')
        lines += ["</actions>", "</resource-agent>"]
        return "\n".join(lines)

    def _advertised_timeout_ms(self, action: str) -> int:
        for a in self.actions:
            if a.name == action:
                return a.timeout_ms
        return 20_000

    def context(self, action: str, env: Mapping[str, str], *, standalone: bool = False) -> Context:
        """Read parameters and op metadata from ``env`` (an OCF environment)."""
        instance = env.get("OCF_RESOURCE_INSTANCE", "") or "default"
        params = {p.name: p.default for p in self.parameters if p.default is not None}
        params.update(self.defaults(env, instance))
        for p in self.parameters:
            value = env.get(f"OCF_RESKEY_{p.name}")
            if value is not None and value != "":
                params[p.name] = value
        level_text = env.get("OCF_CHECK_LEVEL") or env.get("OCF_RESKEY_OCF_CHECK_LEVEL") or "0"
        try:
            check_level = int(level_text)
        except ValueError:
            check_level = -1  # an unparsable depth is "unsupported"; the agent answers 6
        return Context(
            action=action,
            instance=instance,
            params=params,
            env=env,
            check_level=check_level,
            interval_ms=_int_env(env, "OCF_RESKEY_CRM_meta_interval", 0),
            timeout_ms=_int_env(env, "OCF_RESKEY_CRM_meta_timeout", self._advertised_timeout_ms(action)),
            started_monotonic=time.monotonic(),
            standalone=standalone,
        )

    def run(self, action: str, env: Mapping[str, str], *, standalone: bool = False) -> Result:
        """Carry out ``action``; never raises: a bug comes back as rc 1 with its text."""
        method_name = _METHODS.get(action)
        method: Callable[[Context], int] | None = getattr(self, method_name, None) if method_name else None
        if method is None:
            usage = f"usage: {self.name} {{{'|'.join(sorted({a.name for a in self.actions}))}}}\n"
            return Result(RC.ERR_UNIMPLEMENTED, f"action {action!r} is not implemented", usage)
        ctx: Context | None = None
        try:
            ctx = self.context(action, env, standalone=standalone)
            rc = int(method(ctx))
            return Result(rc, None, "".join(ctx.output))
        except AgentError as exc:
            return Result(exc.rc, exc.reason, "".join(ctx.output) if ctx else "")
        except Exception as exc:
            reason = f"{self.name} {action} failed unexpectedly: {type(exc).__name__}: {exc}"
            return Result(RC.ERR_GENERIC, reason, "".join(ctx.output) if ctx else "")


def main(agent_cls: type[Agent], argv: list[str] | None = None) -> int:
    """Script entry point: ``<agent> <action>``; extra arguments are ignored, as OCF says."""
    args = sys.argv if argv is None else argv
    action = args[1] if len(args) > 1 else "usage"
    result = agent_cls().run(action, dict(os.environ), standalone=True)
    if result.output:
        sys.stdout.write(result.output)
        sys.stdout.flush()
    if result.rc != RC.SUCCESS and result.exit_reason:
        prefix = os.environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
        sys.stderr.write(f"{prefix}{result.exit_reason}\n")
        sys.stderr.flush()
    return result.rc
