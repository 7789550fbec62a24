"""The decision history (ring, file, rotation, filters), ``hacrm history`` and ``hacrm report``
(what the tarball holds, and that no secret is left in it)."""

from __future__ import annotations

import json
import signal
import subprocess
import tarfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from test_daemon_shell import PY, start, wait_status, write_single_node

from hacluster.core.effects import Level, NodeStateChanged, Notice
from hacluster.core.ids import NodeName
from hacluster.shell.history import History, make_event
from hacluster.shell.redact import REDACTED, Redactor

AUTH_SECRET = "AuthKeySecret-77f1c0de"
FENCE_PASSWORD = "Hunter2-FencePw-91"
PLUGIN_PASSWORD = "PlugSecret-4471"
TOKEN = "TokenValue-5512ab"
UNKNOWN_SECRET = "NeverConfigured-8821"
AES_SECRET = "AesGcmSecret-0f3e9a7b5c1d"
CHACHA_SECRET = "ChaChaSecret-88aa11bb22cc"
RETIRED_SECRET = "RetiredSha1Key-55ee"
TYPO_SECRET = "TypoLineSecret-31"
SECRETS = (
    AUTH_SECRET,
    FENCE_PASSWORD,
    PLUGIN_PASSWORD,
    TOKEN,
    UNKNOWN_SECRET,
    AES_SECRET,
    CHACHA_SECRET,
    RETIRED_SECRET,
    TYPO_SECRET,
)


def codes(events: list[dict[str, Any]]) -> list[str]:
    return [e["code"] for e in events]


def test_history_keeps_decisions_filters_them_and_survives_a_restart(tmp_path: Path) -> None:
    history = History(tmp_path, "n1")
    history.open()
    heard: list[dict[str, Any]] = []
    history.subscribe(heard.append)
    assert history.record(Notice("HEARTBEAT", Level.DEBUG, "debug lines are not decisions")) is None
    history.record(
        Notice("RESOURCE_START", Level.INFO, "web started (5 ms)", (("resource", "web"), ("rc", 0)))
    )
    history.record(Notice("RESOURCE_START", Level.INFO, "db started (3 ms)", (("resource", "db"),)))
    history.record(Notice("NODE_FENCED", Level.WARNING, "n10 is fenced (manual)", (("target", "n10"),)))
    history.record(Notice("PLAN", Level.INFO, "plan 2: web -> n1 (n2 is dead)"))
    history.record(NodeStateChanged(NodeName("n2"), "active", "dead", "silent for 510 ms"))
    assert len(heard) == 5
    lost = heard[-1]
    assert (lost["code"], lost["level"], lost["fields"]["new"]) == ("NODE_STATE_CHANGED", "WARNING", "dead")
    assert "silent for 510 ms" in lost["text"]
    assert lost["node"] == "n1"
    assert abs(lost["epoch_ms"] - time.time() * 1000) < 5000
    assert datetime.fromisoformat(lost["time"]).timestamp() * 1000 == lost["epoch_ms"]
    # resource and node match a field or a whole word of the text (n1 is not n10).
    assert codes(history.query(resource="web")) == ["RESOURCE_START", "PLAN"]
    assert codes(history.query(node="n1")) == ["PLAN"]
    assert codes(history.query(node="n10")) == ["NODE_FENCED"]
    assert codes(history.query(node="n2")) == ["PLAN", "NODE_STATE_CHANGED"]
    # code: exact, or a prefix ending at "_", any case.
    assert codes(history.query(code="resource")) == ["RESOURCE_START", "RESOURCE_START"]
    assert history.query(code="RES") == []
    assert codes(history.query(limit=2)) == ["PLAN", "NODE_STATE_CHANGED"]
    # since/until compare the wall-clock epoch.
    for epoch_ms, text in ((1_000, "old"), (2_000, "middle"), (3_000, "new")):
        event = make_event("n1", "OLD_EVENT", Level.INFO, text, ())
        event["epoch_ms"] = epoch_ms
        history.add(event)
    assert [e["text"] for e in history.query(code="OLD_EVENT", since_ms=2_000)] == ["middle", "new"]
    assert [e["text"] for e in history.query(code="OLD_EVENT", until_ms=2_000)] == ["old", "middle"]
    # Every event is one JSON line on disk, and the next start reads them back in order.
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["code"] for line in lines] == codes(history.events())
    history.close()
    again = History(tmp_path, "n1")
    again.open()
    assert again.events() == history.events()
    again.close()


def test_history_file_rotates_and_stays_bounded(tmp_path: Path) -> None:
    history = History(tmp_path, "n1", ring_max=40, file_bytes_max=3000)
    history.open()
    for i in range(200):
        history.record(Notice("STEP", Level.INFO, f"event {i:03d}"))
    history.close()
    current, rotated = tmp_path / "history.jsonl", tmp_path / "history.jsonl.1"
    assert rotated.exists()
    assert current.stat().st_size <= 3000
    assert rotated.stat().st_size <= 3000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl", "history.jsonl.1"]
    assert len(history.events()) == 40
    again = History(tmp_path, "n1", ring_max=40)
    again.open()
    texts = [e["text"] for e in again.events()]
    assert texts[-1] == "event 199"
    assert texts == sorted(texts)
    assert 10 < len(texts) <= 40
    again.close()


def test_redactor_hides_known_values_and_secret_shapes() -> None:
    redact = Redactor({"longsecret123", "abc"})
    text = redact(
        'x longsecret123 y; abc, abcdef; passwd=whatever token: "t0k" {"api_key": "v1"} ["secret", "v2"]'
    )
    assert "longsecret123" not in text
    assert "abcdef" in text  # a short secret is replaced as a whole word only
    assert ", abc," not in text
    assert "whatever" not in text
    assert '"v1"' not in text
    assert '"v2"' not in text
    assert text.count(REDACTED) >= 5


def _hacrm(hacf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "hacluster.cli.main", "--config", str(hacf), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_started(sock: Path, timeout_s: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc: dict[str, Any] = wait_status(sock)  # type: ignore[assignment]
        if doc["resources"] and doc["resources"][0]["state"] == "started":
            return doc
        time.sleep(0.05)
    raise AssertionError(f"web did not start: {wait_status(sock)}")


def test_history_and_report_of_a_running_daemon(tmp_path: Path) -> None:
    hacf = write_single_node(
        tmp_path, extra=f"stonith_host * external/ipmi solo 10.0.0.12 operator {PLUGIN_PASSWORD} lanplus\n"
    )
    (tmp_path / "authkeys").write_text(f"auth 1\n1 sha256 {AUTH_SECRET}\n")
    (tmp_path / "resources.crm").write_text(
        f"primitive web ocf:hacluster:Dummy params api_token={TOKEN} op monitor interval=1s timeout=5s\n"
        "primitive fence-solo stonith:fence_ipmilan params ip=10.0.0.11 username=admin "
        f"password={FENCE_PASSWORD} pcmk_host_list=solo\n"
        "property stonith-enabled=false\n"
    )
    proc = start(hacf)
    try:
        _wait_started(tmp_path / "api.sock")
        # history: filters, text and JSON, and the reasons.
        done = _hacrm(hacf, "history", "--resource", "web", "--json")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["node"] == "solo"
        assert answer["events"]
        assert all("web" in e["text"] or e["fields"].get("resource") == "web" for e in answer["events"])
        assert "RESOURCE_START" in codes(answer["events"])
        done = _hacrm(hacf, "history", "--code", "RESOURCE_START")
        assert done.returncode == 0, done.stderr
        assert "web started" in done.stdout
        assert "resource=web" in done.stdout
        hour_ago = (datetime.now() - timedelta(hours=1)).isoformat(timespec="seconds")
        done = _hacrm(hacf, "history", "--until", hour_ago)
        assert done.stdout == "no matching decisions in the history\n"
        done = _hacrm(hacf, "history", "--since", "1h", "--limit", "2", "--json")
        answer = json.loads(done.stdout)
        assert len(answer["events"]) == 2
        assert answer["matched"] > 2
        bad = _hacrm(hacf, "history", "--since", "yesterday-ish")
        assert bad.returncode == 2
        assert "BAD_TIME" in bad.stderr
        # A secret that reaches a log line, known (the fence password) or not (shape only).
        with (tmp_path / "ha-log").open("a") as log:
            log.write(f"operator pasted password={UNKNOWN_SECRET} and {FENCE_PASSWORD} here\n")
        # The encryption methods' keys, an old key commented out during a rotation and a line
        # with a typo are hidden as well: the report reads authkeys from disk as it is now.
        (tmp_path / "authkeys").write_text(
            f"auth 1\n1 sha256 {AUTH_SECRET}\n3 aes256gcm {AES_SECRET}  # new key\n"
            f"4\tchacha20poly1305\t{CHACHA_SECRET}\n#2 sha1 {RETIRED_SECRET}\n5sha1 {TYPO_SECRET}\n"
        )
        report = tmp_path / "out" / "report.tar.gz"
        report.parent.mkdir()
        done = _hacrm(hacf, "report", "--since", "1h", str(report))
        assert done.returncode == 0, done.stderr
        assert f"report written to {report}" in done.stdout
        with tarfile.open(report) as tar:
            members = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
        assert {
            "ha.cf",
            "authkeys",
            "resources.crm",
            "cib.json",
            "status.json",
            "history.jsonl",
            "logfile.tail",
            "uname.txt",
            "versions.txt",
        } <= set(members)
        for name, data in members.items():
            for secret in SECRETS:
                assert secret.encode() not in data, f"{secret} left in {name}"
        assert members["authkeys"].decode() == (
            f"auth 1\n1 sha256 {REDACTED}\n3 aes256gcm {REDACTED}\n4 chacha20poly1305 {REDACTED}\n"
            f"# 2 sha1 {REDACTED}\n{REDACTED}\n"
        )
        assert b"stonith_host * external/ipmi solo 10.0.0.12" in members["ha.cf"]
        assert f"password={REDACTED}".encode() in members["resources.crm"]
        assert b"pcmk_host_list=solo" in members["resources.crm"]
        assert b'"web"' in members["cib.json"]
        status = json.loads(members["status.json"])
        assert status["cluster"]["node"] == "solo"
        assert "alerts" in status
        history = [json.loads(line) for line in members["history.jsonl"].splitlines()]
        assert "RESOURCE_START" in codes(history)
        assert f"pasted password={REDACTED} and {REDACTED} here".encode() in members["logfile.tail"]
        assert b"Linux" in members["uname.txt"]
        assert b"prometheus_client" in members["versions.txt"]
        assert report.stat().st_mode & 0o077 == 0
        # Relative file names are resolved by hacrm; a missing directory is refused by name.
        done = _hacrm(hacf, "report", str(tmp_path / "nowhere" / "r.tar.gz"))
        assert done.returncode == 1
        assert "NO_SUCH_DIRECTORY" in done.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
