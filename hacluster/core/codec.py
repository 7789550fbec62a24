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
Netstring packets take a fast walk (``_scan_netstring``) that only says yes or "look
again"; the careful walk (``_parse_netstring``) then finds the exact ``DropReason``.  The
two must accept exactly the same packets (checked by the fuzz tests); bench/README.md
says why the fast one exists and what it costs.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

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


class Field(NamedTuple):
    """One typed field; ``value`` is raw bytes whatever the type.

    A named tuple rather than a frozen dataclass because ``decode`` builds about a dozen per
    packet: ``tuple.__new__`` makes one in a single C call, where a frozen dataclass's
    ``__init__`` runs three ``object.__setattr__`` calls (bench/README.md has the figures).
    It is just as immutable and compares and hashes by value.
    """

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
        """First value of every field by name, for lookups in bulk (one pass)."""
        out: dict[str, str] = {}
        for field in self.fields:
            if field.name not in out:
                out[field.name] = field.value.decode("utf-8", "replace")
        return out

    def without(self, name: str) -> Message:
        return Message(tuple(f for f in self.fields if f.name != name))

    def with_fields(self, *pairs: tuple[str, str | bytes]) -> Message:
        return Message(self.fields + Message.of(*pairs).fields)


_new_field: Final = Field._make


# ---------------------------------------------------------------------------------------
# Authentication


_BIT_REVERSED: Final = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def crc32_heartbeat(data: bytes) -> int:
    """CRC-32 as Heartbeat's crc plugin: poly 0x04C11DB7, MSB first, init 0, final NOT.

    That is ``cksum`` without its length step.  zlib computes the bit-reflected twin of
    this CRC in C, so we mirror every input byte, run zlib from a zero register (its
    ``value`` argument is complemented on the way in and out, hence the XORs) and mirror
    the 32-bit result back.  ``tests/unit/test_codec.py`` checks it against the bitwise
    definition.
    """
    reflected = zlib.crc32(data.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2) ^ 0xFFFFFFFF


_HASHES: Final = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}

_IPAD: Final = bytes(byte ^ 0x36 for byte in range(256))
_OPAD: Final = bytes(byte ^ 0x5C for byte in range(256))


def _hmac_hex(method: str, secret: bytes) -> Callable[[bytes], str]:
    """HMAC (RFC 2104) with the key schedule done once: the hex digest of ``data`` per call.

    ``hmac.new`` sets up the padded key again for every packet; copying two hash states
    that already absorbed it is about twice as fast.  The result is identical
    (``test_codec.py`` compares it with ``hmac.new`` for every method and key length).
    """
    new = _HASHES[method]
    block = new().block_size
    if len(secret) > block:
        secret = new(secret).digest()
    secret = secret.ljust(block, b"\0")
    inner, outer = new(secret.translate(_IPAD)), new(secret.translate(_OPAD))

    def hex_digest(data: bytes) -> str:
        first = inner.copy()
        first.update(data)
        second = outer.copy()
        second.update(first.digest())
        return second.hexdigest()

    return hex_digest


def _crc_hex(data: bytes) -> str:
    return f"{crc32_heartbeat(data):x}"


@dataclass(frozen=True, slots=True)
class AuthKey:
    """One line of ``authkeys``: slot number, method and secret (empty for crc)."""

    index: int
    method: str
    secret: bytes = dataclasses.field(repr=False)
    """Left out of ``repr`` so that a logged key ring never shows it."""
    _hex_digest: Callable[[bytes], str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert 0 <= self.index < 16, "Heartbeat has 16 key slots"
        assert self.method in METHODS, self.method
        assert self.method != "crc" or not self.secret, "crc takes no key"
        sign = _crc_hex if self.method == "crc" else _hmac_hex(self.method, self.secret)
        object.__setattr__(self, "_hex_digest", sign)


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


def digest(key: AuthKey, data: bytes) -> str:
    """The hex text Heartbeat puts after the key number (crc: ``%lx``, not zero-padded)."""
    return key._hex_digest(data)


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
    return (
        _CLASSIC_START
        + classic_text(fields[:-1])
        + b"auth="
        + fields[-1].value
        + b"\n"
        + _CLASSIC_END
        + b"\0"
    )


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
    scanned = _scan_netstring(data)
    if scanned is None:
        # Something is off: walk again, slowly, to name the exact reason.
        fields, signed_len, token = _parse_netstring(data)
    else:
        fields, signed_len, token = scanned
    _check_token(keyring, token, data[:signed_len])
    return Message(tuple(fields))


_ITEM_HEAD: Final = re.compile(rb"(\d{1,7}):\(([0-5])\)([\x00-\x3c\x3e-\x7f]+)=")
"""``len:(t)name=`` of one netstring field: up to 7 digits, a known type, an ASCII name."""

_TRAILER_HEAD: Final = re.compile(rb"%%%\n(\d{1,7}):")


def _scan_netstring(data: bytes) -> tuple[list[Field], int, bytes] | None:
    """The fast walk: fields, signed length and trailer token, or ``None`` for the careful one.

    It accepts exactly what ``_parse_netstring`` accepts and returns the same result
    (``test_codec_fuzz.py`` runs both on the same inputs), but one regex match reads each
    field's head in C, and it gives up instead of explaining.  A name match that runs past
    its field's end is caught by ``value_at > end``; any index past the packet raises
    ``IndexError``.  Allocation stays within the packet's size.
    """
    fields: list[Field] = []
    append = fields.append
    match = _ITEM_HEAD.match
    new = tuple.__new__
    pos = 4
    try:
        while head := match(data, pos):
            digits, ftype, name = head.groups()
            value_at = head.end()
            end = pos + len(digits) + 1 + int(digits)
            if value_at > end or data[end] != 0x2C:  # ","
                return None
            append(new(Field, (ftype[0] - 0x30, name.decode(), data[value_at:end])))
            pos = end + 1
        trailer = _TRAILER_HEAD.match(data, pos)
        if trailer is None or len(fields) > MAX_FIELDS:
            return None
        token_at = trailer.end()
        end = token_at + int(trailer[1])
        if data[end] != 0x2C or (end + 1 != len(data) and data[end + 1 :] != b"\0"):
            return None
    except IndexError:
        return None
    return fields, pos + 4, data[token_at:end]


def _parse_netstring(data: bytes) -> tuple[list[Field], int, bytes]:
    """The careful walk: same result as ``_scan_netstring``, or the precise ``DecodeError``."""
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
    return fields, signed_len, token


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
