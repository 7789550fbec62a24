"""Hiding secrets: which names are secret, which values this daemon knows to be secret, and the
one redactor every output goes through.

Theory of operation.  A value is hidden for one of two reasons:

- **By value.**  Every secret the daemon knows (``known_secrets``: every authkeys key whatever
  its method, and the values of parameters with a secret name in resources, fence devices and
  ha.cf's ``stonith_host`` lines, whose cluster-glue arguments are positional and so all
  suspect) is replaced wherever it appears, in any text.  Short values (under ``SHORT_SECRET``
  characters) only as whole words, so a short password does not blank out every word that
  contains it.
- **By shape.**  Text shaped like ``name=value``, ``name: value``, a JSON ``"name": "value"`` or a
  JSON pair ``["name", "value"]`` whose name holds one of ``SECRET_WORDS`` is hidden even when
  the value is unknown to us (a password pasted into a log line).

``SECRET_WORDS`` is the one list: ``hacrm report``, the API (``resource show``, ``stonith show``
and every answer to a read-only caller), the fencer (agent output and debug lines) and our fence
agents all read it.  When in doubt, hide: a report is meant to be mailed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

SECRET_WORDS: Final = ("passw", "secret", "key", "token")
"""A name holding one of these (any case) names a secret: ``passwd``, ``api_token``, ``ssh_key``."""
REDACTED: Final = "<redacted>"
SHORT_SECRET: Final = 6

_NAME: Final = rf"[\w.-]*(?:{'|'.join(SECRET_WORDS)})[\w.-]*"
_SHAPES: Final = (
    # JSON "name": "value"
    (re.compile(rf'(?i)("{_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*"'), rf'\1"{REDACTED}"'),
    # JSON pairs ["name", "value"] (params in cib.json)
    (re.compile(rf'(?i)(\[\s*"{_NAME}"\s*,\s*)"(?:[^"\\]|\\.)*"'), rf'\1"{REDACTED}"'),
    # name=value, name = "quoted value", name: value
    (
        re.compile(
            rf"(?i)\b({_NAME})([ \t]*[=:][ \t]*)(?!{re.escape(REDACTED)})(\"[^\"]*\"|'[^']*'|[^\s,;&\"]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
)
_KEY_LINE: Final = re.compile(r"^\s*(\d+)\s+(\S+)(?:\s+(\S.*))?$")


def is_secret_name(name: str) -> bool:
    """Whether a parameter or option of this name holds a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def secret_values(params: Iterable[tuple[str, str]]) -> set[str]:
    """The non-empty values of the secret-named parameters among ``params``."""
    return {value for name, value in params if value and is_secret_name(name)}


def hide_params(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``params`` as a mapping for display, secret values replaced."""
    return {name: (REDACTED if is_secret_name(name) else value) for name, value in params}


class Redactor:
    """Replaces known secret values and secret-shaped text; counts what it replaced."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and s != REDACTED}
        escaped = {json.dumps(s)[1:-1] for s in values}  # as the value appears inside JSON text
        ordered = sorted(values | escaped, key=len, reverse=True)
        self._long = [s for s in ordered if len(s) >= SHORT_SECRET]
        short = [re.escape(s) for s in ordered if len(s) < SHORT_SECRET]
        self._short = re.compile(rf"(?<![\w])(?:{'|'.join(short)})(?![\w])") if short else None
        self.replacements = 0

    def __call__(self, text: str) -> str:
        for secret in self._long:
            if secret in text:
                self.replacements += text.count(secret)
                text = text.replace(secret, REDACTED)
        if self._short is not None:
            text, count = self._short.subn(REDACTED, text)
            self.replacements += count
        for pattern, replacement in _SHAPES:
            text, count = pattern.subn(replacement, text)
            self.replacements += count
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string redacted and the text of secret-named fields
        hidden.  Only text is ever a secret: a count such as ``dropped.unknown_key`` stays."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {
                key: (REDACTED if _is_secret_text(key, item) else self.value(item))
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            if len(value) == 2 and _is_secret_text(value[0], value[1]):
                return [value[0], REDACTED]  # a (name, value) pair
            return [self.value(item) for item in value]
        return value


def _is_secret_text(name: object, value: object) -> bool:
    return isinstance(name, str) and isinstance(value, str) and bool(value) and is_secret_name(name)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secret values and every secret-shaped value hidden."""
    return Redactor(secrets)(text)


def redact_authkeys(text: str) -> str:
    """An authkeys file with every key gone, whatever its method.

    Kept: ``auth N``, and each key line as ``N method <redacted>`` (a keyless ``N crc`` as it
    is).  A comment that holds a key line (an old key, commented out during a rotation) keeps
    only its slot and method; other comments and any line that is neither are replaced
    whole, since a malformed line may be a key with a typo.
    """
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        body = stripped.split("#", 1)[0].strip()
        words = body.split()
        if not stripped:
            out.append("")
        elif not body:  # a comment: nothing in it is needed, and it may hold an old key
            match = _KEY_LINE.match(stripped.lstrip("#").split("#", 1)[0])
            if match:
                out.append(f"# {match[1]} {match[2]}" + (f" {REDACTED}" if match[3] else ""))
            else:
                out.append(f"# {REDACTED}")
        elif len(words) == 2 and words[0] == "auth":
            out.append(f"auth {words[1]}")
        elif (match := _KEY_LINE.match(body)) is not None:
            out.append(f"{match[1]} {match[2]}" + (f" {REDACTED}" if match[3] else ""))
        else:
            out.append(REDACTED)
    return "\n".join(out) + "\n"


def known_secrets(daemon: Daemon) -> set[str]:
    """Every secret value this daemon knows of (read in the loop)."""
    secrets: set[str] = set()
    for key in daemon.config.keyring.keys.values():
        if key.secret:
            secrets.add(key.secret.decode("utf-8", "replace"))
    if daemon.core is not None:
        view = daemon.view()
        for primitive in view.config.primitives:
            secrets |= secret_values(primitive.params)
        for device in view.devices():
            secrets |= secret_values(device.params)
            # cluster-glue plugins take positional arguments: any of them may be a password.
            for name, value in device.params:
                if name == "args":
                    secrets |= _positional_secrets(value.split())
    for line in daemon.config.stonith_host:
        words = line.split()[2:]
        secrets |= secret_values(w.partition("=")[::2] for w in words if "=" in w)  # (name, value)
        if not line.split()[1].startswith("fence_"):
            secrets |= _positional_secrets(words)
    # Node names and numbers appear in plugin arguments (host lists, ports) and everywhere else.
    public = set(daemon.config.nodes) | {"*"}
    return {s for s in secrets if s.strip() and s not in public and not s.isdigit()}


def _positional_secrets(words: list[str]) -> set[str]:
    out = set()
    for word in words:
        try:
            ipaddress.ip_address(word)
        except ValueError:
            out.add(word)
    return out
