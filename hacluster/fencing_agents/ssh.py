"""fence_ssh: "fencing" by logging in and rebooting, for labs only.

It cannot fence a node that is hung or cut off, which is exactly when fencing matters, so it
belongs in test clusters (cluster-glue says the same of its ssh plugin).  ``off``/``reboot``
run ``command`` (default ``reboot -f``) over ssh, then poll until the node stops answering
ssh; ``status`` says ON when ``ssh … true`` succeeds and OFF when ssh cannot connect (exit
255).  Treating "unreachable" as "off" is the unsafe assumption this agent is built on.  There
is no ``on``: a node that is off cannot be reached.
"""

from __future__ import annotations

import os
import shlex
from typing import ClassVar, Final

from hacluster.fencing_agents.api import ACTION_ORDER, FenceAgent, FenceError, Param, run_tool

SSH_UNREACHABLE: Final = 255


class SshAgent(FenceAgent):
    name = "fence_ssh"
    shortdesc = "Fence agent that reboots a lab node over ssh (testing only)"
    longdesc = (
        "fence_ssh logs in to the target with ssh and runs a reboot command. It cannot fence a "
        "hung or unreachable node and counts an unreachable node as off: use it in test labs only."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("ip", "IP address or hostname of the node", required=True, short="-a"),
        Param("ipport", "TCP port of sshd", "integer", "22", short="-u"),
        Param("username", "Login name", default="root", short="-l"),
        Param("identity_file", "Identity file (private key) for ssh", short="-k"),
        Param("command", "Command that kills the node", default="reboot -f"),
        Param("ssh_path", "Path to ssh", default="ssh"),
        Param(
            "ssh_options", "Extra ssh options", default="-o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        ),
        Param("login_timeout", "Wait X seconds for ssh to connect", "second", "5"),
    )
    actions = frozenset(a for a in ACTION_ORDER if a != "on")

    def validate(self, action: str) -> list[str]:
        problems = []
        key = self.options.text("identity_file")
        if key and not os.path.isfile(key):
            problems.append(f"identity_file={key!r} does not exist; give the path of the private key")
        try:
            shlex.split(self.options.text("ssh_options"))
        except ValueError as exc:
            problems.append(f"ssh_options cannot be split into words ({exc}); check the quotes")
        if not self.options.text("command").strip():
            problems.append("command is empty; give the command that kills the node, e.g. command=reboot -f")
        return problems

    def _ssh(self, remote: str) -> int:
        opts = self.options
        timeout_s = opts.seconds("login_timeout")
        argv = [opts.text("ssh_path"), *shlex.split(opts.text("ssh_options"))]
        argv += [
            "-o",
            f"ConnectTimeout={max(1, int(timeout_s))}",
            "-p",
            str(opts.integer("ipport", minimum=1)),
        ]
        if opts.text("identity_file"):
            argv += ["-i", opts.text("identity_file")]
        argv += ["-l", opts.text("username"), opts.text("ip"), remote]
        rc, _, _ = run_tool(argv, timeout_s=timeout_s + 5)
        return rc

    def power_status(self) -> str:
        rc = self._ssh("true")
        if rc == 0:
            return "on"
        if rc == SSH_UNREACHABLE:
            return "off"
        raise FenceError(f"ssh to {self.options.text('ip')} ran `true` with rc={rc}; check login and shell")

    def power_off(self) -> str | None:
        # The connection usually dies with the node (rc 255): only the polling afterwards judges.
        self._ssh(self.options.text("command"))
        return None
