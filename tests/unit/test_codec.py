"""The wire codec against real Heartbeat 3.0.6 captures (tests/vectors/heartbeat).

Every vector must decode and verify, carry the fields Heartbeat put in it, and come back
byte for byte when its fields are encoded again.  Damaged copies must fail with a
``DecodeError`` naming the right reason, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from hacluster.core import codec
from hacluster.core.codec import (
    FT_BINARY,
    FT_STRING,
    HMAC_METHODS,
    MAX_PACKET_BYTES,
    AuthKey,
    Field,
    KeyRing,
    Message,
    classic_text,
    crc32_heartbeat,
    decode,
    digest,
    encode,
    encode_classic,
)
from hacluster.errors import DecodeError, DropReason

SHA1 = AuthKey(1, "sha1", b"somesecret")
MD5 = AuthKey(2, "md5", b"md5secret")
CRC = AuthKey(3, "crc", b"")
UUID_N1 = bytes.fromhex("6ddce9d281bd4de58efa82ff4f077f01")
UUID_N2 = bytes.fromhex("b984993c31424ab0a659032ff8e96e38")


@dataclass(frozen=True)
class Vector:
    file: str
    key: AuthKey
    signed_len: int
    trailer: str
    inner: str
    fields: dict[str, str]
    """String fields we expect (first value of each name)."""
    absent: tuple[str, ...]
    srcuuid: bytes

    @property
    def keyring(self) -> KeyRing:
        """The receiver's authkeys: every key of the lab, signing with the vector's."""
        return KeyRing(self.key.index, {1: SHA1, 2: MD5, 3: CRC})


VECTORS = [
    Vector(
        "01-status-init-sha1.bin",
        SHA1,
        262,
        "1 5bb5d1b2000be946d89e25c4be44870bedcb5e29",
        "1 0e37d76573e5428c282fce20c26d1ea64b02599c",
        {"t": "status", "st": "init", "dt": "1388", "seq": "1", "hg": "6b02370c", "src": "hbr-n1"},
        (),
        UUID_N1,
    ),
    Vector(
        "02-status-active-sha1.bin",
        SHA1,
        263,
        "1 29f68de0fb53b2f3a30b5d511a6dba1abf96b17f",
        "1 a8202994a2d0875833b26d7695ce6f62781188b2",
        {"t": "status", "st": "active", "dt": "bb8", "seq": "d", "hg": "6b02370f", "src": "hbr-n2"},
        (),
        UUID_N2,
    ),
    Vector(
        "03-ns-ackmsg-sha1.bin",
        SHA1,
        240,
        "1 37554205f660375d05a76f89ea20ad4c53037641",
        "1 ae5a62523bdc31e8240d7eedad2dc4afc87928db",
        {"t": "NS_ackmsg", "dest": "hbr-n2", "ackseq": "7", "hg": "6b02370c", "src": "hbr-n1"},
        ("seq", "ld", "st"),
        UUID_N1,
    ),
    Vector(
        "04-ask-resources-sha1.bin",
        SHA1,
        260,
        "1 9bfbd2da86bc6de274f15d9a045e5bd9ea46e3be",
        "1 9274d3a6fd072094393769e7b99968bb277b9d39",
        {"t": "ask_resources", "rsc_hold": "all", "seq": "75", "hg": "6b02370c", "src": "hbr-n1"},
        ("st",),
        UUID_N1,
    ),
    Vector(
        "05-status-active-md5.bin",
        MD5,
        256,
        "2 e8f604aa6034b2a3a1cc42521284e672",
        "2 2a4e41e1bb06bcb09ec0717ac2429d10",
        {"t": "status", "st": "active", "dt": "bb8", "seq": "37", "hg": "6b02370f", "src": "hbr-n1"},
        (),
        UUID_N1,
    ),
    Vector(
        "06-short-token-crc.bin",
        CRC,
        232,
        "3 d006e15",
        "3 93d8a8ee",
        {"t": "status", "st": "active", "dt": "bb8", "seq": "13", "hg": "6b023710", "src": "hbr-n2"},
        (),
        UUID_N2,
    ),
]
IDS = [v.file[:2] for v in VECTORS]


def _read(vectors_dir: Path, vector: Vector) -> bytes:
    return (vectors_dir / vector.file).read_bytes()


def _reason(data: bytes, keyring: KeyRing) -> DropReason:
    with pytest.raises(DecodeError) as caught:
        decode(data, keyring)
    return caught.value.reason


# --- the captures ---------------------------------------------------------------------


def test_every_vector_is_listed(vectors_dir: Path) -> None:
    assert sorted(p.name for p in vectors_dir.glob("*.bin")) == sorted(v.file for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_decodes_with_heartbeats_fields(vectors_dir: Path, vector: Vector) -> None:
    message = decode(_read(vectors_dir, vector), vector.keyring)
    fields = message.as_dict()
    for name, value in vector.fields.items():
        assert message.get(name) == value, name
        assert fields[name] == value, name
    for name in vector.absent:
        assert message.get(name) is None, name
    uuid = [f for f in message.fields if f.name == "srcuuid"]
    assert uuid == [Field(FT_BINARY, "srcuuid", vector.srcuuid)]
    assert len(uuid[0].value) == 16
    assert all(f.ftype == FT_STRING for f in message.fields if f.name != "srcuuid" and f.name != "destuuid")
    assert message.fields[-1].name == "auth"


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_reencodes_byte_for_byte(vectors_dir: Path, vector: Vector) -> None:
    data = _read(vectors_dir, vector)
    message = decode(data, vector.keyring)
    assert encode(message.without("auth"), vector.keyring) == data


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_auth_values_match_the_capture_readme(vectors_dir: Path, vector: Vector) -> None:
    data = _read(vectors_dir, vector)
    message = decode(data, vector.keyring)
    assert message.get("auth") == vector.inner
    assert data[vector.signed_len - 4 : vector.signed_len] == b"%%%\n"
    assert data.endswith(b":%s," % vector.trailer.encode())
    number, hexdigest = vector.trailer.split(" ")
    assert int(number) == vector.key.index
    assert digest(vector.key, data[: vector.signed_len]) == hexdigest
    inner_hex = digest(vector.key, classic_text(message.fields))
    assert f"{vector.key.index} {inner_hex}" == vector.inner


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_classic_round_trip(vectors_dir: Path, vector: Vector) -> None:
    message = decode(_read(vectors_dir, vector), vector.keyring)
    classic = encode_classic(message.without("auth"), vector.keyring)
    assert classic.startswith(b">>>\n")
    assert classic.endswith(b"<<<\n\0")
    assert b"\nauth=" + vector.inner.encode() + b"\n<<<" in classic
    again = decode(classic, vector.keyring)
    assert again == message


def test_crc_digest_is_not_zero_padded(vectors_dir: Path) -> None:
    vector = VECTORS[5]
    data = _read(vectors_dir, vector)
    hexdigest = digest(CRC, data[: vector.signed_len])
    assert hexdigest == "d006e15"
    assert len(hexdigest) == 7
    assert data.endswith(b"9:3 d006e15,")


# --- damaged and hostile packets ------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS[:5], ids=IDS[:5])
def test_wrong_key_is_bad_auth(vectors_dir: Path, vector: Vector) -> None:
    wrong = KeyRing.single(vector.key.method, vector.key.secret + b"x", vector.key.index)
    assert _reason(_read(vectors_dir, vector), wrong) is DropReason.BAD_AUTH


def test_right_slot_wrong_method_is_bad_auth(vectors_dir: Path) -> None:
    as_md5 = KeyRing.single("md5", b"somesecret", 1)
    assert _reason(_read(vectors_dir, VECTORS[1]), as_md5) is DropReason.BAD_AUTH


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_unknown_key_slot(vectors_dir: Path, vector: Vector) -> None:
    other = KeyRing.single("sha1", b"somesecret", 7)
    assert _reason(_read(vectors_dir, vector), other) is DropReason.UNKNOWN_KEY


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_every_truncation_is_truncated_or_malformed(vectors_dir: Path, vector: Vector) -> None:
    data = _read(vectors_dir, vector)
    reasons = {_reason(data[:cut], vector.keyring) for cut in range(len(data))}
    assert reasons <= {DropReason.TRUNCATED, DropReason.MALFORMED}
    assert DropReason.TRUNCATED in reasons


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_every_flipped_byte_is_rejected(vectors_dir: Path, vector: Vector) -> None:
    data = _read(vectors_dir, vector)
    reasons = set()
    for at in range(len(data)):
        for mask in (0x01, 0x20, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[at] ^= mask
            reasons.add(_reason(bytes(damaged), vector.keyring))
    assert DropReason.BAD_AUTH in reasons
    assert DropReason.MALFORMED in reasons


@pytest.mark.parametrize("extra", [1, 1000])
def test_oversize(vectors_dir: Path, extra: int) -> None:
    data = _read(vectors_dir, VECTORS[1])
    padded = data + b"\0" * (MAX_PACKET_BYTES - len(data) + extra)
    assert _reason(padded, VECTORS[1].keyring) is DropReason.OVERSIZE


def test_largest_packet_is_parsed_not_dropped_as_oversize(vectors_dir: Path) -> None:
    data = _read(vectors_dir, VECTORS[1])
    padded = data + b"x" * (MAX_PACKET_BYTES - len(data))
    assert len(padded) == MAX_PACKET_BYTES
    assert _reason(padded, VECTORS[1].keyring) is DropReason.MALFORMED


@pytest.mark.parametrize("stray", [b"x", b"\0\0", b",", b"\n", b"\0x"])
def test_stray_bytes_after_trailer(vectors_dir: Path, stray: bytes) -> None:
    assert _reason(_read(vectors_dir, VECTORS[1]) + stray, VECTORS[1].keyring) is DropReason.MALFORMED


def test_one_nul_after_trailer_is_accepted(vectors_dir: Path) -> None:
    """Heartbeat's read child appends a NUL before parsing; we take either form."""
    data = _read(vectors_dir, VECTORS[1])
    assert decode(data + b"\0", VECTORS[1].keyring) == decode(data, VECTORS[1].keyring)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DropReason.TRUNCATED),
        (b"##", DropReason.TRUNCATED),
        (b">>>", DropReason.TRUNCATED),
        (b"hello world", DropReason.MALFORMED),
        (b"###\n", DropReason.TRUNCATED),
        (b"###\n%%%\n", DropReason.TRUNCATED),
        (b"###\n12345678:(0)a=b,%%%\n", DropReason.MALFORMED),
        (b"###\n9999999:(0)a=b,%%%\n", DropReason.TRUNCATED),
        (b"###\n5:(0)a=b,%%%\n", DropReason.MALFORMED),
        (b"###\n+4:(0)a=,%%%\n", DropReason.MALFORMED),
        (b"###\n 6:(0)a=b,%%%\n", DropReason.MALFORMED),
        (b"###\n5:(9)a=b,%%%\n", DropReason.MALFORMED),
        (b"###\n5:(0)=ab,%%%\n", DropReason.MALFORMED),
        (b"###\n5:(0)abc,%%%\n", DropReason.MALFORMED),
        (b"###\n3:a=b,%%%\n", DropReason.MALFORMED),
        (b"###\n6:(0)\xff=b,%%%\n", DropReason.MALFORMED),
        (b"###\n%%%\n9:1 abc", DropReason.TRUNCATED),
        (b"###\n%%%\n4:1abc,", DropReason.MALFORMED),
        (b"###\n%%%\n4:x abc,", DropReason.MALFORMED),
        (b">>>\nt=status\n<<<\n", DropReason.BAD_AUTH),
        (b">>>\nt=status\n", DropReason.TRUNCATED),
        (b">>>\n(1)u=***\nauth=1 00\n<<<\n", DropReason.MALFORMED),
    ],
)
def test_hand_made_damage(data: bytes, reason: DropReason) -> None:
    assert _reason(data, KeyRing.single("sha1", b"k")) is reason


def test_too_many_fields_is_malformed() -> None:
    keyring = KeyRing.single("sha1", b"k")
    fine = Message.of(*[("f", "x")] * codec.MAX_FIELDS)
    assert len(decode(encode(fine, keyring, inner_auth=False), keyring).fields) == codec.MAX_FIELDS
    crowded = Message.of(*[("f", "x")] * (codec.MAX_FIELDS + 1))
    assert _reason(encode(crowded, keyring, inner_auth=False), keyring) is DropReason.MALFORMED


# --- our own packets ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sha256", "sha512", "sha1", "md5", "crc"])
def test_round_trip_every_method(method: str) -> None:
    keyring = KeyRing.single(method, b"" if method == "crc" else b"a longer secret", 4)
    message = Message.of(("t", "status"), ("src", "n1"), ("srcuuid", UUID_N1), ("v", "a,b=c%%%\n:9"))
    packet = encode(message, keyring)
    decoded = decode(packet, keyring)
    assert decoded.without("auth") == message
    assert decoded.get("auth") is not None
    serial = message.without("v").with_fields(("w", "x=y,z"))
    assert decode(encode_classic(serial, keyring), keyring).without("auth") == serial
    expected_len = {"sha256": 64, "sha512": 128, "sha1": 40, "md5": 32}.get(method)
    token = packet.rsplit(b":", 1)[1][:-1]
    if expected_len is not None:
        assert len(token) == 2 + expected_len


def test_values_may_hold_separators_and_netstring_lookalikes() -> None:
    keyring = KeyRing.single("sha256", b"s")
    message = Message.of(
        ("a", "1,5:(0)x=y,"), ("b", b"%%%\n3:1 a,"), ("c", ""), ("d", "=="), ("e", b",\x00\xff")
    )
    assert decode(encode(message, keyring), keyring).without("auth") == message


def test_message_helpers() -> None:
    message = Message.of(("t", "a"), ("t", "b"), ("u", b"\xff"))
    assert message.get("t") == "a"
    assert message.raw("u") == b"\xff"
    assert message.get("missing") is None
    assert message.as_dict() == {"t": "a", "u": "\ufffd"}
    assert message.without("t") == Message((Field(FT_BINARY, "u", b"\xff"),))
    assert message.with_fields(("v", "c")).fields[-1] == Field(FT_STRING, "v", b"c")


def test_encode_classic_refuses_newlines() -> None:
    with pytest.raises(ValueError, match="newline"):
        encode_classic(Message.of(("t", "a\nb")), KeyRing.single("sha1", b"k"))


def test_key_secret_stays_out_of_repr() -> None:
    assert "somesecret" not in repr(KeyRing.single("sha1", b"somesecret"))


# --- the digests ----------------------------------------------------------------------


def _crc_bitwise(data: bytes) -> int:
    """The CRC spelt out one bit at a time (the definition in heartbeat-vectors/verify.py)."""
    register = 0
    for byte in data:
        register ^= byte << 24
        for _ in range(8):
            carry = register & 0x80000000
            register = (register << 1) & 0xFFFFFFFF
            if carry:
                register ^= 0x04C11DB7
    return register ^ 0xFFFFFFFF


def test_crc32_known_values() -> None:
    # CRC-32/CKSUM's catalogue check value (reveng), which leaves out cksum's length step.
    assert crc32_heartbeat(b"123456789") == 0x765E7680
    assert crc32_heartbeat(b"") == 0xFFFFFFFF


def test_crc32_against_bitwise_definition() -> None:
    rng = random.Random(694)
    for size in [*range(70), 255, 256, 1000, 4099]:
        data = rng.randbytes(size)
        assert crc32_heartbeat(data) == _crc_bitwise(data), size


def test_crc32_plus_length_step_is_posix_cksum() -> None:
    """``cksum`` feeds the length (low byte first) through the same CRC before its NOT."""
    data = b"The quick brown fox jumps over the lazy dog\n"
    length = len(data).to_bytes(1, "little")
    assert crc32_heartbeat(data + length) == 2_382_472_371  # `printf '...\n' | cksum`


@pytest.mark.parametrize("method", HMAC_METHODS)
@pytest.mark.parametrize("key_len", [0, 1, 10, 63, 64, 65, 127, 128, 129, 300])
def test_hmac_matches_the_standard_library(method: str, key_len: int) -> None:
    rng = random.Random(key_len)
    secret = rng.randbytes(key_len)
    key = AuthKey(1, method, secret)
    for size in (0, 1, 263, 5000):
        data = rng.randbytes(size)
        assert digest(key, data) == hmac.new(secret, data, getattr(hashlib, method)).hexdigest()
