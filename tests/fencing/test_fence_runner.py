"""The fencer's contract, driven through a small shell fence agent that records what it got."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

import pytest
from fencekit import need_tools

from hacluster.shell.fencer import FenceDevice, Fencer, FenceResult
from hacluster.shell.redact import REDACTED, redact

SECRET = "s3cr3t-Pw-7731"

AGENT = r"""#!/bin/sh
dir=@DIR@
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
cat > "$dir/stdin.$n"
action=reboot; mode=ok; status_rc=2; password=; sleep_s=0
while IFS= read -r line; do
  case "$line" in
    action=*) action=${line#action=};;
    mode=*) mode=${line#mode=};;
    status_rc=*) status_rc=${line#status_rc=};;
    password=*) password=${line#password=};;
    api_token=*) token=${line#api_token=};;
    sleep_s=*) sleep_s=${line#sleep_s=};;
  esac
done < "$dir/stdin.$n"
echo "$action" >> "$dir/calls"
case "$action" in
  metadata)
    echo '<?xml version="1.0" ?><resource-agent name="fence_fixture" shortdesc="fixture"><parameters/><actions>'
    for a in @ACTIONS@; do echo "<action name=\"$a\" />"; done
    echo '</actions></resource-agent>'
    exit 0;;
  list) cat "$dir/list.txt"; exit 0;;
  status) echo "Status: rc $status_rc"; exit "$status_rc";;
  monitor) exit 0;;
esac
case "$mode" in
  ok) echo "Success: done"; exit 0;;
  fail) echo "Failed: device said no"; exit 1;;
  flaky) if [ -e "$dir/flaky" ]; then echo "Success: second time"; exit 0; fi
         touch "$dir/flaky"; echo "Failed: first time"; exit 1;;
  hang) sleep 300 & echo $! > "$dir/child.pid"; sleep 300;;
  slowfail) sleep "$sleep_s"; exit 1;;
  leak) echo "login password is $password"; echo "debug: passwd=$password"; exit 1;;
  leaktoken) echo "Authorization: Bearer $token"; exit 1;;
esac
exit 1
"""


class Fixture:
    """One fixture agent in its own directory, and a Fencer that finds it."""

    def __init__(self, root: Path, actions: str = "on off reboot status monitor list metadata") -> None:
        self.dir = root
        agent = root / "fence_fixture"
        agent.write_text(AGENT.replace("@DIR@", str(root)).replace("@ACTIONS@", actions))
        agent.chmod(0o755)
        self.fencer = Fencer(search_dirs=[root], rng=random.Random(7))

    def device(self, **changes: object) -> FenceDevice:
        fields: dict[str, object] = {
            "id": "f1",
            "agent": "fence_fixture",
            "params": (("mode", "ok"),),
            "timeout_ms": 10_000,
            "retries": 2,
        }
        fields.update(changes)
        return FenceDevice(**fields)  # type: ignore[arg-type]

    def calls(self) -> list[str]:
        path = self.dir / "calls"
        return path.read_text().split() if path.exists() else []

    def stdin(self, n: int) -> list[str]:
        return (self.dir / f"stdin.{n}").read_text().splitlines()

    def fence(self, device: FenceDevice, target: str = "node1", action: str = "reboot") -> FenceResult:
        return asyncio.run(self.fencer.fence(device, target, action))


def is_alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie waits for PID 1 to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False


@pytest.fixture
def fixture(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def test_stdin_carries_exactly_the_options(fixture: Fixture) -> None:
    device = fixture.device(
        params=(("mode", "ok"), ("ip", "10.0.0.9"), ("action", "off"), ("pcmk_host_check", "static-list")),
        host_map=(("node1", "port-7"), ("node2", "port-8")),
    )
    result = fixture.fence(device, "node1", "reboot")
    assert result.ok, result
    assert result.rc == 0
    # action/pcmk_* parameters are the fencer's, never the agent's; the plug comes from host_map.
    assert fixture.stdin(1) == ["action=reboot", "nodename=node1", "plug=port-7", "mode=ok", "ip=10.0.0.9"]
    assert fixture.calls() == ["reboot"], "a reboot's exit 0 is enough: no status confirmation"


def test_plug_is_the_node_name_without_map_and_a_fixed_plug_wins(fixture: Fixture) -> None:
    assert fixture.fence(fixture.device(), "node2").ok
    assert "plug=node2" in fixture.stdin(1)
    fixed = fixture.device(params=(("mode", "ok"), ("port", "17")))
    assert fixture.fence(fixed, "node2").ok
    assert fixture.stdin(2) == ["action=reboot", "nodename=node2", "mode=ok", "port=17"]


def test_off_is_confirmed_by_status(fixture: Fixture) -> None:
    result = fixture.fence(fixture.device(), "node1", "off")
    assert result.ok, result
    assert [name for name, _ in result.steps] == ["off", "status"]
    assert fixture.calls() == ["off", "metadata", "status"]


def test_off_that_status_contradicts_fails(fixture: Fixture) -> None:
    device = fixture.device(params=(("mode", "ok"), ("status_rc", "0")))
    result = fixture.fence(device, "node1", "off")
    assert not result.ok
    assert result.rc == 0, "the off itself exited 0"
    assert "status answered rc=0, not 2" in result.output


def test_off_without_status_action_trusts_the_exit_code(tmp_path: Path) -> None:
    fixture = Fixture(tmp_path, actions="off reboot monitor metadata")
    result = fixture.fence(fixture.device(), "node1", "off")
    assert result.ok
    assert fixture.calls() == ["off", "metadata"]


def test_failure_is_retried_and_retries_are_counted(fixture: Fixture) -> None:
    result = fixture.fence(fixture.device(params=(("mode", "flaky"),)))
    assert result.ok
    assert result.rc == 0
    assert [name for name, _ in result.steps] == ["reboot", "reboot#2"]

    failing = fixture.fence(fixture.device(params=(("mode", "fail"),), retries=1))
    assert not failing.ok
    assert failing.rc == 1
    assert not failing.timed_out
    assert [name for name, _ in failing.steps] == ["reboot", "reboot#2"]
    assert "device said no" in failing.output


def test_no_retry_when_less_than_30_percent_of_the_budget_is_left(fixture: Fixture) -> None:
    device = fixture.device(params=(("mode", "slowfail"), ("sleep_s", "0.8")), timeout_ms=1_000, retries=3)
    result = fixture.fence(device)
    assert not result.ok
    assert len(result.steps) == 1, result.steps


def test_timeout_kills_the_agents_process_group(fixture: Fixture) -> None:
    device = fixture.device(params=(("mode", "hang"),), timeout_ms=700, retries=2)
    started = time.monotonic()
    result = fixture.fence(device)
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert not result.ok
    assert result.rc is None
    assert elapsed < 3, f"the fence took {elapsed:.1f} s for a 0.7 s budget"
    assert "timed out after" in result.output
    child = int((fixture.dir / "child.pid").read_text())
    assert not is_alive(child), "the agent's own child died with it"


def test_delay_comes_first_and_stays_within_delay_max(fixture: Fixture) -> None:
    device = fixture.device(delay_base_ms=200, delay_max_ms=400)
    delays = {fixture.fencer.delay_ms(device) for _ in range(200)}
    assert min(delays) >= 200
    assert max(delays) <= 400
    assert len(delays) > 20
    result = fixture.fence(fixture.device(delay_base_ms=300))
    assert result.ok
    assert result.steps[0] == ("delay", 300)
    assert result.duration_ms >= 300


def test_secrets_never_reach_results_or_logs(fixture: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hacluster.shell.fencer")
    device = fixture.device(params=(("mode", "leak"), ("password", SECRET)), retries=0)
    result = fixture.fence(device)
    assert not result.ok
    assert f"login password is {REDACTED}" in result.output
    assert SECRET not in result.output
    assert "stdin=" in caplog.text, "the debug line with the agent's stdin was logged"
    assert SECRET not in caplog.text
    assert redact("ipmi_password=abc secret: x", []) == f"ipmi_password={REDACTED} secret: {REDACTED}"


def test_a_token_parameter_is_a_secret_too(fixture: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    # The fencer once had its own word list, without "token": a bearer token went out verbatim.
    caplog.set_level(logging.DEBUG, logger="hacluster.shell.fencer")
    token = "tok-4f9a2c71e0"
    result = fixture.fence(fixture.device(params=(("mode", "leaktoken"), ("api_token", token)), retries=0))
    assert not result.ok
    assert f"Authorization: Bearer {REDACTED}" in result.output
    assert token not in result.output
    assert token not in caplog.text


def test_can_fence_from_lists_and_maps(fixture: Fixture) -> None:
    fencer = fixture.fencer
    assert asyncio.run(fencer.can_fence(fixture.device(host_list=("a", "b")), "b"))
    assert not asyncio.run(fencer.can_fence(fixture.device(host_list=("a", "b")), "c"))
    assert asyncio.run(fencer.can_fence(fixture.device(host_map=(("c", "3"),)), "c"))
    (fixture.dir / "list.txt").write_text("vm-1,node1\nvm-2,node2\n")
    dynamic = fixture.device(id="dyn")

    async def ask() -> list[bool]:
        return [await fencer.can_fence(dynamic, name) for name in ("node1", "vm-2", "node3")]

    assert asyncio.run(ask()) == [True, True, False]
    assert fixture.calls() == ["list"], "the list is asked once and remembered"
    (fixture.dir / "list.txt").write_text("N/A\n")
    fencer.forget("dyn")
    assert not asyncio.run(fencer.can_fence(dynamic, "node1")), "N/A reaches nobody without a host_list"


def test_test_runs_monitor_and_status_only(fixture: Fixture) -> None:
    result = asyncio.run(fixture.fencer.test(fixture.device(), "node1"))
    assert result.ok
    assert result.action == "test"
    assert [name for name, _ in result.steps] == ["monitor", "status"]
    assert all(ms >= 0 for _, ms in result.steps)
    assert fixture.calls() == ["monitor", "status"]
    assert "nodename=node1" in fixture.stdin(2)


def test_missing_agent_is_a_result_not_an_exception(tmp_path: Path) -> None:
    fencer = Fencer(search_dirs=[tmp_path])
    device = FenceDevice(id="x", agent="fence_nonexistent", params=())
    result = asyncio.run(fencer.fence(device, "node1"))
    assert not result.ok
    assert result.rc is None
    assert "fence_nonexistent" in result.output
    assert "not found" in result.output
    assert fencer.resolve("../bin/sh") is None
    assert fencer.resolve("stonith:") is None


def test_newline_in_a_value_fails_the_request(fixture: Fixture) -> None:
    result = fixture.fence(fixture.device(params=(("mode", "ok\naction=on"),)))
    assert not result.ok
    assert "newline" in result.output
    assert fixture.calls() == []


def test_cluster_glue_plugin_through_stonith() -> None:
    need_tools("stonith")
    fencer = Fencer()
    device = FenceDevice(id="glue", agent="stonith:null", params=(("hostlist", "n1 n2"),))

    async def scenario() -> tuple[bool, bool, bool, FenceResult, FenceResult]:
        return (
            await fencer.can_fence(device, "n2"),
            await fencer.can_fence(device, "n3"),
            (await fencer.monitor(device)).ok,
            await fencer.fence(device, "n2", "reboot"),
            await fencer.fence(device, "n1", "off"),
        )

    reaches_n2, reaches_n3, monitor_ok, reboot, off = asyncio.run(scenario())
    assert reaches_n2
    assert not reaches_n3
    assert monitor_ok
    assert reboot.ok
    assert reboot.rc == 0
    assert off.ok
    assert [name for name, _ in off.steps] == ["off"]
    assert fencer.command(device, "reboot", "n2")[0][-4:] == ["-E", "-T", "reset", "n2"]
    assert "<resource-agent" in asyncio.run(fencer.metadata("stonith:null"))
    bare = FenceDevice(id="crm", agent="external/ssh", params=(("hostlist", "n1"),))
    assert fencer.command(bare, "off", "n1")[0][1:] == ["-t", "external/ssh", "-E", "-T", "off", "n1"]
    assert fencer.command(bare, "off", "n1")[2]["hostlist"] == "n1", (
        "plugin parameters travel in the environment"
    )
    positional = FenceDevice(id="hacf", agent="stonith:null", params=(("args", "n1 n2"),))
    assert asyncio.run(fencer.fence(positional, "n1")).ok
