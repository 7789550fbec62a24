"""Property tests for the codec: hostile bytes never escape as anything but ``DecodeError``.

The invariant (STYLE.md §7, as in h11's fuzz harness): ``decode`` returns a ``Message`` or
raises ``DecodeError``, whatever it is given.  We also check that the fast netstring walk
agrees exactly with the careful one, and that our own packets round-trip.  The sealed
(AEAD) path gets the same: random bytes behind its magic, mutated sealed packets (UDP and
serial form), and anything a key holder might seal, which is parsed as carefully as a
signed packet once it is opened.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.core import codec
from hacluster.core.codec import FT_BINARY, FT_STRING, KeyRing, Message, decode, encode, encode_classic
from hacluster.errors import DecodeError

VECTORS = sorted((Path(__file__).resolve().parent.parent / "vectors" / "heartbeat").glob("*.bin"))
PACKETS = [path.read_bytes() for path in VECTORS]
SIGNED = [packet[: packet.rindex(b"%%%\n") + 4] for packet in PACKETS]
KEYRING = KeyRing(1, {1: codec.AuthKey(1, "sha1", b"somesecret"), 2: codec.AuthKey(2, "md5", b"md5secret")})
KEYRING_ANY = KeyRing(1, {**KEYRING.keys, 3: codec.AuthKey(3, "crc", b"")})
"""Every vector's key (vector 06 is crc in slot 3)."""


def fuzz(examples: int) -> settings:
    """Example counts are sized so that the whole file runs in about 20 s on a loaded CI box."""
    return settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )


def _decodes_or_drops(data: bytes, keyring: KeyRing = KEYRING) -> Message | None:
    """The invariant: a Message or a DecodeError; any other exception fails the test."""
    try:
        message = decode(data, keyring)
    except DecodeError:
        return None
    assert isinstance(message, Message)
    return message


def _structure_agrees(data: bytes) -> None:
    """The fast walk accepts exactly what the careful walk accepts, with the same result."""
    if not data.startswith(b"###\n") or len(data) > codec.MAX_PACKET_BYTES:
        return
    fast = codec._scan_netstring(data)
    try:
        careful = codec._parse_netstring(data)
    except DecodeError:
        assert fast is None, data
        return
    assert fast == careful, data


# --- arbitrary and mutated bytes ------------------------------------------------------

PREFIXES = st.sampled_from([b"", b"###\n", b">>>\n", b"###\n11:(0)t=status,"])


@fuzz(2000)
@given(prefix=PREFIXES, body=st.binary(max_size=400))
def test_any_bytes_decode_or_drop(prefix: bytes, body: bytes) -> None:
    data = prefix + body
    _decodes_or_drops(data)
    _structure_agrees(data)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(PACKETS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "digits", "cut"]))
        if kind == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b",", b":", b"=", b"%%%\n"])
            )
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "digits":
            # Aim at a netstring length: put a run of digits just before a ":".
            colon = data.find(b":", at)
            if colon > 0:
                run = draw(st.sampled_from([b"9" * 7, b"9" * 8, b"0", b"00000011", b"4294967296", b""]))
                start = max(0, colon - draw(st.integers(1, 3)))
                data[start:colon] = run
        elif kind == "cut":
            del data[at:]
    return bytes(data)


@fuzz(1000)
@given(data=mutated_packets())
def test_mutated_captures_decode_or_drop(data: bytes) -> None:
    message = _decodes_or_drops(data)
    _structure_agrees(data)
    if message is not None:
        # Only an authentic packet gets through, so its signed bytes are a capture's.
        assert any(data.startswith(signed) for signed in SIGNED)


@fuzz(400)
@given(data=st.sampled_from(PACKETS), at=st.integers(0, 400), junk=st.binary(min_size=1, max_size=16))
def test_captures_with_junk_spliced_in(data: bytes, at: int, junk: bytes) -> None:
    spliced = data[:at] + junk + data[at:]
    _decodes_or_drops(spliced)
    _structure_agrees(spliced)


# --- structurally valid packets, our own and odd ones ---------------------------------

NAMES = (
    st.lists(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"), min_size=1, max_size=12)
    .map("".join)
    .filter(lambda n: n != "auth")
)


@st.composite
def messages(draw: st.DrawFn, *, classic: bool) -> Message:
    fields = []
    for _ in range(draw(st.integers(0, 10))):
        name = draw(NAMES)
        ftype = draw(st.integers(0, 5))
        if ftype == FT_STRING and classic:
            value = draw(st.binary(max_size=40).filter(lambda v: b"\n" not in v))
        else:
            value = draw(st.binary(max_size=40))
        fields.append(codec.Field(ftype, name, value))
    return Message(tuple(fields))


KEYRINGS = st.sampled_from(
    [
        KEYRING,
        KeyRing.single("crc", b"", 3),
        KeyRing.single("sha256", b"k" * 200, 9),
        KeyRing.single("sha512", b"", 15),
    ]
)


@fuzz(300)
@given(message=messages(classic=False), keyring=KEYRINGS, inner=st.booleans())
def test_netstring_round_trip(message: Message, keyring: KeyRing, inner: bool) -> None:
    packet = encode(message, keyring, inner_auth=inner)
    decoded = decode(packet, keyring)
    assert decoded.without("auth") == message
    assert (decoded.get("auth") is not None) == inner
    assert codec._scan_netstring(packet) is not None, "our own packets take the fast path"
    _structure_agrees(packet)


@fuzz(300)
@given(message=messages(classic=True), keyring=KEYRINGS)
def test_classic_round_trip(message: Message, keyring: KeyRing) -> None:
    decoded = decode(encode_classic(message, keyring), keyring)
    assert decoded.without("auth") == message


@fuzz(400)
@given(
    items=st.lists(
        st.tuples(st.sampled_from(b"012345(x"), st.binary(max_size=6), st.binary(max_size=12)), max_size=8
    ),
    tail=st.sampled_from([b"%%%\n", b"%%%\n3:1 a,", b"%%%\n3:1 a,\0", b"", b"%%\n"]),
)
def test_well_framed_odd_fields_agree(items: list[tuple[int, bytes, bytes]], tail: bytes) -> None:
    """Right lengths, odd contents: empty or non-ASCII names, stray '=' and ',' everywhere."""
    body = b""
    for ftype, name, value in items:
        item = b"(" + bytes([ftype]) + b")" + name + b"=" + value
        body += b"%d:%s," % (len(item), item)
    data = b"###\n" + body + tail
    _structure_agrees(data)
    _decodes_or_drops(data)


def test_binary_fields_keep_their_type() -> None:
    message = Message((codec.Field(FT_BINARY, "u", b"\n\0,"),))
    assert decode(encode_classic(message, KEYRING), KEYRING).fields[0] == message.fields[0]


# --- the sealed (AEAD) path --------------------------------------------------------------

SEALING = KeyRing(
    3,
    {
        **KEYRING.keys,
        3: codec.AuthKey(3, "aes256gcm", b"an aes secret of some length"),
        4: codec.AuthKey(4, "chacha20poly1305", b"a chacha secret of some length"),
    },
)
"""Signed and sealed keys side by side, as during a migration from sha1 to encryption."""
CHACHA = KeyRing(4, dict(SEALING.keys))
SEALED = [
    encode(decode(packet, KEYRING_ANY).without("auth"), ring, sealer=codec.Sealer(bytes([n]) * 16))
    for n, packet in enumerate(PACKETS)
    for ring in (SEALING, CHACHA)
]


def _agrees_on_plaintext(plain: bytes) -> None:
    """The fast and careful walks agree on what an opened packet holds, as on signed ones."""
    if not plain.startswith(b"###\n"):
        return
    fast = codec._scan_fields(plain)
    try:
        careful = codec._parse_fields(plain)
    except DecodeError:
        assert fast is None, plain
        return
    assert fast == careful, plain


@fuzz(1500)
@given(
    prefix=st.sampled_from([codec.SEALED_MAGIC, codec.SEALED_MAGIC + b"\x01\x03", b">>>\n~"]),
    body=st.binary(max_size=400),
)
def test_any_bytes_on_the_sealed_path_are_dropped(prefix: bytes, body: bytes) -> None:
    assert _decodes_or_drops(prefix + body, SEALING) is None, "a forgery passed"


@st.composite
def mutated_sealed(draw: st.DrawFn) -> tuple[bytes, bytes]:
    original = draw(st.sampled_from(SEALED))
    data = bytearray(original)
    if draw(st.booleans()):
        data = bytearray(codec.serial_frame(original))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del data[at:]
    return original, bytes(data)


@fuzz(1000)
@given(case=mutated_sealed())
def test_mutated_sealed_packets_are_dropped(case: tuple[bytes, bytes]) -> None:
    original, data = case
    message = _decodes_or_drops(data, SEALING)
    if message is not None:
        # Only the untouched packet (or its serial form, padded with a NUL) opens.
        assert data in (original, codec.serial_frame(original), codec.serial_frame(original)[:-1])


@fuzz(800)
@given(
    plain=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda body: b"###\n" + body, st.binary(max_size=300)),
        st.builds(
            lambda body, pad: b"###\n" + body + b"%%%\n" + bytes(pad),
            st.binary(max_size=200),
            st.integers(0, 40),
        ),
    ),
    slot=st.sampled_from([3, 4]),
)
def test_sealed_hostile_plaintext_decodes_or_drops(plain: bytes, slot: int) -> None:
    """A key holder may seal anything: the opened bytes get the same scrutiny as signed ones."""
    key = SEALING.keys[slot]
    session = bytes(range(16))
    header = codec.SEALED_MAGIC + bytes([1, slot]) + session + (5).to_bytes(8, "big")
    packet = header + key.session_cipher(session).encrypt(bytes(4) + header[20:], plain, header)
    _decodes_or_drops(packet, SEALING)
    _agrees_on_plaintext(plain)


@fuzz(300)
@given(message=messages(classic=False), ring=st.sampled_from([SEALING, CHACHA]), serial=st.booleans())
def test_sealed_round_trip(message: Message, ring: KeyRing, serial: bool) -> None:
    sealer = codec.Sealer(b"s" * 16)
    packet = encode(message, ring, sealer=sealer)
    if serial:
        packet = codec.serial_frame(packet)
    assert decode(packet, ring) == message
