"""A small framework for fence agents that speak the fence-agents calling contract.

Theory of operation: an agent is a class that knows how to *read* a plug's power state and
how to *change* it; everything the contract adds on top lives here, once:

- **Options** come from stdin (``name=value`` lines, what a cluster manager sends) when the
  process has no arguments, else from ``--name value`` / ``--name=value`` / short flags (for
  humans).  On stdin, ``-`` and ``_`` are the same, ``#`` lines and blank lines are skipped,
  one pair of surrounding double quotes is stripped, the last value wins, and unknown names
  are ignored with a warning on stderr (``nodename`` silently).  Old names (``ipaddr``,
  ``login``, ``passwd``, ``passwd_script``, ``port``) are accepted for the new ones.
- **Actions**: ``off`` is verified (the state is polled until it reads off, within
  ``power_timeout``); ``reboot`` succeeds when its off part did (a failed power-on is only
  reported); ``status`` exits 0 for on, 2 for off; ``monitor`` asks the device (``list`` on a
  multi-port device, ``status`` otherwise); ``validate-all`` checks options without touching
  the device.  ``delay`` seconds are slept before ``off``/``reboot`` only.
- **Exit codes**: 0 success, 1 any failure (bad options included), 2 only from
  ``status``/``monitor`` meaning "off".  A failure prints one ``Failed: …`` line on stderr
  saying what, the value and what to do.

Agents raise ``FenceError`` for operational failures and list problems from ``validate``.
Stdlib only and cheap to import: a fence's first milliseconds matter (fence_lab).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar, Final, Literal, NamedTuple

EC_OK: Final = 0
EC_ERROR: Final = 1
EC_OFF: Final = 2

ParamType = Literal["string", "integer", "second", "boolean", "select"]

RENAMED: Final = {
    "ipaddr": "ip",
    "login": "username",
    "passwd": "password",
    "passwd_script": "password_script",
    "port": "plug",
}
"""Deprecated names fence-agents still accept, and the names that replaced them."""

TRUE_WORDS: Final = frozenset(["1", "yes", "on", "true", "y"])
FALSE_WORDS: Final = frozenset(["0", "no", "off", "false", "n", ""])
POLL_INTERVAL_S: Final = 0.05


class FenceError(Exception):
    """An action failed; the message says what, the value involved, and what to do."""


class Param(NamedTuple):
    """One option, as the metadata declares it and both option syntaxes accept it.

    A NamedTuple rather than a frozen dataclass: building dataclasses costs milliseconds at
    import, and every fence pays for the import.
    """

    name: str
    shortdesc: str
    type: ParamType = "string"
    default: str | None = None
    required: bool = False
    short: str | None = None  # "-a"
    choices: tuple[str, ...] = ()

    @property
    def is_flag(self) -> bool:
        """Booleans are bare flags on the command line (``--verbose``)."""
        return self.type == "boolean"

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")


COMMON_PARAMS: Final = (
    Param("action", "Fencing action", "string", "reboot", short="-o"),
    Param("plug", "Physical plug number on device, UUID or identification of machine", short="-n"),
    Param("delay", "Wait X seconds before fencing is started", "second", "0"),
    Param("power_timeout", "Test X seconds for status change after ON/OFF", "second", "20"),
    Param("power_wait", "Wait X seconds after issuing ON/OFF", "second", "0"),
    Param("verbose", "Verbose mode", "boolean", "0", short="-v"),
    Param("quiet", "Disable logging to stderr. Does not affect --verbose", "boolean", "0", short="-q"),
)

ACTION_ORDER: Final = ("on", "off", "reboot", "status", "list", "monitor", "metadata", "validate-all")


class Options:
    """Parsed options: raw strings by metadata name, with typed getters that name the problem."""

    def __init__(self, values: Mapping[str, str], params: Mapping[str, Param]) -> None:
        self.values = dict(values)
        self.params = params

    def __contains__(self, name: str) -> bool:
        return bool(self.values.get(name, ""))

    def text(self, name: str) -> str:
        """The value, or its declared default, or ""."""
        if name in self.values:
            return self.values[name]
        param = self.params.get(name)
        return param.default or "" if param else ""

    def integer(self, name: str, *, minimum: int = 0) -> int:
        text = self.text(name).strip()
        try:
            value = int(text)
        except ValueError:
            raise FenceError(f"{name}={text!r} is not an integer; give a whole number") from None
        if value < minimum:
            raise FenceError(f"{name}={value} is below {minimum}; give at least {minimum}")
        return value

    def seconds(self, name: str) -> float:
        """A duration in seconds (fence-agents spell them as plain numbers, fractions allowed)."""
        text = self.text(name).strip()
        try:
            value = float(text.removesuffix("s"))
        except ValueError:
            raise FenceError(f"{name}={text!r} is not a number of seconds; write e.g. {name}=5") from None
        if value < 0 or value != value:
            raise FenceError(f"{name}={text!r} must not be negative")
        return value

    def boolean(self, name: str) -> bool:
        word = self.text(name).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise FenceError(f"{name}={word!r} is not a boolean; use 1/yes/on/true or 0/no/off/false")

    def choice(self, name: str) -> str:
        value = self.text(name).strip()
        allowed = self.params[name].choices
        if value not in allowed:
            raise FenceError(f"{name}={value!r} is not allowed; use one of {', '.join(allowed)}")
        return value

    def password(self) -> str:
        """``password``, or the first line printed by ``password_script``."""
        if "password" in self:
            return self.text("password")
        script = self.text("password_script")
        if not script:
            return ""
        try:
            done = subprocess.run(script, shell=True, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FenceError(f"password_script {script!r} could not run: {exc}") from None
        if done.returncode != 0:
            raise FenceError(
                f"password_script {script!r} exited {done.returncode}; run it by hand to see why"
            )
        return done.stdout.splitlines()[0] if done.stdout else ""


def xml_escape(text: str) -> str:
    """Escape for XML text and double-quoted attributes (html.escape costs an import)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class FenceAgent:
    """Base class: subclasses set the class attributes and implement the device calls."""

    name: ClassVar[str]
    shortdesc: ClassVar[str]
    longdesc: ClassVar[str]
    vendor_url: ClassVar[str] = "https://github.com/hacluster"
    params: ClassVar[tuple[Param, ...]] = ()
    multi_port: ClassVar[bool] = False
    """True when ``plug`` picks one of many targets; ``list`` then names them."""
    actions: ClassVar[frozenset[str]] = frozenset(ACTION_ORDER)
    verify_power: ClassVar[bool] = True
    """False for agents whose ``off`` has no readable state (an operator's word, a timer)."""

    def __init__(self, options: Options, *, err: Callable[[str], None]) -> None:
        self.options = options
        self.warn = err

    # --- what an agent implements -------------------------------------------------------------

    def validate(self, action: str) -> list[str]:
        """Problems with the options for ``action``, each a full sentence; [] when fine."""
        return []

    def power_status(self) -> str:
        """ "on" or "off"; raise FenceError when the device cannot tell."""
        raise FenceError(f"{self.name} cannot read the power state")

    def power_off(self) -> str | None:
        """Cut power; return the state observed in the same breath, or None to have it polled."""
        raise FenceError(f"{self.name} cannot power off")

    def power_on(self) -> str | None:
        raise FenceError(f"{self.name} cannot power on")

    def power_cycle(self) -> bool:
        """Reboot in one device command (``method=cycle``); False when the agent does off+on."""
        return False

    def plugs(self) -> list[tuple[str, str]]:
        """(plug, alias) for each target a multi-port device controls."""
        return []

    def monitor(self) -> int:
        """Is the device usable?  Default as in fence-agents: list, or the plug's status."""
        if self.multi_port:
            self.plugs()
            return EC_OK
        return EC_OK if self.power_status() == "on" else EC_OFF


class Outcome(NamedTuple):
    """What one invocation produced: exit code and the text for stdout and stderr."""

    rc: int
    stdout: str
    stderr: str


def all_params(agent_cls: type[FenceAgent]) -> dict[str, Param]:
    own = {p.name: p for p in agent_cls.params}
    merged = {p.name: p for p in COMMON_PARAMS if p.name not in own}
    merged.update(own)
    return merged


def parse_stdin(text: str, params: Mapping[str, Param]) -> tuple[dict[str, str], list[str]]:
    """``name=value`` lines into options plus warnings for unknown names."""
    values: dict[str, str] = {}
    warnings: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            warnings.append(f"Parse error: Ignoring line without '=': {name!r}")
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        name = RENAMED.get(name, name)
        if name not in params:
            if name not in ("nodename", "nodeid"):
                warnings.append(f"Parse error: Ignoring unknown option '{name}'")
            continue
        values[name] = value
    return values, warnings


def parse_argv(argv: Sequence[str], params: Mapping[str, Param]) -> dict[str, str]:
    """``--name value``, ``--name=value``, ``-x value`` and bare boolean flags."""
    by_cli = {p.cli: p for p in params.values()}
    by_cli.update(
        {"--" + old.replace("_", "-"): params[new] for old, new in RENAMED.items() if new in params}
    )
    by_short = {p.short: p for p in params.values() if p.short}
    values: dict[str, str] = {}
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word.startswith("--"):
            key, has_value, value = word.partition("=")
            param = by_cli.get(key.replace("_", "-"))
        elif word.startswith("-") and len(word) >= 2:
            key, value, has_value = word[:2], word[2:], "=" if len(word) > 2 else ""
            param = by_short.get(key)
        else:
            raise FenceError(f"unexpected argument {word!r}; options are written --name value (see --help)")
        if param is None:
            raise FenceError(f"unknown option {key!r}; the metadata lists the options this agent takes")
        if param.is_flag and not has_value:
            values[param.name] = "1"
            continue
        if not has_value:
            if index >= len(argv):
                raise FenceError(f"option {key} needs a value, e.g. {key} VALUE")
            value = argv[index]
            index += 1
        values[param.name] = value
    return values


def metadata(agent_cls: type[FenceAgent]) -> str:
    """The fence-agents metadata dialect: shortdesc attribute, getopt lines, no timeouts."""
    esc = xml_escape
    out = [
        '<?xml version="1.0" ?>',
        f'<resource-agent name="{esc(agent_cls.name)}" shortdesc="{esc(agent_cls.shortdesc)}" >',
        f"<longdesc>{esc(agent_cls.longdesc.strip())}</longdesc>",
        f"<vendor-url>{esc(agent_cls.vendor_url)}</vendor-url>",
        "<parameters>",
    ]
    params = all_params(agent_cls)
    renamed_to = {new: old for old, new in RENAMED.items()}
    for param in sorted(params.values(), key=lambda p: p.name):
        old = renamed_to.get(param.name)
        if old:
            out += _param_xml(param, name=old, extra=' deprecated="1"')
        out += _param_xml(param, name=param.name, extra=f' obsoletes="{old}"' if old else "")
    out.append("</parameters>")
    out.append("<actions>")
    for action in ACTION_ORDER:
        if action in agent_cls.actions:
            attrs = ' automatic="0"' if action == "on" else ""
            out.append(f'\t<action name="{action}"{attrs} />')
    out += ["</actions>", "</resource-agent>", ""]
    return "\n".join(out)


def _param_xml(param: Param, *, name: str, extra: str) -> list[str]:
    esc = xml_escape
    cli = "--" + name.replace("_", "-")
    spelling = cli if param.is_flag else f"{cli}=[{name}]"
    mixed = f"{param.short}, {spelling}" if param.short else spelling
    default = f' default="{esc(param.default)}"' if param.default not in (None, "") else ""
    lines = [
        f'\t<parameter name="{esc(name)}" unique="0" required="{int(param.required)}"{extra}>',
        f'\t\t<getopt mixed="{esc(mixed)}" />',
    ]
    if param.type == "select":
        lines.append(f'\t\t<content type="select"{default}>')
        lines += [f'\t\t\t<option value="{esc(choice)}" />' for choice in param.choices]
        lines.append("\t\t</content>")
    else:
        lines.append(f'\t\t<content type="{param.type}"{default} />')
    lines += [f'\t\t<shortdesc lang="en">{esc(param.shortdesc)}</shortdesc>', "\t</parameter>"]
    return lines


def usage(agent_cls: type[FenceAgent]) -> str:
    lines = [f"Usage: {agent_cls.name} [options]  (or name=value lines on stdin)", ""]
    for param in sorted(all_params(agent_cls).values(), key=lambda p: p.name):
        spelling = param.cli if param.is_flag else f"{param.cli} VALUE"
        if param.short:
            spelling = f"{param.short}, {spelling}"
        lines.append(f"  {spelling:<34} {param.shortdesc}")
    lines.append(f"\nActions: {', '.join(a for a in ACTION_ORDER if a in agent_cls.actions)}")
    return "\n".join(lines) + "\n"


class _Run:
    """One invocation: options in, Outcome out.  Collects output instead of printing it."""

    def __init__(self, agent_cls: type[FenceAgent], values: dict[str, str], warnings: Iterable[str]) -> None:
        self.agent_cls = agent_cls
        self.options = Options(values, all_params(agent_cls))
        self.stdout: list[str] = []
        self.stderr: list[str] = list(warnings)
        self.agent = agent_cls(self.options, err=self.stderr.append)

    def outcome(self, rc: int) -> Outcome:
        stdout = "".join(line + "\n" for line in self.stdout)
        stderr = "" if self._quiet() else "".join(line + "\n" for line in self.stderr)
        return Outcome(rc, stdout, stderr)

    def _quiet(self) -> bool:
        try:
            return self.options.boolean("quiet")
        except FenceError:
            return False

    def fail(self, message: str) -> Outcome:
        self.stderr.append(f"Failed: {message}")
        return self.outcome(EC_ERROR)

    def run(self) -> Outcome:
        action = self.options.text("action").strip() or "reboot"
        cls = self.agent_cls
        if action == "metadata":
            self.stdout.append(metadata(cls).rstrip("\n"))
            return self.outcome(EC_OK)
        if action not in cls.actions:
            supported = ", ".join(a for a in ACTION_ORDER if a in cls.actions)
            return self.fail(f"Unrecognised action '{action}' for {cls.name}; it supports {supported}")
        problems = self._common_problems(action) + self.agent.validate(action)
        if problems:
            for problem in problems:
                self.stderr.append(f"Failed: {cls.name}: {problem}")
            return self.outcome(EC_ERROR)
        if action == "validate-all":
            return self.outcome(EC_OK)
        try:
            return self._dispatch(action)
        except FenceError as exc:
            return self.fail(str(exc))

    def _common_problems(self, action: str) -> list[str]:
        problems = []
        for name, param in self.options.params.items():
            if name not in self.options.values:
                continue
            try:
                if param.type == "integer":
                    self.options.integer(name)
                elif param.type == "second":
                    self.options.seconds(name)
                elif param.type == "boolean":
                    self.options.boolean(name)
                elif param.type == "select":
                    self.options.choice(name)
            except FenceError as exc:
                problems.append(str(exc))
        for param in self.options.params.values():
            if param.required and param.name not in self.options:
                problems.append(f"{param.name} is required ({param.shortdesc}); set {param.name}=VALUE")
        targets_plug = action in ("on", "off", "reboot", "status")
        if self.agent_cls.multi_port and targets_plug and "plug" not in self.options:
            problems.append(f"plug is required for action {action}; set plug=<target> (see the list action)")
        return problems

    def _dispatch(self, action: str) -> Outcome:
        agent = self.agent
        if action == "status":
            state = agent.power_status()
            self.stdout.append(f"Status: {state.upper()}")
            return self.outcome(EC_OK if state == "on" else EC_OFF)
        if action == "monitor":
            return self.outcome(agent.monitor())
        if action == "list":
            if not self.agent_cls.multi_port:
                self.stdout.append("N/A")
                return self.outcome(EC_OK)
            self.stdout += [f"{plug},{alias}" for plug, alias in agent.plugs()]
            return self.outcome(EC_OK)
        if action == "on":
            self._set_power("on")
            self.stdout.append("Success: Powered ON")
            return self.outcome(EC_OK)
        time.sleep(self.options.seconds("delay"))
        if action == "reboot" and agent.power_cycle():
            self.stdout.append("Success: Rebooted")
            return self.outcome(EC_OK)
        self._set_power("off")
        if action == "off":
            self.stdout.append("Success: Powered OFF")
            return self.outcome(EC_OK)
        if "on" in self.agent_cls.actions:
            try:
                self._set_power("on")
            except FenceError as exc:  # the off part counted: the target is fenced
                self.stderr.append(f"Warning: power on after reboot failed: {exc}")
        self.stdout.append("Success: Rebooted")
        return self.outcome(EC_OK)

    def _set_power(self, state: str) -> None:
        """Change the power state, then poll until it reads ``state`` (``power_timeout``)."""
        agent = self.agent
        observed = agent.power_off() if state == "off" else agent.power_on()
        if not self.agent_cls.verify_power:
            return
        time.sleep(self.options.seconds("power_wait"))
        if observed == state:
            return
        deadline = time.monotonic() + self.options.seconds("power_timeout")
        while True:
            observed = agent.power_status()
            if observed == state:
                return
            if time.monotonic() >= deadline:
                raise FenceError(
                    f"timed out: the target still reads {observed!r} {self.options.text('power_timeout')} s "
                    f"after power {state} (power_timeout); check the device or raise power_timeout"
                )
            time.sleep(POLL_INTERVAL_S)


def run(agent_cls: type[FenceAgent], argv: Sequence[str], stdin_text: str | None) -> Outcome:
    """Parse options (argv when given, else stdin) and perform the action."""
    params = all_params(agent_cls)
    if argv and argv[0] in ("-h", "--help"):
        return Outcome(EC_OK, usage(agent_cls), "")
    warnings: list[str] = []
    try:
        if argv:
            values = parse_argv(argv, params)
        else:
            values, warnings = parse_stdin(stdin_text or "", params)
    except FenceError as exc:
        return Outcome(EC_ERROR, "", f"Failed: {agent_cls.name}: {exc}\n")
    return _Run(agent_cls, values, warnings).run()


def main(agent_cls: type[FenceAgent], argv: Sequence[str] | None = None) -> int:
    """Script entry point (see the module docstring for the contract)."""
    args = list(sys.argv[1:] if argv is None else argv)
    stdin_text = None if args else sys.stdin.read()
    outcome = run(agent_cls, args, stdin_text)
    if outcome.stdout:
        sys.stdout.write(outcome.stdout)
        sys.stdout.flush()
    if outcome.stderr:
        sys.stderr.write(outcome.stderr)
        sys.stderr.flush()
    return outcome.rc


def run_tool(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> tuple[int, str, str]:
    """Run a helper command (ip, ipmitool, virsh, ssh): (rc, stdout, stderr); errors raise FenceError."""
    try:
        done = subprocess.run(
            list(argv),
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        raise FenceError(
            f"{argv[0]} is not installed or not on PATH; install it or set its path option"
        ) from None
    except subprocess.TimeoutExpired:
        raise FenceError(f"timed out: {argv[0]} did not answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise FenceError(f"cannot run {argv[0]}: {exc}") from None
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def safe_name(value: str, what: str) -> str | None:
    """A problem sentence when ``value`` cannot safely be a file or namespace name."""
    if not value or "/" in value or value in (".", "..") or "\0" in value or "\n" in value:
        return f"{what} {value!r} is not a valid name (no '/', not '.' or '..', not empty)"
    return None
