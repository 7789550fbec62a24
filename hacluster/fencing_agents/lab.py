"""fence_lab: a "power switch" for test nodes that are network namespaces.

A lab node is a namespace (``ip netns add NODE``) with a veth into a switch namespace.
Powering it off means what pulling a real plug means: every process in the namespace dies at
once (SIGKILL, sent with ``os.kill`` from this process, no shell loop, so ``off`` takes a few
milliseconds) and its cable goes dead (the node-side interfaces, and the switch-side port when
``switch_netns`` is given, are set down).  Powering on only brings the links back; the
processes are not restarted, as a real machine's would not be until it boots: the test starts
the daemon again.

With ``power_log=PATH`` the switch keeps a power log, as a managed PDU keeps an event log:
after every completed ``off`` (all processes gone, links down) and ``on`` it appends one line
``<CLOCK_MONOTONIC ns> <plug> off|on`` with a single O_APPEND write.  The ``off`` time is an
upper bound of the instant the node's last process died, taken by the device itself and not
from any cluster daemon's view; the fault campaign (bench/campaign.py) judges the resources'
journal with it and "boots" a node some time after its ``on``.

The state read back is "on" while any live process runs in the namespace or any managed link
is administratively up, else "off".  Processes are found as ``ip netns pids`` finds them: the
ones whose ``/proc/PID/ns/net`` is the namespace's nsfs inode (zombies have none).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import ClassVar, Final

from hacluster.fencing_agents.api import FenceAgent, FenceError, Param, run_tool, safe_name

NETNS_DIR: Final = "/run/netns"
KILL_ROUNDS_MAX: Final = 50
IP_TIMEOUT_S: Final = 10.0


class LabAgent(FenceAgent):
    name = "fence_lab"
    shortdesc = "Fence agent for network-namespace lab nodes"
    longdesc = (
        "fence_lab powers lab nodes that are Linux network namespaces on and off. off and reboot "
        "kill every process in the namespace with SIGKILL and set its links down (node-side "
        "interfaces, and the switch-side port when switch_netns and switch_ports are given); on "
        "sets the links up again without starting any process. status reads ON while a process "
        "runs in the namespace or a managed link is up. For tests and benchmarks only."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("plug", "Network namespace of the node to fence", short="-n"),
        Param("plugs", "Comma-separated namespaces this switch manages (list; plug must be one of them)"),
        Param("interface", "Node-side interfaces inside the namespace (comma-separated; default all but lo)"),
        Param("switch_netns", "Namespace holding the switch-side ports (optional)"),
        Param("switch_ports", "Switch-side port per node: ns1:port1,ns2:port2 (with switch_netns)"),
        Param("ip_path", "Path to the ip command", default="ip"),
        Param(
            "power_log", "Append '<CLOCK_MONOTONIC ns> <plug> off|on' here after each power change (optional)"
        ),
        Param("power_timeout", "Test X seconds for status change after ON/OFF", "second", "5"),
    )
    multi_port = True

    # --- options ------------------------------------------------------------------------------

    def managed(self) -> list[str]:
        return [name.strip() for name in self.options.text("plugs").split(",") if name.strip()]

    def switch_port(self) -> str | None:
        plug = self.options.text("plug")
        for item in self.options.text("switch_ports").replace(";", ",").split(","):
            node, _, port = item.strip().partition(":")
            if node == plug and port:
                return port
        return None

    def validate(self, action: str) -> list[str]:
        problems = []
        plug = self.options.text("plug")
        managed = self.managed()
        if plug:
            problem = safe_name(plug, "plug")
            if problem:
                problems.append(problem)
            elif managed and plug not in managed:
                problems.append(
                    f"plug={plug!r} is not one of plugs={','.join(managed)}; this switch refuses to "
                    "power a node it does not manage (fix plug or add it to plugs)"
                )
        if action == "list" and not managed:
            problems.append("list needs plugs=<ns1,ns2,…> naming the namespaces this switch manages")
        for name in managed:
            problem = safe_name(name, "plugs entry")
            if problem:
                problems.append(problem)
        power_log = self.options.text("power_log")
        if power_log and not os.path.isdir(os.path.dirname(os.path.abspath(power_log))):
            problems.append(
                f"power_log={power_log!r}: its directory does not exist; create it or fix the path"
            )
        if ("switch_netns" in self.options) != ("switch_ports" in self.options):
            problems.append("switch_netns and switch_ports go together; set both or neither")
        elif "switch_netns" in self.options and plug and self.switch_port() is None:
            problems.append(f"switch_ports has no port for plug={plug!r}; add {plug}:<port>")
        return problems

    # --- the namespace ------------------------------------------------------------------------

    def _netns_identity(self, name: str) -> tuple[int, int]:
        try:
            st = os.stat(os.path.join(NETNS_DIR, name))
        except FileNotFoundError:
            raise FenceError(
                f"no network namespace {name!r} (no {NETNS_DIR}/{name}); check plug, or `ip netns list`"
            ) from None
        return st.st_dev, st.st_ino

    def pids(self) -> list[int]:
        """Live processes whose network namespace is the plug's."""
        identity = self._netns_identity(self.options.text("plug"))
        me = os.getpid()
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                st = os.stat(f"/proc/{entry.name}/ns/net")
            except OSError:
                continue  # gone, a zombie, or a kernel thread we may not inspect
            if (st.st_dev, st.st_ino) == identity and int(entry.name) != me:
                found.append(int(entry.name))
        return found

    def _ip(self, *argv: str) -> str:
        rc, output, errors = run_tool([self.options.text("ip_path"), *argv], timeout_s=IP_TIMEOUT_S)
        if rc != 0:
            raise FenceError(f"ip {' '.join(argv)} failed (rc={rc}): {errors or output}")
        return output

    def _links(self) -> list[tuple[str, str, bool]]:
        """(namespace, interface, admin-up) for every managed link."""
        plug = self.options.text("plug")
        port = self.switch_port()
        if port is not None:
            switch = self.options.text("switch_netns")
            return [(switch, port, self._is_up(self._ip("-n", switch, "-o", "link", "show", "dev", port)))]
        wanted = {name.strip() for name in self.options.text("interface").split(",") if name.strip()}
        links = []
        for line in self._ip("-n", plug, "-o", "link", "show").splitlines():
            # "2: e1@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 …"
            fields = line.split()
            if len(fields) < 3:
                continue
            name = fields[1].rstrip(":").split("@")[0]
            if name == "lo" or (wanted and name not in wanted):
                continue
            links.append((plug, name, self._is_up(line)))
        missing = wanted - {name for _, name, _ in links}
        if missing:
            raise FenceError(f"interface {','.join(sorted(missing))} not found in namespace {plug!r}")
        return links

    @staticmethod
    def _is_up(line: str) -> bool:
        flags = line.partition("<")[2].partition(">")[0].split(",")
        return "UP" in flags

    def _set_links(self, up: bool) -> None:
        state = "up" if up else "down"
        by_netns: dict[str, list[str]] = {}
        port = self.switch_port()
        named = [name.strip() for name in self.options.text("interface").split(",") if name.strip()]
        if port is not None:
            by_netns[self.options.text("switch_netns")] = [port]
        elif named:  # known names: no listing, one ip call
            by_netns[self.options.text("plug")] = named
        else:
            for netns, name, _ in self._links():
                by_netns.setdefault(netns, []).append(name)
        for netns, names in by_netns.items():
            batch = "".join(f"link set dev {name} {state}\n" for name in names)
            argv = [self.options.text("ip_path"), "-n", netns, "-batch", "-"]
            rc, output, errors = run_tool(argv, timeout_s=IP_TIMEOUT_S, input_text=batch)
            if rc != 0:
                raise FenceError(
                    f"cannot set {','.join(names)} {state} in namespace {netns!r}: {errors or output}"
                )

    def _kill_all(self) -> None:
        # Keep killing until a scan finds nobody: a process may fork between scan and kill.
        for _ in range(KILL_ROUNDS_MAX):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.001)

    # --- the contract -------------------------------------------------------------------------

    def power_status(self) -> str:
        if self.pids():
            return "on"
        return "on" if any(up for _, _, up in self._links()) else "off"

    def _log_power(self, state: str) -> None:
        path = self.options.text("power_log")
        if not path:
            return
        line = f"{time.monotonic_ns()} {self.options.text('plug')} {state}\n".encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise FenceError(
                f"cannot append to power_log={path!r}: {exc}; fix the path or drop power_log"
            ) from None

    def power_off(self) -> str | None:
        self._kill_all()
        self._set_links(up=False)
        self._log_power("off")
        return None

    def power_on(self) -> str | None:
        self._netns_identity(self.options.text("plug"))
        self._set_links(up=True)
        self._log_power("on")
        return "on"

    def plugs(self) -> list[tuple[str, str]]:
        present = set(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else set()
        missing = [name for name in self.managed() if name not in present]
        if missing:
            raise FenceError(f"managed namespaces missing: {','.join(missing)}; fix plugs or create them")
        return [(name, name) for name in self.managed()]
