"""fence_ipmi: power control through a BMC with ``ipmitool … chassis power on|off|status|cycle``.

One BMC controls one machine, so ``plug`` is not used and ``list`` answers ``N/A``.  The
password never appears on ipmitool's command line (other users could read it in ``ps``): it
travels in the ``IPMI_PASSWORD`` environment variable with ``-E``.  Each ipmitool call runs
under ``login_timeout``; ipmitool's own per-packet timeout and retries are ``-N 1 -R
retry_on``.  ``method=cycle`` reboots with one ``chassis power cycle`` (which many BMCs refuse
while the machine is off) instead of off-then-on.
"""

from __future__ import annotations

import os
from typing import ClassVar, Final

from hacluster.fencing_agents.api import FenceAgent, FenceError, Param, run_tool

STATUS_ON: Final = "Chassis Power is on"
STATUS_OFF: Final = "Chassis Power is off"


class IpmiAgent(FenceAgent):
    name = "fence_ipmi"
    shortdesc = "Fence agent for IPMI BMCs (through ipmitool)"
    longdesc = (
        "fence_ipmi powers a machine on and off through its BMC (IPMI over LAN) by running "
        "ipmitool chassis power on, off, status or cycle. The password is passed to ipmitool "
        "in the environment (-E), never on its command line."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("ip", "IP address or hostname of the BMC", required=True, short="-a"),
        Param("ipport", "UDP port of the BMC", "integer", "623", short="-u"),
        Param("username", "BMC user name", short="-l"),
        Param("password", "BMC password", short="-p"),
        Param("password_script", "Script that prints the BMC password", short="-S"),
        Param("lanplus", "Use IPMI v2.0 (lanplus) rather than v1.5 (lan)", "boolean", "1", short="-P"),
        Param("cipher", "Cipher suite for lanplus (e.g. 3); empty = ipmitool's choice", short="-C"),
        Param(
            "privlvl",
            "Privilege level on the BMC",
            "select",
            "administrator",
            short="-L",
            choices=("callback", "user", "operator", "administrator"),
        ),
        Param("method", "Method to fence", "select", "onoff", short="-m", choices=("onoff", "cycle")),
        Param("ipmitool_path", "Path to ipmitool", default="ipmitool"),
        Param("login_timeout", "Wait X seconds for one ipmitool call to finish", "second", "10"),
        Param("retry_on", "Retries of each IPMI request (ipmitool -R)", "integer", "2"),
    )
    multi_port = False

    def validate(self, action: str) -> list[str]:
        problems = []
        if action != "list" and "username" not in self.options:
            problems.append("username is required to log in to the BMC; set username=<user>")
        if "password" in self.options and "password_script" in self.options:
            problems.append("give password or password_script, not both")
        cipher = self.options.text("cipher").strip()
        if cipher and not cipher.isdigit():
            problems.append(f"cipher={cipher!r} is not a cipher suite number (e.g. 3 or 17)")
        return problems

    def _ipmitool(self, *command: str) -> str:
        opts = self.options
        argv = [
            opts.text("ipmitool_path"),
            "-I",
            "lanplus" if opts.boolean("lanplus") else "lan",
            "-H",
            opts.text("ip"),
            "-p",
            str(opts.integer("ipport", minimum=1)),
            "-U",
            opts.text("username"),
            "-L",
            opts.choice("privlvl").upper(),
            "-N",
            "1",
            "-R",
            str(opts.integer("retry_on", minimum=1)),
            "-E",
        ]
        if opts.text("cipher").strip():
            argv += ["-C", opts.text("cipher").strip()]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}
        env["IPMI_PASSWORD"] = opts.password()
        rc, output, errors = run_tool([*argv, *command], timeout_s=opts.seconds("login_timeout"), env=env)
        if rc != 0:
            raise FenceError(
                f"ipmitool {' '.join(command)} on {opts.text('ip')}:{opts.text('ipport')} failed (rc={rc}): "
                f"{errors or output or 'no output'}; check ip, ipport, username, password, lanplus and cipher"
            )
        return output

    def power_status(self) -> str:
        output = self._ipmitool("chassis", "power", "status")
        if STATUS_ON in output:
            return "on"
        if STATUS_OFF in output:
            return "off"
        raise FenceError(f"ipmitool printed an unknown power state: {output!r}")

    def power_off(self) -> str | None:
        self._ipmitool("chassis", "power", "off")
        return None

    def power_on(self) -> str | None:
        self._ipmitool("chassis", "power", "on")
        return None

    def power_cycle(self) -> bool:
        if self.options.choice("method") != "cycle":
            return False
        self._ipmitool("chassis", "power", "cycle")
        return True
