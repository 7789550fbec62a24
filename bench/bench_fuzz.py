#!/usr/bin/env python3
"""A long fuzz run of everything that reads hostile or hand-written input.

    python3 bench/bench_fuzz.py                  # 60 s per target
    python3 bench/bench_fuzz.py --seconds 300 --targets codec-sealed,hacf

Each target starts from a corpus of real inputs (Heartbeat's captured packets, our own sealed
packets, the real ha.cf, haresources and crm files in /work/shared/real-configs when present,
the repository's fixtures, every API command) and mutates them for ``--seconds``: bit flips,
inserted, deleted, repeated and spliced bytes or lines, tokens of the format put in odd
places, truncation.  It checks each target's contract on every input:

- ``codec-signed``, ``codec-sealed``: ``decode`` returns a message or raises ``DecodeError``;
  the fast and careful walks agree; a mutated sealed packet never opens (no forgery);
- ``codec-plaintext``: anything a key holder could seal decodes or is dropped, same rules;
- ``hacf``: ``parse_hacf`` returns its result, every problem a ``file:line`` string;
- ``authkeys``: the parser returns a key ring or problems, and no message shows a secret;
- ``haresources``, ``resources-crm``: a configuration or a ``ConfigError``, nothing else;
- ``api``: a real daemon (one node on loopback, no root) gets the mutated requests over its
  socket; every request line gets one JSON answer with ``ok``, and the daemon survives.

Anything else is a *violation*: printed with the input (hex) that caused it and counted.
The figures (inputs per second, outcomes, violations) go to stdout and to a JSON file in
bench/results/.  Like every benchmark here it exits 0 and fails nothing; read the
violations line.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hacluster.config import authkeys as authkeys_module  # noqa: E402
from hacluster.config.hacf import KNOWN_DIRECTIVES, parse_hacf  # noqa: E402
from hacluster.config.haresources import parse_haresources  # noqa: E402
from hacluster.config.resources_crm import parse_resources_crm  # noqa: E402
from hacluster.core import codec  # noqa: E402
from hacluster.core.codec import AuthKey, KeyRing, Message, Sealer, decode, encode  # noqa: E402
from hacluster.errors import ConfigError, DecodeError  # noqa: E402

REAL_CONFIGS = Path("/work/shared/real-configs")
VECTORS = ROOT / "tests" / "vectors" / "heartbeat"
RESULTS = ROOT / "bench" / "results"
TARGETS = (
    "codec-signed",
    "codec-sealed",
    "codec-plaintext",
    "hacf",
    "authkeys",
    "haresources",
    "resources-crm",
    "api",
)
SHOW_VIOLATIONS = 5

SIGNED_RING = KeyRing(
    1,
    {
        1: AuthKey(1, "sha1", b"somesecret"),
        2: AuthKey(2, "md5", b"md5secret"),
        3: AuthKey(3, "crc", b""),
    },
)
SEALED_RING = KeyRing(
    4,
    {
        **SIGNED_RING.keys,
        4: AuthKey(4, "aes256gcm", b"fuzzing aes secret 0123456789"),
        5: AuthKey(5, "chacha20poly1305", b"fuzzing chacha secret 012345"),
    },
)
CHACHA_RING = KeyRing(5, dict(SEALED_RING.keys))

NETSTRING_TOKENS = [b"###\n", b"%%%\n", b">>>\n", b"<<<\n", b":", b",", b"=", b"(0)", b"(1)", b"(9)", b"\0"]
NUMBERS = [b"0", b"1", b"9999999", b"99999999", b"4294967296", b"-1", b"00000011"]


class Mutator:
    """Random edits of bytes and of lines, from a seeded generator (a run replays by seed)."""

    def __init__(self, rng: random.Random, tokens: list[bytes]) -> None:
        self.rng = rng
        self.tokens = tokens

    def bytes(self, data: bytes, corpus: list[bytes]) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.randint(1, 4)):
            at = self.rng.randint(0, len(out))
            kind = self.rng.randrange(7)
            if kind == 0 and at < len(out):
                out[at] ^= 1 << self.rng.randrange(8)
            elif kind == 1:
                out[at:at] = self.rng.randbytes(self.rng.randint(1, 8))
            elif kind == 2:
                del out[at : at + self.rng.randint(1, 16)]
            elif kind == 3:
                out[at:at] = self.rng.choice(self.tokens)
            elif kind == 4:
                other = self.rng.choice(corpus)
                start = self.rng.randint(0, len(other))
                out[at:at] = other[start : start + self.rng.randint(1, 64)]
            elif kind == 5 and out:
                start = self.rng.randint(0, len(out) - 1)
                chunk = out[start : start + self.rng.randint(1, 32)]
                out[at:at] = chunk * self.rng.randint(1, 8)
            else:
                del out[at:]
        return bytes(out)

    def text(self, text: str, corpus: list[str]) -> str:
        lines = text.splitlines(keepends=True) or [""]
        for _ in range(self.rng.randint(1, 4)):
            kind = self.rng.randrange(8)
            i = self.rng.randrange(len(lines)) if lines else 0
            if kind == 0 and lines:
                del lines[i]
            elif kind == 1 and lines:
                lines.insert(i, lines[i])
            elif kind == 2:
                other = self.rng.choice(corpus).splitlines(keepends=True) or ["\n"]
                lines.insert(i, self.rng.choice(other))
            elif kind == 3 and lines:
                words = lines[i].split(" ")
                j = self.rng.randrange(len(words))
                words[j] = self.rng.choice(self.tokens).decode("utf-8", "replace")
                lines[i] = " ".join(words)
            elif kind == 4 and lines:
                lines[i] = self.bytes(lines[i].encode(), [c.encode() for c in corpus]).decode(
                    "utf-8", "replace"
                )
            elif kind == 5 and len(lines) > 1:
                j = self.rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == 6:
                lines.insert(i, self.rng.choice(self.tokens).decode("utf-8", "replace") + "\n")
            elif lines:
                lines[i] = lines[i][: self.rng.randint(0, len(lines[i]))]
        return "".join(lines)


# --- corpora -------------------------------------------------------------------------------------


def _texts(pattern: str) -> list[str]:
    if not REAL_CONFIGS.is_dir():
        return []
    return [path.read_text(errors="replace") for path in sorted(REAL_CONFIGS.glob(pattern))]


def signed_corpus() -> list[bytes]:
    packets = [path.read_bytes() for path in sorted(VECTORS.glob("*.bin"))]
    status = Message.of(("t", "status"), ("st", "active"), ("src", "n1"), ("seq", "1"), ("hg", "5"))
    packets.append(encode(status, SIGNED_RING))
    packets.append(codec.encode_classic(status, SIGNED_RING))
    return packets


def sealed_corpus() -> list[bytes]:
    out = []
    for n, packet in enumerate(signed_corpus()):
        with contextlib.suppress(DecodeError):
            message = decode(packet, SIGNED_RING).without("auth")
            for ring in (SEALED_RING, CHACHA_RING):
                sealed = encode(message, ring, sealer=Sealer(bytes([n]) * 16))
                out += [sealed, codec.serial_frame(sealed)]
    return out


# --- one checker per target: returns the outcome's name, raises on a violation --------------------


class Violation(Exception):
    pass


def check_signed(data: bytes) -> str:
    try:
        message = decode(data, SIGNED_RING)
    except DecodeError as exc:
        outcome = exc.reason.value
    else:
        if not isinstance(message, Message):
            raise Violation(f"decode returned {type(message).__name__}")
        outcome = "accepted"
    if data.startswith(b"###\n") and len(data) <= codec.MAX_PACKET_BYTES:
        fast = codec._scan_netstring(data)
        try:
            careful = codec._parse_netstring(data)
        except DecodeError:
            careful = None
        if fast is not None and fast != careful:
            raise Violation("the fast and the careful netstring walks disagree")
    return outcome


def check_sealed(originals: set[bytes]) -> Callable[[bytes], str]:
    def check(data: bytes) -> str:
        try:
            message = decode(data, SEALED_RING)
        except DecodeError as exc:
            return exc.reason.value
        if not isinstance(message, Message):
            raise Violation(f"decode returned {type(message).__name__}")
        unchanged = data in originals or data + b"\0" in originals
        if not unchanged and (data[:2] == codec.SEALED_MAGIC or data[:5] == b">>>\n~"):
            raise Violation("a mutated sealed packet opened: forgery")
        return "accepted"

    return check


def seal_plaintext(plain: bytes) -> bytes:
    key = SEALED_RING.keys[4]
    session = bytes(range(16))
    header = codec.SEALED_MAGIC + bytes([1, 4]) + session + (7).to_bytes(8, "big")
    return header + key.session_cipher(session).encrypt(bytes(4) + header[20:], plain, header)


def check_plaintext(plain: bytes) -> str:
    try:
        decode(seal_plaintext(plain), SEALED_RING)
    except DecodeError as exc:
        return exc.reason.value
    return "accepted"


def check_hacf(text: str) -> str:
    result = parse_hacf(text, "ha.cf", "n1")
    for line in [*result.problems, *result.warnings]:
        if not isinstance(line, str) or not line.startswith("ha.cf"):
            raise Violation(f"problem without a place: {line!r}")
    return "refused" if result.problems else "accepted"


AUTHKEYS_SECRETS = ["Zq7fuzzSecretA", "Zq7fuzzSecretB", "Zq7fuzzSecretC"]
AUTHKEYS_CORPUS = [
    f"auth 1\n1 sha1 {AUTHKEYS_SECRETS[0]}\n",
    f"# keys\nauth 2\n1 md5 {AUTHKEYS_SECRETS[0]}\n2 aes256gcm {AUTHKEYS_SECRETS[1]}0123456789\n3 crc\n",
    f"auth 4\n4 chacha20poly1305 {AUTHKEYS_SECRETS[2]}0123456789\n",
]


def check_authkeys(text: str) -> str:
    problems: list[str] = []
    warnings: list[str] = []
    keyring = authkeys_module._parse(text, "authkeys", problems, warnings)
    for line in problems + warnings:
        if any(secret in line for secret in AUTHKEYS_SECRETS):
            raise Violation(f"a message shows a secret: {line!r}")
    if keyring is not None and not isinstance(keyring, KeyRing):
        raise Violation(f"returned {type(keyring).__name__}")
    return "refused" if problems or keyring is None else "accepted"


def check_haresources(text: str) -> str:
    try:
        parse_haresources(text, "haresources", check_scripts=False)
    except ConfigError:
        return "refused"
    return "accepted"


def check_crm(text: str) -> str:
    try:
        parse_resources_crm(text)
    except ConfigError:
        return "refused"
    return "accepted"


# --- the API target: a real daemon on loopback ----------------------------------------------------

API_CORPUS: list[dict[str, Any]] = [
    {"command": "status"},
    {"command": "ping"},
    {"command": "history", "limit": 5, "resource": "vip", "since_ms": 0},
    {"command": "node_standby", "node": "n1", "dry_run": True},
    {"command": "node_online", "node": "n1", "dry_run": True},
    {"command": "node_attribute", "node": "n1", "name": "rack", "value": "r1", "dry_run": True},
    {"command": "node_fence", "node": "n2", "dry_run": True},
    {"command": "node_fence_confirm", "node": "n2", "force": False, "dry_run": True},
    {"command": "resource_start", "resource": "dummy", "dry_run": True},
    {"command": "resource_stop", "resource": "dummy", "dry_run": True},
    {"command": "resource_move", "resource": "dummy", "node": "n1", "pin": True, "dry_run": True},
    {"command": "resource_unmove", "resource": "dummy", "dry_run": True},
    {"command": "resource_cleanup", "resource": "dummy", "node": "n1", "dry_run": True},
    {"command": "stonith_list"},
    {"command": "stonith_show", "device": "x"},
    {"command": "configure_show"},
    {"command": "cluster_keys"},
    {"command": "cluster_rotate_key", "method": "aes256gcm", "timeout_ms": 1000, "dry_run": True},
]
API_LINES = [json.dumps(request).encode() for request in API_CORPUS]
API_TOKENS = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\\u0000",
    b'"dry_run":false',
    b'"command":',
    *NUMBERS,
]


API_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    "",
    "n1",
    "n2",
    "dummy",
    "x" * 300,
    "\u0000",
    [],
    {},
]


def mutate_request(rng: random.Random, line: bytes) -> bytes:
    """Valid JSON with odd values: a key's value swapped for another type, a key dropped or
    added, another command's arguments: requests that get past decoding to the handlers."""
    request = json.loads(line)
    keys = [k for k in request if k != "command"]
    kind = rng.randrange(4)
    if kind == 0 and keys:
        request[rng.choice(keys)] = rng.choice(API_VALUES)
    elif kind == 1 and keys:
        del request[rng.choice(keys)]
    elif kind == 2:
        request[rng.choice(["node", "resource", "device", "limit", "since_ms", "force", "timeout_ms"])] = (
            rng.choice(API_VALUES)
        )
    else:
        request["command"] = rng.choice(API_CORPUS)["command"]
    return json.dumps(request).encode()


@contextlib.contextmanager
def api_daemon() -> Iterator[tuple[Path, subprocess.Popen[bytes], Path]]:
    root = Path(tempfile.mkdtemp(prefix="hacfuzz-"))
    port = 20000 + random.randrange(20000)
    (root / "ha.cf").write_text(
        f"udpport {port}\nkeepalive 200ms\ndeadtime 2s\ninitdead 2s\nbind_address lo 127.0.0.1\n"
        f"ucast lo 127.0.0.1\nnode n1 n2\nrealtime off\nlogfacility none\nlogfile {root / 'ha-log'}\n"
        f"api_socket {root / 'api.sock'}\nstate_dir {root / 'state'}\n"
    )
    (root / "authkeys").write_text("auth 1\n1 aes256gcm fuzzing-the-api-0123456789\n")
    (root / "authkeys").chmod(0o600)
    (root / "resources.crm").write_text(
        "primitive dummy ocf:hacluster:Dummy op monitor interval=10s timeout=20s\nproperty stonith-enabled=false\n"
    )
    argv = [
        sys.executable,
        "-m",
        "hacluster.shell.main",
        "daemon",
        "--config",
        str(root / "ha.cf"),
        "--node",
        "n1",
    ]
    err = (root / "stderr").open("wb")
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 15
        while not (root / "api.sock").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the API daemon did not start: {(root / 'stderr').read_text()[-2000:]}")
            time.sleep(0.05)
        yield root / "api.sock", proc, root
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
        shutil.rmtree(root, ignore_errors=True)


class ApiClient:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.buffer = b""

    def ask(self, line: bytes) -> bytes | None:
        """Send one request line; the answer line, or None when the daemon closed the connection."""
        if self.sock is None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(str(self.path))
            self.buffer = b""
        try:
            self.sock.sendall(line + b"\n")
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError
                self.buffer += chunk
        except OSError:
            self.sock.close()
            self.sock = None
            return None
        answer, _, self.buffer = self.buffer.partition(b"\n")
        return answer


def check_api(client: ApiClient, proc: subprocess.Popen[bytes]) -> Callable[[bytes], str]:
    def check(line: bytes) -> str:
        line = line.replace(b"\n", b" ")
        answer = client.ask(line)
        if proc.poll() is not None:
            raise Violation(f"the daemon died (rc={proc.returncode})")
        if answer is None:
            if len(line) >= 64 * 1024:
                return "too_large"
            raise Violation("the connection closed without an answer")
        try:
            doc = json.loads(answer)
        except ValueError:
            raise Violation(f"the answer is not JSON: {answer[:200]!r}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
            raise Violation(f"answer without ok: {answer[:200]!r}")
        if not doc["ok"]:
            return str(doc.get("error", {}).get("code", "no code"))
        return "ok"

    return check


# --- the run ---------------------------------------------------------------------------------------


def run_target(
    name: str, corpus: list[Any], mutate: Callable[[Any], Any], check: Callable[[Any], str], seconds: float
) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    violations: list[dict[str, str]] = []
    inputs = 0
    started = time.monotonic()
    cpu_started = time.process_time()
    while time.monotonic() - started < seconds:
        for _ in range(50):
            item = mutate(corpus[inputs % len(corpus)]) if inputs >= len(corpus) else corpus[inputs]
            inputs += 1
            try:
                outcomes[check(item)] += 1
            except Violation as exc:
                outcomes["VIOLATION"] += 1
                violations.append({"what": str(exc), "input": _hex(item)})
            except Exception as exc:
                outcomes["VIOLATION"] += 1
                violations.append(
                    {
                        "what": f"{type(exc).__name__}: {exc}",
                        "input": _hex(item),
                        "trace": traceback.format_exc(),
                    }
                )
    elapsed = time.monotonic() - started
    result = {
        "target": name,
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "inputs": inputs,
        "inputs_per_s": round(inputs / elapsed),
        "corpus": len(corpus),
        "outcomes": dict(outcomes.most_common()),
        "violations": len(violations),
        "first_violations": violations[:SHOW_VIOLATIONS],
    }
    top = ", ".join(f"{k} {v}" for k, v in outcomes.most_common(5))
    print(
        f"{name:<16} {inputs:>9} inputs {result['inputs_per_s']:>8}/s  violations {len(violations)}  ({top})"
    )
    for violation in violations[:SHOW_VIOLATIONS]:
        print(f"    {violation['what']}: {violation['input'][:160]}")
    return result


def _hex(item: Any) -> str:
    data = item if isinstance(item, bytes) else str(item).encode("utf-8", "surrogateescape")
    return data.hex()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated, from {','.join(TARGETS)}"
    )
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets {sorted(unknown)}; expected some of {', '.join(TARGETS)}")
    rng = random.Random(args.seed)
    byte_tokens = Mutator(rng, NETSTRING_TOKENS + NUMBERS)
    words = sorted(KNOWN_DIRECTIVES)
    text_tokens = Mutator(
        rng,
        [w.encode() for w in words]
        + [
            b"primitive",
            b"group",
            b"location",
            b"colocation",
            b"order",
            b"property",
            b"op",
            b"params",
            b"meta",
        ]
        + [b"::", b"\\", b"#", b'"', b"'", b"=", b"inf", b"-INFINITY:", b"\t", b"\0", "é".encode()]
        + [digit.encode() for digit in ("²", "①", "٣", "１", "߂")]  # isdigit() but not all int()-able
        + [b"ucast6 eth0 fe80::1%eth0", b"mcast6 eth0 ff12::1 694 1 0", b"ping6 ::1", b"auth 15"]
        + NUMBERS,
    )
    api_tokens = Mutator(rng, API_TOKENS)
    print(f"python {sys.version.split()[0]}, seed {args.seed}, {args.seconds:.0f} s per target")
    results = []
    signed = signed_corpus()
    sealed = sealed_corpus()
    hacf = [*_texts("hacf/*/ha.cf"), (ROOT / "ha.cf.example").read_text()]
    crm = _texts("crm/*.crm") + [
        p.read_text() for p in sorted((ROOT / "tests" / "cli" / "fixtures").glob("*.crm"))
    ]
    haresources = _texts("hacf/*/haresources") or ["n1 10.0.0.10 Filesystem::/dev/sdb1::/srv::ext4 httpd\n"]
    plain = [codec._netstring_body(decode(p, SEALED_RING).fields) for p in sealed]
    runs: dict[str, tuple[list[Any], Callable[[Any], Any], Callable[[Any], str]]] = {
        "codec-signed": (signed, lambda d: byte_tokens.bytes(d, signed), check_signed),
        "codec-sealed": (sealed, lambda d: byte_tokens.bytes(d, sealed), check_sealed(set(sealed))),
        "codec-plaintext": (plain, lambda d: byte_tokens.bytes(d, plain), check_plaintext),
        "hacf": (hacf, lambda t: text_tokens.text(t, hacf), check_hacf),
        "authkeys": (AUTHKEYS_CORPUS, lambda t: text_tokens.text(t, AUTHKEYS_CORPUS), check_authkeys),
        "haresources": (haresources, lambda t: text_tokens.text(t, haresources), check_haresources),
        "resources-crm": (crm, lambda t: text_tokens.text(t, crm), check_crm),
    }
    for target in targets:
        if target != "api":
            corpus, mutate, check = runs[target]
            results.append(run_target(target, corpus, mutate, check, args.seconds))
            continue
        with api_daemon() as (path, proc, root):
            client = ApiClient(path)

            def mutate_line(line: bytes) -> bytes:
                if rng.random() < 0.5:
                    return mutate_request(rng, line)
                return api_tokens.bytes(line, API_LINES)

            result = run_target(target, API_LINES, mutate_line, check_api(client, proc), args.seconds)
            log = (root / "ha-log").read_text(errors="replace") + (root / "stderr").read_text(
                errors="replace"
            )
            result["daemon_alive"] = proc.poll() is None
            result["tracebacks_in_log"] = log.count("Traceback")
            print(
                f"    daemon alive: {result['daemon_alive']}, tracebacks in its log: {result['tracebacks_in_log']}"
            )
            results.append(result)
    total = sum(r["violations"] for r in results) + sum(r.get("tracebacks_in_log", 0) for r in results)
    print(f"violations: {total} in {sum(r['inputs'] for r in results)} inputs")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"fuzz-{int(args.seconds)}s-{stamp}.json"
    machine = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "load": os.getloadavg()}
    out.write_text(json.dumps({"machine": machine, "seed": args.seed, "targets": results}, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
