"""authkeys: Heartbeat's rules, our two extra methods, and messages that never show a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster.config import load_authkeys, read_authkeys
from hacluster.config.authkeys import (
    AuthkeysEditError,
    parse_authkeys_text,
    with_key_added,
    with_key_removed,
    with_signing_slot,
)
from hacluster.core.codec import AuthKey, KeyRing
from hacluster.errors import ConfigError


def write_keys(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "authkeys"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auth 1\n1 sha1 s3cret\n", KeyRing(1, {1: AuthKey(1, "sha1", b"s3cret")})),
        ("auth 0\n0 md5 k\n", KeyRing(0, {0: AuthKey(0, "md5", b"k")})),
        ("auth 15\n15 crc\n", KeyRing(15, {15: AuthKey(15, "crc", b"")})),
        ("auth 2\n2 sha256 abc\n", KeyRing(2, {2: AuthKey(2, "sha256", b"abc")})),
        ("auth 3\n3 sha512 abc\n", KeyRing(3, {3: AuthKey(3, "sha512", b"abc")})),
        (
            "auth 3\n1 sha1 old\n3 aes256gcm 0123456789abcdef0\n",
            KeyRing(3, {1: AuthKey(1, "sha1", b"old"), 3: AuthKey(3, "aes256gcm", b"0123456789abcdef0")}),
        ),
        (
            "auth 4\n4 chacha20poly1305 0123456789abcdef0\n",
            KeyRing(4, {4: AuthKey(4, "chacha20poly1305", b"0123456789abcdef0")}),
        ),
        (
            "# comment\n\n   auth 2\n  1 md5 old\n2 sha1 new\n3 crc\n",
            KeyRing(
                2, {1: AuthKey(1, "md5", b"old"), 2: AuthKey(2, "sha1", b"new"), 3: AuthKey(3, "crc", b"")}
            ),
        ),
        ("auth 1\n1 sha1 key#with#hashes\n", KeyRing(1, {1: AuthKey(1, "sha1", b"key#with#hashes")})),
        ("auth 1\n1 sha1 caf\u00e9\n", KeyRing(1, {1: AuthKey(1, "sha1", "caf\u00e9".encode())})),
    ],
)
def test_valid_files(tmp_path: Path, text: str, expected: KeyRing) -> None:
    result = read_authkeys(write_keys(tmp_path, text))
    assert result.problems == []
    assert result.keyring == expected


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700, 0o711, 0o620])
def test_private_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    assert load_authkeys(write_keys(tmp_path, "auth 1\n1 sha1 k\n", mode)).sign_index == 1


def error_cases() -> list[object]:
    return [
        pytest.param(
            "auth 1\n1 sha1 k\n",
            0o644,
            ["{p}: mode 0644 lets group or others read the cluster keys; run chmod 600 {p}"],
            id="mode-0644",
        ),
        pytest.param(
            "auth 1\n1 sha1 k\n",
            0o604,
            ["{p}: mode 0604 lets group or others read the cluster keys; run chmod 600 {p}"],
            id="mode-0604",
        ),
        pytest.param(
            "auth 2\n1 sha1 k\n",
            0o600,
            ["{p}:1: auth 2: there is no key line for slot 2; add '2 sha1 <secret>' below it"],
            id="auth-names-missing-key",
        ),
        pytest.param(
            "1 sha1 k\nauth 1\n",
            0o600,
            [
                '{p}:2: auth 1: must come before its key line {p}:1 (Heartbeat refuses this order with "Auth '
                'Key [1] not found"); move auth 1 above {p}:1'
            ],
            id="auth-after-key",
        ),
        pytest.param(
            "1 sha1 k\n",
            0o600,
            ["{p}: no 'auth N' line; add e.g. 'auth 1' above the key line '1 sha1 <secret>'"],
            id="no-auth",
        ),
        pytest.param(
            "auth 1\n1 crc k\n",
            0o600,
            ["{p}:2: 1 crc: crc takes no key; remove the key or use sha1"],
            id="crc-with-key",
        ),
        pytest.param(
            "auth 1\n1 md5\n",
            0o600,
            ["{p}:2: 1 md5: md5 needs a key; write '1 md5 <secret>'"],
            id="md5-without-key",
        ),
        pytest.param(
            "auth 1\n1 sha1 k\n16 sha1 k\n",
            0o600,
            ["{p}:3: 16 sha1: slot 16 is out of range; Heartbeat has slots 0..15"],
            id="slot-16",
        ),
        pytest.param(
            "auth 16\n",
            0o600,
            [
                "{p}:1: auth 16: slot must be 0..15; choose a slot below 16",
                "{p}: no 'auth N' line; add e.g. 'auth 1' above the key line '1 sha1 <secret>'",
            ],
            id="auth-16",
        ),
        pytest.param(
            "auth 1\n1 sha3 k\n",
            0o600,
            [
                "{p}:2: 1 sha3: unknown method; expected one of crc, md5, sha1, sha256, sha512, aes256gcm, "
                "chacha20poly1305; did you mean sha1?"
            ],
            id="unknown-method",
        ),
        pytest.param(
            "auth 1\n1 blowfish k\n",
            0o600,
            [
                "{p}:2: 1 blowfish: unknown method; expected one of crc, md5, sha1, sha256, sha512, aes256gcm, "
                "chacha20poly1305"
            ],
            id="unknown-method-no-guess",
        ),
        pytest.param(
            "auth 1\n1 sha1 k\n1 md5 j\n",
            0o600,
            ["{p}:3: 1 md5: slot 1 is already defined at {p}:2; give each key its own slot number"],
            id="duplicate-slot",
        ),
        pytest.param(
            "auth 1\nauth 2\n1 sha1 k\n2 sha1 j\n",
            0o600,
            ["{p}:2: auth 2: the signing key is already chosen at {p}:1 (auth 1); keep only one auth line"],
            id="two-auth-lines",
        ),
        pytest.param(
            "auth one\n",
            0o600,
            [
                "{p}:1: auth one: expected 'auth N' with one slot number 0..15",
                "{p}: no 'auth N' line; add e.g. 'auth 1' above the key line '1 sha1 <secret>'",
            ],
            id="auth-not-a-number",
        ),
        pytest.param(
            "auth 1\n1 sha1 k\nSuperSecretKeyOnItsOwnLine\n",
            0o600,
            [
                "{p}:3: this line is neither 'auth N' nor 'N method [key]' (e.g. '1 sha1 <secret>'); fix or remove it"
            ],
            id="stray-line",
        ),
    ]


@pytest.mark.parametrize(("text", "mode", "expected"), error_cases())
def test_errors(tmp_path: Path, text: str, mode: int, expected: list[str]) -> None:
    path = write_keys(tmp_path, text, mode)
    result = read_authkeys(path)
    assert result.problems == [line.format(p=path) for line in expected]
    assert result.keyring is None
    with pytest.raises(ConfigError) as caught:
        load_authkeys(path)
    assert caught.value.problems == result.problems


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "authkeys"
    with pytest.raises(ConfigError) as caught:
        load_authkeys(path)
    assert caught.value.problems == [
        f"{path}: authkeys file not found (hacluster reads it from the directory of ha.cf); create it with the "
        f"lines 'auth 1' and '1 sha1 <long random secret>', then chmod 600 {path}"
    ]


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    (tmp_path / "authkeys").mkdir()
    assert read_authkeys(tmp_path / "authkeys").problems == [
        f"{tmp_path / 'authkeys'}: authkeys is not a regular file; replace it with a file of keys"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_keys(tmp_path, "auth 1\n1 crc k\n2 md5\n20 sha1 x\n", 0o644)
    assert len(read_authkeys(path).problems) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "auth 1\n1 crc\n",
            "{p}:1: auth 1: signs with crc; crc is a checksum, not authentication: anyone on the network can "
            "forge packets. Use sha1 (works with Heartbeat) or aes256gcm (hacluster only, encrypts)",
        ),
        (
            "auth 1\n1 md5 k\n",
            "{p}:1: auth 1: signs with md5; HMAC-MD5 is weak. Use sha1 (works with Heartbeat) or aes256gcm "
            "(hacluster only, encrypts)",
        ),
        (
            "auth 1\n1 sha1 two words\n",
            "{p}:2: 1 sha1: only the first word of the key is used and the rest of the line is ignored, as "
            "Heartbeat does; remove the extra words or join them",
        ),
    ],
)
def test_warnings(tmp_path: Path, text: str, expected: str) -> None:
    path = write_keys(tmp_path, text)
    result = read_authkeys(path)
    assert result.problems == []
    assert result.warnings == [expected.format(p=path)]


def test_weak_keys_that_do_not_sign_give_no_warning(tmp_path: Path) -> None:
    result = read_authkeys(write_keys(tmp_path, "auth 2\n1 md5 old\n2 sha1 new\n"))
    assert result.warnings == []


def test_extra_words_are_dropped_from_the_key(tmp_path: Path) -> None:
    keyring = load_authkeys(write_keys(tmp_path, "auth 1\n1 sha1 first second\n"))
    assert keyring.signing_key.secret == b"first"


def test_messages_never_contain_the_secret(tmp_path: Path) -> None:
    text = "auth 1\n1 crc TopSecret1\n2 sha1 TopSecret2 TopSecret3\n3 nosuch TopSecret4\nTopSecret5 x\n"
    result = read_authkeys(write_keys(tmp_path, text, 0o644))
    assert len(result.problems) == 4
    assert "TopSecret" not in "\n".join(result.problems + result.warnings)


def test_a_short_encryption_secret_gets_a_warning_without_the_secret(tmp_path: Path) -> None:
    result = read_authkeys(write_keys(tmp_path, "auth 1\n1 aes256gcm tiny\n"))
    assert result.keyring is not None
    [warning] = result.warnings
    assert "only 4 characters" in warning
    assert "tiny" not in warning


ROTATING = "# cluster keys\nauth 1\n1 aes256gcm first-secret-0123456789\n"


def test_rotation_edits_keep_the_file_and_every_comment() -> None:
    text, ring = with_key_added(ROTATING, 2, "chacha20poly1305", "second-secret-0123456789", "added today")
    assert text == ROTATING + "# added today\n2 chacha20poly1305 second-secret-0123456789\n"
    assert (ring.sign_index, sorted(ring.keys)) == (1, [1, 2])
    text, ring = with_signing_slot(text, 2)
    assert text.splitlines()[1] == "auth 2"
    assert ring.sign_index == 2
    text, ring = with_key_removed(text, 1)
    assert text == "# cluster keys\nauth 2\n# added today\n2 chacha20poly1305 second-secret-0123456789\n"
    assert sorted(ring.keys) == [2]
    assert parse_authkeys_text(text) == ring


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: with_key_added(t, 1, "aes256gcm", "x" * 20), "slot 1 is already used"),
        (lambda t: with_key_removed(t, 1), "slot 1 still signs"),
        (lambda t: with_signing_slot(t, 5), "no key line for slot 5"),
        (lambda t: with_signing_slot("1 sha1 k\n", 1), "no auth line"),
        (lambda t: with_key_added("auth 1\n", 2, "sha1", "k"), "no key line for slot 1"),
    ],
)
def test_rotation_edits_refuse_what_would_break_the_file(edit: object, message: str) -> None:
    with pytest.raises(AuthkeysEditError, match=message):
        edit(ROTATING)  # type: ignore[operator]


def test_a_key_pasted_onto_the_auth_line_is_not_echoed(tmp_path: Path) -> None:
    """Found by bench/bench_fuzz.py: the message used to repeat the whole auth line."""
    result = read_authkeys(write_keys(tmp_path, "auth 1 sha1 Zx9LongSecretValue\n1 sha1 k\n"))
    assert result.keyring is None
    assert result.problems[0].endswith(":1: auth 1 sha1 …: expected 'auth N' with one slot number 0..15")
    assert not any("Zx9LongSecretValue" in line for line in result.problems + result.warnings)


def test_a_key_line_without_its_method_does_not_show_the_key(tmp_path: Path) -> None:
    """Found by bench/bench_fuzz.py: '1 <key>' put the key into 'unknown method'."""
    result = read_authkeys(write_keys(tmp_path, "auth 1\n1 Zx9LongSecretValue\n"))
    assert result.keyring is None
    assert any("1 …: unknown method" in line and "is the method missing?" in line for line in result.problems)
    assert not any("Zx9LongSecretValue" in line for line in result.problems + result.warnings)


def test_digits_that_are_not_ascii_are_no_slot_numbers(tmp_path: Path) -> None:
    """Found by bench/bench_fuzz.py: "²".isdigit() is true, int("²") raises."""
    result = read_authkeys(write_keys(tmp_path, "auth ²\n² sha1 k\n1 sha1 k\n"))
    assert result.keyring is None
    assert len(result.problems) >= 2
