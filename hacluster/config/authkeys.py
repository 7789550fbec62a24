"""Reader for Heartbeat's ``authkeys``: the shared secrets that sign or seal every packet.

The format (one directive a line, ``#`` lines and blank lines ignored)::

    auth 1            # sign what we send with slot 1
    1 sha1 SeCrEt     # slot method [key]; 0 <= slot < 16

Heartbeat's rules, kept here: the file must not be readable by group or others; ``auth N``
must come before the line of slot ``N`` (Heartbeat picks the signing key while it reads that
line); ``crc`` takes no key and the HMAC methods need one; the key is the first word only.
``sha256`` and ``sha512`` are ours: both ends must then run hacluster.  So are
``aes256gcm`` and ``chacha20poly1305``, which encrypt every packet instead of signing it
(docs/encryption.md): ``3 aes256gcm <secret>`` with ``auth 3``.

The text edits of a key rotation (``with_key_added``, ``with_signing_slot``,
``with_key_removed``) live here too: each returns the new file text, keeps every other line
(comments included) as it was, and is checked by parsing its result.

Rules for this file: no secret ever appears in a message, so problems name the slot and
method but never echo a key line.
"""

from __future__ import annotations

import difflib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hacluster.config.values import is_number
from hacluster.core.codec import AEAD_METHODS, METHODS, AuthKey, KeyRing
from hacluster.errors import ConfigError

SLOTS: Final = 16
"""Heartbeat's MAXAUTH."""

ECHO_MAX: Final = 8
"""Words of a broken ``auth`` line longer than this are not echoed: they could be a key."""
AEAD_SECRET_MIN: Final = 16
"""Below this many characters an encryption secret can be guessed offline from captures."""

_WEAK_SIGNING: Final[dict[str, str]] = {
    "crc": "crc is a checksum, not authentication: anyone on the network can forge packets",
    "md5": "HMAC-MD5 is weak",
}


@dataclass(slots=True)
class AuthkeysResult:
    keyring: KeyRing | None
    """``None`` when there are problems."""
    problems: list[str]
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class _KeyLine:
    where: str
    key: AuthKey


def read_authkeys(path: str | Path) -> AuthkeysResult:
    """Read and check one authkeys file, collecting every problem."""
    path = Path(path)
    problems: list[str] = []
    warnings: list[str] = []
    try:
        status = path.stat()
        data = path.read_bytes() if stat.S_ISREG(status.st_mode) else None
    except FileNotFoundError:
        problems.append(
            f"{path}: authkeys file not found (hacluster reads it from the directory of ha.cf); "
            f"create it with the lines 'auth 1' and '1 sha1 <long random secret>', then chmod 600 {path}"
        )
        return AuthkeysResult(None, problems, warnings)
    except OSError as exc:
        problems.append(f"{path}: cannot read authkeys ({exc.strerror}); check the path and permissions")
        return AuthkeysResult(None, problems, warnings)
    if data is None:
        problems.append(f"{path}: authkeys is not a regular file; replace it with a file of keys")
        return AuthkeysResult(None, problems, warnings)
    mode = stat.S_IMODE(status.st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        problems.append(
            f"{path}: mode {mode:04o} lets group or others read the cluster keys; run chmod 600 {path}"
        )
    keyring = _parse(data.decode("utf-8", "surrogateescape"), str(path), problems, warnings)
    return AuthkeysResult(None if problems else keyring, problems, warnings)


def load_authkeys(path: str | Path) -> KeyRing:
    """The key ring of one authkeys file; raises ``ConfigError`` with every problem."""
    result = read_authkeys(path)
    if result.keyring is None:
        raise ConfigError(result.problems)
    return result.keyring


def _parse(text: str, path: str, problems: list[str], warnings: list[str]) -> KeyRing | None:
    auth: tuple[int, str] | None = None
    keys: dict[int, _KeyLine] = {}
    slots_written: set[int] = set()
    """Slots with a key line, valid or not: a broken line is reported once, not twice."""
    for lineno, physical in enumerate(text.splitlines(), start=1):
        words = physical.split()
        where = f"{path}:{lineno}"
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "auth":
            slot = _auth_slot(words, where, problems)
            if slot is None:
                continue
            if auth is not None:
                problems.append(
                    f"{where}: auth {slot}: the signing key is already chosen at {auth[1]} (auth {auth[0]}); "
                    "keep only one auth line"
                )
                continue
            if slot in keys:
                problems.append(
                    f"{where}: auth {slot}: must come before its key line {keys[slot].where} "
                    f'(Heartbeat refuses this order with "Auth Key [{slot}] not found"); '
                    f"move auth {slot} above {keys[slot].where}"
                )
            auth = (slot, where)
            continue
        if is_number(words[0]):
            slots_written.add(int(words[0]))
        key_line = _key_line(words, where, problems, warnings)
        if key_line is None:
            continue
        earlier = keys.get(key_line.key.index)
        if earlier is not None:
            problems.append(
                f"{where}: {key_line.key.index} {key_line.key.method}: slot {key_line.key.index} is already "
                f"defined at {earlier.where}; give each key its own slot number"
            )
            continue
        keys[key_line.key.index] = key_line
    if auth is None:
        problems.append(f"{path}: no 'auth N' line; add e.g. 'auth 1' above the key line '1 sha1 <secret>'")
        return None
    slot, where = auth
    if slot not in slots_written:
        problems.append(
            f"{where}: auth {slot}: there is no key line for slot {slot}; add '{slot} sha1 <secret>' below it"
        )
        return None
    if slot not in keys:
        return None
    signing = keys[slot].key
    if signing.method in _WEAK_SIGNING:
        warnings.append(
            f"{where}: auth {slot}: signs with {signing.method}; {_WEAK_SIGNING[signing.method]}. "
            "Use sha1 (works with Heartbeat) or aes256gcm (hacluster only, encrypts)"
        )
    return KeyRing(slot, {index: line.key for index, line in sorted(keys.items())})


def _auth_slot(words: list[str], where: str, problems: list[str]) -> int | None:
    if len(words) != 2 or not is_number(words[1]):
        # Short words are echoed, longer ones and anything after the second not: a key pasted
        # onto this line must not reach a log (the fuzz run in bench/bench_fuzz.py checks).
        shown = [w if len(w) <= ECHO_MAX else "…" for w in words[1:3]] + (["…"] if len(words) > 3 else [])
        problems.append(
            f"{where}: {' '.join(['auth', *shown])}: expected 'auth N' with one slot number 0..{SLOTS - 1}"
        )
        return None
    slot = int(words[1])
    if slot >= SLOTS:
        problems.append(f"{where}: auth {slot}: slot must be 0..{SLOTS - 1}; choose a slot below {SLOTS}")
        return None
    return slot


def _key_line(words: list[str], where: str, problems: list[str], warnings: list[str]) -> _KeyLine | None:
    """One ``N method [key]`` line; messages show slot and method, never the key."""
    if not is_number(words[0]):
        problems.append(
            f"{where}: this line is neither 'auth N' nor 'N method [key]' (e.g. '1 sha1 <secret>'); fix or "
            "remove it"
        )
        return None
    slot = int(words[0])
    if len(words) < 2:
        problems.append(f"{where}: {slot}: missing the method; write '{slot} sha1 <secret>'")
        return None
    method = words[1]
    # The second word is echoed only if it is a method or short: a line without its method
    # ("1 <key>") has the key here.
    shown = method if method in METHODS or len(method) <= ECHO_MAX else "…"
    label = f"{where}: {slot} {shown}"
    ok = True
    if slot >= SLOTS:
        problems.append(f"{label}: slot {slot} is out of range; Heartbeat has slots 0..{SLOTS - 1}")
        ok = False
    if method not in METHODS:
        guess = difflib.get_close_matches(method.lower(), METHODS, n=1)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        if shown != method and not guess:
            hint = f"; is the method missing? (the second word has {len(method)} characters)"
        problems.append(f"{label}: unknown method; expected one of {', '.join(METHODS)}{hint}")
        return None
    key = words[2] if len(words) > 2 else ""
    if method == "crc" and key:
        problems.append(f"{label}: crc takes no key; remove the key or use sha1")
        ok = False
    if method != "crc" and not key:
        problems.append(f"{label}: {method} needs a key; write '{slot} {method} <secret>'")
        ok = False
    if method in AEAD_METHODS and 0 < len(key) < AEAD_SECRET_MIN:
        warnings.append(
            f"{label}: the secret has only {len(key)} characters: anyone who records packets can "
            f"try to guess it offline; use at least {AEAD_SECRET_MIN}, e.g. $(openssl rand -hex 32)"
        )
    if len(words) > 3:
        warnings.append(
            f"{label}: only the first word of the key is used and the rest of the line is ignored, "
            "as Heartbeat does; remove the extra words or join them"
        )
    if not ok:
        return None
    secret = key.encode("utf-8", "surrogateescape")
    return _KeyLine(where, AuthKey(slot, method, secret))


# --- edits for key rotation ---------------------------------------------------------------


class AuthkeysEditError(ValueError):
    """The file cannot take the edit (slot taken, no such key, the result would not parse)."""


def _checked(text: str, path: str) -> tuple[str, KeyRing]:
    problems: list[str] = []
    keyring = _parse(text, path, problems, [])
    if problems or keyring is None:
        raise AuthkeysEditError("; ".join(problems) or f"{path}: the edited file has no signing key")
    return text, keyring


def parse_authkeys_text(text: str, path: str = "authkeys") -> KeyRing:
    """The key ring of an authkeys text; ``AuthkeysEditError`` with the problems otherwise."""
    return _checked(text, path)[1]


def with_key_added(text: str, slot: int, method: str, secret: str, note: str = "") -> tuple[str, KeyRing]:
    """``text`` with the key line ``slot method secret`` appended (``auth`` stays as it is)."""
    keyring = parse_authkeys_text(text)
    if slot in keyring.keys or any(_slot_of(line) == slot for line in text.splitlines()):
        raise AuthkeysEditError(f"slot {slot} is already used in authkeys")
    assert method in METHODS, method
    assert secret, "a key line needs a secret"
    assert not any(c.isspace() for c in secret), "a secret is one word"
    body = text if text.endswith("\n") or not text else text + "\n"
    comment = f"# {note}\n" if note else ""
    return _checked(f"{body}{comment}{slot} {method} {secret}\n", "authkeys")


def with_signing_slot(text: str, slot: int) -> tuple[str, KeyRing]:
    """``text`` with its ``auth N`` line changed to ``auth slot`` in place."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        words = line.split()
        if words[:1] == ["auth"]:
            lines[i] = f"auth {slot}\n"
            break
    else:
        raise AuthkeysEditError("authkeys has no auth line")
    text, keyring = _checked("".join(lines), "authkeys")
    if keyring.sign_index != slot:
        raise AuthkeysEditError(f"auth {slot} did not take")
    return text, keyring


ROTATION_NOTE: Final = "added by hacrm cluster rotate-key"
"""Start of the comment a rotation writes above the key line it adds (removed with it)."""


def with_key_removed(text: str, slot: int) -> tuple[str, KeyRing]:
    """``text`` without the key line of ``slot`` (refused while ``auth`` still names it).

    The comment a rotation wrote just above that line goes with it.
    """
    keyring = parse_authkeys_text(text)
    if keyring.sign_index == slot:
        raise AuthkeysEditError(f"slot {slot} still signs (auth {slot}); switch first")
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if _slot_of(line) == slot:
            if lines and lines[-1].lstrip("# ").startswith(ROTATION_NOTE):
                lines.pop()
            continue
        lines.append(line)
    text, keyring = _checked("".join(lines), "authkeys")
    if slot in keyring.keys:
        raise AuthkeysEditError(f"slot {slot} is still there")
    return text, keyring


def _slot_of(line: str) -> int | None:
    words = line.split()
    return int(words[0]) if words and is_number(words[0]) else None
