"""Heartbeat 3.0.6 wire format: messages, framing and authentication.

Theory of operation
-------------------
A message is an ordered list of typed fields ``(type, name, value)``.  On UDP it travels
in *netstring form*::

    "###\\n" *( len ":" "(" digit ")" name "=" value "," ) "%%%\\n" len ":" N " " hex ","

The trailer is the digest (method of key ``N``) of every byte from ``###\\n`` through
``%%%\\n``.  On serial links it travels in *classic form* (``>>>\\n name=value\\n … <<<\\n``
plus a NUL) and is authenticated by an inner ``auth=N hex`` field computed over the
classic text of the other fields.  With ``msgfmt classic`` (Heartbeat's default) the
netstring form carries that inner field too, so both framings are produced the same way.

Rules for this file: ``decode`` returns a ``Message`` or raises ``DecodeError``, for any
input whatsoever (``tests/unit/test_codec_fuzz.py``).  Nothing is trusted before the
digest matches, and no input can make the decoder allocate more than the packet's size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from hacluster.errors import DecodeError, DropReason

MAX_PACKET_BYTES: Final = 65_507
"""The largest UDP payload; anything bigger is dropped as oversize before parsing."""

MAX_FIELDS: Final = 256
"""Real messages carry about a dozen fields; more is hostile or broken."""

FT_STRING: Final = 0
FT_BINARY: Final = 1
_KNOWN_TYPES: Final = frozenset(range(6))  # Heartbeat's 0..5; we keep 2..5 as opaque bytes

METHODS: Final = ("crc", "md5", "sha1", "sha256", "sha512")
"""Heartbeat's three, plus two stronger HMACs of our own (both ends must be ours)."""

_NETSTRING_START: Final = b"###\n"
_NETSTRING_END: Final = b"%%%\n"
_CLASSIC_START: Final = b">>>\n"
_CLASSIC_END: Final = b"<<<\n"


@dataclass(frozen=True, slots=True)
class Field:
    """One typed field; ``value`` is raw bytes whatever the type."""

    ftype: int
    name: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """An ordered list of fields.  Lookups return the first match, as Heartbeat's do."""

    fields: tuple[Field, ...]

    @classmethod
    def of(cls, *pairs: tuple[str, str | bytes]) -> Message:
        """Build a message of string fields (``str``) and binary fields (``bytes``)."""
        out = []
        for name, value in pairs:
            if isinstance(value, bytes):
                out.append(Field(FT_BINARY, name, value))
            else:
                out.append(Field(FT_STRING, name, value.encode()))
        return cls(tuple(out))

    def raw(self, name: str) -> bytes | None:
        for field in self.fields:
            if field.name == name:
                return field.value
        return None

    def get(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        return value.decode("utf-8", "replace")

    def as_dict(self) -> dict[str, str]:
        """First value of every string field, for lookups in bulk (one pass)."""
        out: dict[str, str] = {}
        for field in self.fields:
            if field.name not in out:
                out[field.name] = field.value.decode("utf-8", "replace")
        return out

    def without(self, name: str) -> Message:
        return Message(tuple(f for f in self.fields if f.name != name))

    def with_fields(self, *pairs: tuple[str, str | bytes]) -> Message:
        return Message(self.fields + Message.of(*pairs).fields)


# ---------------------------------------------------------------------------------------
# Authentication


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc32_heartbeat(data: bytes) -> int:
    """CRC-32 as Heartbeat's crc plugin: poly 0x04C11DB7, MSB first, init 0, final NOT."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc ^ 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class AuthKey:
    """One line of ``authkeys``: slot number, method and secret (empty for crc)."""

    index: int
    method: str
    secret: bytes

    def __post_init__(self) -> None:
        assert 0 <= self.index < 16, "Heartbeat has 16 key slots"
        assert self.method in METHODS, self.method
        assert self.method != "crc" or not self.secret, "crc takes no key"


@dataclass(frozen=True, slots=True)
class KeyRing:
    """All configured keys and the slot used to sign what we send."""

    sign_index: int
    keys: Mapping[int, AuthKey]

    def __post_init__(self) -> None:
        assert self.sign_index in self.keys, "the signing key must be configured"

    @classmethod
    def single(cls, method: str, secret: bytes, index: int = 1) -> KeyRing:
        return cls(index, {index: AuthKey(index, method, secret)})

    @property
    def signing_key(self) -> AuthKey:
        return self.keys[self.sign_index]


_HASHES: Final = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


def digest(key: AuthKey, data: bytes) -> str:
    """The hex text Heartbeat puts after the key number (crc: ``%lx``, not zero-padded)."""
    if key.method == "crc":
        return f"{crc32_heartbeat(data):x}"
    return hmac.new(key.secret, data, _HASHES[key.method]).hexdigest()


def _auth_token(keyring: KeyRing, data: bytes) -> bytes:
    key = keyring.signing_key
    return f"{key.index} {digest(key, data)}".encode()


def _check_token(keyring: KeyRing, token: bytes, data: bytes) -> None:
    number, sep, hexdigest = token.partition(b" ")
    if not sep or not number.isdigit() or len(number) > 2:
        raise DecodeError(DropReason.MALFORMED, "auth token is not 'N hex'")
    key = keyring.keys.get(int(number))
    if key is None:
        raise DecodeError(DropReason.UNKNOWN_KEY, f"no key {int(number)} in authkeys")
    expected = digest(key, data).encode()
    if not hmac.compare_digest(expected, hexdigest):
        raise DecodeError(DropReason.BAD_AUTH, f"{key.method} digest with key {key.index} does not match")


# ---------------------------------------------------------------------------------------
# Encoding


def classic_text(fields: Iterable[Field]) -> bytes:
    """The classic text of ``fields`` without frame lines; what the inner ``auth`` signs."""
    parts = []
    for field in fields:
        if field.name == "auth":
            continue
        if field.ftype == FT_STRING:
            parts.append(b"%s=%s\n" % (field.name.encode(), field.value))
        else:
            value = base64.b64encode(field.value)
            parts.append(b"(%d)%s=%s\n" % (field.ftype, field.name.encode(), value))
    return b"".join(parts)


def _with_inner_auth(message: Message, keyring: KeyRing) -> tuple[Field, ...]:
    fields = tuple(f for f in message.fields if f.name != "auth")
    token = _auth_token(keyring, classic_text(fields))
    return (*fields, Field(FT_STRING, "auth", token))


def encode(message: Message, keyring: KeyRing, *, inner_auth: bool = True) -> bytes:
    """Netstring form with trailer, as Heartbeat sends on UDP.

    ``inner_auth`` adds the classic ``auth=`` field (``msgfmt classic``, the default).
    """
    fields = _with_inner_auth(message, keyring) if inner_auth else message.fields
    parts = [_NETSTRING_START]
    for field in fields:
        item = b"(%d)%s=%s" % (field.ftype, field.name.encode(), field.value)
        parts.append(b"%d:%s," % (len(item), item))
    parts.append(_NETSTRING_END)
    body = b"".join(parts)
    token = _auth_token(keyring, body)
    return b"%s%d:%s," % (body, len(token), token)


def encode_classic(message: Message, keyring: KeyRing) -> bytes:
    """Classic form, as Heartbeat writes on serial links: framed text plus a NUL."""
    fields = _with_inner_auth(message, keyring)
    for field in fields:
        if field.ftype == FT_STRING and b"\n" in field.value:
            raise ValueError(f"field {field.name} holds a newline; classic form cannot carry it")
    return _CLASSIC_START + classic_text(fields[:-1]) + b"auth=" + fields[-1].value + b"\n" + _CLASSIC_END + b"\0"


# ---------------------------------------------------------------------------------------
# Decoding


def decode(data: bytes, keyring: KeyRing) -> Message:
    """Parse and authenticate one packet of either framing, or raise ``DecodeError``."""
    if len(data) > MAX_PACKET_BYTES:
        raise DecodeError(DropReason.OVERSIZE, f"{len(data)} bytes > {MAX_PACKET_BYTES}")
    head = data[:4]
    if head == _NETSTRING_START:
        return _decode_netstring(data, keyring)
    if head == _CLASSIC_START:
        return _decode_classic(data, keyring)
    if len(data) < 4 and (_NETSTRING_START.startswith(data) or _CLASSIC_START.startswith(data)):
        raise DecodeError(DropReason.TRUNCATED, f"packet of {len(data)} bytes")
    raise DecodeError(DropReason.MALFORMED, "packet starts with neither ###\\n nor >>>\\n")


def _read_netstring(data: bytes, pos: int) -> tuple[bytes, int]:
    """One ``len:payload,`` item at ``pos``; returns payload and the position after it."""
    colon = data.find(b":", pos, pos + 8)
    if colon < 0:
        if len(data) - pos < 8:
            raise DecodeError(DropReason.TRUNCATED, f"netstring length cut off at byte {pos}")
        raise DecodeError(DropReason.MALFORMED, f"no netstring length at byte {pos}")
    digits = data[pos:colon]
    if not digits.isdigit() or not digits.isascii():
        raise DecodeError(DropReason.MALFORMED, f"netstring length {digits[:8]!r} at byte {pos}")
    end = colon + 1 + int(digits)
    if end >= len(data):
        raise DecodeError(DropReason.TRUNCATED, f"netstring at byte {pos} runs past the packet")
    if data[end] != 0x2C:  # ","
        raise DecodeError(DropReason.MALFORMED, f"netstring at byte {pos} does not end in ','")
    return data[colon + 1 : end], end + 1


def _parse_item(item: bytes, *, typed: bool) -> Field:
    ftype = FT_STRING
    if item[:1] == b"(":
        if len(item) < 3 or item[2:3] != b")" or item[1] - 0x30 not in _KNOWN_TYPES:
            raise DecodeError(DropReason.MALFORMED, f"bad field type in {item[:8]!r}")
        ftype = item[1] - 0x30
        item = item[3:]
    elif typed:
        raise DecodeError(DropReason.MALFORMED, "netstring field without a type")
    name, sep, value = item.partition(b"=")
    if not sep or not name:
        raise DecodeError(DropReason.MALFORMED, f"field {item[:16]!r} has no name=value")
    try:
        text = name.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(DropReason.MALFORMED, "field name is not ASCII") from None
    return Field(ftype, text, value)


def _decode_netstring(data: bytes, keyring: KeyRing) -> Message:
    pos = 4
    fields: list[Field] = []
    while data[pos : pos + 4] != _NETSTRING_END:
        if pos >= len(data):
            raise DecodeError(DropReason.TRUNCATED, "packet ends before %%%")
        if len(fields) >= MAX_FIELDS:
            raise DecodeError(DropReason.MALFORMED, f"more than {MAX_FIELDS} fields")
        item, pos = _read_netstring(data, pos)
        fields.append(_parse_item(item, typed=True))
    signed_len = pos + 4
    if signed_len >= len(data):
        raise DecodeError(DropReason.TRUNCATED, "no auth trailer after %%%")
    token, end = _read_netstring(data, signed_len)
    if end != len(data) and data[end:] != b"\0":
        raise DecodeError(DropReason.MALFORMED, f"{len(data) - end} stray bytes after the trailer")
    _check_token(keyring, token, data[:signed_len])
    return Message(tuple(fields))


def _decode_classic(data: bytes, keyring: KeyRing) -> Message:
    end = data.find(b"\n" + _CLASSIC_END)
    if end < 0:
        raise DecodeError(DropReason.TRUNCATED, "classic packet without <<<")
    tail = data[end + 5 :]
    if tail not in (b"", b"\0"):
        raise DecodeError(DropReason.MALFORMED, f"{len(tail)} stray bytes after <<<")
    fields: list[Field] = []
    for line in data[4:end].split(b"\n"):
        line = line.lstrip(b"\r\n")
        if not line:
            continue
        if len(fields) >= MAX_FIELDS:
            raise DecodeError(DropReason.MALFORMED, f"more than {MAX_FIELDS} fields")
        field = _parse_item(line, typed=False)
        if field.ftype != FT_STRING:
            try:
                field = Field(field.ftype, field.name, base64.b64decode(field.value, validate=True))
            except ValueError:
                raise DecodeError(DropReason.MALFORMED, f"field {field.name} is not base64") from None
        fields.append(field)
    message = Message(tuple(fields))
    token = message.raw("auth")
    if token is None:
        raise DecodeError(DropReason.BAD_AUTH, "classic packet without an auth field")
    _check_token(keyring, token, classic_text(fields))
    return message
