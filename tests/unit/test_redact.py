"""``hacluster.shell.redact``: the one list of secret words and the redactor everyone uses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hacluster.shell.redact import (
    REDACTED,
    SECRET_WORDS,
    Redactor,
    hide_params,
    is_secret_name,
    redact,
    redact_authkeys,
    secret_values,
)

PACKAGE = Path(__file__).resolve().parents[2] / "hacluster"


@pytest.mark.parametrize("name", ["password", "passwd", "PASSWORD", "ssh_key", "api_token", "client-secret"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["ip", "username", "pcmk_host_list", "keepalive", "port"])
def test_public_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize("word", SECRET_WORDS)
@pytest.mark.parametrize(
    "shape",
    [
        "x{w}=VALUE1234",
        'x{w} = "VALUE1234"',
        "x{w}: VALUE1234",
        '{{"x{w}": "VALUE1234"}}',
        '["x{w}", "VALUE1234"]',
    ],
)
def test_every_word_in_every_shape_is_hidden(word: str, shape: str) -> None:
    text = shape.format(w=word)
    assert "VALUE1234" not in redact(text), text
    assert REDACTED in redact(text)


def test_known_values_long_anywhere_short_as_words_only() -> None:
    hide = Redactor({"longsecret123", "abc", 'quo"te12'})
    text = hide('x longsecret123y abc, abcdef {"v": "quo\\"te12"}')
    assert "longsecret123" not in text
    assert ", abcdef" in text
    assert " abc," not in text
    assert "quo" not in text, "a value is also found as JSON writes it"
    assert hide.replacements == 3


def test_params_and_values_for_display() -> None:
    params = (("ip", "10.0.0.1"), ("password", "pw1"), ("api_token", "t1"), ("key_file", ""))
    assert hide_params(params) == {
        "ip": "10.0.0.1",
        "password": REDACTED,
        "api_token": REDACTED,
        "key_file": REDACTED,
    }
    assert secret_values(params) == {"pw1", "t1"}
    nested = {
        "params": {"password": "pw1", "ip": "1.2.3.4"},
        "pairs": [["api_token", "t1"]],
        "text": "passwd=x1",
        "dropped": {"unknown_key": 3, "bad_auth": 0},
        "keys": [{"slot": 1, "method": "sha1"}],
    }
    assert Redactor().value(nested) == {
        "params": {"password": REDACTED, "ip": "1.2.3.4"},
        "pairs": [["api_token", REDACTED]],
        "text": f"passwd={REDACTED}",
        "dropped": {"unknown_key": 3, "bad_auth": 0},  # counts are never secrets
        "keys": [{"slot": 1, "method": "sha1"}],
    }


METHODS = ("md5", "sha1", "sha256", "sha512", "aes256gcm", "chacha20poly1305")


@pytest.mark.parametrize("method", METHODS)
def test_authkeys_keys_of_every_method_are_hidden(method: str) -> None:
    secret = f"Secret-{method}-0123456789"
    text = f"auth 7\n7 {method} {secret}\n7\t{method}\t{secret}   # trailing comment\n"
    out = redact_authkeys(text)
    assert secret not in out
    assert out == f"auth 7\n7 {method} {REDACTED}\n7 {method} {REDACTED}\n"


def test_authkeys_comments_and_malformed_lines() -> None:
    text = "# cluster keys\n\n#1 sha1 OldKey-retired-1\n#   2 crc\nauth 3 # use 3\n3 crc\n3sha1 TypoKey\n"
    out = redact_authkeys(text)
    for secret in ("OldKey-retired-1", "TypoKey", "cluster keys"):
        assert secret not in out
    assert out == f"# {REDACTED}\n\n# 1 sha1 {REDACTED}\n# 2 crc\nauth 3\n3 crc\n{REDACTED}\n"


def test_there_is_one_list_of_secret_words() -> None:
    # Any other module that spells out the words again has a private list to drift (the
    # fencer's lacked "token"); it must import hacluster.shell.redact instead.
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "redact.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
                words = node.value.lower()
                if (
                    words == "passw"
                    or "passw|" in words
                    or ("passw" in words and "token" in words and "secret" in words)
                ):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value[:40]!r}")
    assert not found, "secret words spelled out outside shell/redact.py:\n" + "\n".join(found)
