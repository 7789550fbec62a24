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

Encrypted packets (ours only)
-----------------------------
With an ``aes256gcm`` or ``chacha20poly1305`` key the whole message is sealed with that
AEAD cipher instead of signed; docs/encryption.md draws the layout.  In short::

    magic A6 9E | version 1 | slot | session id (16) | counter (8) | ciphertext | tag (16)

The 28-byte clear header is only what a receiver needs to pick the key (slot and session
id) and the nonce (counter); it is also the associated data, so none of it can be altered.
The plaintext is the netstring body (``###\n`` … ``%%%\n``, no trailer, no inner ``auth``)
padded with NULs to a multiple of ``PAD_BYTES``, so nothing of the message is readable and
small differences of length (``st=up`` against ``st=active``) do not show.  Serial links
carry the same sealed bytes in base64 inside a classic frame: ``>>>\n~<base64>\n<<<\n``.

Keys.  The slot's *master key* is HKDF-SHA256 of the authkeys secret, salted with the
cluster's name (``cluster_salt``) so that two clusters that share a secret still cannot read
or feed each other; the info string names the method.  Each sending process draws a random
16-byte session id at start (the shell, from ``os.urandom``) and seals with the *session
key* HKDF-Expand(master, "session" ‖ id); the nonce is a counter that starts at 1 and only
ever grows, across key changes too (``Sealer``).

Why a nonce never repeats for a key.  A session key belongs to one (secret, session id)
pair.  Within one process the counter is strictly increasing and never reset (asserted
below 2**64), so the process never uses a nonce twice under any of its session keys, even
after a reload or a switch back to an earlier key.  Another process, on this node after a
restart or on another node, uses the same session key only if it drew the same 128-bit
session id: for 2**32 process starts over a cluster's whole life the chance that any two
collide is below 2**64 / 2**128 = 2**-64.  Nothing rests on clocks, on the generation file
surviving a reinstall, or on nodes having distinct names.  Replay, duplicate and stale
generation are judged, after decryption, by the same membership rules as signed packets;
the counter is not a replay window.
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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from hacluster.errors import DecodeError, DropReason

MAX_PACKET_BYTES: Final = 65_507
"""The largest UDP payload; anything bigger is dropped as oversize before parsing."""

MAX_FIELDS: Final = 256
"""Real messages carry about a dozen fields; more is hostile or broken."""

FT_STRING: Final = 0
FT_BINARY: Final = 1
_KNOWN_TYPES: Final = frozenset(range(6))  # Heartbeat's 0..5; we keep 2..5 as opaque bytes

AEAD_METHODS: Final = ("aes256gcm", "chacha20poly1305")
"""Authenticated encryption: the whole packet is sealed, not just signed (ours only)."""

HMAC_METHODS: Final = ("md5", "sha1", "sha256", "sha512")

METHODS: Final = ("crc", *HMAC_METHODS, *AEAD_METHODS)
"""Heartbeat's three, plus two stronger HMACs and two AEAD ciphers of our own."""

DEFAULT_CLUSTER: Final = "linux-ha"
"""Heartbeat's cluster name when ha.cf sets none; it salts the AEAD keys too."""

SEALED_MAGIC: Final = b"\xa6\x9e"
SEALED_VERSION: Final = 1
SESSION_ID_BYTES: Final = 16
COUNTER_BYTES: Final = 8
SEALED_HEADER_BYTES: Final = 2 + 1 + 1 + SESSION_ID_BYTES + COUNTER_BYTES
TAG_BYTES: Final = 16
PAD_BYTES: Final = 32
"""Plaintexts are padded to a multiple of this, so lengths tell less about the contents."""
COUNTER_MAX: Final = (1 << (8 * COUNTER_BYTES)) - 1
SESSION_CACHE_MAX: Final = 128
"""Session keys remembered per key ring (about two per peer and slot in use); the oldest goes."""
_SERIAL_SEALED: Final = b"~"
"""The first byte after ``>>>\n`` that marks a base64 sealed packet on a serial link."""

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


def cluster_salt(cluster: str) -> bytes:
    """The HKDF salt of one cluster: its name, so a copied secret does not join two clusters."""
    return b"hacluster/v1/cluster/" + cluster.encode("utf-8", "surrogateescape")


_Aead = AESGCM | ChaCha20Poly1305


def _aead(method: str, key: bytes) -> _Aead:
    if method == "aes256gcm":
        return AESGCM(key)
    assert method == "chacha20poly1305", method
    return ChaCha20Poly1305(key)


@dataclass(frozen=True, slots=True)
class AuthKey:
    """One line of ``authkeys``: slot number, method and secret (empty for crc).

    ``cluster`` only matters for the AEAD methods, whose master key it salts.
    """

    index: int
    method: str
    secret: bytes = dataclasses.field(repr=False)
    """Left out of ``repr`` so that a logged key ring never shows it."""
    cluster: str = DEFAULT_CLUSTER
    _hex_digest: Callable[[bytes], str] = dataclasses.field(init=False, repr=False, compare=False)
    _master: bytes = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert 0 <= self.index < 16, "Heartbeat has 16 key slots"
        assert self.method in METHODS, self.method
        assert self.method != "crc" or not self.secret, "crc takes no key"
        master = b""
        if self.method in AEAD_METHODS:
            assert self.secret, f"{self.method} needs a secret"
            sign: Callable[[bytes], str] = _no_digest
            master = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=cluster_salt(self.cluster),
                info=b"hacluster/v1/master/" + self.method.encode(),
            ).derive(self.secret)
        elif self.method == "crc":
            sign = _crc_hex
        else:
            sign = _hmac_hex(self.method, self.secret)
        object.__setattr__(self, "_hex_digest", sign)
        object.__setattr__(self, "_master", master)

    @property
    def encrypts(self) -> bool:
        """An AEAD key: packets are sealed with it rather than signed."""
        return self.method in AEAD_METHODS

    def session_cipher(self, session_id: bytes) -> _Aead:
        """The AEAD of one sender's session under this key (see the module docstring)."""
        assert self.encrypts, self.method
        assert len(session_id) == SESSION_ID_BYTES, len(session_id)
        key = HKDFExpand(
            algorithm=hashes.SHA256(), length=32, info=b"hacluster/v1/session/" + session_id
        ).derive(self._master)
        return _aead(self.method, key)

    def for_cluster(self, cluster: str) -> AuthKey:
        if cluster == self.cluster or not self.encrypts:
            return self
        return AuthKey(self.index, self.method, self.secret, cluster)


def _no_digest(data: bytes) -> str:
    raise AssertionError("an AEAD key seals packets; it computes no digest")


@dataclass(frozen=True, slots=True)
class KeyRing:
    """All configured keys and the slot used to sign (or seal) what we send.

    ``_sessions`` caches the session ciphers of the senders heard from, by slot and session
    id; only a packet that decrypted is let into it, so forged headers cannot fill it.
    """

    sign_index: int
    keys: Mapping[int, AuthKey]
    _sessions: dict[bytes, _Aead] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        assert self.sign_index in self.keys, "the signing key must be configured"

    @classmethod
    def single(cls, method: str, secret: bytes, index: int = 1, cluster: str = DEFAULT_CLUSTER) -> KeyRing:
        return cls(index, {index: AuthKey(index, method, secret, cluster)})

    @property
    def signing_key(self) -> AuthKey:
        return self.keys[self.sign_index]

    def for_cluster(self, cluster: str) -> KeyRing:
        """The same keys with the AEAD ones salted for ``cluster`` (``self`` when nothing changes)."""
        keys = {index: key.for_cluster(cluster) for index, key in self.keys.items()}
        if all(keys[index] is key for index, key in self.keys.items()):
            return self
        return KeyRing(self.sign_index, keys)

    def describe(self) -> str:
        """Slots and methods for log lines, e.g. ``1 sha1, 2 aes256gcm (signing)``; no secret."""
        return ", ".join(
            f"{key.index} {key.method}" + (" (sending)" if key.index == self.sign_index else "")
            for key in sorted(self.keys.values(), key=lambda k: k.index)
        )


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
    if key.encrypts:
        raise DecodeError(
            DropReason.BAD_AUTH, f"signed with slot {key.index}, which holds a {key.method} key"
        )
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


def _netstring_body(fields: Iterable[Field]) -> bytes:
    """``###\n`` + one ``len:(t)name=value,`` item per field + ``%%%\n``."""
    parts = [_NETSTRING_START]
    for field in fields:
        item = b"(%d)%s=%s" % (field.ftype, field.name.encode(), field.value)
        parts.append(b"%d:%s," % (len(item), item))
    parts.append(_NETSTRING_END)
    return b"".join(parts)


def encode(
    message: Message, keyring: KeyRing, *, inner_auth: bool = True, sealer: Sealer | None = None
) -> bytes:
    """Netstring form with trailer, as Heartbeat sends on UDP; sealed when the key encrypts.

    ``inner_auth`` adds the classic ``auth=`` field (``msgfmt classic``, the default); a sealed
    packet never carries one.  An AEAD signing key needs the sender's ``sealer``.
    """
    if keyring.signing_key.encrypts:
        assert sealer is not None, "an encrypting key needs the sender's Sealer"
        return sealer.seal(message, keyring)
    fields = _with_inner_auth(message, keyring) if inner_auth else message.fields
    body = _netstring_body(fields)
    token = _auth_token(keyring, body)
    return b"%s%d:%s," % (body, len(token), token)


def encode_classic(message: Message, keyring: KeyRing, *, sealer: Sealer | None = None) -> bytes:
    """Classic form, as Heartbeat writes on serial links: framed text plus a NUL.

    With an encrypting key: the sealed packet in base64 (``serial_frame``).
    """
    if keyring.signing_key.encrypts:
        return serial_frame(encode(message, keyring, sealer=sealer))
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


def serial_frame(sealed: bytes) -> bytes:
    """A sealed packet as a serial link carries it: base64 text in a classic frame.

    A serial line strips the 8th bit and drops CR and NUL, so binary cannot cross it as is.
    """
    return _CLASSIC_START + _SERIAL_SEALED + base64.b64encode(sealed) + b"\n" + _CLASSIC_END + b"\0"


class Sealer:
    """The sending side of encryption for one process: its session id and nonce counter.

    The counter is shared by every key the process ever sends with and never goes back;
    the module docstring explains why that keeps every nonce unique.  The session id comes
    from the shell (``os.urandom``): the core makes no random numbers of its own.
    """

    __slots__ = ("_ciphers", "counter", "session_id")

    def __init__(self, session_id: bytes) -> None:
        assert len(session_id) == SESSION_ID_BYTES, "the session id is 16 random bytes"
        self.session_id = session_id
        self.counter = 0
        self._ciphers: dict[AuthKey, _Aead] = {}

    def seal(self, message: Message, keyring: KeyRing) -> bytes:
        key = keyring.signing_key
        assert key.encrypts, key.method
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= 4:
                self._ciphers.clear()  # keys retired by reloads: no need to keep them
            cipher = self._ciphers[key] = key.session_cipher(self.session_id)
        self.counter += 1
        assert self.counter <= COUNTER_MAX, "nonce counter exhausted: restart for a new session"
        counter = self.counter.to_bytes(COUNTER_BYTES, "big")
        header = b"%s%c%c%s%s" % (SEALED_MAGIC, SEALED_VERSION, key.index, self.session_id, counter)
        body = _netstring_body(f for f in message.fields if f.name != "auth")
        padded = body + bytes(-len(body) % PAD_BYTES)
        return header + cipher.encrypt(_nonce(counter), padded, header)


def _nonce(counter: bytes) -> bytes:
    """The 96-bit AEAD nonce: the 64-bit counter, big-endian, after four zero bytes."""
    return b"\0\0\0\0" + counter


# ---------------------------------------------------------------------------------------
# Decoding


def decode(data: bytes, keyring: KeyRing) -> Message:
    """Parse and authenticate one packet of any framing, or raise ``DecodeError``."""
    if len(data) > MAX_PACKET_BYTES:
        raise DecodeError(DropReason.OVERSIZE, f"{len(data)} bytes > {MAX_PACKET_BYTES}")
    head = data[:4]
    if head == _NETSTRING_START:
        return _decode_netstring(data, keyring)
    if head[:2] == SEALED_MAGIC:
        return _decode_sealed(data, keyring)
    if head == _CLASSIC_START:
        if data[4:5] == _SERIAL_SEALED:
            return _decode_serial_sealed(data, keyring)
        return _decode_classic(data, keyring)
    if len(data) < 4 and any(start.startswith(data) for start in _STARTS):
        raise DecodeError(DropReason.TRUNCATED, f"packet of {len(data)} bytes")
    raise DecodeError(DropReason.MALFORMED, "packet starts with neither ###\\n, >>>\\n nor A6 9E")


_STARTS: Final = (_NETSTRING_START, _CLASSIC_START, SEALED_MAGIC)


def _decode_sealed(data: bytes, keyring: KeyRing) -> Message:
    """Open one sealed packet (layout in the module docstring) and parse what it holds."""
    if len(data) < SEALED_HEADER_BYTES + TAG_BYTES:
        raise DecodeError(DropReason.TRUNCATED, f"sealed packet of {len(data)} bytes")
    if data[2] != SEALED_VERSION:
        raise DecodeError(DropReason.MALFORMED, f"sealed packet of version {data[2]}, not {SEALED_VERSION}")
    slot = data[3]
    key = keyring.keys.get(slot)
    if key is None:
        raise DecodeError(DropReason.UNKNOWN_KEY, f"no key {slot} in authkeys")
    if not key.encrypts:
        raise DecodeError(DropReason.BAD_AUTH, f"sealed with slot {slot}, which holds a {key.method} key")
    header = data[:SEALED_HEADER_BYTES]
    sessions = keyring._sessions
    session = header[3:20]  # slot and session id
    cipher = sessions.get(session)
    fresh = cipher is None
    if cipher is None:
        cipher = key.session_cipher(header[4:20])
    try:
        plain = cipher.decrypt(_nonce(header[20:28]), data[SEALED_HEADER_BYTES:], header)
    except InvalidTag:
        raise DecodeError(DropReason.BAD_AUTH, f"does not decrypt with {key.method} key {slot}") from None
    if fresh:
        while len(sessions) >= SESSION_CACHE_MAX:
            del sessions[next(iter(sessions))]
        sessions[session] = cipher
    return Message(tuple(_sealed_fields(plain)))


def _decode_serial_sealed(data: bytes, keyring: KeyRing) -> Message:
    end = data.find(b"\n" + _CLASSIC_END, 5)
    if end < 0:
        raise DecodeError(DropReason.TRUNCATED, "serial frame without <<<")
    if data[end + 5 :] not in (b"", b"\0"):
        raise DecodeError(DropReason.MALFORMED, f"{len(data) - end - 5} stray bytes after <<<")
    text = data[5:end]
    try:
        sealed = base64.b64decode(text, validate=True)
    except ValueError:
        raise DecodeError(DropReason.MALFORMED, "serial frame of a sealed packet is not base64") from None
    if base64.b64encode(sealed) != text:  # one packet, one spelling: no malleable padding bits
        raise DecodeError(DropReason.MALFORMED, "serial frame of a sealed packet is not canonical base64")
    if sealed[:2] != SEALED_MAGIC:
        raise DecodeError(DropReason.MALFORMED, "serial frame holds no sealed packet")
    return _decode_sealed(sealed, keyring)


def _sealed_fields(plain: bytes) -> list[Field]:
    """The fields of an opened packet: a netstring body, then nothing but NUL padding."""
    if plain[:4] != _NETSTRING_START:
        raise DecodeError(DropReason.MALFORMED, "opened packet does not start with ###")
    scanned = _scan_fields(plain)
    if scanned is None:
        fields, end = _parse_fields(plain)
    else:
        fields, end = scanned
    padding = plain[end + 4 :]
    if padding.count(0) != len(padding) or len(padding) >= PAD_BYTES:
        raise DecodeError(DropReason.MALFORMED, f"opened packet has {len(padding)} bytes after %%%")
    return fields


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


def _scan_fields(data: bytes) -> tuple[list[Field], int] | None:
    """The fast walk over the fields after ``###\n``: fields and where ``%%%\n`` starts, or None.

    It accepts exactly what ``_parse_fields`` accepts and returns the same result
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
    except IndexError:
        return None
    if data[pos : pos + 4] != _NETSTRING_END or len(fields) > MAX_FIELDS:
        return None
    return fields, pos


def _scan_netstring(data: bytes) -> tuple[list[Field], int, bytes] | None:
    """Fields, signed length and trailer token by the fast walk, or ``None`` for the careful one."""
    scanned = _scan_fields(data)
    if scanned is None:
        return None
    fields, pos = scanned
    trailer = _TRAILER_HEAD.match(data, pos)
    if trailer is None:
        return None
    token_at = trailer.end()
    end = token_at + int(trailer[1])
    try:
        if data[end] != 0x2C or (end + 1 != len(data) and data[end + 1 :] != b"\0"):
            return None
    except IndexError:
        return None
    return fields, pos + 4, data[token_at:end]


def _parse_fields(data: bytes) -> tuple[list[Field], int]:
    """The careful walk: same result as ``_scan_fields``, or the precise ``DecodeError``."""
    pos = 4
    fields: list[Field] = []
    while data[pos : pos + 4] != _NETSTRING_END:
        if pos >= len(data):
            raise DecodeError(DropReason.TRUNCATED, "packet ends before %%%")
        if len(fields) >= MAX_FIELDS:
            raise DecodeError(DropReason.MALFORMED, f"more than {MAX_FIELDS} fields")
        item, pos = _read_netstring(data, pos)
        fields.append(_parse_item(item, typed=True))
    return fields, pos


def _parse_netstring(data: bytes) -> tuple[list[Field], int, bytes]:
    """The careful walk: same result as ``_scan_netstring``, or the precise ``DecodeError``."""
    fields, pos = _parse_fields(data)
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
