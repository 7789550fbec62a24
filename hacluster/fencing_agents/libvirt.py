"""fence_libvirt: virtual machines as fence targets, through ``virsh -c URI``.

``plug`` is the domain name (or UUID).  Power changes run in *one* virsh process together with
the state check that verifies them (``destroy DOM; domstate DOM``): one connection instead of
two, and the result is read where it was made.  That also makes the agent testable against
libvirt's built-in test driver (``test:///default`` or ``test:///path/node.xml``), whose state
lives only as long as one connection: a later ``status`` call sees the initial state again.
virsh runs every command of such a line and exits with the last one's status; the verdict
comes from the final ``domstate`` output.
"""

from __future__ import annotations

import os
from typing import ClassVar, Final

from hacluster.fencing_agents.api import FenceAgent, FenceError, Param, run_tool

OFF_STATES: Final = frozenset(["shut off", "crashed"])
ON_STATES: Final = frozenset(["running", "idle", "paused", "in shutdown", "blocked", "pmsuspended"])
_UNSAFE: Final = frozenset("'\"\\;\n\r\0 \t")


class LibvirtAgent(FenceAgent):
    name = "fence_libvirt"
    shortdesc = "Fence agent for libvirt virtual machines (through virsh)"
    longdesc = (
        "fence_libvirt powers virtual machines off (virsh destroy) and on (virsh start) through "
        "any libvirt connection URI, e.g. qemu:///system or qemu+ssh://host/system; plug is the "
        "domain name or UUID and list names every domain of the connection."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("plug", "Domain name or UUID of the virtual machine", short="-n"),
        Param("uri", "libvirt connection URI", default="qemu:///system"),
        Param("virsh_path", "Path to virsh", default="virsh"),
        Param("login_timeout", "Wait X seconds for one virsh call to finish", "second", "10"),
    )
    multi_port = True

    def validate(self, action: str) -> list[str]:
        plug = self.options.text("plug")
        if plug and any(ch in _UNSAFE for ch in plug):
            return [
                f"plug={plug!r} contains quotes, ';', spaces or control characters; name the domain by UUID"
            ]
        return []

    def _virsh(self, line: str) -> str:
        argv = [self.options.text("virsh_path"), "-q", "-c", self.options.text("uri"), line]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C", "LC_ALL": "C"}
        for name in ("HOME", "XDG_RUNTIME_DIR", "LIBVIRT_DEFAULT_URI"):
            if name in os.environ:
                env[name] = os.environ[name]
        rc, output, errors = run_tool(argv, timeout_s=self.options.seconds("login_timeout"), env=env)
        if rc != 0:
            raise FenceError(
                f"virsh -c {self.options.text('uri')} '{line}' failed (rc={rc}): {errors or output or 'no output'}; "
                "check uri and plug (virsh list --all)"
            )
        return output  # stdout only: a step that failed on the way (destroy when off) wrote to stderr

    def _final_state(self, output: str) -> str:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        state = lines[-1] if lines else ""
        if state in OFF_STATES:
            return "off"
        if state in ON_STATES:
            return "on"
        raise FenceError(
            f"virsh reported an unknown domain state {state!r} for plug={self.options.text('plug')!r}"
        )

    def power_status(self) -> str:
        return self._final_state(self._virsh(f"domstate '{self.options.text('plug')}'"))

    def power_off(self) -> str | None:
        plug = self.options.text("plug")
        # destroy fails on a domain that is already off; domstate decides.
        return self._final_state(self._virsh(f"destroy '{plug}'; domstate '{plug}'"))

    def power_on(self) -> str | None:
        plug = self.options.text("plug")
        return self._final_state(self._virsh(f"start '{plug}'; domstate '{plug}'"))

    def plugs(self) -> list[tuple[str, str]]:
        names = [line.strip() for line in self._virsh("list --all --name").splitlines() if line.strip()]
        return [(name, name) for name in names]
