"""fence_ipmi and ClusterLabs' fence_ipmilan against OpenIPMI's ipmi_sim on loopback.

The simulated BMC's chassis control script stands for the machine's power: powering off
writes 0 to a state file and kills the "machine" (a sleep process whose pid it holds);
powering on writes 1.  Both agents talk real IPMI-over-LAN (RMCP+) to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fencekit import need_tools

from hacluster.shell.fencer import FenceDevice, Fencer, FenceResult

pytestmark = pytest.mark.root
PASSWORD = "Bmc-s3cret-42"

CHASSIS = r"""#!/bin/sh
dir=@DIR@
echo "$*" >> "$dir/calls"
case "$2" in
get) [ -f "$dir/power" ] || echo 1 > "$dir/power"; echo "power:$(cat "$dir/power")";;
set) shift 2
     while [ $# -ge 2 ]; do
       if [ "$1" = power ]; then
         echo "$2" > "$dir/power"
         [ "$2" = 0 ] && [ -f "$dir/machine.pid" ] && kill -9 "$(cat "$dir/machine.pid")" 2>/dev/null
       fi
       shift 2
     done;;
esac
exit 0
"""

LAN_CONF = """name "hafence"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 @PORT@
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "@DIR@/chassis 0x20"
  user 2 true "admin" "@PASSWORD@" admin 10 none md2 md5 straight
"""

EMU = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n"


@dataclass
class Bmc:
    dir: Path
    port: int
    machine: subprocess.Popen[bytes] | None = None

    def power(self) -> str:
        return (self.dir / "power").read_text().strip()

    def start_machine(self) -> subprocess.Popen[bytes]:
        self.machine = subprocess.Popen(["sleep", "300"])
        (self.dir / "machine.pid").write_text(str(self.machine.pid))
        (self.dir / "power").write_text("1\n")
        return self.machine


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture(scope="module")
def bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bmc]:
    tools = need_tools("ipmi_sim", "ipmitool")
    root = tmp_path_factory.mktemp("bmc")
    (root / "state").mkdir()
    port = free_udp_port()
    chassis = root / "chassis"
    chassis.write_text(CHASSIS.replace("@DIR@", str(root)))
    chassis.chmod(0o755)
    conf = LAN_CONF.replace("@PORT@", str(port)).replace("@DIR@", str(root)).replace("@PASSWORD@", PASSWORD)
    (root / "lan.conf").write_text(conf)
    (root / "emu").write_text(EMU)
    log = (root / "sim.log").open("wb")
    sim = subprocess.Popen(
        [
            tools["ipmi_sim"],
            "-c",
            str(root / "lan.conf"),
            "-f",
            str(root / "emu"),
            "-s",
            str(root / "state"),
            "-n",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not is_bound(port):
            assert sim.poll() is None, f"ipmi_sim exited: {(root / 'sim.log').read_text()}"
            assert time.monotonic() < deadline, "ipmi_sim did not open its LAN port"
            time.sleep(0.05)
        yield Bmc(root, port)
    finally:
        sim.kill()
        sim.wait(timeout=10)
        log.close()


def ipmi_device(bmc: Bmc, agent: str, password: str = PASSWORD) -> FenceDevice:
    params = [("ip", "127.0.0.1"), ("ipport", str(bmc.port)), ("username", "admin"), ("password", password)]
    params += [("lanplus", "1"), ("cipher", "3")]
    return FenceDevice(id=agent, agent=agent, params=tuple(params), host_list=("node1",), timeout_ms=30_000)


def test_fence_ipmi_powers_the_machine_off_and_on(bmc: Bmc) -> None:
    machine = bmc.start_machine()
    fencer = Fencer()
    device = ipmi_device(bmc, "fence_ipmi")

    async def scenario() -> list[FenceResult]:
        return [
            await fencer.test(device, "node1"),
            await fencer.fence(device, "node1", "off"),
            await fencer.status(device, "node1"),
            await fencer.fence(device, "node1", "on"),
            await fencer.fence(device, "node1", "reboot"),
        ]

    test, off, status_off, on, reboot = asyncio.run(scenario())
    assert test.ok
    assert [name for name, _ in test.steps] == ["monitor", "status"]
    assert off.ok, off.output
    assert machine.wait(timeout=5) == -9, "power off killed the machine"
    assert status_off.rc == 2
    assert on.ok
    assert reboot.ok
    assert bmc.power() == "1"
    calls = (bmc.dir / "calls").read_text().splitlines()
    assert "0x20 set power 0" in calls
    assert "0x20 set power 1" in calls


def test_fence_ipmi_wrong_password_fails_without_leaking_it(bmc: Bmc) -> None:
    fencer = Fencer()
    device = ipmi_device(bmc, "fence_ipmi", password="wrong-Pw-991")
    result = asyncio.run(fencer.fence(dataclasses.replace(device, retries=0), "node1", "off"))
    assert not result.ok
    assert result.rc == 1
    assert "ipmitool chassis power off" in result.output
    assert "check ip, ipport, username" in result.output
    assert "wrong-Pw-991" not in result.output


def test_clusterlabs_fence_ipmilan_against_the_same_bmc(bmc: Bmc) -> None:
    need_tools("fence_ipmilan")
    machine = bmc.start_machine()
    fencer = Fencer()
    device = ipmi_device(bmc, "fence_ipmilan")

    async def scenario() -> list[FenceResult]:
        return [await fencer.fence(device, "node1", "off"), await fencer.fence(device, "node1", "on")]

    off, on = asyncio.run(scenario())
    assert off.ok, off.output
    assert [name for name, _ in off.steps] == ["off", "status"]
    assert machine.wait(timeout=5) == -9
    assert on.ok, on.output
    assert bmc.power() == "1"
    assert PASSWORD not in off.output


@pytest.fixture(autouse=True)
def _no_leftover_machine(bmc: Bmc) -> Iterator[None]:
    yield
    if bmc.machine is not None and bmc.machine.poll() is None:
        bmc.machine.kill()
        bmc.machine.wait(timeout=5)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(bmc.dir / "machine.pid")
