"""The sealed (AEAD) packets of ``codec``: layout, keys, nonces, refusals, serial framing."""

from __future__ import annotations

import pytest

from hacluster.core import codec
from hacluster.core.codec import (
    PAD_BYTES,
    SEALED_HEADER_BYTES,
    SEALED_MAGIC,
    SESSION_CACHE_MAX,
    TAG_BYTES,
    AuthKey,
    KeyRing,
    Message,
    Sealer,
    decode,
    encode,
    encode_classic,
    serial_frame,
)
from hacluster.errors import DecodeError, DropReason
from hacluster.shell.links.serial import FrameReader

SECRET = b"0123456789abcdef0123456789abcdef"
STATUS = Message.of(
    ("t", "status"),
    ("st", "active"),
    ("dt", "1f4"),
    ("src", "nodealpha"),
    ("seq", "2a"),
    ("hg", "67f0"),
    ("ts", "68a0b1c2"),
    ("ttl", "4"),
)


def sealer(fill: int = 1) -> Sealer:
    return Sealer(bytes([fill]) * 16)


@pytest.fixture(params=codec.AEAD_METHODS)
def ring(request: pytest.FixtureRequest) -> KeyRing:
    return KeyRing.single(request.param, SECRET, index=3)


def reason(data: bytes, keyring: KeyRing) -> DropReason:
    with pytest.raises(DecodeError) as caught:
        decode(data, keyring)
    return caught.value.reason


def test_round_trip_without_any_auth_field(ring: KeyRing) -> None:
    packet = encode(STATUS.with_fields(("auth", "1 abc")), ring, sealer=sealer())
    assert decode(packet, ring) == STATUS


def test_header_layout(ring: KeyRing) -> None:
    s = sealer(7)
    first, second = encode(STATUS, ring, sealer=s), encode(STATUS, ring, sealer=s)
    for n, packet in enumerate((first, second), start=1):
        assert packet[:2] == SEALED_MAGIC
        assert packet[2] == 1, "version"
        assert packet[3] == 3, "slot"
        assert packet[4:20] == bytes([7]) * 16, "session id"
        assert int.from_bytes(packet[20:28], "big") == n, "counter"
    assert (len(first) - SEALED_HEADER_BYTES - TAG_BYTES) % PAD_BYTES == 0


def test_nothing_of_the_message_is_readable(ring: KeyRing) -> None:
    packet = encode(STATUS, ring, sealer=sealer())
    for word in (b"nodealpha", b"status", b"active", b"src", b"(0)", b"###", b"%%%"):
        assert word not in packet


def test_padding_hides_small_differences_of_length(ring: KeyRing) -> None:
    up = STATUS.without("st").with_fields(("st", "up"))
    s = sealer()
    assert len(encode(up, ring, sealer=s)) == len(encode(STATUS, ring, sealer=s))


def test_nonces_never_repeat_across_keys_and_key_changes() -> None:
    s = sealer()
    first = KeyRing.single("aes256gcm", SECRET)
    second = KeyRing(2, {1: first.keys[1], 2: AuthKey(2, "chacha20poly1305", b"another secret 123")})
    counters = []
    for keyring in (first, second, first, second, first):
        packet = encode(STATUS, keyring, sealer=s)
        counters.append(int.from_bytes(packet[20:28], "big"))
        assert decode(packet, keyring) == STATUS
    assert counters == [1, 2, 3, 4, 5], "one counter for the whole process"


def test_two_senders_with_one_secret_use_different_keys(ring: KeyRing) -> None:
    a, b = encode(STATUS, ring, sealer=sealer(1)), encode(STATUS, ring, sealer=sealer(2))
    assert a[20:28] == b[20:28], "same counter"
    assert a[SEALED_HEADER_BYTES:] != b[SEALED_HEADER_BYTES:], "different session keys"
    # Moving one sender's ciphertext under the other's header cannot pass.
    assert reason(b[:SEALED_HEADER_BYTES] + a[SEALED_HEADER_BYTES:], ring) is DropReason.BAD_AUTH


def test_cluster_name_salts_the_key() -> None:
    here = KeyRing.single("aes256gcm", SECRET)
    there = here.for_cluster("production")
    assert here.for_cluster("linux-ha") is here
    assert there.for_cluster("production") is there
    packet = encode(STATUS, here, sealer=sealer())
    assert reason(packet, there) is DropReason.BAD_AUTH
    assert decode(encode(STATUS, there, sealer=sealer()), there) == STATUS


def test_refusals(ring: KeyRing) -> None:
    packet = encode(STATUS, ring, sealer=sealer())
    assert reason(packet[:40], ring) is DropReason.TRUNCATED
    assert reason(packet[:-1], ring) is DropReason.BAD_AUTH
    assert reason(packet[:2] + b"\x02" + packet[3:], ring) is DropReason.MALFORMED
    assert reason(packet[:3] + b"\x05" + packet[4:], ring) is DropReason.UNKNOWN_KEY
    for at in (3, 10, 25, 40, len(packet) - 1):  # header (AAD), ciphertext, tag
        flipped = bytearray(packet)
        flipped[at] ^= 0x01
        assert reason(bytes(flipped), ring) in (DropReason.BAD_AUTH, DropReason.UNKNOWN_KEY)
    other = KeyRing.single(ring.signing_key.method, b"not the secret at all", index=3)
    assert reason(packet, other) is DropReason.BAD_AUTH


def test_a_slot_holding_the_other_kind_of_key_is_refused() -> None:
    mixed = KeyRing(1, {1: AuthKey(1, "sha1", b"hmac secret"), 2: AuthKey(2, "aes256gcm", SECRET)})
    sealed_in_1 = encode(STATUS, KeyRing(1, {1: AuthKey(1, "aes256gcm", SECRET)}), sealer=sealer())
    assert reason(sealed_in_1, mixed) is DropReason.BAD_AUTH
    signed_in_2 = encode(STATUS, KeyRing(2, {2: AuthKey(2, "sha1", b"hmac secret")}))
    assert reason(signed_in_2, mixed) is DropReason.BAD_AUTH
    # Both kinds are accepted side by side, each in its own slot: the migration path.
    assert decode(encode(STATUS, mixed), mixed).without("auth") == STATUS
    sending_2 = KeyRing(2, dict(mixed.keys))
    assert decode(encode(STATUS, sending_2, sealer=sealer()), mixed) == STATUS


def test_forged_headers_do_not_fill_the_session_cache(ring: KeyRing) -> None:
    packet = encode(STATUS, ring, sealer=sealer())
    for n in range(3 * SESSION_CACHE_MAX):
        forged = packet[:4] + n.to_bytes(16, "big") + packet[20:]
        assert reason(forged, ring) is DropReason.BAD_AUTH
    assert len(ring._sessions) == 0
    decode(packet, ring)
    assert len(ring._sessions) == 1
    for n in range(2 * SESSION_CACHE_MAX):
        decode(encode(STATUS, ring, sealer=Sealer(n.to_bytes(16, "big"))), ring)
    assert len(ring._sessions) == SESSION_CACHE_MAX


def test_an_opened_packet_with_junk_after_the_fields_is_malformed(ring: KeyRing) -> None:
    key = ring.signing_key
    cipher = key.session_cipher(bytes(16))
    header = SEALED_MAGIC + bytes([1, key.index]) + bytes(16) + (9).to_bytes(8, "big")
    nonce = bytes(4) + header[20:]
    for plain, why in (
        (b"###\n%%%\n" + b"\0" * PAD_BYTES, "too much padding"),
        (b"###\n%%%\nX", "not padding"),
        (b"%%%\n", "no start"),
        (b"###\n3:(0)a,", "no end"),
    ):
        packet = header + cipher.encrypt(nonce, plain, header)
        with pytest.raises(DecodeError) as caught:
            decode(packet, ring)
        assert caught.value.reason in (DropReason.MALFORMED, DropReason.TRUNCATED), why
    empty = header + cipher.encrypt(nonce, b"###\n%%%\n", header)
    assert decode(empty, ring) == Message(())


def test_serial_frame_crosses_a_serial_line(ring: KeyRing) -> None:
    frame = encode_classic(STATUS, ring, sealer=sealer())
    assert frame.startswith(b">>>\n~")
    assert frame.endswith(b"\n<<<\n\0")
    assert max(frame) < 0x80, "seven-bit clean"
    assert b"\r" not in frame
    assert b"\0" not in frame[:-1]
    reader = FrameReader()
    [received] = reader.feed(frame[:7]) + reader.feed(frame[7:])
    assert decode(received, ring) == STATUS
    packet = encode(STATUS, ring, sealer=sealer(9))
    assert decode(serial_frame(packet), ring) == STATUS


def test_serial_frame_refusals(ring: KeyRing) -> None:
    frame = serial_frame(encode(STATUS, ring, sealer=sealer()))
    assert reason(frame[:20], ring) is DropReason.TRUNCATED
    assert reason(frame[:-1] + b"x", ring) is DropReason.MALFORMED
    assert reason(b">>>\n~not base64!\n<<<\n", ring) is DropReason.MALFORMED
    assert reason(b">>>\n~" + b"AAAA" * 20 + b"\n<<<\n", ring) is DropReason.MALFORMED


def test_describe_names_slots_and_methods_only() -> None:
    ring = KeyRing(2, {1: AuthKey(1, "sha1", b"hmac-secret"), 2: AuthKey(2, "aes256gcm", SECRET)})
    assert ring.describe() == "1 sha1, 2 aes256gcm (sending)"
    assert SECRET.decode() not in repr(ring)


def test_serial_frame_must_be_canonical_base64(ring: KeyRing) -> None:
    """Found by bench/bench_fuzz.py: the last base64 digit's spare bits changed nothing."""
    frame = serial_frame(encode(STATUS, ring, sealer=sealer()))
    text = frame[5:-6]
    assert text.endswith(b"=") or len(text) % 4 == 0
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = text.rstrip(b"=")[-1:]
    spare = alphabet[(alphabet.index(last) ^ 1) % 64 : (alphabet.index(last) ^ 1) % 64 + 1]
    tweaked = frame[:5] + text.rstrip(b"=")[:-1] + spare + text[len(text.rstrip(b"=")) :] + frame[-6:]
    if len(text.rstrip(b"=")) % 4 in (2, 3):  # a digit with spare bits: same bytes, other spelling
        assert reason(tweaked, ring) is DropReason.MALFORMED
