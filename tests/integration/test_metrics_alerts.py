"""The Prometheus endpoint (scraped over HTTP, parsed with prometheus_client) and the alert
hooks (retried in order, failures shown in status, bounded queues), on loopback daemons."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_daemon_shell import PY, start, wait_status, write_single_node

from hacluster.cli.client import request
from hacluster.config.hacf import parse_hacf
from hacluster.shell.alerts import AlertRunner, AlertSpec
from hacluster.shell.demo import DemoCluster

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


# --- configuration ---------------------------------------------------------------------------

BASE = "node n1 n2\nbcast eth0\n"


def test_hacf_metrics_listen_and_alert_lines() -> None:
    result = parse_hacf(
        BASE + "metrics_listen 127.0.0.1:9661\nalert /bin/true timeout=2s retries=5\nalert /bin/false\n",
        "ha.cf",
        "n1",
    )
    assert result.problems == []
    assert result.values["metrics_listen"] == "127.0.0.1:9661"
    assert result.values["alerts"] == (
        {"path": "/bin/true", "where": "ha.cf:4", "timeout_ms": 2000, "retries": 5},
        {"path": "/bin/false", "where": "ha.cf:5"},
    )
    assert parse_hacf(BASE + "metrics_listen [::1]:9661\n", "ha.cf", "n1").problems == []
    bad = parse_hacf(
        BASE
        + "metrics_listen 9661\nalert relative.sh\nalert /bin/true timeout=soon bogus=1 retries=500\n"
        + "alert /nonexistent/hook\n",
        "ha.cf",
        "n1",
    )
    assert len(bad.problems) == 5, bad.problems
    assert bad.problems[0].startswith("ha.cf:3: metrics_listen 9661: expected ADDRESS:PORT")
    assert "needs the absolute path of a script" in bad.problems[1]
    assert "timeout=soon" in bad.problems[2]
    assert "unknown option 'bogus=1'" in bad.problems[3]
    assert "retries 500 is out of range" in bad.problems[4]
    assert any("/nonexistent/hook is missing or not executable" in w for w in bad.warnings)
    port = parse_hacf(BASE + "metrics_listen 127.0.0.1:70000\n", "ha.cf", "n1").problems
    assert port == [
        "ha.cf:3: metrics_listen 127.0.0.1:70000: port 70000 is out of range; expected a whole number 1..65535"
    ]


# --- alert hooks -----------------------------------------------------------------------------


def _alerts(sock: Path) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = wait_status(sock)["alerts"]  # type: ignore[assignment]
    return alerts


def test_alert_hooks_are_retried_in_order_and_failures_show_in_status(tmp_path: Path) -> None:
    out, count = tmp_path / "flaky.jsonl", tmp_path / "flaky.count"
    flaky = script(
        tmp_path / "flaky.sh",
        f"n=$(cat {count} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {count}\n"
        f'if [ $n -le 2 ]; then echo "not yet $n" >&2; exit 1; fi\ncat >> {out}\n',
    )
    failing = script(tmp_path / "failing.sh", "cat > /dev/null; echo boom >&2; exit 3\n")
    slow = script(tmp_path / "slow.sh", "exec sleep 7.131\n")
    hacf = write_single_node(
        tmp_path,
        extra=f"alert {flaky} timeout=2s retries=3\nalert {failing} retries=1\nalert {slow} timeout=300ms retries=0\n",
    )
    proc = start(hacf)
    sock = tmp_path / "api.sock"
    try:
        wait_status(sock)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alerts = _alerts(sock)
            if all(hook["queued"] == 0 and hook["attempts"] for hook in alerts):
                break
            time.sleep(0.1)
        history = request(str(sock), "history", limit=0)["events"]
        alerts = _alerts(sock)
        delivered = [json.loads(line) for line in out.read_text().splitlines()]
        # Every decision reached the flaky hook once, whole, and in the order it was made.
        assert [e["code"] for e in delivered] == [e["code"] for e in history][: len(delivered)]
        assert len(delivered) >= 5
        assert delivered[0]["code"] == "NODE_STARTING"
        assert delivered[0] == history[0]
        assert int(count.read_text()) == len(delivered) + 2
        flaky_stats, failing_stats, slow_stats = alerts
        assert flaky_stats["delivered"] == len(delivered)
        assert flaky_stats["given_up"] == 0
        failure = flaky_stats["last_failure"]
        assert (failure["code"], failure["rc"], failure["attempts"]) == ("NODE_STARTING", 1, 2)
        assert failure["stderr"] == "not yet 2"
        failure = failing_stats["last_failure"]
        assert (failure["rc"], failure["attempts"], failure["stderr"]) == (3, 2, "boom")
        assert failing_stats["delivered"] == 0
        failure = slow_stats["last_failure"]
        assert failure["timed_out"] is True
        assert failure["rc"] is None
        text = subprocess.run(
            [PY, "-m", "hacluster.cli.main", "--config", str(hacf), "status"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert "Alert hooks:" in text
        assert f"{failing}: 0 delivered" in text
        assert "rc 3 after 2 attempt(s)" in text
        assert ": boom" in text
        assert "timed out after 1 attempt(s)" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    # The slow hook was killed at its timeout, process group and all.
    left = subprocess.run(["pgrep", "-f", "sleep 7.131"], capture_output=True, text=True).stdout
    assert left == ""


def test_a_hopelessly_slow_hook_loses_its_oldest_events_and_is_killed_on_close(tmp_path: Path) -> None:
    seen, pids = tmp_path / "seen", tmp_path / "pids"
    hook = script(tmp_path / "slow.sh", f"echo $$ >> {pids}\ncat >> {seen}\nexec sleep 30\n")

    async def scenario() -> dict[str, Any]:
        runner = AlertRunner((AlertSpec(hook, timeout_ms=20_000, retries=0),), queue_max=2)
        runner.start()
        runner.submit({"code": "E0"})
        for _ in range(500):  # the hook has E0 once it wrote it down (10 s at most)
            if seen.exists() and seen.read_text():
                break
            await asyncio.sleep(0.02)
        for code in ("E1", "E2", "E3", "E4"):
            runner.submit({"code": code})
        stats = runner.statistics()[0]
        await runner.close(drain_s=0)
        return stats

    stats = asyncio.run(scenario())
    assert stats["dropped"] == 2  # E1 and E2: the queue keeps the newest two
    assert stats["queued"] == 3  # E0 running, E3 and E4 waiting
    assert json.loads(seen.read_text()) == {"code": "E0"}
    pid = int(pids.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_endpoint_of_a_two_node_cluster_through_a_failover(tmp_path: Path) -> None:
    cluster = DemoCluster(tmp_path, nodes=2)
    ports = {}
    for name, hacf in cluster.configs.items():
        ports[name] = free_tcp_port()
        hacf.write_text(hacf.read_text() + f"metrics_listen 127.0.0.1:{ports[name]}\n")
    try:
        for name in cluster.names:
            cluster.start(name)
        assert cluster.wait_all_active(), (tmp_path / "n1" / "stderr.log").read_text()
        holder = cluster.wait_service_started("n1")
        assert holder is not None
        other = next(n for n in cluster.names if n != holder)
        time.sleep(1.0)  # about ten heartbeats for the gap histogram
        before_other = scrape(ports[other])
        samples = scrape(ports[holder])
        assert value(samples, "hacluster_info", node=holder, cluster="linux-ha") == 1
        assert value(samples, "hacluster_node_state", node=other, state="active") == 1
        assert value(samples, "hacluster_node_state", node=other, state="dead") == 0
        assert value(samples, "hacluster_link_up", node=other, link="ucast lo") == 1
        assert value(samples, "hacluster_resource_state", resource="web", node=holder, state="started") == 1
        assert value(samples, "hacluster_resource_state", resource="web", node=holder, state="failed") == 0
        assert value(samples, "hacluster_resource_fail_count", resource="web", node=holder) == 0
        assert value(samples, "hacluster_packets_dropped_total", reason="bad_auth") == 0
        assert value(samples, "hacluster_input_queue_overflows_total") == 0
        gaps = value(samples, "hacluster_heartbeat_gap_seconds_count", node=other, link="ucast lo")
        assert gaps is not None
        assert gaps >= 3
        inf = value(samples, "hacluster_heartbeat_gap_seconds_bucket", node=other, link="ucast lo", le="+Inf")
        assert inf == gaps
        total = value(samples, "hacluster_heartbeat_gap_seconds_sum", node=other, link="ucast lo")
        assert total is not None
        assert 0.02 < total / gaps < 1.0  # keepalive is 100 ms
        assert not [k for k in samples if k[0] == "hacluster_resource_failovers_total"]
        assert (
            value(before_other, "hacluster_resource_state", resource="web", node=holder, state="started") == 1
        )
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{ports[holder]}/nope", timeout=5)
        assert missing.value.code == 404
        missing.value.close()
        # A graceful stop hands the service over: the survivor counts a failover from the holder.
        cluster.procs[holder].send_signal(signal.SIGTERM)
        assert cluster.procs[holder].wait(timeout=15) == 0
        assert cluster.wait_service_started(other) == other
        samples = scrape(ports[other])
        for rsc in ("web", "app"):
            assert (
                value(
                    samples,
                    "hacluster_resource_failovers_total",
                    resource=rsc,
                    from_node=holder,
                    to_node=other,
                )
                == 1
            )
        assert value(samples, "hacluster_node_state", node=holder, state="dead") == 1
        assert value(samples, "hacluster_resource_state", resource="web", node=other, state="started") == 1
        starts = value(samples, "hacluster_history_events_total", level="INFO", code="RESOURCE_START")
        assert starts is not None
        assert starts >= 2
    finally:
        cluster.stop_all()


if __name__ == "__main__":  # pragma: no cover - a quick manual run
    sys.exit(pytest.main([__file__, "-q"]))
